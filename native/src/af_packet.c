/*
 * AF_PACKET ports: receive through a TPACKET_V2 or TPACKET_V3 ring, send
 * with sendmmsg(). Either way frames are copied out of the ring into slab
 * slots (so the ring memory goes back at once and the datapath owns its
 * frames), up to TP_BATCH_MAX per drain, by one copy_frame().
 *
 * V3 (block ring): the kernel fills fixed-size blocks with variable-size
 * frames and hands a block to user space when it is full or its retire timer
 * fires (>= 1 ms). Dense, so a small ring absorbs a long burst, but a lone
 * frame (a SYN, a ping) waits for the timer. We give a block back as soon as
 * its last frame is copied. The cursor (block, frame, frames left) survives
 * across wake-ups, so a batch that fills at TP_BATCH_MAX in the middle of a
 * block resumes there.
 *
 * V2 (frame ring): every frame slot has its own status word and the socket
 * is readable as soon as one frame is user-owned, so there is no timer; the
 * price is a fixed slot per frame, big enough for a GRO super-frame. Slot
 * geometry (V2_FRAME_SIZE, V2_BLOCK_SIZE below): the kernel puts the frame
 * at macoff = TPACKET_ALIGN(52-byte tpacket2 header + sockaddr_ll + 16) + 10
 * (virtio-net header) - 14 = 76 bytes into the slot, so a 65,549-byte frame
 * (64 KiB IPv4 + Ethernet) needs 65,625; slots are 65,792 bytes (64 KiB +
 * 256, leaving 180 bytes for longer MAC headers). Blocks are allocated by
 * page order, so a block is 2 MiB (order 9) holding 31 slots: 2,039,552 of
 * 2,097,152 bytes used, 2.7 % lost at block ends (a 1 MiB block would lose
 * 5.9 %, a 128 KiB block holding one slot almost half). The frame count is
 * rounded up to whole blocks. A smaller slot (frameSize, e.g. 2 KiB on an
 * uplink without GRO) packs more frames into the same memory; longer frames
 * are then cut by the kernel and counted as truncated.
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
#define V2_FRAME_SIZE (65536 + 256) /* default slot: one GRO super-frame */
#define V2_FRAME_MIN 256
#define V2_BLOCK_SIZE (2u << 20)
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

/* Ring geometry for the options; fills r->block_*, r->frame_*. */
static void ring_geometry(struct tp_ring *r, const struct tp_packet_opts *o) {
  r->version = o->version == 2 ? TPACKET_V2 : TPACKET_V3;
  if (r->version == TPACKET_V2) {
    r->frame_size = o->frame_size ? o->frame_size : V2_FRAME_SIZE;
    r->frames_per_block = V2_BLOCK_SIZE / r->frame_size;
    r->block_size = V2_BLOCK_SIZE;
    r->block_nr = (o->frame_count + r->frames_per_block - 1) / r->frames_per_block;
    r->frame_nr = r->block_nr * r->frames_per_block;
  } else {
    r->block_size = o->block_size;
    r->block_nr = o->block_count;
  }
  r->map_len = (size_t)r->block_size * r->block_nr;
}

