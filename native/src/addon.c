/*
 * Module init and the NativePort class.
 *
 * API (see src/io/native.ts for the typed view):
 *   openTap(name, slab, rxOff, rxLen, offload)                         -> NativePort
 *   openPacket(ifname, slab, rxOff, rxLen, blockSize, blockCount,
 *              retireMs, vnetHdr, promisc, ringVersion, frameCount,
 *              frameSize)                                              -> NativePort
 *   layout { batchMax, slotSize, headroom, vnetHdrLen, frameMax }, statsLen
 *   NativePort: kind, fd, name, ifindex, vnetHdr, stats,
 *               start(onBatch, onError?), stop(), send(off, len, count),
 *               pending(), refreshStats(), close()
 *
 * Lifetime. The module is context-aware: every JS environment (main thread,
 * each Worker) gets its own instance data and ports use that environment's
 * libuv loop. A port is freed once both (a) its JS wrapper is collected or the
 * environment is torn down and (b) its uv handles are closed. Each port
 * registers an async cleanup hook, so a Worker that exits without close()
 * still closes the fd (removing a non-persistent TAP) and waits for the
 * handle close callbacks before its loop is closed.
 *
 * Re-entrancy. close()/stop() may run inside onBatch: they only stop the
 * handles and close the fd; the memory lives until the close callbacks, which
 * libuv runs after the current callback has returned.
 */
#define _GNU_SOURCE
#include "tapestry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tp_instance {
  napi_ref port_ctor;
  struct tp_port *constructing; /* handed to the constructor by open*() */
};

#define CHECK_NAPI(env, call)                                              \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      const napi_extended_error_info *ei_;                                 \
      bool pending_;                                                       \
      napi_is_exception_pending((env), &pending_);                         \
      if (!pending_) {                                                     \
        napi_get_last_error_info((env), &ei_);                             \
        napi_throw_error((env), NULL,                                      \
                         ei_ && ei_->error_message ? ei_->error_message    \
                                                   : "N-API call failed"); \
      }                                                                    \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* ---------- teardown ---------- */

static void port_free(struct tp_port *p) {
  tp_packet_release(p);
  free(p);
}

static void on_handle_closed(uv_handle_t *h) {
  struct tp_port *p = h->data;
  /* no napi_* here: the environment may already be gone */
  if (--p->handles_open > 0) return;
  if (p->cleanup) {
    napi_async_cleanup_hook_handle c = p->cleanup;
    p->cleanup = NULL;
    napi_remove_async_cleanup_hook(c);
  }
  if (p->finalized) port_free(p);
}

static void drop_ref(napi_env env, napi_ref *r) {
  if (*r) {
    napi_delete_reference(env, *r);
    *r = NULL;
  }
}

/* Stops polling; keeps fd and handles. Safe to call repeatedly. */
void tp_port_stop(struct tp_port *p) {
  if (p->polling) {
    uv_poll_stop(&p->poll);
    uv_idle_stop(&p->idle);
    p->polling = false;
  }
  drop_ref(p->env, &p->on_batch_ref);
  drop_ref(p->env, &p->on_error_ref);
  if (p->self_strong && p->self_ref) {
    uint32_t n;
    napi_reference_unref(p->env, p->self_ref, &n);
    p->self_strong = false;
  }
}

/* Closes everything; memory goes in on_handle_closed or the finalizer. */
static void port_shutdown(struct tp_port *p) {
  if (p->shut_down) return;
  p->shut_down = true;
  tp_port_stop(p);
  /* napi_make_callback may still be using the async context */
  if (p->actx && p->in_callback == 0) {
    napi_async_destroy(p->env, p->actx);
    p->actx = NULL;
  }
  if (p->fd >= 0) {
    close(p->fd);
    p->fd = -1;
  }
  if (p->ring.map) tp_packet_release(p);
  drop_ref(p->env, &p->slab_ref);
  drop_ref(p->env, &p->rx_off_ref);
  drop_ref(p->env, &p->rx_len_ref);
  drop_ref(p->env, &p->stats_ref);
  p->slab = NULL;
  p->rx_off = p->rx_len = NULL;
  if (p->handles_open > 0) {
    uv_close((uv_handle_t *)&p->poll, on_handle_closed);
    uv_close((uv_handle_t *)&p->idle, on_handle_closed);
  } else if (p->cleanup) {
    napi_async_cleanup_hook_handle c = p->cleanup;
    p->cleanup = NULL;
    napi_remove_async_cleanup_hook(c);
  }
}

