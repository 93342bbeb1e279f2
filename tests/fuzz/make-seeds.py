#!/usr/bin/env python3
"""Write the hand-made seed inputs of the fuzz targets into corpus/<target>/.

The seeds are committed; this script documents how each one is built and
rewrites them after a change of input format (it only touches the files it
names).  Each seed is a valid or nearly valid input, so that the fuzzer
starts past the checks it could not guess (a segment's magic, a queue's
geometry) and from scripts that already wrap indices and stream messages.
The input formats are described at the top of each fuzz_*.c file.

Inputs found by the fuzzer that once crashed mproc live beside these as
regress-* files; the script writes the hand-made ones among them too.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

MAGIC = 0x474553434F52504D
HDR = 256
KIND_RAW, KIND_QUEUE, KIND_PIPE = 1, 2, 3
SPSC_SHARED = MPMC_SHARED = 320  # five cache lines of indices and events
QUEUE_CTL = 128
PIPE_CTL = 384


def u8(*v):
    return bytes(v)


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v & (2**64 - 1))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------
# fuzz_queue_ring: cfg, then commands (op % 18).

PUT, GET, PEEK, RELEASE, NEXT, STATE, GET_MANY, PUT_MANY = 0, 2, 4, 5, 6, 7, 8, 9
RESERVE, COMMIT, CLOSE, JOIN, WORD, BYTES, PRODUCE, FRONT = 10, 11, 12, 13, 14, 15, 16, 17


def q_cfg(spsc, cap_i, max_i, start_i, joinable=False):
    return u8((1 if spsc else 0) | cap_i << 1 | max_i << 3 | start_i << 5 |
              (0x80 if joinable else 0))


def q_put(n):
    return u8(PUT) + u16(n)


def q_get():  # into a buffer of max_msg bytes
    return u8(GET, 0, 0)


def q_roundtrip():
    s = q_put(5) + q_put(0) + q_put(2040) + u8(STATE)
    s += q_get() + u8(PEEK, RELEASE, NEXT) + q_get() + q_get()
    s += u8(PUT_MANY, 1) + u16(7) + u16(30)  # n - 1, then n lengths
    s += u8(GET_MANY, 1, 0, 0)
    s += u8(RESERVE) + u16(12) + u8(COMMIT, 1) + u8(GET, 1, 200, 0)
    return s


def q_wrap(rounds, length):
    s = b""
    for _ in range(rounds):
        s += q_put(length) + q_put(length) + q_get() + q_get()
    return s


write("fuzz_queue_ring", "spsc-roundtrip", q_cfg(True, 3, 0, 0) + q_roundtrip())
write("fuzz_queue_ring", "spsc-wrap-2e64",
      q_cfg(True, 0, 1, 2) + q_wrap(6, 8) + u8(STATE))
write("fuzz_queue_ring", "spsc-wrap-2e32-pad",
      q_cfg(True, 1, 2, 1) + q_wrap(8, 20) + u8(STATE))
write("fuzz_queue_ring", "mpmc-roundtrip",
      q_cfg(False, 1, 2, 0) + q_put(13) + q_put(0) + q_put(14) + q_get() +
      u8(PEEK, RELEASE, NEXT, STATE) + q_get() + u8(GET_MANY, 2, 0, 0, 0))
write("fuzz_queue_ring", "mpmc-wrap-2e64",
      q_cfg(False, 0, 3, 2) + q_wrap(6, 40) + u8(STATE))
write("fuzz_queue_ring", "mpmc-joinable",
      q_cfg(False, 2, 1, 1, True) + q_put(1) + q_get() + u8(JOIN, 0) +
      u8(JOIN, 1) + u8(JOIN, 1) + u8(JOIN, 0))
# The hostile peer: a record and a pad written by hand, a lying length,
# a slot whose sequence is ahead, a head beyond the tail by more than cap.
write("fuzz_queue_ring", "spsc-peer-records",
      q_cfg(True, 0, 0, 0) +
      u8(PRODUCE, 0x20, 0) + u16(5) + q_get() +
      u8(PRODUCE, 0x38, 3, 0) + q_get() +
      u8(FRONT, 2) + u32(0xFFFF) + u8(0, 0) + q_get() +
      u8(WORD, 0, 2) + u16(72) + q_get())
write("fuzz_queue_ring", "mpmc-peer-slots",
      q_cfg(False, 0, 2, 0) +
      u8(PRODUCE, 0, 0) + u16(3) + q_get() +
      u8(PRODUCE, 4, 0) + u16(3) + u8(5) + q_get() + q_put(1) +
      u8(FRONT, 1, 14, 1, 1) + u16(1) + q_get() +
      u8(WORD, 0, 3, 63) + q_put(2) + u8(STATE))
# Regressions: spsc.c once adopted a head or tail that was not a
# multiple of 8 when it resynchronised with the shared index, and then
# wrote (head) or read (tail) a record header across the end of the ring.
# corpus/fuzz_pipe_ring/regress-spsc-unaligned-fuzzed is the fuzzer's own
# find of the same bug through a pipe.
write("fuzz_queue_ring", "regress-spsc-unaligned-head",
      q_cfg(True, 3, 0, 0) + u8(WORD, 1, 0) + u64(4088) +
      u8(WORD, 0, 0) + u64(4093) + q_put(0))
write("fuzz_queue_ring", "regress-spsc-unaligned-tail",
      q_cfg(True, 3, 0, 0) + u8(WORD, 1, 0) + u64(4093) +
      u8(WORD, 0, 0) + u64(4104) + q_get())

# ---------------------------------------------------------------------
# fuzz_pipe_ring: cfg, then commands (bit 7: which end; low bits % 16).

SEND, RECV_INTO, RECV_BYTES, RECV_OBJ, LOOK, FILENO = 0, 2, 4, 5, 6, 7
P_WORD, P_BYTES, P_PRODUCE, P_STREAM, P_FRONT = 9, 11, 12, 13, 14
B = 0x80  # the command runs on end b


def p_cfg(duplex, cap_i, start_i, arm_a=False, arm_b=False):
    return u8((1 if duplex else 0) | cap_i << 1 | start_i << 3 |
              (0x20 if arm_a else 0) | (0x40 if arm_b else 0))


def p_send(end, n, streamed=False):
    # Short: 0..max_payload; streamed: max_payload + 1 + n.
    return u8(end | SEND, 2 if streamed else 0) + u16(n)


def p_recv(end, cap):
    return u8(end | RECV_INTO, 2) + u16(cap)


write("fuzz_pipe_ring", "oneway-short-and-streamed",
      p_cfg(False, 0, 0) + p_send(B, 100) + p_recv(0, 200) +
      p_send(B, 959, True) + u8(LOOK) + u8(RECV_BYTES, 1) +
      p_send(B, 0) + u8(RECV_OBJ, 3) + u8(LOOK))
write("fuzz_pipe_ring", "duplex-fileno-2e64",
      p_cfg(True, 0, 2, True, True) + p_send(0, 300) + p_send(B, 40) +
      p_recv(B, 300) + p_recv(0, 40) + p_send(0, 2000, True) +
      p_recv(B, 9000) + u8(LOOK, B | LOOK))
write("fuzz_pipe_ring", "oneway-wrap-2e32",
      p_cfg(False, 0, 1) +
      (p_send(B, 1500) + p_send(B, 1500) + p_recv(0, 1500) + p_recv(0, 1500)) * 4)
# A stream written by the peer: fragments {header, data} of 100, 50 and
# 30 bytes (total 180), each followed by its "lie" byte (0: honest); and
# one whose total lies.
FRAG_HDR = 16
write("fuzz_pipe_ring", "peer-stream",
      p_cfg(False, 0, 0) + u8(P_STREAM, 2, 0) + u16(180) + u8(0) +
      u16(FRAG_HDR + 100) + u8(0) + u16(FRAG_HDR + 50) + u8(0) + u16(FRAG_HDR + 30) +
      u8(0) + p_recv(0, 4096) +
      u8(P_STREAM, 1, 0) + u16(20) + u8(0) + u16(FRAG_HDR + 100) + u8(0) +
      u16(FRAG_HDR + 50) + u8(0) + u8(RECV_BYTES, 1))
# Honest mode (cfg bit 7): b sends numbered messages, the peer plays a
# sender or a receiver that dies part-way; commands are op % 8.
H_SEND, H_RECV, H_LOOK, H_DEAD_TX, H_DEAD_RX = 0, 2, 5, 6, 7


def h_send(n, streamed=False):
    # Short: 8 + n; streamed: max_payload + 1 + n.
    return u8(H_SEND, 0 if streamed else 1) + u16(n)


def h_recv(into=True):
    return u8(H_RECV, 1 if into else 0)


# A sender dies after two fragments; b takes over with a streamed message
# and a short one, which must arrive whole, not spliced or swallowed.
write("fuzz_pipe_ring", "honest-dead-sender",
      u8(0x80 | 3 << 1) + h_send(100) + h_recv() +
      u8(H_DEAD_TX, 1, 10) + u16(500) + u16(300) + u8(0) + h_recv() +
      h_send(2000, True) + h_recv(False) +
      u8(H_DEAD_TX, 0, 3) + u16(40) + u8(1) + h_send(5) + h_recv())
# A receiver dies after taking the first fragment of b's streamed
# message: the rest is skipped (and counted), the next message arrives.
write("fuzz_pipe_ring", "honest-dead-receiver",
      u8(0x80 | 3 << 1) + h_send(2000, True) + u8(H_DEAD_RX, 0) +
      h_send(50) + h_recv() + u8(H_LOOK) + h_recv(False))
write("fuzz_pipe_ring", "peer-records",
      p_cfg(True, 0, 0) + u8(P_PRODUCE, 0, 0, 0) + u16(9) + u16(0) +
      p_recv(0, 100) +
      u8(P_PRODUCE, 0, 1, 3, 20) + u16(12) + p_recv(0, 4096) +
      u8(P_FRONT, 1, 0) + u16(1) + u8(1) + u32(2) + u8(0) + u64(0) +
      u8(LOOK) + u8(P_WORD, 7, 1, 1, 2) + u8(B | LOOK))

# ---------------------------------------------------------------------
# fuzz_shm_header: mode, file size, connection token shape, [token size],
# then the file.


def header(kind, total, geom):
    g = list(geom) + [0] * (8 - len(geom))
    h = u64(MAGIC) + u32(1) + u32(kind) + u64(total) + u64(HDR) + \
        u64(total - HDR) + u32(1) + u32(0) + b"".join(u64(x) for x in g)
    return h + bytes(HDR - len(h))


def shm_seed(total, body, mode=0, shape=0, token_size=None):
    s = u8(mode) + u16(total) + u8(shape)
    if token_size is not None:
        s += u64(token_size)
    return s + body


# Queues: SPSC of 64 bytes, max 24; MPMC of 4 slots of max 13 (stride 32).
spsc_total = HDR + QUEUE_CTL + SPSC_SHARED + 64
spsc = header(KIND_QUEUE, spsc_total, [1, 64, 24, 0, 0, QUEUE_CTL + SPSC_SHARED])
ring = HDR + QUEUE_CTL
rec = u32(5) + u32(0) + b"hello\0\0\0"
spsc_body = spsc + bytes(QUEUE_CTL) + u64(16) + u64(1) + bytes(48) + bytes(256) + rec
write("fuzz_shm_header", "queue-spsc", shm_seed(spsc_total, spsc_body))
write("fuzz_shm_header", "queue-spsc-size-lies",
      shm_seed(spsc_total, spsc_body, mode=1, token_size=spsc_total + 4096))

mpmc_total = HDR + QUEUE_CTL + MPMC_SHARED + 4 * 32
mpmc = header(KIND_QUEUE, mpmc_total, [2, 4, 13, 32, 0, QUEUE_CTL + MPMC_SHARED])
slots = b"".join(u64(i) + bytes(24) for i in range(4))
write("fuzz_shm_header", "queue-mpmc",
      shm_seed(mpmc_total, mpmc + bytes(QUEUE_CTL + MPMC_SHARED) + slots))

# Pipes of 4096-byte rings: one-way with a message waiting for end a (rx
# eventfd, no tx), and duplex (both eventfds) for end b.
ring_size = SPSC_SHARED + 4096
oneway_total = HDR + PIPE_CTL + ring_size
oneway = header(KIND_PIPE, oneway_total, [0, 4096, PIPE_CTL, 0])
oneway_body = oneway + bytes(PIPE_CTL) + u64(16) + u64(1) + bytes(SPSC_SHARED - 16) + rec
write("fuzz_shm_header", "pipe-oneway", shm_seed(oneway_total, oneway_body, shape=0x08))
duplex_total = HDR + PIPE_CTL + 2 * ring_size
duplex = header(KIND_PIPE, duplex_total,
                [1, 4096, PIPE_CTL, PIPE_CTL + ring_size])
write("fuzz_shm_header", "pipe-duplex", shm_seed(duplex_total, duplex, shape=0x01))

write("fuzz_shm_header", "raw", shm_seed(4096, header(KIND_RAW, 4096, [7])))
write("fuzz_shm_header", "truncated-header",
      shm_seed(200, header(KIND_QUEUE, 200, [])[:200]))


# ---------------------------------------------------------------------
# fuzz_mpmc_consumer: cfg (bit 6: the queue watches its producers), then
# commands (op % 12).  Only the seed for the producer table is written
# here; the others were made by hand (see their commit).

MC_GET_WAITING, MC_PEER_WRITE, MC_PUT, MC_GET = 7, 10, 6, 0


def mc_table(k, *rest):  # peer_write, table case (what >= 0xf0), slot 0
    return u8(MC_PEER_WRITE, 0xF6, 0, k, *rest)


# A dead producer named in the table: a waiting get says -MPROC_EPEERDIED;
# after this process's own put it is a live producer and the get times out.
write("fuzz_mpmc_consumer", "watch-dead-producer",
      u8(0x48) + mc_table(0, 4) + mc_table(0xFE, 1) + u8(MC_GET_WAITING, 0xC2) +
      u8(MC_PUT, 3) + u8(MC_GET, 1) + u8(MC_GET_WAITING, 0xC2) +
      mc_table(0xFF, 1) + u8(MC_GET_WAITING, 0xC2))