static int set_ring(int fd, const struct tp_ring *r, const struct tp_packet_opts *o) {
  if (r->version == TPACKET_V2) {
    struct tpacket_req req;
    memset(&req, 0, sizeof req);
    req.tp_block_size = r->block_size;
    req.tp_block_nr = r->block_nr;
    req.tp_frame_size = r->frame_size;
    req.tp_frame_nr = r->frame_nr;
    return setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req);
  }
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
  if (o->version != 2 && o->version != 3) {
    tp_throw_code(env, EINVAL, "setsockopt", "PACKET_VERSION", ifname, "ring must be TPACKET_V2 or TPACKET_V3");
    return false;
  }
  uint32_t fsize = o->frame_size ? o->frame_size : V2_FRAME_SIZE;
  if (o->version == 2 &&
      (fsize < V2_FRAME_MIN || fsize > V2_BLOCK_SIZE || fsize % TPACKET_ALIGNMENT != 0 ||
       o->frame_count == 0 || (uint64_t)o->frame_count * fsize > (1ull << 30))) {
    tp_throw_code(env, EINVAL, "setsockopt", "PACKET_RX_RING", ifname,
                  "frame size must be a multiple of 16 in 256 .. 2 MiB, frame count at least 1 "
                  "and the ring at most 1 GiB");
    return false;
  }
  if (o->version == 3 &&
      (o->block_size < (uint32_t)page || o->block_size % (uint32_t)page != 0 ||
       o->block_count == 0 || (uint64_t)o->block_size * o->block_count > (1ull << 30))) {
    tp_throw_code(env, EINVAL, "setsockopt", "PACKET_RX_RING", ifname,
                  "block size must be a multiple of the page size and the ring at most 1 GiB");
    return false;
  }
  struct tp_ring *r = &p->ring;
  ring_geometry(r, o);
  memcpy(p->name, ifname, strlen(ifname) + 1);

  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, -1, errno, "socket", "socket(AF_PACKET)", ifname);

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, strlen(ifname) + 1);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) return fail(env, fd, errno, "ioctl", "SIOCGIFINDEX", ifname);
  p->ifindex = ifr.ifr_ifindex;

  if (setopt_int(fd, SOL_PACKET, PACKET_VERSION, r->version) < 0)
    return fail(env, fd, errno, "setsockopt", "PACKET_VERSION", ifname);

  /* PACKET_VNET_HDR must be set before the ring exists (EBUSY after). Some
     kernels refuse the combination with a ring (V2 needs Linux 4.9+, V3
     5.x+): then fall back. */
  p->vnet_hdr = o->vnet_hdr && setopt_int(fd, SOL_PACKET, PACKET_VNET_HDR, 1) == 0;
  if (set_ring(fd, r, o) < 0) {
    int err = errno;
    if (!p->vnet_hdr) return fail(env, fd, err, "setsockopt", "PACKET_RX_RING", ifname);
    p->vnet_hdr = false;
    if (setopt_int(fd, SOL_PACKET, PACKET_VNET_HDR, 0) < 0 || set_ring(fd, r, o) < 0)
      return fail(env, fd, errno, "setsockopt", "PACKET_RX_RING", ifname);
  }

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

/* V2 frame slot i: slots never straddle a block, so blocks end in a gap. */
static inline struct tpacket2_hdr *frame_at(struct tp_ring *r, uint32_t i) {
  return (struct tpacket2_hdr *)(r->map + (size_t)(i / r->frames_per_block) * r->block_size +
                                 (size_t)(i % r->frames_per_block) * r->frame_size);
}

