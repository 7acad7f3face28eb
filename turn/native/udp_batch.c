/*
 * Batched UDP I/O for the TURN relay (Node-API, Linux): a socket that reads with recvmmsg and
 * hands JavaScript one call per batch of up to BATCH datagrams, and sends with one sendmsg
 * and no libuv request per datagram. Node's dgram pays per datagram: a recvmsg, a 64 KiB
 * allocation, an address string, an object and a JavaScript callback in, a send request out.
 *
 * The datagrams of a batch are copied by the kernel into one buffer per thread, which buffers()
 * returns (BATCH slots of SLOT bytes, shared by every socket of the thread, allocated on the
 * first call); their lengths and ports go into an Int32Array (meta[2i], meta[2i + 1]); their
 * addresses come as an array of strings (IPv6 link-local ones with their %scope, as dgram). The slots are valid only during the batch callback: the next batch
 * overwrites them. A datagram longer than a slot (impossible over UDP/IPv4 and IPv6 without
 * jumbograms) is reported with length -1.
 *
 * This file parses nothing a client sends: it moves bytes and formats addresses with
 * inet_ntop. Sockets are non-blocking; a send that would block is dropped, as a full UDP
 * path drops it, and reported as -EAGAIN.
 *
 * Built by scripts/build-native.mjs with gcc against Node's own headers (no node-gyp).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 32
#define SLOT 65536
/* Batches read per readable event before yielding to the loop (fairness between sockets). */
#define ROUNDS 8

typedef struct Sock Sock;

/* Per Node.js environment (main thread or worker thread). */
typedef struct {
  napi_env env;
  uint8_t *slots;
  int32_t *meta;
  napi_ref slots_ref;
  napi_ref meta_ref;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage names[BATCH];
  Sock *open; /* sockets not closed yet */
  napi_async_cleanup_hook_handle cleanup;
  int closing_count; /* sockets being closed by the cleanup hook */
} Env;

struct Sock {
  uv_poll_t poll;
  Env *env;
  int fd;
  int family;
  int port;
  int closed;      /* close() or cleanup called */
  int refs;        /* the JS handle + the poll handle until its close callback */
  napi_ref on_batch;
  napi_async_context async;
  Sock *prev, *next;
};

static void sock_release(Sock *s) {
  if (--s->refs == 0) free(s);
}

static void throw_errno(napi_env env, int err, const char *what) {
  char name[32], message[160];
  uv_err_name_r(-err, name, sizeof name);
  snprintf(message, sizeof message, "%s %s: %s", what, name, strerror(err));
  napi_throw_error(env, name, message);
}

static Env *env_of(napi_env env) {
  Env *e = NULL;
  napi_get_instance_data(env, (void **)&e);
  return e;
}

static void unlink_sock(Sock *s) {
  Env *e = s->env;
  if (s->prev) s->prev->next = s->next;
  else if (e->open == s) e->open = s->next;
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = NULL;
}

static void on_poll_closed(uv_handle_t *handle) {
  sock_release((Sock *)handle->data);
}

/*
 * Stops polling and closes the descriptor at once (uv_poll_stop removed it from epoll), so the
 * port is free when close() returns, as with dgram; the handle itself closes on the next turn.
 */
static void stop_and_close_fd(Sock *s) {
  unlink_sock(s);
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
}

static void on_cleanup_poll_closed(uv_handle_t *handle) {
  Sock *s = (Sock *)handle->data;
  Env *e = s->env;
  on_poll_closed(handle);
  if (--e->closing_count == 0 && e->cleanup != NULL) {
    napi_async_cleanup_hook_handle h = e->cleanup;
    e->cleanup = NULL;
    napi_remove_async_cleanup_hook(h);
  }
}

/* Stops reading and closes the descriptor. */
static void sock_close(Sock *s, napi_env env) {
  if (s->closed) return;
  s->closed = 1;
  stop_and_close_fd(s);
  if (env != NULL) {
    napi_delete_reference(env, s->on_batch);
    napi_async_destroy(env, s->async);
  }
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

/* The environment exits (worker terminated, process exit) with sockets still open. */
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  Env *e = (Env *)arg;
  e->cleanup = handle;
  e->closing_count = 1;
  while (e->open != NULL) {
    Sock *s = e->open;
    s->closed = 1;
    stop_and_close_fd(s);
    e->closing_count++;
    uv_close((uv_handle_t *)&s->poll, on_cleanup_poll_closed);
  }
  if (--e->closing_count == 0) {
    e->cleanup = NULL;
    napi_remove_async_cleanup_hook(handle);
  }
}

