# SPDX-License-Identifier: LGPL-2.1-or-later
"""
dproto: a raw duetd protocol client for the daemon tests (libduet/proto.h),
for what libduet itself never does: holding many connections, stalling in
the middle of a request, marking a million files done in big requests.
Run by test users (setpriv), so it uses nothing but the standard library.

  dproto.py SOCK hold N MODE OUT     open N connections, hold them
  dproto.py SOCK marks DIR N OUT [READY GO]
                                     one task, N whole-file done marks
  dproto.py SOCK rangemarks DIR N OUT [READY GO]
                                     the same with page ranges
  dproto.py SOCK overflow DIR READY GO OUT
                                     a task overflowing during its scan
  dproto.py SOCK versions DIR OUT    clients of other protocol versions
  dproto.py SOCK handoff OUT         connect, hand the connection to a child
                                     and exit; the child says HELLO once the
                                     connecting process is gone

handoff writes to OUT "error RESULT SENTENCE" or "reply RESULT" for the
HELLO.

hold MODEs: hello (HELLO, then nothing), none (connect only), halfhdr
(half a header), halfpay (HELLO, then a TASK_NEW header and half its
payload). hold writes to OUT one line per connection once all are open
("accepted", or "refused RESULT SENTENCE"), then "open N" and waits: for
each connection the daemon closes it writes "closed I SECONDS" (seconds
since its last byte was sent), and "all closed" when none is left.
SIGTERM ends it.
"""
import os
import resource
import select
import socket
import struct
import sys
import time

MAGIC, VERSION = 0x54455544, 1
HELLO, TASK_NEW, FETCH, DONE, TASK_STATUS, DAEMON_STATUS = 1, 2, 4, 5, 8, 9
REPLY, READY, ERROR = 64, 65, 66
DONE_SET, DONE_RESET = 1, 2
MAX_DONE_OPS = 1024


def hdr(t, n, seq):
    return struct.pack("<IHHII", MAGIC, VERSION, t, n, seq)


def hello_msg(seq=1):
    return hdr(HELLO, 8, seq) + struct.pack("<II", VERSION, 0)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        x = s.recv(n - len(b))
        if not x:
            raise ConnectionResetError("closed by duetd")
        b += x
    return b


def read_reply(s):
    """(type, result, body) of the next message that is not READY."""
    while True:
        magic, ver, t, n, seq = struct.unpack("<IHHII", recv_exact(s, 16))
        body = recv_exact(s, n)
        if t == READY:
            continue
        result = struct.unpack("<i", body[:4])[0] if len(body) >= 8 else 0
        return t, result, body[8:]


def call(s, t, payload, seq):
    s.sendall(hdr(t, len(payload), seq) + payload)
    return read_reply(s)


def send(s, data):
    """A refused connection may be closed before the data is sent: its
    sentence is read all the same (libduet does so too)."""
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def task(path, d, name="dproto"):
    s = connect(path)
    t, r, _ = call(s, HELLO, struct.pack("<II", VERSION, 0), 1)
    if t != REPLY or r < 0:
        sys.exit(f"dproto: HELLO refused: {r}")
    n, p = name.encode(), d.encode()
    t, r, body = call(s, TASK_NEW, struct.pack("<IIHHI", 0x30, 0, len(n), len(p), 0) + n + p, 2)
    if t != REPLY or r < 0:
        sys.exit(f"dproto: TASK_NEW {d}: {r}")
    return s


