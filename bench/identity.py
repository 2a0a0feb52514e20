#!/usr/bin/env python3
"""Byte identity: proves a refactor changes no byte the server answers.

    bench/identity.py --make-media DIR            # the films, once (ffmpeg -c copy, no encoding)
    bench/identity.py BINARY MEDIA_DIR > out.txt  # one line per request
    diff old.txt new.txt                          # empty: same answers, byte for byte

Starts BINARY (`--http 127.0.0.1:PORT --root MEDIA_DIR --workers 1`, FastCGI on a unix
socket in a temporary folder, default --segment-duration), asks every film in MEDIA_DIR
(*.mp4, *.m4a, *.m4v, *.mov, sorted) a fixed list of URLs, and prints
`<sha256> <METHOD> <URL> [Range:...]`, the hash covering the status line, Content-Type,
Content-Length, Content-Range, ETag and the body. Date, Last-Modified, Connection and
Accept-Ranges are left out. Packaged outputs follow the manifests: every playlist,
init and media segment they name (a film over 2 min: its first 5 and last 2 segments).

The ETag is a hash of the file's dev, inode, size and mtime: a baseline holds only for
the same MEDIA_DIR (same files, not copies or a regenerated folder). --no-etag leaves
the ETag out (to compare across media folders); --detail adds status, length, ETag and
the body's hash to each line (to tell which part of an answer differs).
"""

import hashlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

FILM_EXT = (".mp4", ".m4a", ".m4v", ".mov")
HASHED = ("Content-Type", "Content-Length", "Content-Range", "ETag")
LONG_FILM = 120.0  # seconds: longer films get their first 5 and last 2 segments only