static void on_env_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static napi_value address_string(napi_env env, const struct sockaddr_storage *name) {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
  const char *ok;
  if (name->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)name;
    ok = inet_ntop(AF_INET6, &in6->sin6_addr, text, INET6_ADDRSTRLEN);
    /* A link-local peer: "fe80::1%eth0", as dgram reports it (and parse_address takes it back). */
    if (ok && in6->sin6_scope_id != 0) {
      size_t len = strlen(text);
      char ifname[IF_NAMESIZE];
      if (if_indextoname(in6->sin6_scope_id, ifname) != NULL) snprintf(text + len, sizeof text - len, "%%%s", ifname);
      else snprintf(text + len, sizeof text - len, "%%%u", (unsigned)in6->sin6_scope_id);
    }
  } else {
    ok = inet_ntop(AF_INET, &((const struct sockaddr_in *)name)->sin_addr, text, sizeof text);
  }
  napi_value value;
  napi_create_string_latin1(env, ok ? text : "", NAPI_AUTO_LENGTH, &value);
  return value;
}

static int port_of(const struct sockaddr_storage *name) {
  return ntohs(name->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)name)->sin6_port
                                           : ((const struct sockaddr_in *)name)->sin_port);
}

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET6)
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0 &&
           ((const struct sockaddr_in6 *)a)->sin6_scope_id == ((const struct sockaddr_in6 *)b)->sin6_scope_id;
  return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

/* Calls onBatch(count, addresses) or, on a receive error, onBatch(-errno). */
static void deliver(Sock *s, int count) {
  Env *e = s->env;
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[2], callback, global, result;
  napi_create_int32(env, count, &argv[0]);
  if (count > 0) {
    napi_create_array_with_length(env, (size_t)count, &argv[1]);
    napi_value previous = NULL;
    for (int i = 0; i < count; i++) {
      const struct sockaddr_storage *name = &e->names[i];
      /* Batches mostly come from few addresses: one string for a run of the same one. */
      napi_value address = (previous != NULL && same_address(name, &e->names[i - 1])) ? previous : address_string(env, name);
      napi_set_element(env, argv[1], (uint32_t)i, address);
      previous = address;
    }
  } else {
    napi_get_undefined(env, &argv[1]);
  }
  napi_get_reference_value(env, s->on_batch, &callback);
  napi_get_global(env, &global);
  if (callback != NULL && napi_make_callback(env, s->async, global, callback, 2, argv, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  Sock *s = (Sock *)handle->data;
  Env *e = s->env;
  if (s->closed) return;
  if (status < 0) {
    /*
     * libuv stopped the handle on POLLERR: a pending socket error (an unconnected UDP socket
     * without IP_RECVERR should have none). Read it, which clears it, report it, poll again.
     */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    deliver(s, err > 0 ? -err : status);
    if (!s->closed) uv_poll_start(&s->poll, UV_READABLE, on_readable);
    return;
  }
  for (int round = 0; round < ROUNDS && !s->closed; round++) {
    for (int i = 0; i < BATCH; i++) {
      e->iov[i].iov_base = e->slots + (size_t)i * SLOT;
      e->iov[i].iov_len = SLOT;
      memset(&e->msgs[i].msg_hdr, 0, sizeof e->msgs[i].msg_hdr);
      e->msgs[i].msg_hdr.msg_name = &e->names[i];
      e->msgs[i].msg_hdr.msg_namelen = sizeof e->names[i];
      e->msgs[i].msg_hdr.msg_iov = &e->iov[i];
      e->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(s->fd, e->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) deliver(s, -errno);
      return;
    }
    if (n == 0) return;
    for (int i = 0; i < n; i++) {
      const struct msghdr *hdr = &e->msgs[i].msg_hdr;
      e->meta[2 * i] = (hdr->msg_flags & MSG_TRUNC) ? -1 : (int32_t)e->msgs[i].msg_len;
      e->meta[2 * i + 1] = port_of(&e->names[i]);
    }
    deliver(s, n);
    if (n < BATCH) return;
  }
}

/* buffers() -> [slots, meta]: this thread's batch buffers, allocated on the first call. */
static napi_value Buffers(napi_env env, napi_callback_info info) {
  (void)info;
  Env *e = env_of(env);
  napi_value slots, meta, result;
  if (e == NULL) {
    napi_throw_error(env, "ERR_INVALID_STATE", "the addon has no per-thread state");
    return NULL;
  }
  if (e->slots == NULL) {
    void *data = NULL, *meta_data = NULL;
    napi_value meta_buffer;
    if (napi_create_buffer(env, (size_t)BATCH * SLOT, &data, &slots) != napi_ok ||
        napi_create_arraybuffer(env, 2 * BATCH * sizeof(int32_t), &meta_data, &meta_buffer) != napi_ok ||
        napi_create_typedarray(env, napi_int32_array, 2 * BATCH, meta_buffer, 0, &meta) != napi_ok) {
      napi_throw_error(env, "ENOMEM", "buffers: out of memory");
      return NULL;
    }
    napi_create_reference(env, slots, 1, &e->slots_ref);
    napi_create_reference(env, meta, 1, &e->meta_ref);
    e->slots = data;
    e->meta = meta_data;
  } else {
    napi_get_reference_value(env, e->slots_ref, &slots);
    napi_get_reference_value(env, e->meta_ref, &meta);
  }
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, slots);
  napi_set_element(env, result, 1, meta);
  return result;
}

static int parse_address(int family, const char *text, uint32_t port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    *len = sizeof *in;
    return inet_pton(AF_INET, text, &in->sin_addr) == 1;
  }
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons((uint16_t)port);
  *len = sizeof *in6;
  const char *percent = strchr(text, '%');
  if (percent != NULL) {
    /* "fe80::1%eth0" or "fe80::1%2": a scoped (link-local) address, as address_string gives it. */
    char bare[INET6_ADDRSTRLEN];
    size_t bare_len = (size_t)(percent - text);
    if (bare_len >= sizeof bare || percent[1] == '\0') return 0;
    memcpy(bare, text, bare_len);
    bare[bare_len] = '\0';
    if (inet_pton(AF_INET6, bare, &in6->sin6_addr) != 1) return 0;
    char *end = NULL;
    unsigned long index = strtoul(percent + 1, &end, 10);
    in6->sin6_scope_id = (end != NULL && *end == '\0') ? (uint32_t)index : if_nametoindex(percent + 1);
    return in6->sin6_scope_id != 0;
  }
  if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) return 1;
  /* An IPv4 literal on a dual-stack IPv6 socket: its mapped form (dgram refuses it). */
  struct in_addr v4;
  if (inet_pton(AF_INET, text, &v4) != 1) return 0;
  in6->sin6_addr.s6_addr[10] = 0xff;
  in6->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&in6->sin6_addr.s6_addr[12], &v4, 4);
  return 1;
}