static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  struct tp_port *p = arg;
  (void)handle;
  port_shutdown(p); /* removes the hook once the handles are closed */
}

static void port_finalize(napi_env env, void *data, void *hint) {
  struct tp_port *p = data;
  (void)env;
  (void)hint;
  p->finalized = true;
  port_shutdown(p);
  drop_ref(p->env, &p->self_ref);
  if (p->handles_open == 0) port_free(p);
}

/* ---------- NativePort methods ---------- */

static struct tp_port *this_port(napi_env env, napi_callback_info info, size_t *argc,
                                 napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "receiver is not a NativePort");
    return NULL;
  }
  return data;
}

static napi_value m_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct tp_port *p = this_port(env, info, &argc, argv);
  if (!p) return NULL;
  napi_valuetype t0 = napi_undefined, t1 = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t0);
  if (argc >= 2) napi_typeof(env, argv[1], &t1);
  if (t0 != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "onBatch must be a function");
    return NULL;
  }
  if (t1 != napi_function && t1 != napi_undefined && t1 != napi_null) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "onError must be a function or undefined");
    return NULL;
  }
  if (p->fd < 0) {
    tp_throw_code(env, EBADF, "poll", "start", p->name, "port is closed");
    return NULL;
  }
  tp_port_stop(p); /* restart with the new callbacks */
  CHECK_NAPI(env, napi_create_reference(env, argv[0], 1, &p->on_batch_ref));
  if (t1 == napi_function) CHECK_NAPI(env, napi_create_reference(env, argv[1], 1, &p->on_error_ref));
  uint32_t n;
  CHECK_NAPI(env, napi_reference_ref(env, p->self_ref, &n));
  p->self_strong = true;
  int rc = uv_poll_start(&p->poll, UV_READABLE, tp_on_poll);
  if (rc < 0) {
    tp_port_stop(p);
    tp_throw_errno(env, -rc, "epoll_ctl", "uv_poll_start", p->name);
    return NULL;
  }
  p->polling = true;
  /* frames may already be waiting (ring filled before start) */
  if (p->kind == TP_KIND_PACKET) uv_idle_start(&p->idle, tp_on_idle);
  return undefined(env);
}

static napi_value m_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct tp_port *p = this_port(env, info, &argc, NULL);
  if (!p) return NULL;
  tp_port_stop(p);
  return undefined(env);
}

static napi_value m_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct tp_port *p = this_port(env, info, &argc, NULL);
  if (!p) return NULL;
  port_shutdown(p);
  return undefined(env);
}

static napi_value m_refresh_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct tp_port *p = this_port(env, info, &argc, NULL);
  if (!p) return NULL;
  if (p->kind == TP_KIND_PACKET) tp_packet_read_stats(p);
  napi_value v;
  if (!p->stats_ref || napi_get_reference_value(env, p->stats_ref, &v) != napi_ok) return undefined(env);
  return v;
}

/* pending(): whether the RX ring holds a frame user space may read now
   (AF_PACKET; always false for TAP). Does not consume anything. */
static napi_value m_pending(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct tp_port *p = this_port(env, info, &argc, NULL);
  if (!p) return NULL;
  napi_value v;
  napi_get_boolean(env, p->kind == TP_KIND_PACKET && p->fd >= 0 && tp_packet_pending(p), &v);
  return v;
}

static bool get_u32_array(napi_env env, napi_value v, const char *what, uint32_t **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type t;
  napi_value ab;
  size_t boff;
  void *d;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &t, len, &d, &ab, &boff) != napi_ok || t != napi_uint32_array) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a Uint32Array", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  *data = d;
  return true;
}

