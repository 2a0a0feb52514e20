#!/usr/bin/env python3
"""Seeds for the engine fuzz target (run from fuzz/): each is 3 window bytes
(start, end, flash; see fuzz_targets/engine.rs) and a small film or a
variant of one that exercises a refusal: fragmented, many tracks, duplicate
sample tables, a compressed moov. `python3 seeds.py [folder]` writes them to
folder (default work/engine, the ignored working corpus; see README.md)."""
import os, struct, sys, zlib

def boxes(data, start=0, end=None):
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size < 8 or pos + size > end:
            break
        yield pos, size, kind
        pos += size

def box(kind, body):
    return struct.pack(">I4s", 8 + len(body), kind) + body

def find(data, kind, start=0, end=None):
    for pos, size, k in boxes(data, start, end):
        if k == kind:
            return pos, size
    raise KeyError(kind)

def moov_of(data):
    pos, size = find(data, b"moov")
    return pos, size, data[pos:pos + size]

def with_moov(data, new_moov):
    pos, size, _ = moov_of(data)
    # Keep the media where it is: the moov must come after the mdat.
    assert find(data, b"mdat")[0] < pos, "the moov must follow the mdat"
    return data[:pos] + new_moov + data[pos + size:]

def rebuild(moov, edit):
    """Applies edit(kind, body) -> bytes to moov's children."""
    out = b""
    for pos, size, kind in boxes(moov, 8):
        out += edit(kind, moov[pos:pos + size])
    return box(b"moov", out)

def stbl_edit(trak, fn):
    def walk(b, path):
        out = b""
        for pos, size, kind in boxes(b, 8):
            child = b[pos:pos + size]
            if kind in (b"mdia", b"minf"):
                child = walk(child, path + [kind])
            elif kind == b"stbl":
                child = box(b"stbl", fn(child[8:]))
            out += child
        return box(b[4:8], out)
    return walk(trak, [])

def main():
    tiny = open("media/tiny.mp4", "rb").read()
    frag = open("media/tiny_frag.mp4", "rb").read()
    fast = open("media/tiny_faststart.mp4", "rb").read()
    _, _, moov = moov_of(tiny)
    seeds = {
        "tiny": tiny,
        "tiny_faststart": fast,
        "tiny_frag": frag,
    }
    traks = [moov[p:p + s] for p, s, k in boxes(moov, 8) if k == b"trak"]
    seeds["many_tracks"] = with_moov(
        tiny, rebuild(moov, lambda k, b: b * 5 if k == b"trak" else b))
    def dup_stts(body):
        out = b""
        for p, s, k in boxes(body):
            out += body[p:p + s] * (2 if k == b"stts" else 1)
        return out
    def stco_and_co64(body):
        out = b""
        for p, s, k in boxes(body):
            out += body[p:p + s]
            if k == b"stco":
                n = struct.unpack(">I", body[p + 12:p + 16])[0]
                offs = struct.unpack(">%dI" % n, body[p + 16:p + 16 + 4 * n])
                out += box(b"co64", struct.pack(">II", 0, n) + b"".join(struct.pack(">Q", o) for o in offs))
        return out
    seeds["dup_stts"] = with_moov(tiny, rebuild(moov, lambda k, b: stbl_edit(b, dup_stts) if k == b"trak" else b))
    seeds["stco_co64"] = with_moov(tiny, rebuild(moov, lambda k, b: stbl_edit(b, stco_and_co64) if k == b"trak" else b))
    cm = zlib.compress(moov)
    cmov = box(b"moov", box(b"cmov", box(b"dcom", b"zlib") + box(b"cmvd", struct.pack(">I", len(moov)) + cm)))
    seeds["cmov"] = with_moov(tiny, cmov)
    out = sys.argv[1] if len(sys.argv) > 1 else "work/engine"
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        for w in (b"\x00\x00\x00", b"\x02\x06\x00", b"\x04\x00\x01"):
            with open(os.path.join(out, "seed-%s-%s" % (name, w.hex())), "wb") as f:
                f.write(w + data)
    print("wrote", len(seeds) * 3, "seeds to", out)

main()