static Sock *sock_of(napi_env env, napi_value handle) {
  Sock *s = NULL;
  if (napi_get_value_external(env, handle, (void **)&s) != napi_ok || s == NULL) {
    napi_throw_error(env, "ERR_INVALID_ARG", "not a socket handle");
    return NULL;
  }
  return s;
}

static void on_handle_free(napi_env env, void *data, void *hint) {
  (void)hint;
  Sock *s = (Sock *)data;
  /*
   * A safeguard only: the socket's callback reference keeps its JavaScript endpoint (and so this
   * handle) alive until close(), which every owner calls.
   */
  if (!s->closed) sock_close(s, env);
  sock_release(s);
}

/* open(family: 4 | 6, address, port, bufferBytes, onBatch) -> handle; throws with the errno's name as code. */
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Env *e = env_of(env);
  if (e == NULL || e->slots == NULL) {
    napi_throw_error(env, "ERR_INVALID_STATE", "open before buffers()");
    return NULL;
  }
  int32_t family_number = 0;
  uint32_t port = 0, buffer_bytes = 0;
  char text[64];
  size_t text_len = 0;
  napi_valuetype callback_type = napi_undefined;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &family_number) != napi_ok ||
      napi_get_value_string_latin1(env, argv[1], text, sizeof text, &text_len) != napi_ok || text_len >= sizeof text - 1 ||
      napi_get_value_uint32(env, argv[2], &port) != napi_ok || napi_get_value_uint32(env, argv[3], &buffer_bytes) != napi_ok ||
      napi_typeof(env, argv[4], &callback_type) != napi_ok || callback_type != napi_function || port > 65535 ||
      (family_number != 4 && family_number != 6)) {
    napi_throw_error(env, "ERR_INVALID_ARG", "open(family, address, port, bufferBytes, onBatch)");
    return NULL;
  }
  int family = family_number == 6 ? AF_INET6 : AF_INET;
  struct sockaddr_storage name;
  socklen_t name_len;
  if (!parse_address(family, text, port, &name, &name_len)) {
    napi_throw_error(env, "ERR_INVALID_IP_ADDRESS", "open: not an IP address of the socket's family");
    return NULL;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  if (buffer_bytes > 0) {
    int size = (int)buffer_bytes;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  if (bind(fd, (struct sockaddr *)&name, name_len) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "bind");
    return NULL;
  }
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &bound_len);

  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  Sock *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "open: out of memory");
    return NULL;
  }
  s->env = e;
  s->fd = fd;
  s->family = family;
  s->port = port_of(&bound);
  s->refs = 2;
  if (uv_poll_init(loop, &s->poll, fd) != 0) {
    close(fd);
    free(s);
    napi_throw_error(env, "EIO", "open: uv_poll_init failed");
    return NULL;
  }
  s->poll.data = s;
  napi_value resource_name;
  napi_create_string_latin1(env, "SwitchboardUdp", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &s->async);
  napi_create_reference(env, argv[4], 1, &s->on_batch);
  s->next = e->open;
  if (e->open) e->open->prev = s;
  e->open = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  napi_value handle;
  napi_create_external(env, s, on_handle_free, NULL, &handle);
  return handle;
}

