/*
 * tapestry_native: packet I/O for the Tapestry datapath.
 *
 * One "port" is one kernel packet endpoint (a TAP fd or an AF_PACKET socket
 * with a TPACKET_V2 or TPACKET_V3 RX ring) bound to the slab the datapath
 * owns. A port is driven by a uv_poll_t on the loop of the JS environment
 * that opened it (main thread or a worker_threads Worker); each wake-up
 * copies up to TP_BATCH_MAX frames into slab slots 0..n-1 and calls JS once with n.
 *
 * Layout constants below must match src/packet/layout.ts; the TypeScript
 * loader compares them with the `layout` export at load time.
 */
#ifndef TAPESTRY_NATIVE_H
#define TAPESTRY_NATIVE_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* keep in sync with src/packet/layout.ts */
#define TP_BATCH_MAX 256
#define TP_HEADROOM 256
#define TP_VNET_HDR_LEN 10
#define TP_FRAME_MAX (65536 + 14)
#define TP_SLOT_SIZE (((TP_HEADROOM + TP_FRAME_MAX + 4095) / 4096) * 4096)

/* Stats slots (Float64Array); keep in sync with STAT_* in src/io/native.ts. */
enum tp_stat {
  TP_STAT_RX_FRAMES,     /* frames handed to JS */
  TP_STAT_RX_BYTES,      /* bytes handed to JS, virtio-net header excluded */
  TP_STAT_RX_BATCHES,    /* JS callbacks (passes that produced >= 1 frame) */
  TP_STAT_RX_ERRORS,     /* read errors, runt frames, poll errors */
  TP_STAT_TX_FRAMES,     /* frames the kernel accepted */
  TP_STAT_TX_BYTES,      /* bytes the kernel accepted, header excluded */
  TP_STAT_TX_BATCHES,    /* send() calls with count > 0 */
  TP_STAT_TX_ERRORS,     /* frames the kernel refused */
  TP_STAT_RX_DROPS,      /* AF_PACKET: ring drops (PACKET_STATISTICS tp_drops) */
  TP_STAT_RX_TRUNCATED,  /* frames cut short (snaplen < len or > FRAME_MAX); dropped */
  TP_STAT_RX_WAKEUPS,    /* poll/idle passes, including empty ones */
  TP_STAT_RX_FREEZES,    /* AF_PACKET: ring queue freezes (tp_freeze_q_cnt) */
  TP_STAT_RX_LAST_ERRNO, /* errno of the last RX failure (positive), 0 if none */
  TP_STAT_TX_LAST_ERRNO, /* errno of the last TX failure (positive), 0 if none */
  TP_STAT_LEN
};

enum tp_kind { TP_KIND_TAP, TP_KIND_PACKET };

/* AF_PACKET RX ring and the read cursor into it.
   V3: `cur` is a block; open/pkts_left/next walk the frames inside it.
   V2: `cur` is a frame index (0 .. frame_nr-1); each frame has its own status. */
struct tp_ring {
  uint8_t *map;        /* mmap of block_nr * block_size bytes */
  size_t map_len;
  int version;         /* TPACKET_V2 or TPACKET_V3 */
  uint32_t block_size;
  uint32_t block_nr;
  uint32_t frame_size; /* V2 */
  uint32_t frame_nr;   /* V2 */
  uint32_t frames_per_block; /* V2 */
  uint32_t cur;        /* V3: block the cursor is in; V2: next frame */
  bool open;           /* V3: cursor is inside block `cur` (owned by user) */
  uint32_t pkts_left;  /* V3: frames not yet consumed in block `cur` */
  uint8_t *next;       /* V3: next tpacket3_hdr in block `cur` */
};

struct tp_port {
  napi_env env;
  uv_loop_t *loop;
  enum tp_kind kind;
  int fd;                  /* -1 once closed */
  char name[IFNAMSIZ];
  int ifindex;
  bool vnet_hdr;           /* frames carry a virtio-net header on the wire to the kernel */
  bool filter_outgoing;    /* AF_PACKET without PACKET_IGNORE_OUTGOING: drop PACKET_OUTGOING */