static inline bool frame_user(struct tp_ring *r, uint32_t i) {
  return __atomic_load_n(&frame_at(r, i)->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
}

bool tp_packet_pending(struct tp_port *p) {
  struct tp_ring *r = &p->ring;
  if (!r->map) return false;
  if (r->version == TPACKET_V2) return frame_user(r, r->cur);
  return (r->open && r->pkts_left > 0) || block_user(r, r->cur);
}

static inline uint16_t rd16(const uint8_t *b) {
  uint16_t v;
  memcpy(&v, b, 2);
  return v;
}
static inline void wr16(uint8_t *b, uint16_t v) { memcpy(b, &v, 2); }

/* The fields tpacket2_hdr and tpacket3_hdr both carry, with the frame's
   sockaddr_ll (which follows either header, aligned). */
struct ring_frame {
  const uint8_t *mac;
  const struct sockaddr_ll *sll;
  uint32_t status, len, snaplen;
  uint16_t vlan_tci, vlan_tpid;
};

/* Copies one ring frame into slot `slot`; returns its length or -1 to skip. */
static long copy_frame(struct tp_port *p, const struct ring_frame *f, uint32_t slot) {
  if (p->filter_outgoing && f->sll->sll_pkttype == PACKET_OUTGOING) return -1;

  uint32_t snap = f->snaplen;
  bool vlan = (f->status & TP_STATUS_VLAN_VALID) != 0;
  uint32_t total = snap + (vlan ? 4 : 0);
  if (snap < f->len || total > TP_FRAME_MAX || snap < 14) {
    p->stats[TP_STAT_RX_TRUNCATED]++;
    return -1;
  }
  const uint8_t *mac = f->mac;
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
  uint16_t tpid = (f->status & TP_STATUS_VLAN_TPID_VALID) ? f->vlan_tpid : ETH_P_8021Q;
  memcpy(dst, mac, 12);
  wr16(dst + 12, htons(tpid));
  wr16(dst + 14, htons(f->vlan_tci));
  memcpy(dst + 16, mac + 12, snap - 12);
  if (p->vnet_hdr) {
    if (vh[0] & VNET_F_NEEDS_CSUM) wr16(vh + 6, (uint16_t)(rd16(vh + 6) + 4));
    if (vh[1] != VNET_GSO_NONE) wr16(vh + 2, (uint16_t)(rd16(vh + 2) + 4));
  }
  return total;
}

static inline void v3_frame(struct ring_frame *f, const struct tpacket3_hdr *h) {
  const uint8_t *base = (const uint8_t *)h;
  f->mac = base + h->tp_mac;
  f->sll = (const struct sockaddr_ll *)(base + TPACKET_ALIGN(sizeof *h));
  f->status = h->tp_status;
  f->len = h->tp_len;
  f->snaplen = h->tp_snaplen;
  f->vlan_tci = (uint16_t)h->hv1.tp_vlan_tci;
  f->vlan_tpid = h->hv1.tp_vlan_tpid;
}

static inline void v2_frame(struct ring_frame *f, const struct tpacket2_hdr *h) {
  const uint8_t *base = (const uint8_t *)h;
  f->mac = base + h->tp_mac;
  f->sll = (const struct sockaddr_ll *)(base + TPACKET_ALIGN(sizeof *h));
  f->status = h->tp_status;
  f->len = h->tp_len;
  f->snaplen = h->tp_snaplen;
  f->vlan_tci = h->tp_vlan_tci;
  f->vlan_tpid = h->tp_vlan_tpid;
}

/* Puts a copied frame into the batch arrays. */
static inline void emit(struct tp_port *p, long len, uint32_t *n, double *bytes) {
  if (len < 0) return;
  p->rx_off[*n] = *n * TP_SLOT_SIZE + TP_HEADROOM;
  p->rx_len[*n] = (uint32_t)len;
  *bytes += (double)len;
  (*n)++;
}

static uint32_t drain_v2(struct tp_port *p, double *bytes) {
  struct tp_ring *r = &p->ring;
  uint32_t n = 0;
  struct ring_frame f;
  while (n < TP_BATCH_MAX && frame_user(r, r->cur)) {
    struct tpacket2_hdr *h = frame_at(r, r->cur);
    v2_frame(&f, h);
    emit(p, copy_frame(p, &f, n), &n, bytes);
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    r->cur = r->cur + 1 == r->frame_nr ? 0 : r->cur + 1;
  }
  return n;
}

static uint32_t drain_v3(struct tp_port *p, double *bytes) {
  struct tp_ring *r = &p->ring;
  uint32_t n = 0;
  struct ring_frame f;
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
    v3_frame(&f, h);
    emit(p, copy_frame(p, &f, n), &n, bytes);
    if (--r->pkts_left == 0)
      block_return(r);
    else
      r->next += h->tp_next_offset;
  }
  return n;
}

uint32_t tp_packet_drain(struct tp_port *p) {
  double bytes = 0;
  uint32_t n = p->ring.version == TPACKET_V2 ? drain_v2(p, &bytes) : drain_v3(p, &bytes);
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
  /* V2 fills only the struct tpacket_stats prefix (no freeze count) */
  struct tpacket_stats_v3 st;
  socklen_t sl = sizeof st;
  if (p->fd < 0) return;
  memset(&st, 0, sizeof st);
  if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0) {
    p->stats[TP_STAT_RX_DROPS] += st.tp_drops;
    p->stats[TP_STAT_RX_FREEZES] += st.tp_freeze_q_cnt;
  }
}