def make_media(out):
    """The identity films, from the committed fixtures in tests/media (copies and
    -c copy remuxes: no encoder, so the same ffmpeg gives the same bytes)."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "media")
    os.makedirs(out, exist_ok=True)
    for f in ("a.mp4", "a_faststart.mp4", "frag.mp4", "two_audio.mp4", "hevc.mp4",
              "audio.m4a", "audio_stz2.m4a"):
        shutil.copyfile(os.path.join(src, f), os.path.join(out, f))

    def ff(*args):
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)

    with tempfile.TemporaryDirectory() as t:
        srt = os.path.join(t, "s.srt")
        with open(srt, "w") as f:  # as tests/engine.rs's sparse subtitle test
            f.write("1\n00:00:01,000 --> 00:00:03,000\nHello\n\n"
                    "2\n00:00:18,000 --> 00:00:19,000\nWorld\n")
        a = os.path.join(src, "a.mp4")
        ff("-i", a, "-i", srt, "-map", "0", "-map", "1", "-c", "copy", "-c:s", "mov_text",
           os.path.join(out, "subs.mp4"))
        ff("-i", a, "-map", "0:v", "-c", "copy", os.path.join(out, "video.mp4"))
    stamp = 1767225600  # 2026-01-01T00:00:00Z: a fixed mtime (Last-Modified, ETag input)
    for f in sorted(os.listdir(out)):
        os.utime(os.path.join(out, f), (stamp, stamp))
        print(f"{os.path.getsize(os.path.join(out, f)):>8} {f}", file=sys.stderr)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, binary, root):
        self.tmp = tempfile.mkdtemp(prefix="identity-")
        helptext = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
        self.port = free_port()
        args = [binary, "--http", f"127.0.0.1:{self.port}", "--root", root,
                "--listen", "unix:" + os.path.join(self.tmp, "fcgi.sock"), "--workers", "1"]
        # Nothing time-dependent: no slow-request accounting, no idle cut mid-run.
        for flag, value in (("--slow-request-time", "0"), ("--idle-timeout", "600"),
                            ("--request-timeout", "600"), ("--log-file",
                                                           os.path.join(self.tmp, "log"))):
            if flag in helptext:
                args += [flag, value]
        self.log = open(os.path.join(self.tmp, "stderr"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    with open(os.path.join(self.tmp, "stderr"), "rb") as f:
                        sys.exit(f"server did not start: {' '.join(args)}\n"
                                 + f.read().decode(errors="replace"))
                time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Asker:
    def __init__(self, port, etag=True, detail=False):
        self.port, self.etag, self.detail = port, etag, detail
        self.done = {}  # request -> body of a 200 manifest (kept to follow it again)
        self.count = 0

    def fetch(self, method, url, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        c.request(method, url, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body

    def ask(self, method, url, headers=None):
        """Asks once (a URL named twice, e.g. by HLS and DASH, is asked once) and prints
        its line. Returns the body of a 200, else None."""
        headers = headers or {}
        key = (method, url, tuple(sorted(headers.items())))
        if key in self.done:
            return self.done[key]
        r, body = self.fetch(method, url, headers)
        manifest = url.split("?")[0].endswith((".m3u8", ".mpd"))
        self.done[key] = body if r.status == 200 and manifest else None
        h = hashlib.sha256()
        status = f"HTTP/1.1 {r.status} {r.reason}"
        h.update(status.encode() + b"\r\n")
        for name in HASHED:
            v = r.getheader(name)
            if v is not None and (self.etag or name != "ETag"):
                h.update(f"{name}: {v}\r\n".encode())
        h.update(b"\r\n" + body)
        extra = "".join(f" {k}:{v}" for k, v in sorted(headers.items()))
        line = f"{h.hexdigest()} {method} {url}{extra}"
        if self.detail:
            line += (f" | {r.status} len={r.getheader('Content-Length')}"
                     f" type={r.getheader('Content-Type')} range={r.getheader('Content-Range')}"
                     f" etag={r.getheader('ETag')}"
                     f" body={hashlib.sha256(body).hexdigest()[:16]}")
        print(line, flush=True)
        self.count += 1
        return body if r.status == 200 else None


def hls_uris(text):
    """URIs a playlist names, in order: URI="..." attributes, then plain lines."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            out += re.findall(r'URI="([^"]*)"', line)
        else:
            out.append(line)
    return out


def pick(segments, duration):
    if duration is not None and duration >= LONG_FILM and len(segments) > 7:
        return segments[:5] + segments[-2:]
    return segments


def follow_hls(a, master_url):
    body = a.ask("GET", master_url)
    if body is None:
        return
    for uri in hls_uris(body.decode(errors="replace")):
        variant = urllib.parse.urljoin(master_url, uri)
        vbody = a.ask("GET", variant)
        if vbody is None or not variant.split("?")[0].endswith(".m3u8"):
            continue
        text = vbody.decode(errors="replace")
        duration = sum(float(d) for d in re.findall(r"#EXTINF:([0-9.]+)", text))
        init = [u for line in text.splitlines() if line.startswith("#EXT-X-MAP")
                for u in re.findall(r'URI="([^"]*)"', line)]
        segs = [line.strip() for line in text.splitlines()
                if line.strip() and not line.startswith("#")]
        for u in init + pick(segs, duration):
            a.ask("GET", urllib.parse.urljoin(variant, u))


def iso_seconds(v):
    m = re.fullmatch(r"P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", v or "")
    if not m:
        return None
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def fill(template, rep_id, bandwidth, number=None, time_=None):
    def sub(m):
        name, fmt = m.group(1), m.group(2)
        v = {"RepresentationID": rep_id, "Bandwidth": bandwidth,
             "Number": number, "Time": time_}.get(name)
        if name == "" or v is None:
            return "$"
        return (fmt % int(v)) if fmt else str(v)
    return re.sub(r"\$(\w*)(%0\d+d)?\$", sub, template)


def follow_dash(a, mpd_url):
    body = a.ask("GET", mpd_url)
    if body is None:
        return
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return
    ns = ""
    if root.tag.startswith("{"):
        ns = root.tag[: root.tag.index("}") + 1]
    total = iso_seconds(root.get("mediaPresentationDuration"))
    for period in root.iter(ns + "Period"):
        for aset in period.iter(ns + "AdaptationSet"):
            for rep in aset.iter(ns + "Representation"):
                # (not `a or b`: an Element without children is falsy)
                tpls = [e.find(ns + "SegmentTemplate") for e in (rep, aset, period)]
                tpl = next((t for t in tpls if t is not None), None)
                if tpl is None:
                    continue
                rid, bw = rep.get("id"), rep.get("bandwidth")
                base = mpd_url
                for holder in (root, period, aset, rep):
                    b = holder.find(ns + "BaseURL")
                    if b is not None and b.text:
                        base = urllib.parse.urljoin(base, b.text.strip())
                start = int(tpl.get("startNumber", "1"))
                timescale = int(tpl.get("timescale", "1"))
                segs = []  # (number, time)
                timeline = tpl.find(ns + "SegmentTimeline")
                if timeline is not None:
                    t, n = 0, start
                    for s in timeline.findall(ns + "S"):
                        t = int(s.get("t", t))
                        for _ in range(int(s.get("r", "0")) + 1):
                            segs.append((n, t))
                            t += int(s.get("d"))
                            n += 1
                elif tpl.get("duration") and total:
                    d = int(tpl.get("duration"))
                    count = -(-int(total * timescale) // d)
                    segs = [(start + i, i * d) for i in range(count)]
                if tpl.get("initialization"):
                    a.ask("GET", urllib.parse.urljoin(base, fill(tpl.get("initialization"), rid, bw)))
                for n, t in pick(segs, total):
                    a.ask("GET", urllib.parse.urljoin(base, fill(tpl.get("media"), rid, bw, n, t)))


def film_requests(a, name):
    f = "/" + urllib.parse.quote(name)
    for q in ("", "?start=0&end=5", "?start=2.5&end=7", "?start=10", "?end=3",
              "?start=1.5&end=4&client=flash", "?client=flash", "?start=abc", "?start=99999"):
        a.ask("GET", f + q)
    a.ask("HEAD", f)
    for rng in ("bytes=0-99", "bytes=-500"):
        a.ask("GET", f + "?start=2.5&end=7", {"Range": rng})
    follow_hls(a, f + "/master.m3u8")
    follow_dash(a, f + "/manifest.mpd")
    follow_hls(a, f + "/master.m3u8?start=2&end=8")
    follow_dash(a, f + "/manifest.mpd?start=2&end=8")
    for bad in ("/index-99.m3u8", "/seg-9999-1.m4s", "/init-99.mp4"):  # no such track/segment
        a.ask("GET", f + bad)


def main():
    argv = sys.argv[1:]
    if argv[:1] == ["--make-media"] and len(argv) == 2:
        make_media(argv[1])
        return
    etag = "--no-etag" not in argv
    detail = "--detail" in argv
    argv = [x for x in argv if x not in ("--no-etag", "--detail")]
    if len(argv) != 2:
        sys.exit(__doc__)
    binary, media = os.path.abspath(argv[0]), os.path.abspath(argv[1])
    films = sorted(f for f in os.listdir(media)
                   if f.endswith(FILM_EXT) and os.path.isfile(os.path.join(media, f)))
    began = time.time()
    server = Server(binary, media)
    try:
        a = Asker(server.port, etag, detail)
        for name in films:
            before = a.count
            film_requests(a, name)
            print(f"# {name}: {a.count - before} requests", file=sys.stderr)
        mp4s = [f for f in films if f.endswith(".mp4")][:2]
        if len(mp4s) == 2:  # a URL set over the first two films: /,a,b,.mp4.urlset
            before = a.count
            names = [m[: -len(".mp4")] for m in mp4s]
            s = "/" + urllib.parse.quote(",".join([""] + names + [".mp4.urlset"]), safe=",")
            follow_hls(a, s + "/master.m3u8")
            follow_dash(a, s + "/manifest.mpd")
            print(f"# URL set {s}: {a.count - before} requests", file=sys.stderr)
        print(f"# {a.count} requests, {len(films)} films, {time.time() - began:.1f} s",
              file=sys.stderr)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