static napi_value m_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct tp_port *p = this_port(env, info, &argc, argv);
  if (!p) return NULL;
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "send(off, len, count) needs 3 arguments");
    return NULL;
  }
  uint32_t *off, *len;
  size_t noff, nlen;
  if (!get_u32_array(env, argv[0], "off", &off, &noff) ||
      !get_u32_array(env, argv[1], "len", &len, &nlen))
    return NULL;
  double dcount;
  if (napi_get_value_double(env, argv[2], &dcount) != napi_ok || dcount < 0 ||
      dcount != (double)(uint32_t)dcount) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "count must be a non-negative integer");
    return NULL;
  }
  uint32_t count = (uint32_t)dcount;
  if (count > noff || count > nlen) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "count is larger than off.length or len.length");
    return NULL;
  }
  if (p->fd < 0) {
    tp_throw_code(env, EBADF, "send", "send", p->name, "port is closed");
    return NULL;
  }
  if (!tp_port_bind_buffers(p)) {
    tp_throw_code(env, EFAULT, "send", "send", p->name, "slab is detached or too small");
    return NULL;
  }
  napi_value result;
  if (count == 0) {
    napi_create_uint32(env, 0, &result);
    return result;
  }
  size_t hdr = p->vnet_hdr ? TP_VNET_HDR_LEN : 0;
  for (uint32_t i = 0; i < count; i++) {
    if (off[i] < hdr || len[i] == 0 || len[i] > TP_FRAME_MAX ||
        (size_t)off[i] + len[i] > p->slab_len) {
      char msg[160];
      snprintf(msg, sizeof msg,
               "frame %u (off %u, len %u) is outside the slab or not 1..%u bytes "
               "(a vnet port needs off >= %zu)",
               i, off[i], len[i], (unsigned)TP_FRAME_MAX, hdr);
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
      return NULL;
    }
  }
  double bytes = 0;
  uint32_t ok = p->kind == TP_KIND_TAP ? tp_tap_send(p, off, len, count, &bytes)
                                       : tp_packet_send(p, off, len, count, &bytes);
  p->stats[TP_STAT_TX_FRAMES] += ok;
  p->stats[TP_STAT_TX_BYTES] += bytes;
  p->stats[TP_STAT_TX_BATCHES]++;
  napi_create_uint32(env, ok, &result);
  return result;
}

static napi_value g_fd(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct tp_port *p = this_port(env, info, &argc, NULL);
  if (!p) return NULL;
  napi_value v;
  napi_create_int32(env, p->fd, &v);
  return v;
}

/* Constructor: only open*() may build one (it parks the port in instance data). */
static napi_value port_ctor(napi_env env, napi_callback_info info) {
  napi_value self;
  struct tp_instance *inst = NULL;
  size_t argc = 0;
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, NULL, &self, NULL));
  napi_get_instance_data(env, (void **)&inst);
  if (!inst || !inst->constructing) {
    napi_throw_type_error(env, "ERR_ILLEGAL_CONSTRUCTOR", "NativePort is created by openTap/openPacket");
    return NULL;
  }
  struct tp_port *p = inst->constructing;
  inst->constructing = NULL;
  CHECK_NAPI(env, napi_wrap(env, self, p, port_finalize, NULL, NULL));
  CHECK_NAPI(env, napi_create_reference(env, self, 0, &p->self_ref));
  return self;
}

/* ---------- open ---------- */

static bool get_string(napi_env env, napi_value v, const char *what, char *buf, size_t cap) {
  napi_valuetype t;
  size_t len;
  napi_typeof(env, v, &t);
  if (t != napi_string) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  napi_get_value_string_utf8(env, v, buf, cap, &len);
  return true;
}

static bool get_u32(napi_env env, napi_value v, const char *what, uint32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 4294967295.0 ||
      d != (double)(uint32_t)d) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a non-negative integer", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  *out = (uint32_t)d;
  return true;
}

static bool get_bool(napi_env env, napi_value v, const char *what, bool *out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a boolean", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  return true;
}

/* Checks slab/rxOff/rxLen (argv[1..3]) and creates a port with refs to them. */
static struct tp_port *port_new(napi_env env, napi_value *argv) {
  bool is_ab = false;
  void *data;
  size_t len;
  if (napi_is_arraybuffer(env, argv[1], &is_ab) != napi_ok || !is_ab) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "slab must be an ArrayBuffer (not shared)");
    return NULL;
  }
  napi_get_arraybuffer_info(env, argv[1], &data, &len);
  if (len < (size_t)TP_BATCH_MAX * TP_SLOT_SIZE) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "slab must hold BATCH_MAX * SLOT_SIZE bytes");
    return NULL;
  }
  uint32_t *a, *b;
  size_t na, nb;
  if (!get_u32_array(env, argv[2], "rxOff", &a, &na) || !get_u32_array(env, argv[3], "rxLen", &b, &nb))
    return NULL;
  if (na < TP_BATCH_MAX || nb < TP_BATCH_MAX) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "rxOff and rxLen must have BATCH_MAX entries");
    return NULL;
  }
  struct tp_port *p = calloc(1, sizeof *p);
  if (!p) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  p->env = env;
  p->fd = -1;
  if (napi_create_reference(env, argv[1], 1, &p->slab_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &p->rx_off_ref) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &p->rx_len_ref) != napi_ok) {
    drop_ref(env, &p->slab_ref);
    drop_ref(env, &p->rx_off_ref);
    drop_ref(env, &p->rx_len_ref);
    free(p);
    napi_throw_error(env, NULL, "napi_create_reference failed");
    return NULL;
  }
  return p;
}