  /* JS objects the port keeps alive (strong refs) */
  napi_ref slab_ref, rx_off_ref, rx_len_ref, stats_ref;
  napi_ref self_ref;       /* weak, strong while polling */
  napi_ref on_batch_ref, on_error_ref;
  napi_async_context actx;
  double *stats;

  /* refreshed from the refs at every pass (a transferred buffer detaches) */
  uint8_t *slab;
  size_t slab_len;
  uint32_t *rx_off, *rx_len;

  /* libuv */
  uv_poll_t poll;
  uv_idle_t idle;
  bool polling;            /* start() .. stop() */
  bool self_strong;
  int handles_open;        /* handles initialised and not yet closed */
  int in_callback;         /* depth of JS callbacks running for this port */
  uint32_t last_pass_frames; /* frames the previous wake-up delivered (TAP latency mode) */
  bool finalized;          /* JS wrapper collected */
  bool shut_down;          /* shutdown done (fd closed, refs dropped) */
  napi_async_cleanup_hook_handle cleanup;

  /* AF_PACKET */
  struct tp_ring ring;
  struct mmsghdr *msgs;    /* TP_BATCH_MAX entries */
  struct iovec *iovs;      /* TP_BATCH_MAX entries */
};

/* errors.c */
/* Throws Error{code, errno, syscall, interface}: "<op> on <ifname>: <strerror> (<CODE>)". */
void tp_throw_errno(napi_env env, int err, const char *syscall, const char *op, const char *ifname);
/* Throws Error{code} with a free-form detail instead of strerror. */
void tp_throw_code(napi_env env, int err, const char *syscall, const char *op, const char *ifname,
                   const char *detail);
/* Same checks as the kernel's dev_valid_name(); NULL if valid, else a reason. */
const char *tp_ifname_invalid(const char *name);

/* addon.c */
/* Stops polling (idempotent). */
void tp_port_stop(struct tp_port *p);

/* rx.c */
/* Refreshes slab pointers from the JS objects; false if a buffer went away. */
bool tp_port_bind_buffers(struct tp_port *p);
/* uv_poll callback: one wake-up of a port. */
void tp_on_poll(uv_poll_t *h, int status, int events);
/* uv_idle callback: an extra pass while ring blocks remain user-owned. */
void tp_on_idle(uv_idle_t *h);

/* tap.c */
/* Opens a TAP device; fills fd, name, ifindex. Throws and returns false on failure. */
bool tp_tap_open(napi_env env, struct tp_port *p, const char *name, bool offload);
uint32_t tp_tap_drain(struct tp_port *p, uint32_t max);
uint32_t tp_tap_send(struct tp_port *p, const uint32_t *off, const uint32_t *len, uint32_t count,
                     double *bytes);

/* af_packet.c */
struct tp_packet_opts {
  uint32_t version;      /* 2 or 3 (TPACKET_V2 / TPACKET_V3) */
  uint32_t frame_count;  /* V2: frames wanted (rounded up to whole blocks) */
  uint32_t frame_size;   /* V2: bytes per frame slot, 0 for the default */
  uint32_t block_size;   /* V3 */
  uint32_t block_count;  /* V3 */
  uint32_t retire_ms;    /* V3 */
  bool vnet_hdr;
  bool promisc;
};
bool tp_packet_open(napi_env env, struct tp_port *p, const char *ifname,
                    const struct tp_packet_opts *o);
uint32_t tp_packet_drain(struct tp_port *p);
bool tp_packet_pending(struct tp_port *p);
uint32_t tp_packet_send(struct tp_port *p, const uint32_t *off, const uint32_t *len, uint32_t count,
                        double *bytes);
void tp_packet_read_stats(struct tp_port *p);
void tp_packet_release(struct tp_port *p);

/* csum.c: csumFold(bytes, off, len), the folded RFC 1071 sum of a range. */
napi_value tp_csum_fold(napi_env env, napi_callback_info info);

#endif
