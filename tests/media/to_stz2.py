#!/usr/bin/env python3
"""Rewrites every `stsz` of an MP4 (moov after mdat) as a compact `stz2` with
16-bit fields, fixing the sizes of the boxes around it. Chunk offsets stay
valid because nothing before the mdat moves."""
import struct
import sys

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def rewrite(data):
    out = b""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + size]
        if kind in CONTAINERS:
            body = rewrite(body)
        elif kind == b"stsz":
            fixed, count = struct.unpack(">II", body[4:12])
            assert fixed == 0, "fixed-size stsz needs no stz2"
            sizes = struct.unpack(">%dI" % count, body[12:12 + 4 * count])
            assert max(sizes) < 65536
            kind = b"stz2"
            body = body[:4] + b"\0\0\0\x10" + struct.pack(">I", count) + struct.pack(">%dH" % count, *sizes)
        out += struct.pack(">I4s", len(body) + 8, kind) + body
        pos += size
    return out


src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
moov = data.rfind(b"moov") - 4
mdat = data.find(b"mdat") - 4
assert 0 <= mdat < moov, "needs moov after mdat"
open(dst, "wb").write(data[:moov] + rewrite(data[moov:]))