static void port_abandon(napi_env env, struct tp_port *p) {
  if (p->fd >= 0) close(p->fd);
  tp_packet_release(p);
  drop_ref(env, &p->slab_ref);
  drop_ref(env, &p->rx_off_ref);
  drop_ref(env, &p->rx_len_ref);
  drop_ref(env, &p->stats_ref);
  free(p);
}

static napi_value set_prop(napi_env env, napi_value obj, const char *key, napi_value v) {
  napi_property_descriptor d = {key, NULL, NULL, NULL, NULL, v, napi_enumerable, NULL};
  if (napi_define_properties(env, obj, 1, &d) != napi_ok) return NULL;
  return obj;
}

/* Wraps an opened port in a NativePort and starts its uv handles. */
static napi_value port_publish(napi_env env, struct tp_port *p) {
  struct tp_instance *inst = NULL;
  napi_value ctor, obj, stats_ab, stats, v;
  void *stats_data;
  if (napi_get_instance_data(env, (void **)&inst) != napi_ok || !inst ||
      napi_get_uv_event_loop(env, &p->loop) != napi_ok ||
      napi_create_arraybuffer(env, TP_STAT_LEN * sizeof(double), &stats_data, &stats_ab) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, TP_STAT_LEN, stats_ab, 0, &stats) != napi_ok ||
      napi_create_reference(env, stats, 1, &p->stats_ref) != napi_ok) {
    port_abandon(env, p);
    napi_throw_error(env, NULL, "failed to set up port state");
    return NULL;
  }
  p->stats = stats_data;
  memset(p->stats, 0, TP_STAT_LEN * sizeof(double));

  if (uv_poll_init(p->loop, &p->poll, p->fd) < 0 || uv_idle_init(p->loop, &p->idle) < 0) {
    port_abandon(env, p);
    napi_throw_error(env, NULL, "uv_poll_init failed");
    return NULL;
  }
  p->poll.data = p;
  p->idle.data = p;
  p->handles_open = 2;
  /* idle only runs while user-owned ring blocks remain; it must not keep
     the loop alive by itself */
  uv_unref((uv_handle_t *)&p->idle);

  if (napi_get_reference_value(env, inst->port_ctor, &ctor) != napi_ok) {
    port_shutdown(p);
    p->finalized = true;
    return NULL;
  }
  inst->constructing = p;
  napi_status s = napi_new_instance(env, ctor, 0, NULL, &obj);
  inst->constructing = NULL;
  if (s != napi_ok) {
    /* never wrapped: no finalizer will run */
    p->finalized = true;
    port_shutdown(p);
    return NULL;
  }
  napi_add_async_cleanup_hook(env, on_env_cleanup, p, &p->cleanup);
  napi_create_string_utf8(env, "TapestryPort", NAPI_AUTO_LENGTH, &v);
  napi_async_init(env, obj, v, &p->actx);

  napi_create_string_utf8(env, p->kind == TP_KIND_TAP ? "tap" : "packet", NAPI_AUTO_LENGTH, &v);
  set_prop(env, obj, "kind", v);
  napi_create_string_utf8(env, p->name, NAPI_AUTO_LENGTH, &v);
  set_prop(env, obj, "name", v);
  napi_create_int32(env, p->ifindex, &v);
  set_prop(env, obj, "ifindex", v);
  napi_get_boolean(env, p->vnet_hdr, &v);
  set_prop(env, obj, "vnetHdr", v);
  set_prop(env, obj, "stats", stats);
  return obj;
}

static napi_value f_open_tap(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "openTap(name, slab, rxOff, rxLen, offload)");
    return NULL;
  }
  char name[64];
  bool offload;
  if (!get_string(env, argv[0], "name", name, sizeof name) || !get_bool(env, argv[4], "offload", &offload))
    return NULL;
  struct tp_port *p = port_new(env, argv);
  if (!p) return NULL;
  p->kind = TP_KIND_TAP;
  if (!tp_tap_open(env, p, name, offload)) {
    port_abandon(env, p);
    return NULL;
  }
  return port_publish(env, p);
}

