/*
 * AF_PACKET ports: receive through a TPACKET_V3 ring, send with sendmmsg().
 *
 * RX: the kernel fills fixed-size blocks with variable-size frames and hands a
 * block to user space when it is full or its retire timer fires. We copy
 * frames out of user-owned blocks into slab slots (so the ring block can be
 * returned at once and the datapath owns its frames) and give a block back as
 * soon as its last frame is copied. The cursor (block, frame, frames left)
 * survives across wake-ups, so a batch that fills at TP_BATCH_MAX in the
 * middle of a block resumes there.
 *
 * The socket is created with protocol 0 and bound to ETH_P_ALL on one
 * ifindex only after the ring exists, so no frame of another interface can
 * slip into the ring in between.
 *
 * TX: one sendmmsg() per 256 frames, iovecs pointing into the slab; with
 * PACKET_VNET_HDR the 10 bytes before off[i] go out as the virtio-net header.
 */
#define _GNU_SOURCE
#include "tapestry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define SNDBUF_BYTES (4 << 20)
#define VNET_F_NEEDS_CSUM 1
#define VNET_GSO_NONE 0

static int setopt_int(int fd, int level, int opt, int val) {
  return setsockopt(fd, level, opt, &val, sizeof val);
}

static bool fail(napi_env env, int fd, int err, const char *syscall, const char *op,
                 const char *ifname) {
  if (fd >= 0) close(fd);
  tp_throw_errno(env, err, syscall, op, ifname);
  return false;
}

static int set_ring(int fd, const struct tp_packet_opts *o) {
  struct tpacket_req3 req;
  memset(&req, 0, sizeof req);
  /* tp_frame_size/nr are only checked for consistency on V3 */
  req.tp_block_size = o->block_size;
  req.tp_block_nr = o->block_count;
  req.tp_frame_size = 2048;
  req.tp_frame_nr = (o->block_size / 2048) * o->block_count;
  req.tp_retire_blk_tov = o->retire_ms;
  return setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req);
}

bool tp_packet_open(napi_env env, struct tp_port *p, const char *ifname,
                    const struct tp_packet_opts *o) {
  const char *bad = tp_ifname_invalid(ifname);
  if (bad) {
    tp_throw_code(env, EINVAL, "ioctl", "SIOCGIFINDEX", ifname, bad);
    return false;
  }
  long page = sysconf(_SC_PAGESIZE);
  if (o->block_size < (uint32_t)page || o->block_size % (uint32_t)page != 0 ||
      o->block_count == 0 || (uint64_t)o->block_size * o->block_count > (1ull << 30)) {
    tp_throw_code(env, EINVAL, "setsockopt", "PACKET_RX_RING", ifname,
                  "block size must be a multiple of the page size and the ring at most 1 GiB");
    return false;
  }
  memcpy(p->name, ifname, strlen(ifname) + 1);

  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, -1, errno, "socket", "socket(AF_PACKET)", ifname);

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, strlen(ifname) + 1);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) return fail(env, fd, errno, "ioctl", "SIOCGIFINDEX", ifname);
  p->ifindex = ifr.ifr_ifindex;

  if (setopt_int(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V3) < 0)
    return fail(env, fd, errno, "setsockopt", "PACKET_VERSION", ifname);

  /* PACKET_VNET_HDR must be set before the ring exists (EBUSY after). Some
     kernels refuse the combination with a V3 ring: then fall back. */
  p->vnet_hdr = o->vnet_hdr && setopt_int(fd, SOL_PACKET, PACKET_VNET_HDR, 1) == 0;
  if (set_ring(fd, o) < 0) {
    int err = errno;
    if (!p->vnet_hdr) return fail(env, fd, err, "setsockopt", "PACKET_RX_RING", ifname);
    p->vnet_hdr = false;
    if (setopt_int(fd, SOL_PACKET, PACKET_VNET_HDR, 0) < 0 || set_ring(fd, o) < 0)
      return fail(env, fd, errno, "setsockopt", "PACKET_RX_RING", ifname);
  }

  struct tp_ring *r = &p->ring;
  r->block_size = o->block_size;
  r->block_nr = o->block_count;
  r->map_len = (size_t)o->block_size * o->block_count;
  void *map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (map == MAP_FAILED) return fail(env, fd, errno, "mmap", "mmap PACKET_RX_RING", ifname);
  r->map = map;

  p->filter_outgoing = setopt_int(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1) < 0;
  if (setopt_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, SNDBUF_BYTES) < 0)
    (void)setopt_int(fd, SOL_SOCKET, SO_SNDBUF, SNDBUF_BYTES);

  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = p->ifindex;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    int err = errno;
    munmap(r->map, r->map_len);
    r->map = NULL;
    return fail(env, fd, err, "bind", "bind", ifname);
  }
  if (o->promisc) {
    struct packet_mreq mr;
    memset(&mr, 0, sizeof mr);
    mr.mr_ifindex = p->ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
      int err = errno;
      munmap(r->map, r->map_len);
      r->map = NULL;
      return fail(env, fd, err, "setsockopt", "PACKET_MR_PROMISC", ifname);
    }
  }
  p->msgs = calloc(TP_BATCH_MAX, sizeof *p->msgs);
  p->iovs = calloc(TP_BATCH_MAX, sizeof *p->iovs);
  if (!p->msgs || !p->iovs) {
    munmap(r->map, r->map_len);
    r->map = NULL;
    return fail(env, fd, ENOMEM, "calloc", "allocate send vectors", ifname);
  }
  for (uint32_t i = 0; i < TP_BATCH_MAX; i++) {
    p->msgs[i].msg_hdr.msg_iov = &p->iovs[i];
    p->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  p->fd = fd;
  return true;
}

