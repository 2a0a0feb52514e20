#!/usr/bin/env python3
"""Bounded work, side by side in one run: the pool built from this checkout
(BIN, default target/release/mp4-fcgi) and, when BASELINE names another
build (e.g. an older commit's), that one, on the same films.

  B1  worker CPU for ?start=1 of a 20 000-fragment film, next to the whole film
  B2  the longest a small answer takes from a worker (a 100-byte Range of a
      cached clip, asked again and again) while another client asks the same
      worker for a film whose moov is ~60 MB (index not cached): how long the
      worker's streams stall
  B3  worker RSS per stalled stream: 100 downloads of 100 different windows of
      the 2-hour film, each stopped after its head

    bench/bounded.py                          # this build only
    BASELINE=/tmp/old/mp4-fcgi bench/bounded.py

Talks HTTP to the development listener (--http), which both builds have.
"""
import os, socket, struct, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "bench", ".cache")


def media():
    subprocess.run(["bash", "-c", f'ROOT="{ROOT}"; source "{ROOT}/bench/media.sh"'], check=True)
    big = os.path.join(CACHE, "bigmoov.mp4")
    if not os.path.exists(big):
        write_big_moov(big)
    return big


def box(kind, body):
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind, vf, body):
    return box(kind, struct.pack(">I", vf) + body)


