/*
 * turnblast: the native data plane of the TURN benchmark's load generator (driven by
 * bench/lib/nativeBlast.ts). Node keeps the control plane (allocations, channel bindings,
 * forwarder registrations), closes its sockets and hands their ports over; this process binds
 * the same ports, sends paced ChannelData frames with sendmmsg and counts what the peers
 * receive with recvmmsg, at a fraction of the CPU per packet of Node's dgram sockets.
 *
 * Build: gcc -O2 -pthread -o turnblast turnblast.c   (Linux, libc only)
 *
 * Protocol: one command per line on stdin; every command is answered by exactly one JSON
 * line on stdout, in the order the commands came (a command waits for the one before it).
 *
 *   flow <clientPort> <dstAddr> <dstPort> <channel> <peerPort>
 *       Binds a client socket on 127.0.0.1:<clientPort> that sends to <dstAddr>:<dstPort>
 *       (IPv4) with ChannelData channel <channel> (decimal, 0x4000-0x7fff), and a peer socket
 *       on 127.0.0.1:<peerPort> whose datagrams are counted.       -> {"flow":<index>}
 *   gso <0|1>
 *       Whether sends may use UDP GSO (below; on unless turned off). -> {"gso":0|1}
 *   start
 *       Starts the receiving thread (no flow may be added after).
 *                                                   -> {"flows":N,"sndbuf":B,"rcvbuf":B,"gso":0|1}
 *       (the kernel's effective socket buffer sizes in bytes; whether the kernel takes UDP GSO)
 *   send <payloadBytes> <rate> <durationMs>
 *       Sends <rate> packets per second for <durationMs> and answers when done:
 *                                                                  -> {"sent":N,"achievedRate":R,"sendErrors":E}
 *   stream <payloadBytes> <rate>
 *       The same, in the background until `stop`.                  -> {"streaming":true}
 *   stop
 *       Ends the stream.                                           -> {"sent":N,"achievedRate":R,"sendErrors":E}
 *   received
 *       Datagrams the peer sockets received since start.           -> {"received":N}
 *   quit (or end of stdin)                                         -> {"quit":true}, then exits 0
 *   A command that fails answers {"error":"..."}.
 *
 * Packets: a ChannelData frame (channel, payload length, <payloadBytes> bytes of 0x5a, zero
 * padding to a multiple of 4), as test/helpers/stun.ts encodeChannelData builds it; the bare
 * forwarder (bench/servers/udpForwarder.ts) gets the same frames.
 *
 * Pacing (the semantics of TurnFlows.send in bench/lib/turnLoad.ts): every millisecond, send
 * what is due by the clock (rate x elapsed, less what was sent), never more than 20 ms worth
 * at once, round-robin over the flows; a generator that cannot keep up shows a lower achieved
 * rate instead of catching up in bursts. Within one tick each flow's share goes out in
 * sendmmsg batches on its own socket. Sends are blocking; a datagram the kernel refuses
 * (ENOBUFS, ECONNREFUSED) is counted in sendErrors and as sent: it shows up as loss.
 *
 * UDP GSO (UDP_SEGMENT, Linux 4.18+): each message of a sendmmsg batch carries up to 64
 * frames, which the kernel cuts into separate datagrams of one frame each before they reach
 * the receiving socket (a relay that does not ask for UDP_GRO sees the same datagrams as
 * without it). The IP and loopback path runs once per message instead of once per datagram,
 * which takes most of the sender's CPU per packet away. Where the kernel refuses it, or after
 * `gso 0`, each message is one datagram.
 *
 * Receiving: see receive_loop.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FLOWS 1024
/* Datagrams per sendmmsg / recvmmsg call. */
#define SEND_BATCH 256
#define RECV_BATCH 256
#define BUFFER_BYTES (4 * 1024 * 1024)
#define MAX_PAYLOAD 65000
/* Frames in one GSO message at most (the kernel's limit is 64 or more, and 64 KiB in all). */
#define GSO_FRAMES 64

struct flow {
  int client; /* connected to the relay (or forwarder) */
  int peer;   /* bound, counted */
  uint8_t header[4];
  /* A message of frames: this flow's header and the shared payload, GSO_FRAMES times. */
  struct iovec frames[2 * GSO_FRAMES];
};

