#!/usr/bin/env python3
"""Memory per stalled segment stream: one worker's RSS idle, then with 64
FastCGI requests for media segments whose answers are never read (a 4 KiB
receive buffer each), straight to the pool's socket.

  bench/stalled.py BIN FILMS_DIR PATHS_FILE WORK_DIR    (bench/hls.sh runs it)
"""
import os
import socket
import struct
import subprocess
import sys
import time

STREAMS = 64


def record(kind, body):
    pad = (8 - len(body) % 8) % 8
    return struct.pack(">BBHHBx", 1, kind, 1, len(body), pad) + body + b"\0" * pad


def pair(k, v):
    k, v = k.encode(), v.encode()
    assert len(k) < 128 and len(v) < 128
    return bytes([len(k), len(v)]) + k + v


def request(films, path):
    film, output = path[1:].split("/", 1)
    params = b"".join(
        pair(k, v)
        for k, v in [
            ("SCRIPT_FILENAME", os.path.join(films, film)),
            ("SCRIPT_NAME", "/" + film),
            ("PATH_INFO", "/" + output),
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", ""),
        ]
    )
    # BEGIN_REQUEST, responder, not kept: the pool closes after the answer.
    begin = record(1, struct.pack(">HB5x", 1, 0))
    return begin + record(4, params) + record(4, b"") + record(5, b"")


def main():
    binary, films, paths_file, work = sys.argv[1:5]
    sock = os.path.join(work, "stalled.sock")
    pool = subprocess.Popen([binary, "--listen", "unix:" + sock, "--workers", "1", "--log-level", "warn"])
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        time.sleep(0.5)
        worker = int(subprocess.check_output(["pgrep", "-P", str(pool.pid)]).split()[0])

        def rss():
            with open(f"/proc/{worker}/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))

        paths = [l.strip() for l in open(paths_file) if l.strip()]
        for path in paths:  # every segment once, read whole: indexes and layouts kept
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(sock)
                s.sendall(request(films, path))
                while s.recv(1 << 20):
                    pass
        time.sleep(1)
        idle = rss()
        held = []
        for i in range(STREAMS):
            s = socket.socket(socket.AF_UNIX)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(sock)
            s.sendall(request(films, paths[i % len(paths)]))
            held.append(s)
        time.sleep(2)
        stalled = rss()
        print(
            f"worker RSS {idle / 1024:.1f} MiB idle, {stalled / 1024:.1f} MiB with {STREAMS} stalled "
            f"segment streams: {(stalled - idle) / STREAMS:.0f} KiB per stream"
        )
    finally:
        pool.terminate()
        pool.wait()


if __name__ == "__main__":
    main()