def write_big_moov(path, samples=5_000_000):
    """One video track of `samples` 100-byte samples with per-sample stsz and
    ctts: a ~60 MB moov after a sparse mdat."""
    print("writing a film with a 60 MB moov...", file=sys.stderr)
    ftyp = box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41")
    data_at = len(ftyp) + 16
    mdat_len = samples * 100
    per_chunk = 50
    chunks = samples // per_chunk
    stsz = full(b"stsz", 0, struct.pack(">II", 0, samples) + struct.pack(">I", 100) * samples)
    ctts = full(b"ctts", 0, struct.pack(">I", samples) + struct.pack(">II", 1, 512) * samples)
    stco = full(b"co64", 0, struct.pack(">I", chunks)
                + b"".join(struct.pack(">Q", data_at + c * per_chunk * 100) for c in range(chunks)))
    stbl = box(b"stbl", full(b"stsd", 0, struct.pack(">I", 1) + box(b"avc1", bytes(70)))
               + full(b"stts", 0, struct.pack(">III", 1, samples, 512))
               + ctts
               + full(b"stss", 0, struct.pack(">I", samples // 250)
                      + b"".join(struct.pack(">I", 1 + i * 250) for i in range(samples // 250)))
               + full(b"stsc", 0, struct.pack(">IIII", 1, 1, per_chunk, 1))
               + stsz + stco)
    dur = samples * 512 // 12800 * 1000
    mdhd = full(b"mdhd", 0, struct.pack(">IIIII", 0, 0, 12800, samples * 512 & 0xffffffff, 0x55c40000))
    hdlr = full(b"hdlr", 0, bytes(4) + b"vide" + bytes(13))
    tkhd = full(b"tkhd", 3, bytes(8) + struct.pack(">I", 1) + bytes(67))
    trak = box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + box(b"minf", stbl)))
    mvhd = full(b"mvhd", 0, struct.pack(">IIII", 0, 0, 1000, dur & 0xffffffff) + bytes(80))
    moov = box(b"moov", mvhd + trak)
    with open(path + ".tmp", "wb") as f:
        f.write(ftyp)
        f.write(struct.pack(">I4sQ", 1, b"mdat", 16 + mdat_len))
        f.seek(data_at + mdat_len)
        f.write(moov)
    os.rename(path + ".tmp", path)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Pool:
    def __init__(self, binary):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--http", f"127.0.0.1:{self.port}", "--root", CACHE, "--workers", "1",
             "--max-moov", "128M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        while True:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
            if kids:
                self.worker = int(kids[0])
                break
            if time.time() > deadline:
                raise RuntimeError("no worker started")
            time.sleep(0.02)

    def cpu_ms(self):
        # The event loop's thread: nanoseconds on a CPU (schedstat), finer
        # than the clock ticks of /proc/PID/stat.
        with open(f"/proc/{self.worker}/task/{self.worker}/schedstat") as f:
            return int(f.read().split()[0]) / 1e6

    def rss_kib(self):
        with open(f"/proc/{self.worker}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def connect(self, target, method="GET"):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
        return s

    def get(self, target, method="GET"):
        s = self.connect(target, method)
        n = 0
        head = b""
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            if len(head) < 64:
                head += b[:64]
            n += len(b)
        s.close()
        return head[:12].decode(errors="replace"), n

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def b1(binary):
    """Worker CPU (ms) of the whole 20 000-fragment film and of ?start=1, index cached."""
    p = Pool(binary)
    try:
        p.get("/frag20k.mp4", "HEAD")
        out = {}
        for name, target in [("whole", "/frag20k.mp4"), ("start=1", "/frag20k.mp4?start=1")]:
            best = None
            for _ in range(5):
                t = p.cpu_ms()
                status, _ = p.get(target)
                ms = p.cpu_ms() - t
                best = ms if best is None else min(best, ms)
            out[name] = (best, status)
        return out
    finally:
        p.stop()


def b2(binary, big):
    """Longest time (ms) for a small answer while the big moov is indexed."""
    p = Pool(binary)
    try:
        probe = "/a.mp4?start=10"
        p.get(probe)
        done = threading.Event()
        heavy = {}

        def ask():
            time.sleep(0.2)
            t = time.time()
            heavy["status"] = p.get("/" + os.path.basename(big) + "?start=1&end=2")[0]
            heavy["took"] = time.time() - t
            done.set()

        threading.Thread(target=ask, daemon=True).start()
        waits = []
        deadline = time.time() + 60
        while (not done.is_set() or len(waits) < 50) and time.time() < deadline:
            s = socket.create_connection(("127.0.0.1", p.port), timeout=60)
            t = time.time()
            s.sendall(f"GET {probe} HTTP/1.1\r\nHost: b\r\nRange: bytes=0-99\r\n"
                      "Connection: close\r\n\r\n".encode())
            while s.recv(65536):
                pass
            waits.append(time.time() - t)
            s.close()
            time.sleep(0.002)
        return max(waits) * 1000, heavy.get("status"), heavy.get("took")
    finally:
        p.stop()


def b3(binary):
    """Worker RSS growth (KiB) per stalled stream, 100 windows of the 2-hour film."""
    p = Pool(binary)
    try:
        p.get("/film2h.mp4?start=1&end=2")
        time.sleep(0.3)
        before = p.rss_kib()
        held = []
        statuses = {}
        for k in range(100):
            s = p.connect(f"/film2h.mp4?start={k * 60 + 1}")
            head = s.recv(4096)
            st = head[9:12].decode(errors="replace")
            statuses[st] = statuses.get(st, 0) + 1
            held.append(s)
        time.sleep(1)
        after = p.rss_kib()
        for s in held:
            s.close()
        return (after - before) / 100, statuses
    finally:
        p.stop()


def main():
    binary = os.environ.get("BIN", os.path.join(ROOT, "target", "release", "mp4-fcgi"))
    baseline = os.environ.get("BASELINE")
    if "BIN" not in os.environ:
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    big = media()
    builds = [("baseline", baseline)] if baseline else []
    builds.append(("this build", binary))
    rows = {}
    for name, b in builds:
        r1 = b1(b)
        r2 = b2(b, big)
        r3 = b3(b)
        rows[name] = (r1, r2, r3)
        print(f"{name}: B1 {r1}  B2 {r2}  B3 {r3}", file=sys.stderr)
    print("| row | measure | " + " | ".join(n for n, _ in builds) + (" | ratio |" if baseline else " |"))
    print("|---|---|" + "---|" * len(builds) + ("---|" if baseline else ""))

    def row(label, measure, pick, fmt):
        vals = [pick(rows[n]) for n, _ in builds]
        line = f"| {label} | {measure} | " + " | ".join(fmt(v) for v in vals) + " |"
        if baseline and vals[-1]:
            line += f" {vals[0] / vals[-1]:.1f}x |"
        print(line)

    row("B1", "worker CPU, whole film (ms)", lambda r: r[0]["whole"][0], lambda v: f"{v:.1f}")
    row("B1", "worker CPU, ?start=1 (ms)", lambda r: r[0]["start=1"][0], lambda v: f"{v:.1f}")
    row("B2", "longest small answer during the index build (ms)", lambda r: r[1][0],
        lambda v: f"{v:.0f}")
    row("B2", "the 60 MB-moov answer itself (ms)", lambda r: r[1][2] * 1000, lambda v: f"{v:.0f}")
    row("B3", "worker RSS per stalled stream (KiB)", lambda r: r[2][0], lambda v: f"{v:.0f}")


if __name__ == "__main__":
    main()
