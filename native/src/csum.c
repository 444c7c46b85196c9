/*
 * Internet checksum over a byte range (RFC 1071), the one hot path the
 * datapath hands to C: the software GSO completes every segment's inner
 * TCP checksum, tens of kilobytes per super-frame, where V8 manages about
 * 1.4 GB/s and a word loop in C several times that (bench/wire.bench.ts).
 *
 * JS: csumFold(bytes: Uint8Array, off, len) -> 16-bit ones-complement sum
 * of bytes[off .. off+len) as big-endian words, folded, not complemented:
 * exactly fold(sum16(bytes, off, len)) of src/wire/checksum.ts, which the
 * TypeScript path uses when the addon is absent (test/io/csum.test.ts
 * checks they agree).
 */
#define _GNU_SOURCE
#include "tapestry.h"

#include <string.h>

static uint16_t fold64(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  return (uint16_t)s;
}

/* Sum of little-endian 16-bit words; byte order is restored by the caller (RFC 1071 2(B)). */
static uint16_t csum_le(const uint8_t *p, size_t n) {
  uint64_t s0 = 0, s1 = 0;
  while (n >= 16) {
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    s0 += (a & 0xffffffffu) + (a >> 32);
    s1 += (b & 0xffffffffu) + (b >> 32);
    p += 16;
    n -= 16;
  }
  while (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    s0 += w;
    p += 2;
    n -= 2;
  }
  if (n) s0 += *p; /* odd byte: the low byte of a little-endian word, high after the swap */
  return fold64(s0 + s1);
}

napi_value tp_csum_fold(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "csumFold(bytes, off, len)");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length, byte_offset;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &byte_offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "csumFold: bytes must be a Uint8Array");
    return NULL;
  }
  uint32_t off, len;
  if (napi_get_value_uint32(env, argv[1], &off) != napi_ok || napi_get_value_uint32(env, argv[2], &len) != napi_ok ||
      (uint64_t)off + len > length) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "csumFold: range outside the array");
    return NULL;
  }
  uint16_t le = csum_le((const uint8_t *)data + off, len);
  uint16_t be = (uint16_t)((le >> 8) | (le << 8));
  napi_value r;
  napi_create_uint32(env, be, &r);
  return r;
}