static napi_value Port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Sock *s = argc ? sock_of(env, argv[0]) : NULL;
  if (s == NULL) return NULL;
  napi_create_int32(env, s->port, &result);
  return result;
}

/*
 * send(handle, port, address, buffer, offset, length) -> bytes sent or -errno
 * sendv(handle, port, address, ...buffers (1 to 3)) -> bytes sent or -errno (one datagram)
 */
static napi_value do_send(napi_env env, napi_callback_info info, int vector) {
  size_t argc = 6;
  napi_value argv[6], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || (vector && argc > 6)) {
    napi_throw_error(env, "ERR_INVALID_ARG", "send(handle, port, address, buffer, offset, length) or sendv(handle, port, address, 1 to 3 buffers)");
    return NULL;
  }
  Sock *s = sock_of(env, argv[0]);
  if (s == NULL) return NULL;
  uint32_t port = 0;
  char text[64];
  size_t text_len = 0;
  if (napi_get_value_uint32(env, argv[1], &port) != napi_ok || port == 0 || port > 65535 ||
      napi_get_value_string_latin1(env, argv[2], text, sizeof text, &text_len) != napi_ok) {
    napi_throw_error(env, "ERR_INVALID_ARG", "send: port 1-65535 and an address string");
    return NULL;
  }
  struct sockaddr_storage to;
  socklen_t to_len;
  int sent;
  if (s->closed) sent = -EBADF;
  else if (text_len >= sizeof text - 1 || !parse_address(s->family, text, port, &to, &to_len)) sent = -EINVAL;
  else {
    struct iovec iov[3];
    size_t parts = 0;
    if (vector) {
      for (size_t i = 3; i < argc && parts < 3; i++, parts++) {
        if (napi_get_buffer_info(env, argv[i], &iov[parts].iov_base, &iov[parts].iov_len) != napi_ok) {
          napi_throw_error(env, "ERR_INVALID_ARG", "sendv: buffers");
          return NULL;
        }
      }
    } else {
      void *data = NULL;
      size_t length = 0;
      uint32_t offset = 0, count = 0;
      if (argc < 6 || napi_get_buffer_info(env, argv[3], &data, &length) != napi_ok ||
          napi_get_value_uint32(env, argv[4], &offset) != napi_ok || napi_get_value_uint32(env, argv[5], &count) != napi_ok ||
          offset > length || count > length - offset) {
        napi_throw_error(env, "ERR_INVALID_ARG", "send: buffer, offset, length within it");
        return NULL;
      }
      iov[0].iov_base = (uint8_t *)data + offset;
      iov[0].iov_len = count;
      parts = 1;
    }
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &to;
    msg.msg_namelen = to_len;
    msg.msg_iov = iov;
    msg.msg_iovlen = parts;
    ssize_t n;
    do n = sendmsg(s->fd, &msg, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    sent = n < 0 ? -errno : (int)n;
  }
  napi_create_int32(env, sent, &result);
  return result;
}

static napi_value Send(napi_env env, napi_callback_info info) { return do_send(env, info, 0); }
static napi_value SendV(napi_env env, napi_callback_info info) { return do_send(env, info, 1); }

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Sock *s = argc ? sock_of(env, argv[0]) : NULL;
  if (s != NULL) sock_close(s, env);
  return NULL;
}

/* errnoName(-errno) -> 'EAGAIN', ... (for error messages in JavaScript). */
static napi_value ErrnoName(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t code = 0;
  char name[32];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc) napi_get_value_int32(env, argv[0], &code);
  uv_err_name_r(code, name, sizeof name);
  napi_create_string_latin1(env, name, NAPI_AUTO_LENGTH, &result);
  return result;
}

NAPI_MODULE_INIT() {
  Env *e = calloc(1, sizeof *e);
  if (e == NULL) return NULL;
  e->env = env;
  napi_set_instance_data(env, e, on_env_free, NULL);
  napi_add_async_cleanup_hook(env, on_env_cleanup, e, NULL);
  napi_value batch, slot;
  napi_create_int32(env, BATCH, &batch);
  napi_create_int32(env, SLOT, &slot);
  napi_property_descriptor props[] = {
      {"buffers", NULL, Buffers, NULL, NULL, NULL, napi_enumerable, NULL},
      {"open", NULL, Open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"port", NULL, Port, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, Send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendv", NULL, SendV, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"errnoName", NULL, ErrnoName, NULL, NULL, NULL, napi_enumerable, NULL},
      {"BATCH", NULL, NULL, NULL, NULL, batch, napi_enumerable, NULL},
      {"SLOT", NULL, NULL, NULL, NULL, slot, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