void tp_packet_release(struct tp_port *p) {
  if (p->ring.map) munmap(p->ring.map, p->ring.map_len);
  p->ring.map = NULL;
  free(p->msgs);
  free(p->iovs);
  p->msgs = NULL;
  p->iovs = NULL;
}

static inline struct tpacket_block_desc *block_at(struct tp_ring *r, uint32_t i) {
  return (struct tpacket_block_desc *)(r->map + (size_t)i * r->block_size);
}

static inline bool block_user(struct tp_ring *r, uint32_t i) {
  return __atomic_load_n(&block_at(r, i)->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
}

static inline void block_return(struct tp_ring *r) {
  __atomic_store_n(&block_at(r, r->cur)->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  r->cur = (r->cur + 1) % r->block_nr;
  r->open = false;
  r->pkts_left = 0;
}

bool tp_packet_pending(struct tp_port *p) {
  struct tp_ring *r = &p->ring;
  if (!r->map) return false;
  return (r->open && r->pkts_left > 0) || block_user(r, r->cur);
}

static inline uint16_t rd16(const uint8_t *b) {
  uint16_t v;
  memcpy(&v, b, 2);
  return v;
}
static inline void wr16(uint8_t *b, uint16_t v) { memcpy(b, &v, 2); }

/* Copies one ring frame into slot `slot`; returns its length or -1 to skip. */
static long copy_frame(struct tp_port *p, const struct tpacket3_hdr *h, uint32_t slot) {
  const uint8_t *base = (const uint8_t *)h;
  const struct sockaddr_ll *sll =
      (const struct sockaddr_ll *)(base + TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
  if (p->filter_outgoing && sll->sll_pkttype == PACKET_OUTGOING) return -1;

  uint32_t snap = h->tp_snaplen;
  bool vlan = (h->tp_status & TP_STATUS_VLAN_VALID) != 0;
  uint32_t total = snap + (vlan ? 4 : 0);
  if (snap < h->tp_len || total > TP_FRAME_MAX || snap < 14) {
    p->stats[TP_STAT_RX_TRUNCATED]++;
    return -1;
  }
  const uint8_t *mac = base + h->tp_mac;
  uint8_t *dst = p->slab + (size_t)slot * TP_SLOT_SIZE + TP_HEADROOM;
  uint8_t *vh = dst - TP_VNET_HDR_LEN;
  if (p->vnet_hdr)
    memcpy(vh, mac - TP_VNET_HDR_LEN, TP_VNET_HDR_LEN);
  else
    memset(vh, 0, TP_VNET_HDR_LEN);

  if (!vlan) {
    memcpy(dst, mac, snap);
    return snap;
  }
  /* The kernel stripped the 802.1Q tag into tp_vlan_tci: put it back so the
     datapath sees the frame as it was on the wire. */
  uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
  memcpy(dst, mac, 12);
  wr16(dst + 12, htons(tpid));
  wr16(dst + 14, htons((uint16_t)h->hv1.tp_vlan_tci));
  memcpy(dst + 16, mac + 12, snap - 12);
  if (p->vnet_hdr) {
    if (vh[0] & VNET_F_NEEDS_CSUM) wr16(vh + 6, (uint16_t)(rd16(vh + 6) + 4));
    if (vh[1] != VNET_GSO_NONE) wr16(vh + 2, (uint16_t)(rd16(vh + 2) + 4));
  }
  return total;
}

uint32_t tp_packet_drain(struct tp_port *p) {
  struct tp_ring *r = &p->ring;
  uint32_t n = 0;
  double bytes = 0;
  while (n < TP_BATCH_MAX) {
    if (!r->open) {
      if (!block_user(r, r->cur)) break;
      struct tpacket_block_desc *bd = block_at(r, r->cur);
      r->open = true;
      r->pkts_left = bd->hdr.bh1.num_pkts;
      r->next = (uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt;
      if (r->pkts_left == 0) {
        block_return(r);
        continue;
      }
    }
    const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)r->next;
    long len = copy_frame(p, h, n);
    if (len >= 0) {
      p->rx_off[n] = n * TP_SLOT_SIZE + TP_HEADROOM;
      p->rx_len[n] = (uint32_t)len;
      bytes += (double)len;
      n++;
    }
    if (--r->pkts_left == 0)
      block_return(r);
    else
      r->next += h->tp_next_offset;
  }
  p->stats[TP_STAT_RX_BYTES] += bytes;
  return n;
}

uint32_t tp_packet_send(struct tp_port *p, const uint32_t *off, const uint32_t *len, uint32_t count,
                        double *bytes) {
  size_t hdr = p->vnet_hdr ? TP_VNET_HDR_LEN : 0;
  uint32_t ok = 0;
  double b = 0;
  for (uint32_t i = 0; i < count;) {
    uint32_t chunk = count - i < TP_BATCH_MAX ? count - i : TP_BATCH_MAX;
    for (uint32_t j = 0; j < chunk; j++) {
      p->iovs[j].iov_base = p->slab + off[i + j] - hdr;
      p->iovs[j].iov_len = len[i + j] + hdr;
    }
    uint32_t done = 0;
    while (done < chunk) {
      int r = sendmmsg(p->fd, p->msgs + done, chunk - done, MSG_DONTWAIT);
      if (r < 0) {
        int err = errno;
        if (err == EINTR) continue;
        p->stats[TP_STAT_TX_LAST_ERRNO] = err;
        if (err == EAGAIN || err == EWOULDBLOCK) {
          /* socket buffer full: retrying now would only fail again */
          p->stats[TP_STAT_TX_ERRORS] += count - (i + done);
          *bytes = b;
          return ok;
        }
        p->stats[TP_STAT_TX_ERRORS]++; /* e.g. ENOBUFS, EMSGSIZE, ENETDOWN: skip that frame */
        done++;
        continue;
      }
      for (int k = 0; k < r; k++) b += len[i + done + k];
      ok += (uint32_t)r;
      done += (uint32_t)r;
    }
    i += chunk;
  }
  *bytes = b;
  return ok;
}

void tp_packet_read_stats(struct tp_port *p) {
  struct tpacket_stats_v3 st;
  socklen_t sl = sizeof st;
  if (p->fd < 0) return;
  if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0) {
    p->stats[TP_STAT_RX_DROPS] += st.tp_drops;
    p->stats[TP_STAT_RX_FREEZES] += st.tp_freeze_q_cnt;
  }
}