static napi_value f_open_packet(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 12) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS",
                          "openPacket(ifname, slab, rxOff, rxLen, blockSize, blockCount, retireMs, "
                          "vnetHdr, promisc, ringVersion, frameCount, frameSize)");
    return NULL;
  }
  char name[64];
  struct tp_packet_opts o;
  if (!get_string(env, argv[0], "ifname", name, sizeof name) ||
      !get_u32(env, argv[4], "blockSize", &o.block_size) ||
      !get_u32(env, argv[5], "blockCount", &o.block_count) ||
      !get_u32(env, argv[6], "retireMs", &o.retire_ms) ||
      !get_bool(env, argv[7], "vnetHdr", &o.vnet_hdr) || !get_bool(env, argv[8], "promisc", &o.promisc) ||
      !get_u32(env, argv[9], "ringVersion", &o.version) ||
      !get_u32(env, argv[10], "frameCount", &o.frame_count) ||
      !get_u32(env, argv[11], "frameSize", &o.frame_size))
    return NULL;
  struct tp_port *p = port_new(env, argv);
  if (!p) return NULL;
  p->kind = TP_KIND_PACKET;
  if (!tp_packet_open(env, p, name, &o)) {
    port_abandon(env, p);
    return NULL;
  }
  return port_publish(env, p);
}

/* ---------- init ---------- */

static void instance_finalize(napi_env env, void *data, void *hint) {
  struct tp_instance *inst = data;
  (void)hint;
  if (inst->port_ctor) napi_delete_reference(env, inst->port_ctor);
  free(inst);
}

static napi_value make_u32(napi_env env, uint32_t x) {
  napi_value v;
  napi_create_uint32(env, x, &v);
  return v;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  struct tp_instance *inst = calloc(1, sizeof *inst);
  if (!inst) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (napi_set_instance_data(env, inst, instance_finalize, NULL) != napi_ok) {
    free(inst);
    return NULL;
  }
  napi_property_descriptor methods[] = {
      {"start", NULL, m_start, NULL, NULL, NULL, napi_default_method, NULL},
      {"stop", NULL, m_stop, NULL, NULL, NULL, napi_default_method, NULL},
      {"send", NULL, m_send, NULL, NULL, NULL, napi_default_method, NULL},
      {"pending", NULL, m_pending, NULL, NULL, NULL, napi_default_method, NULL},
      {"refreshStats", NULL, m_refresh_stats, NULL, NULL, NULL, napi_default_method, NULL},
      {"close", NULL, m_close, NULL, NULL, NULL, napi_default_method, NULL},
      {"fd", NULL, NULL, g_fd, NULL, NULL, napi_enumerable, NULL},
  };
  napi_value ctor;
  CHECK_NAPI(env, napi_define_class(env, "NativePort", NAPI_AUTO_LENGTH, port_ctor, NULL,
                                    sizeof methods / sizeof methods[0], methods, &ctor));
  CHECK_NAPI(env, napi_create_reference(env, ctor, 1, &inst->port_ctor));

  napi_value layout, fn;
  CHECK_NAPI(env, napi_create_object(env, &layout));
  napi_set_named_property(env, layout, "batchMax", make_u32(env, TP_BATCH_MAX));
  napi_set_named_property(env, layout, "slotSize", make_u32(env, TP_SLOT_SIZE));
  napi_set_named_property(env, layout, "headroom", make_u32(env, TP_HEADROOM));
  napi_set_named_property(env, layout, "vnetHdrLen", make_u32(env, TP_VNET_HDR_LEN));
  napi_set_named_property(env, layout, "frameMax", make_u32(env, TP_FRAME_MAX));
  napi_set_named_property(env, exports, "layout", layout);
  napi_set_named_property(env, exports, "statsLen", make_u32(env, TP_STAT_LEN));
  napi_set_named_property(env, exports, "NativePort", ctor);
  CHECK_NAPI(env, napi_create_function(env, "openTap", NAPI_AUTO_LENGTH, f_open_tap, NULL, &fn));
  napi_set_named_property(env, exports, "openTap", fn);
  CHECK_NAPI(env, napi_create_function(env, "openPacket", NAPI_AUTO_LENGTH, f_open_packet, NULL, &fn));
  napi_set_named_property(env, exports, "openPacket", fn);
  CHECK_NAPI(env, napi_create_function(env, "csumFold", NAPI_AUTO_LENGTH, tp_csum_fold, NULL, &fn));
  napi_set_named_property(env, exports, "csumFold", fn);
  return exports;
}