def done(s, op, fids, seq):
    """fids: (ino, gen, dev, index, count) tuples; the reply's result."""
    ops = b"".join(struct.pack("<QQIIQQ", ino, gen, dev, 0, index, count)
                   for ino, gen, dev, index, count in fids)
    t, r, body = call(s, DONE, struct.pack("<II", op, len(fids)) + ops, seq)
    return r, body.decode(errors="replace") if t == ERROR else ""


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hold(path, n, mode, out):
    raise_nofile()
    conns, lines, sent = [], [], []
    for i in range(n):
        s = connect(path)
        if mode == "hello":
            send(s, hello_msg())
            t, r, body = read_reply(s)
            if t == ERROR:
                lines.append(f"refused {r} {body.decode(errors='replace')}")
                s.close()
                continue
            lines.append("accepted")
        elif mode == "halfhdr":
            s.sendall(hdr(HELLO, 8, 1)[:8])
            lines.append("accepted")
        elif mode == "halfpay":
            send(s, hello_msg())
            t, r, body = read_reply(s)
            if t == ERROR:
                lines.append(f"refused {r} {body.decode(errors='replace')}")
                s.close()
                continue
            payload = struct.pack("<IIHHI", 0x30, 0, 4, 16, 0) + b"name" + b"/" * 16
            s.sendall(hdr(TASK_NEW, len(payload), 2) + payload[:len(payload) // 2])
            lines.append("accepted")
        else:
            lines.append("accepted")
        conns.append(s)
        sent.append(time.monotonic())
    with open(out + ".tmp", "w") as f:
        f.write("\n".join(lines + [f"open {len(conns)}"]) + "\n")
    os.rename(out + ".tmp", out)
    live = dict(enumerate(conns))
    with open(out, "a") as f:
        while live:
            r, _, _ = select.select(list(live.values()), [], [], 1.0)
            for s in r:
                i = next(k for k, v in live.items() if v is s)
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                if data:
                    continue
                f.write(f"closed {i} {time.monotonic() - sent[i]:.2f}\n")
                f.flush()
                s.close()
                del live[i]
        f.write("all closed\n")
        f.flush()
        while True:
            time.sleep(3600)


def whole_mark(i):
    """Mark i: file i + 1 done as a whole."""
    return (1 + i, 1, 1, 0, 0)


def range_mark(i):
    """Mark i in the layout roaring stores worst: in each 65,536-page
    block of a file, a page, then 4000 pages into the same block."""
    blk = i // 2
    f, k = blk // 65536, blk % 65536
    return (1 + f, 1, 1, (k << 16) + (2 if i % 2 else 0), 4000 if i % 2 else 1)


def marks(path, d, n, out, ready=None, go=None, mark=whole_mark):
    """N marks (whole files of made-up files (dev 1, ino 1...), or with
    range_mark, ranges), 1024 a request. With READY and GO: READY is
    created once the task is registered, and the marks wait for GO."""
    s = task(path, d)
    if ready:
        open(ready, "w").close()
        while not os.path.exists(go):
            time.sleep(0.05)
    ok, first_err, seq, i = 0, None, 3, 0
    while i < n:
        k = min(MAX_DONE_OPS, n - i)
        r, _ = done(s, DONE_SET, [mark(i + j) for j in range(k)], seq)
        seq += 1
        if r < 0 and first_err is None:
            first_err = r
        if r >= 0:
            ok += k
        i += k
    text = f"requested {n} ok_requests_marks {ok} first_error {first_err}\n"
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    sys.stdout.flush()
    while True:
        time.sleep(3600)


def overflow(path, d, ready, go, out):
    """A task that does not fetch while its scan waits at half its bound
    (READY says when the scan has stopped with files left), then, once
    GO exists, fetches everything: the LOST its overflow queued and the
    resync's items, until nothing is pending and the scan is done (or 60
    s). OUT gets the counters; then it holds the task."""
    s = task(path, d)
    seq = 3

    def status():
        nonlocal seq
        t, r, body = call(s, TASK_STATUS, b"", seq)
        seq += 1
        st = struct.unpack("<10Q", body[:80])
        return {"lost": st[5], "resyncs": st[6], "pending": st[7],
                "scan_files": st[8], "scan_done": st[9]}

    last, same = None, 0
    for _ in range(300):
        st = status()
        same = same + 1 if st["scan_done"] < st["scan_files"] and st["scan_done"] == last else 0
        last = st["scan_done"]
        if same >= 5:
            break
        time.sleep(0.1)
    with open(ready, "w") as f:
        f.write(" ".join(f"{k}={v}" for k, v in st.items()) + "\n")
    while not os.path.exists(go):
        time.sleep(0.05)
    lost, deadline = 0, time.monotonic() + 60
    while time.monotonic() < deadline:
        t, r, body = call(s, FETCH, struct.pack("<I", 4096), seq)
        seq += 1
        for i in range(max(r, 0)):
            lost += struct.unpack_from("<I", body, i * 48 + 40)[0] & 1
        if r == 0:
            st = status()
            if lost and not st["pending"] and st["scan_done"] == st["scan_files"]:
                break
            time.sleep(0.1)
    st = status()
    with open(out + ".tmp", "w") as f:
        f.write(f"lost_items={lost} " + " ".join(f"{k}={v}" for k, v in st.items()) + "\n")
    os.rename(out + ".tmp", out)
    while True:
        time.sleep(3600)


def versions(path, d, out):
    """Clients of protocol minor 0 (the first form), 1 (the one before RESIDENCY) and 9
    (newer, with feature flags no daemon knows), each registering a task
    on D and asking what a client asks; and one of major 2. OUT gets one
    line per client: the welcome's size and minor, each reply's body
    size, or the refusal."""
    lines = []
    for minor, features in ((0, 0), (1, 1), (9, 0x7ff0 | 1)):
        s = connect(path)
        flags = minor << 16 | features
        t, r, body = call(s, HELLO, struct.pack("<II", VERSION, flags), 1)
        if t != REPLY or r < 0:
            lines.append(f"minor {minor}: refused {r}")
            continue
        w_minor = struct.unpack_from("<I", body, 28)[0] if len(body) >= 32 else 0
        w_features = struct.unpack_from("<I", body, 24)[0] if len(body) >= 28 else 0
        n, p = b"v%d" % minor, d.encode()
        t, r, tid = call(s, TASK_NEW, struct.pack("<IIHHI", 0x10, 0, len(n), len(p), 0) + n + p, 2)
        t2, r2, st = call(s, TASK_STATUS, b"", 3)
        t3, r3, items = call(s, FETCH, struct.pack("<I", 0), 4)
        t4, r4, ds = call(s, DAEMON_STATUS, b"", 5)
        lines.append(f"minor {minor}: welcome {len(body)} minor {w_minor} features {w_features} "
                     f"task_new {r} {len(tid)} status {r2} {len(st)} fetch {r3} {len(items)} "
                     f"daemon_status {r4} {len(ds)}")
        s.close()
    s = connect(path)
    s.sendall(struct.pack("<IHHII", MAGIC, 2, HELLO, 8, 1) + struct.pack("<II", 2, 0))
    t, r, body = read_reply(s)
    lines.append(f"major 2: {'error' if t == ERROR else 'reply'} {r} {body.decode(errors='replace')}")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def drained(path, d, out):
    """DP_REPLY_DRAINED (minor 5): a client of minor 4 and one of minor 5
    each register an EXISTS task on D (cached pages there: the scan
    queues items), wait for READY and fetch until a reply has no items.
    OUT gets per client the flags of each reply with items, in order,
    then the result of the last."""
    lines = []
    for minor in (4, 5):
        s = connect(path)
        s.settimeout(30)
        t, r, body = call(s, HELLO, struct.pack("<II", VERSION, minor << 16 | 1), 1)
        n, p = b"d%d" % minor, d.encode()
        t, r, tid = call(s, TASK_NEW, struct.pack("<IIHHI", 0x10, 0, len(n), len(p), 0) + n + p, 2)
        while True:
            magic, ver, t, n, seq = struct.unpack("<IHHII", recv_exact(s, 16))
            recv_exact(s, n)
            if t == READY:
                break
        flags, seq = [], 3
        while True:
            s.sendall(hdr(FETCH, 4, seq) + struct.pack("<I", 4096))
            while True:
                magic, ver, t, n, rseq = struct.unpack("<IHHII", recv_exact(s, 16))
                body = recv_exact(s, n)
                if t != READY:
                    break
            r, f = struct.unpack_from("<iI", body, 0)
            seq += 1
            if r <= 0:
                break
            flags.append(str(f))
        lines.append(f"minor {minor}: flags {' '.join(flags)} last {r}")
        s.close()
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def handoff(path, out):
    s = connect(path)
    parent = os.getpid()
    if os.fork():
        os._exit(0)
    # Reparented once the process that connected has exited.
    while os.getppid() == parent:
        time.sleep(0.01)
    s.settimeout(30)
    t, r, body = call(s, HELLO, struct.pack("<II", VERSION, 0), 1)
    with open(out + ".tmp", "w") as f:
        if t == ERROR:
            f.write(f"error {r} {body.decode(errors='replace')}\n")
        else:
            f.write(f"reply {r}\n")
    os.rename(out + ".tmp", out)
    os._exit(0)


def main():
    path, cmd = sys.argv[1], sys.argv[2]
    if cmd == "hold":
        hold(path, int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd in ("marks", "rangemarks"):
        a = sys.argv[5:] + [None] * 3
        marks(path, sys.argv[3], int(sys.argv[4]), a[0], a[1], a[2],
              range_mark if cmd == "rangemarks" else whole_mark)
    elif cmd == "overflow":
        overflow(path, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
    elif cmd == "versions":
        versions(path, sys.argv[3], sys.argv[4])
    elif cmd == "drained":
        drained(path, sys.argv[3], sys.argv[4])
    elif cmd == "handoff":
        handoff(path, sys.argv[3])
    else:
        sys.exit(f"dproto: unknown command {cmd}")


if __name__ == "__main__":
    main()
