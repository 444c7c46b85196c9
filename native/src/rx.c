/*
 * RX path: one wake-up of a port drains its device into the slab and calls
 * JS once per batch (TAP: read() loop; AF_PACKET: TPACKET_V2/V3 ring walk),
 * with the TAP latency mode and the ring's extra pass. Split from addon.c,
 * which keeps the port lifecycle and the JS-facing methods.
 */
#define _GNU_SOURCE
#include "tapestry.h"

#include <errno.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

/* Refreshes slab pointers from the JS objects; false if a buffer went away. */
bool tp_port_bind_buffers(struct tp_port *p) {
  napi_env env = p->env;
  napi_value v, ab;
  void *data;
  size_t len, boff;
  napi_typedarray_type t;
  if (!p->slab_ref || napi_get_reference_value(env, p->slab_ref, &v) != napi_ok ||
      napi_get_arraybuffer_info(env, v, &data, &len) != napi_ok || !data ||
      len < (size_t)TP_BATCH_MAX * TP_SLOT_SIZE)
    return false;
  p->slab = data;
  p->slab_len = len;
  if (napi_get_reference_value(env, p->rx_off_ref, &v) != napi_ok ||
      napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &boff) != napi_ok || !data ||
      len < TP_BATCH_MAX)
    return false;
  p->rx_off = data;
  if (napi_get_reference_value(env, p->rx_len_ref, &v) != napi_ok ||
      napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &boff) != napi_ok || !data ||
      len < TP_BATCH_MAX)
    return false;
  p->rx_len = data;
  return true;
}

/* Calls fn(arg) as a top-level callback; a throw becomes an uncaught exception. */
static void call_js(struct tp_port *p, napi_ref fn_ref, napi_value arg) {
  napi_env env = p->env;
  napi_value fn, self, result;
  if (!fn_ref || napi_get_reference_value(env, fn_ref, &fn) != napi_ok) return;
  if (napi_get_reference_value(env, p->self_ref, &self) != napi_ok || !self) napi_get_undefined(env, &self);
  p->in_callback++;
  napi_status s = napi_make_callback(env, p->actx, self, fn, 1, &arg, &result);
  p->in_callback--;
  if (p->shut_down && p->actx && p->in_callback == 0) {
    napi_async_destroy(env, p->actx);
    p->actx = NULL;
  }
  if (s != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
}

/* The port failed for good (device gone, buffer detached): stop, tell JS. */
static void port_fail(struct tp_port *p, int err, const char *what) {
  napi_env env = p->env;
  napi_ref on_error = p->on_error_ref;
  p->on_error_ref = NULL;
  p->stats[TP_STAT_RX_ERRORS]++;
  p->stats[TP_STAT_RX_LAST_ERRNO] = err;
  if (p->polling) {
    uv_poll_stop(&p->poll);
    uv_idle_stop(&p->idle);
    p->polling = false;
  }
  if (on_error) {
    tp_throw_errno(env, err, "poll", what, p->name);
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    call_js(p, on_error, exc);
    napi_delete_reference(env, on_error);
  }
  tp_port_stop(p);
}


/* Batches one wake-up may deliver before yielding to the rest of the loop:
   amortises the epoll round trip under load, bounded so other ports and
   timers still get their turn. */
#define TP_PASS_BATCHES 4

/* One wake-up: drain and deliver up to TP_PASS_BATCHES batches, then decide
   whether another pass is due.

   TAP latency mode: when the previous wake-up of this port delivered at most
   one frame (a request/response flow, not a stream), the first batch is that
   single frame. It is processed and sent before the read() that would only
   have returned EAGAIN, which takes one syscall off every hop's critical
   path; the rest, if any, is then drained in full batches as usual. */
static void port_pass(struct tp_port *p) {
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  p->stats[TP_STAT_RX_WAKEUPS]++;
  uint32_t total = 0;
  for (int b = 0; b < TP_PASS_BATCHES && p->polling; b++) {
    if (!tp_port_bind_buffers(p)) {
      port_fail(p, EFAULT, "slab (detached or too small)");
      break;
    }
    uint32_t max = (p->kind == TP_KIND_TAP && b == 0 && p->last_pass_frames <= 1) ? 1 : TP_BATCH_MAX;
    uint32_t n = p->kind == TP_KIND_TAP ? tp_tap_drain(p, max) : tp_packet_drain(p);
    if (n == 0) break;
    total += n;
    p->stats[TP_STAT_RX_FRAMES] += n;
    p->stats[TP_STAT_RX_BATCHES]++;
    napi_value jn;
    napi_create_uint32(env, n, &jn);
    call_js(p, p->on_batch_ref, jn);
    /* TAP: a batch shorter than asked for means read() hit EAGAIN */
    if (n < max && p->kind == TP_KIND_TAP) break;
  }
  p->last_pass_frames = total;
  /* A TAP fd stays readable while frames are queued (level-triggered poll).
     A TPACKET_V3 socket only reports the block before the kernel's current
     one, so a partly consumed block may not wake us again: run an idle pass
     while user-owned blocks remain. A TPACKET_V2 socket is readable while
     the frame before the kernel's head is user-owned, which holds until we
     have consumed everything; the idle pass costs nothing there. */
  if (p->polling && p->kind == TP_KIND_PACKET) {
    if (tp_packet_pending(p))
      uv_idle_start(&p->idle, tp_on_idle);
    else
      uv_idle_stop(&p->idle);
  }
  napi_close_handle_scope(env, scope);
}

void tp_on_poll(uv_poll_t *h, int status, int events) {
  struct tp_port *p = h->data;
  (void)events;
  if (!p->polling || p->fd < 0) return;
  if (status < 0) {
    /* EPOLLERR; libuv has already stopped the handle. */
    int err = -status;
    if (p->kind == TP_KIND_PACKET) {
      /* A packet socket reports ENETDOWN when its link goes down and rebinds
         by itself when it comes back up: clear the error and keep polling
         while the interface exists. Deleted interface: the socket is dead. */
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      char ifname[IF_NAMESIZE];
      getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
      if (if_indextoname((unsigned)p->ifindex, ifname) != NULL) {
        p->stats[TP_STAT_RX_ERRORS]++;
        p->stats[TP_STAT_RX_LAST_ERRNO] = soerr ? soerr : EIO;
        if (uv_poll_start(&p->poll, UV_READABLE, tp_on_poll) == 0) return;
      }
      err = ENODEV;
    }
    /* TAP: EPOLLERR means the device was deleted (e.g. with its netns) */
    napi_handle_scope scope;
    if (napi_open_handle_scope(p->env, &scope) != napi_ok) return;
    port_fail(p, err, "poll");
    napi_close_handle_scope(p->env, scope);
    return;
  }
  port_pass(p);
}

void tp_on_idle(uv_idle_t *h) {
  struct tp_port *p = h->data;
  if (!p->polling || p->fd < 0) {
    uv_idle_stop(h);
    return;
  }
  port_pass(p);
}

