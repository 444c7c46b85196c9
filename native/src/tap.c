/*
 * TAP ports: /dev/net/tun with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR.
 *
 * Every read() and write() carries a 10-byte struct virtio_net_hdr in front
 * of the Ethernet frame, which is exactly where the slab keeps it (the 10
 * bytes before off[i]), so a frame moves with one syscall and no copy in
 * user space. With offload on, TUNSETOFFLOAD(CSUM|TSO4|TSO6) lets the kernel
 * hand us partially checksummed frames and TSO super-frames (up to 64 KiB).
 */
#define _GNU_SOURCE
#include "tapestry.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

bool tp_tap_open(napi_env env, struct tp_port *p, const char *name, bool offload) {
  const char *bad = tp_ifname_invalid(name);
  if (bad) {
    tp_throw_code(env, EINVAL, "ioctl", "TUNSETIFF", name, bad);
    return false;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    tp_throw_errno(env, errno, "open", "open /dev/net/tun", name);
    return false;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    tp_throw_errno(env, err, "ioctl", "TUNSETIFF", name);
    return false;
  }
  /* the kernel may have expanded a "%d" template */
  memcpy(p->name, ifr.ifr_name, IFNAMSIZ);
  p->name[IFNAMSIZ - 1] = '\0';

  int hdrsz = TP_VNET_HDR_LEN;
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
    int err = errno;
    close(fd);
    tp_throw_errno(env, err, "ioctl", "TUNSETVNETHDRSZ", p->name);
    return false;
  }
  unsigned int feat = offload ? (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) : 0;
  if (ioctl(fd, TUNSETOFFLOAD, feat) < 0) {
    int err = errno;
    close(fd);
    tp_throw_errno(env, err, "ioctl", "TUNSETOFFLOAD", p->name);
    return false;
  }
  /* ifindex via the TAP's own fd: SIOCGIFINDEX needs a socket, TUNGETIFF
     does not give it, so ask with a throwaway datagram socket. */
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s >= 0) {
    struct ifreq q;
    memset(&q, 0, sizeof q);
    memcpy(q.ifr_name, p->name, IFNAMSIZ);
    if (ioctl(s, SIOCGIFINDEX, &q) == 0) p->ifindex = q.ifr_ifindex;
    close(s);
  }
  p->fd = fd;
  p->vnet_hdr = true;
  return true;
}

/* read() until EAGAIN or a full batch. Frames land at off = i*SLOT + HEADROOM,
   their virtio-net header in the 10 bytes before. */
uint32_t tp_tap_drain(struct tp_port *p, uint32_t max) {
  uint32_t n = 0;
  double *st = p->stats;
  while (n < max) {
    uint32_t off = n * TP_SLOT_SIZE + TP_HEADROOM;
    ssize_t r = read(p->fd, p->slab + off - TP_VNET_HDR_LEN, TP_VNET_HDR_LEN + TP_FRAME_MAX);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        st[TP_STAT_RX_ERRORS]++;
        st[TP_STAT_RX_LAST_ERRNO] = errno;
      }
      break;
    }
    if (r <= TP_VNET_HDR_LEN) {
      st[TP_STAT_RX_ERRORS]++;
      continue;
    }
    p->rx_off[n] = off;
    p->rx_len[n] = (uint32_t)r - TP_VNET_HDR_LEN;
    st[TP_STAT_RX_BYTES] += (double)(r - TP_VNET_HDR_LEN);
    n++;
  }
  return n;
}

/* One write() per frame, header included (tun has no batched write). */
uint32_t tp_tap_send(struct tp_port *p, const uint32_t *off, const uint32_t *len, uint32_t count,
                     double *bytes) {
  uint32_t ok = 0;
  double b = 0;
  for (uint32_t i = 0; i < count; i++) {
    size_t want = (size_t)len[i] + TP_VNET_HDR_LEN;
    ssize_t r;
    do {
      r = write(p->fd, p->slab + off[i] - TP_VNET_HDR_LEN, want);
    } while (r < 0 && errno == EINTR);
    if (r == (ssize_t)want) {
      ok++;
      b += len[i];
    } else {
      p->stats[TP_STAT_TX_ERRORS]++;
      p->stats[TP_STAT_TX_LAST_ERRNO] = r < 0 ? errno : EIO;
    }
  }
  *bytes = b;
  return ok;
}
