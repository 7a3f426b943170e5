/*
 * The kernel's cost per AoE frame on a veth pair, with no target in the way: `send` pushes N
 * pre-built frames of LEN bytes (EtherType 0x88A2) through one AF_PACKET socket with sendmmsg,
 * BATCH per call; `recv` takes them from another with recvmmsg. Each prints frames/s and its
 * own CPU time per frame (user, system). Run by bench/aoe-frame-floor.ts (npm run
 * bench:aoe-floor), which compiles it with cc. Every AoE target pays at least this per
 * request received and per answer sent.
 *
 *   aoe-frame-floor send|recv IFACE N LEN [BATCH]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_BATCH 64
#define MAX_FRAME 9100

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double seconds(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

static char frames[MAX_BATCH][MAX_FRAME];

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: aoe-frame-floor send|recv IFACE N LEN [BATCH]\n");
    return 2;
  }
  int receiving = strcmp(argv[1], "recv") == 0;
  long n = atol(argv[3]);
  int len = atoi(argv[4]);
  int batch = argc > 5 ? atoi(argv[5]) : MAX_BATCH;
  if ((!receiving && strcmp(argv[1], "send") != 0) || n < 1 || len < 60 || len > MAX_FRAME || batch < 1 || batch > MAX_BATCH) {
    fprintf(stderr, "aoe-frame-floor: send|recv, N >= 1, LEN 60..%d, BATCH 1..%d\n", MAX_FRAME, MAX_BATCH);
    return 2;
  }
  int s = socket(AF_PACKET, SOCK_RAW, htons(0x88a2));
  if (s < 0) { perror("socket"); return 1; }
  int big = 8 << 20;
  setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  struct sockaddr_ll a;
  memset(&a, 0, sizeof a);
  a.sll_family = AF_PACKET;
  a.sll_protocol = htons(0x88a2);
  a.sll_ifindex = (int)if_nametoindex(argv[2]);
  if (a.sll_ifindex == 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) { perror(argv[2]); return 1; }
  struct mmsghdr m[MAX_BATCH];
  struct iovec io[MAX_BATCH];
  for (int i = 0; i < MAX_BATCH; i++) {
    memset(frames[i], 0xff, 12);                 /* broadcast destination, source */
    frames[i][12] = (char)0x88;
    frames[i][13] = (char)0xa2;
    frames[i][14] = 0x18;                        /* AoE version 1, response flag */
    io[i].iov_base = frames[i];
    io[i].iov_len = receiving ? MAX_FRAME : (size_t)len;
    memset(&m[i], 0, sizeof m[i]);
    m[i].msg_hdr.msg_iov = &io[i];
    m[i].msg_hdr.msg_iovlen = 1;
  }
  long done = 0;
  double t0 = now();
  if (receiving) {
    struct timeval idle = { 2, 0 };              /* the sender is done when nothing comes for 2 s */
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
    double last = t0;
    while (done < n) {
      int r = recvmmsg(s, m, MAX_BATCH, 0, NULL);
      if (r <= 0) break;
      if (done == 0) t0 = now();
      done += r;
      last = now();
    }
    double t = last - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"side\":\"recv\",\"frames\":%ld,\"len\":%d,\"seconds\":%.4f,\"userUs\":%.3f,\"sysUs\":%.3f}\n", done, len, t, seconds(ru.ru_utime) / done * 1e6, seconds(ru.ru_stime) / done * 1e6);
  } else {
    while (done < n) {
      int k = n - done < batch ? (int)(n - done) : batch;
      int r = sendmmsg(s, m, (unsigned)k, 0);
      if (r < 0) { perror("sendmmsg"); return 1; }
      done += r;
    }
    double t = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"side\":\"send\",\"frames\":%ld,\"len\":%d,\"seconds\":%.4f,\"userUs\":%.3f,\"sysUs\":%.3f}\n", done, len, t, seconds(ru.ru_utime) / done * 1e6, seconds(ru.ru_stime) / done * 1e6);
  }
  return 0;
}