static struct flow flows[MAX_FLOWS];
static int flow_count;
static atomic_ullong received;
static atomic_int stopping; /* ends a send or stream early */
static atomic_int quitting; /* ends the receiving thread */
static int gso_wanted = 1;

struct result {
  uint64_t sent;
  uint64_t errors;
  double seconds;
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void reply(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *format, ...) {
  va_list args;
  va_start(args, format);
  vprintf(format, args);
  va_end(args);
  putchar('\n');
  fflush(stdout);
}

static void reply_error(const char *what) {
  reply("{\"error\":\"%s: %s\"}", what, strerror(errno));
}

/* Sets a socket buffer, past the sysctl limit where we may (root: the FORCE option). */
static void set_buffer(int fd, int force, int plain) {
  int bytes = BUFFER_BYTES;
  if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) != 0) setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof bytes);
}

static int buffer_size(int fd, int option) {
  int bytes = 0;
  socklen_t len = sizeof bytes;
  getsockopt(fd, SOL_SOCKET, option, &bytes, &len);
  return bytes;
}

static int bind_loopback(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

static void add_flow(int client_port, const char *dst_addr, int dst_port, int channel, int peer_port) {
  if (flow_count >= MAX_FLOWS) {
    reply("{\"error\":\"at most %d flows\"}", MAX_FLOWS);
    return;
  }
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(dst_port)};
  if (inet_pton(AF_INET, dst_addr, &dst.sin_addr) != 1) {
    reply("{\"error\":\"not an IPv4 address: %s\"}", dst_addr);
    return;
  }
  int client = bind_loopback(client_port);
  if (client < 0) {
    reply_error("bind client port");
    return;
  }
  /* Connected: each send skips the route lookup of an unconnected one. */
  if (connect(client, (struct sockaddr *)&dst, sizeof dst) != 0) {
    close(client);
    reply_error("connect");
    return;
  }
  set_buffer(client, SO_SNDBUFFORCE, SO_SNDBUF);
  int peer = bind_loopback(peer_port);
  if (peer < 0) {
    close(client);
    reply_error("bind peer port");
    return;
  }
  set_buffer(peer, SO_RCVBUFFORCE, SO_RCVBUF);
  struct flow *f = &flows[flow_count];
  f->client = client;
  f->peer = peer;
  f->header[0] = (uint8_t)(channel >> 8);
  f->header[1] = (uint8_t)channel;
  reply("{\"flow\":%d}", flow_count);
  flow_count += 1;
}

/* Reads every datagram waiting on every peer socket; returns how many. */
static uint64_t drain(struct mmsghdr *msgs) {
  uint64_t total = 0;
  for (int i = 0; i < flow_count; i++) {
    int got;
    do {
      got = recvmmsg(flows[i].peer, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
      if (got > 0) total += (uint64_t)got;
    } while (got == RECV_BATCH);
  }
  if (total) atomic_fetch_add_explicit(&received, (unsigned long long)total, memory_order_relaxed);
  return total;
}

/*
 * The receiving thread. Idle, it blocks in epoll until a peer socket has data; busy, it
 * drains every peer socket once a millisecond until a pass finds nothing. A relay sends its
 * datagrams one by one, so waking for each (as a `message` event or a bare epoll loop does)
 * costs a wake-up and a context switch per packet, more than the receive itself; once a
 * millisecond, a recvmmsg call reads a batch. The socket buffers hold far more than 1 ms.
 */
static void *receive_loop(void *unused) {
  (void)unused;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < flow_count; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = flows[i].peer};
    epoll_ctl(ep, EPOLL_CTL_ADD, flows[i].peer, &ev);
  }
  /* Only datagrams are counted, not their bytes: every message lands, truncated, in one
   * small scratch buffer (the kernel copies no more than it holds). */
  static char scratch[64];
  static struct iovec iov = {.iov_base = scratch, .iov_len = sizeof scratch};
  static struct mmsghdr msgs[RECV_BATCH];
  for (int i = 0; i < RECV_BATCH; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const struct timespec millisecond = {0, 1000000};
  struct epoll_event events[64];
  while (!atomic_load(&quitting)) {
    if (epoll_wait(ep, events, 64, 50) <= 0) continue;
    while (drain(msgs) > 0 && !atomic_load(&quitting)) nanosleep(&millisecond, NULL);
  }
  close(ep);
  return NULL;
}

