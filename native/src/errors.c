/*
 * Errors thrown to JS, shaped like Node's own system errors:
 *   err.message   "TUNSETIFF on tp12: Operation not permitted (EPERM)"
 *   err.code      "EPERM"
 *   err.errno     -1        (negative, as in Node's fs/net errors)
 *   err.syscall   "ioctl"
 *   err.interface "tp12"
 */
#define _GNU_SOURCE
#include "tapestry.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *errno_name(int err, char *buf, size_t len) {
  const char *name = strerrorname_np(err); /* glibc >= 2.32 */
  if (name) return name;
  name = uv_err_name(-err);
  if (name && strncmp(name, "Unknown", 7) != 0) return name;
  snprintf(buf, len, "E%d", err);
  return buf;
}

static void set_prop_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  if (napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

void tp_throw_code(napi_env env, int err, const char *syscall, const char *op, const char *ifname,
                   const char *detail) {
  char namebuf[16];
  char msg[256];
  const char *code = errno_name(err, namebuf, sizeof namebuf);
  snprintf(msg, sizeof msg, "%s on %s: %s (%s)", op, ifname, detail, code);

  napi_value jcode, jmsg, error, jerrno;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok ||
      napi_create_error(env, jcode, jmsg, &error) != napi_ok) {
    napi_throw_error(env, code, msg);
    return;
  }
  if (napi_create_int32(env, -err, &jerrno) == napi_ok)
    napi_set_named_property(env, error, "errno", jerrno);
  set_prop_str(env, error, "syscall", syscall);
  set_prop_str(env, error, "interface", ifname);
  napi_throw(env, error);
}

void tp_throw_errno(napi_env env, int err, const char *syscall, const char *op, const char *ifname) {
  tp_throw_code(env, err, syscall, op, ifname, strerror(err));
}

const char *tp_ifname_invalid(const char *name) {
  size_t len = strlen(name);
  if (len == 0) return "empty interface name";
  if (len >= IFNAMSIZ) return "interface name longer than 15 bytes";
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return "interface name is . or ..";
  for (const char *c = name; *c; c++)
    if (*c == '/' || *c == ':' || isspace((unsigned char)*c))
      return "interface name contains '/', ':' or whitespace";
  return NULL;
}