/* Whether the kernel takes UDP_SEGMENT on a client socket (with `size` bytes per datagram). */
static int set_gso(int fd, int size) {
  return setsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, sizeof size) == 0;
}

/* Sends `count` frames on flow `f`: messages of `per_message` frames (1 without GSO), in sendmmsg batches. */
static void send_burst(struct flow *f, unsigned per_message, uint64_t count, uint64_t *errors) {
  static struct mmsghdr msgs[SEND_BATCH];
  static unsigned frames_in[SEND_BATCH];
  while (count > 0) {
    unsigned n = 0;
    for (; count > 0 && n < SEND_BATCH; n++) {
      unsigned k = count < per_message ? (unsigned)count : per_message;
      msgs[n].msg_hdr.msg_iov = f->frames;
      msgs[n].msg_hdr.msg_iovlen = 2 * k;
      frames_in[n] = k;
      count -= k;
    }
    for (unsigned done = 0; done < n;) {
      int sent = sendmmsg(f->client, msgs + done, n - done, 0);
      if (sent > 0) {
        done += (unsigned)sent;
      } else if (errno != EINTR) {
        /* The first message was refused: count its datagrams and go on with the rest. */
        *errors += frames_in[done];
        done += 1;
      }
    }
  }
}

/* Paced sending over every flow for `duration_ms`, or until `stopping` when it is 0. */
static struct result blast(int payload, double rate, double duration_ms, int *gso) {
  struct result r = {0, 0, 0};
  size_t padded = ((size_t)payload + 3) & ~(size_t)3;
  uint8_t *body = calloc(padded ? padded : 1, 1);
  memset(body, 0x5a, (size_t)payload);
  size_t frame = 4 + padded;
  unsigned per_message = (unsigned)(MAX_PAYLOAD / frame);
  if (per_message > GSO_FRAMES) per_message = GSO_FRAMES;
  *gso = gso_wanted && per_message > 1;
  for (int i = 0; i < flow_count && *gso; i++) *gso = set_gso(flows[i].client, (int)frame);
  if (!*gso) {
    per_message = 1;
    for (int i = 0; i < flow_count; i++) set_gso(flows[i].client, 0);
  }
  for (int i = 0; i < flow_count; i++) {
    struct flow *f = &flows[i];
    f->header[2] = (uint8_t)(payload >> 8);
    f->header[3] = (uint8_t)payload;
    for (unsigned k = 0; k < per_message; k++) {
      f->frames[2 * k] = (struct iovec){.iov_base = f->header, .iov_len = 4};
      f->frames[2 * k + 1] = (struct iovec){.iov_base = body, .iov_len = padded};
    }
  }
  uint64_t cap = (uint64_t)((rate + 49) / 50); /* 20 ms worth at most in one tick */
  int next = 0;
  double start = now_s();
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  for (;;) {
    double elapsed_ms = (now_s() - start) * 1000;
    int done = atomic_load(&stopping) || (duration_ms > 0 && elapsed_ms >= duration_ms);
    double until = duration_ms > 0 && elapsed_ms > duration_ms ? duration_ms : elapsed_ms;
    uint64_t target = (uint64_t)(rate * until / 1000);
    uint64_t due = target > r.sent ? target - r.sent : 0;
    if (due > cap) due = cap;
    /* Round-robin: packet k of this tick goes to flow (next + k) % flows. */
    uint64_t each = due / (uint64_t)flow_count;
    int extra = (int)(due % (uint64_t)flow_count);
    for (int i = 0; i < flow_count; i++) {
      int f = (next + i) % flow_count;
      uint64_t count = each + (i < extra ? 1 : 0);
      if (count) send_burst(&flows[f], per_message, count, &r.errors);
    }
    next = (int)((next + due) % (uint64_t)flow_count);
    r.sent += due;
    if (done) break;
    /* The next tick 1 ms after this one; when behind, at once, without a debt of ticks. */
    deadline.tv_nsec += 1000000;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec += 1;
      deadline.tv_nsec -= 1000000000;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec > deadline.tv_nsec)) deadline = now;
    else clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
  }
  r.seconds = now_s() - start;
  free(body);
  return r;
}

static void reply_result(struct result r, int gso) {
  reply("{\"sent\":%llu,\"achievedRate\":%.1f,\"sendErrors\":%llu,\"gso\":%d}", (unsigned long long)r.sent,
        r.seconds > 0 ? r.sent / r.seconds : 0.0, (unsigned long long)r.errors, gso);
}

/* The background stream of `stream` ... `stop`. */
static struct {
  pthread_t thread;
  int running;
  int payload;
  double rate;
  struct result result;
  int gso;
} stream;

static void *stream_loop(void *unused) {
  (void)unused;
  stream.result = blast(stream.payload, stream.rate, 0, &stream.gso);
  return NULL;
}

static void stop_stream(void) {
  atomic_store(&stopping, 1);
  pthread_join(stream.thread, NULL);
  stream.running = 0;
}

int main(void) {
  /* Do not outlive the Node process that drives us (besides end of stdin). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  pthread_t receiver;
  int started = 0;
  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    char command[16] = "", address[64];
    int a, b, c, d;
    double rate;
    if (sscanf(line, "%15s", command) != 1) continue;
    if (strcmp(command, "flow") == 0) {
      if (started) reply("{\"error\":\"flows are added before start\"}");
      else if (sscanf(line, "flow %d %63s %d %d %d", &a, address, &b, &c, &d) != 5) reply("{\"error\":\"usage: flow <clientPort> <dstAddr> <dstPort> <channel> <peerPort>\"}");
      else add_flow(a, address, b, c, d);
    } else if (strcmp(command, "start") == 0) {
      if (started || flow_count == 0) {
        reply("{\"error\":\"start once, after at least one flow\"}");
        continue;
      }
      if (pthread_create(&receiver, NULL, receive_loop, NULL) != 0) {
        reply_error("pthread_create");
        continue;
      }
      started = 1;
      int gso = gso_wanted && set_gso(flows[0].client, 1200);
      reply("{\"flows\":%d,\"sndbuf\":%d,\"rcvbuf\":%d,\"gso\":%d}", flow_count, buffer_size(flows[0].client, SO_SNDBUF),
            buffer_size(flows[0].peer, SO_RCVBUF), gso);
    } else if (strcmp(command, "send") == 0 || strcmp(command, "stream") == 0) {
      int streaming = command[1] == 't';
      double duration = 0;
      int ok = streaming ? sscanf(line, "stream %d %lf", &a, &rate) == 2 : sscanf(line, "send %d %lf %lf", &a, &rate, &duration) == 3;
      if (!ok || a < 0 || a > MAX_PAYLOAD || rate <= 0 || (!streaming && duration <= 0))
        reply("{\"error\":\"usage: send <payloadBytes> <rate> <durationMs> | stream <payloadBytes> <rate>\"}");
      else if (!started || stream.running)
        reply("{\"error\":\"%s\"}", started ? "a stream is running" : "not started");
      else if (!streaming) {
        atomic_store(&stopping, 0);
        int gso;
        struct result r = blast(a, rate, duration, &gso);
        reply_result(r, gso);
      } else {
        atomic_store(&stopping, 0);
        stream.payload = a;
        stream.rate = rate;
        if (pthread_create(&stream.thread, NULL, stream_loop, NULL) != 0) {
          reply_error("pthread_create");
          continue;
        }
        stream.running = 1;
        reply("{\"streaming\":true}");
      }
    } else if (strcmp(command, "stop") == 0) {
      if (!stream.running) {
        reply("{\"error\":\"no stream is running\"}");
        continue;
      }
      stop_stream();
      reply_result(stream.result, stream.gso);
    } else if (strcmp(command, "gso") == 0) {
      if (sscanf(line, "gso %d", &a) != 1) reply("{\"error\":\"usage: gso <0|1>\"}");
      else reply("{\"gso\":%d}", gso_wanted = a != 0);
    } else if (strcmp(command, "received") == 0) {
      reply("{\"received\":%llu}", (unsigned long long)atomic_load(&received));
    } else if (strcmp(command, "quit") == 0) {
      break;
    } else {
      reply("{\"error\":\"unknown command %s\"}", command);
    }
  }
  if (stream.running) stop_stream();
  atomic_store(&quitting, 1);
  if (started) pthread_join(receiver, NULL);
  for (int i = 0; i < flow_count; i++) {
    close(flows[i].client);
    close(flows[i].peer);
  }
  reply("{\"quit\":true}");
  return 0;
}
