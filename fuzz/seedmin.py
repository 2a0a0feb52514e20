#!/usr/bin/env python3
"""Minimises fuzz corpora into the committed seeds of one target (run from fuzz/):

    cargo +nightly fuzz build -s none engine
    python3 seedmin.py engine work/engine.seeds corpus/engine work/engine
    rm -r corpus/engine && mv work/engine.seeds corpus/engine

Each input runs alone through the target's libFuzzer binary (`-merge_inner=1`,
the step `-merge=1` runs on its batches), which lists every coverage edge
(COV) and feature (FT: an edge and its hit-count bucket) the input reaches.
Engine inputs are also tried cut to 2, 4, 8 and 16 KiB (the cut keeps the
window bytes and the boxes found up front). Then, greedily: every edge, each
time the input with the most new edges per 4 KiB block it occupies; then new
features per block until the target's budget (BUDGET_KIB, in 4 KiB blocks as
`du` counts them) is spent. The seeds of the three targets stay under 2 MB.

Why not `cargo fuzz cmin` or `-merge=1`: they keep, smallest first, every
input that adds a feature (engine: ~1000 inputs, 19 MB); and a cut at a low
`-max_len` loses the whole films whose moov follows a 26 KB mdat (at 8192,
42 % of the edges). Inputs the target crashes on are left out and listed.
"""
import argparse, glob, hashlib, heapq, os, shutil, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor

BUDGET_KIB = {"engine": 1450, "fcgi": 200, "connection": 300}
MAX_LEN = {"engine": 40000, "fcgi": 4096, "connection": 4096}
CUTS = {"engine": (2048, 4096, 8192, 16384)}
BLOCK = 4096


def blocks(size):
    return max(1, -(-size // BLOCK))


def coverage(binary, max_len, path, tmp):
    """(edges, features) of one input run alone, or None if it crashes."""
    ctl = os.path.join(tmp, hashlib.sha1(path.encode()).hexdigest() + ".ctl")
    with open(ctl, "w") as f:
        f.write("1\n0\n%s\n" % path)
    run = subprocess.run(
        [binary, "-merge_inner=1", "-merge_control_file=" + ctl, "-max_len=%d" % max_len],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    ft, cov = set(), set()
    for line in open(ctl):
        p = line.split()
        if p and p[0] == "FT":
            ft = set(map(int, p[2:]))
        elif p and p[0] == "COV":
            cov = set(map(int, p[2:]))
    os.unlink(ctl)
    return None if run.returncode else (cov, ft)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("target", choices=sorted(BUDGET_KIB))
    ap.add_argument("out", help="a new or empty folder for the seeds")
    ap.add_argument("inputs", nargs="+", help="corpus folders to minimise")
    ap.add_argument("--budget-kib", type=int, help="default: %s" % BUDGET_KIB)
    ap.add_argument("--bin", help="default: target/*/release/<target> (cargo fuzz build)")
    a = ap.parse_args()
    binary = a.bin or next(iter(sorted(glob.glob("target/*/release/" + a.target))), None)
    if not binary:
        sys.exit("no fuzz binary: run `cargo +nightly fuzz build -s none %s` first" % a.target)
    if os.path.isdir(a.out) and os.listdir(a.out):
        sys.exit(a.out + " is not empty")
    budget = (a.budget_kib or BUDGET_KIB[a.target]) * 1024 // BLOCK
    max_len = MAX_LEN[a.target]

    tmp = tempfile.mkdtemp(prefix="seedmin-")
    try:
        inputs = {}  # content -> path
        for d in a.inputs:
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    data = f.read()[:max_len]
                inputs.setdefault(data, os.path.join(d, name))
                for cut in CUTS.get(a.target, ()):
                    if len(data) > cut:
                        inputs.setdefault(data[:cut], None)
        paths = []
        for data, path in inputs.items():
            if path is None or len(data) < os.path.getsize(path):
                path = os.path.join(tmp, hashlib.sha1(data).hexdigest())
                with open(path, "wb") as f:
                    f.write(data)
            paths.append((path, data))
        print("%d inputs (with cuts) from %s; running each alone ..." % (len(paths), " ".join(a.inputs)))
        with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            runs = list(pool.map(lambda p: coverage(binary, max_len, p[0], tmp), paths))
        crashed = [p for (p, _), r in zip(paths, runs) if r is None]
        items = [(d, c, f) for (_, d), r in zip(paths, runs) if r is not None for c, f in [r]]
        all_cov = set().union(*(c for _, c, _ in items))
        all_ft = set().union(*(f for _, _, f in items))

        chosen, got_cov, got_ft, used = [], set(), set(), 0
        for key in (1, 2):  # 1: edges, 2: features
            got = got_cov if key == 1 else got_ft
            # Lazy greedy: a gain only shrinks as more is covered.
            heap = [(-len(it[key]) / blocks(len(it[0])), i) for i, it in enumerate(items) if it]
            heapq.heapify(heap)
            while heap:
                score, i = heapq.heappop(heap)
                it = items[i]
                if it is None or used + blocks(len(it[0])) > budget:
                    continue
                gain = len(it[key] - got) / blocks(len(it[0]))
                if gain == 0:
                    continue
                if heap and gain < -heap[0][0]:
                    heapq.heappush(heap, (-gain, i))
                    continue
                chosen.append(it[0])
                got_cov |= it[1]
                got_ft |= it[2]
                used += blocks(len(it[0]))
                items[i] = None

        os.makedirs(a.out, exist_ok=True)
        for data in chosen:
            with open(os.path.join(a.out, hashlib.sha1(data).hexdigest()), "wb") as f:
                f.write(data)
        print("%s: %d seeds, %d bytes, %d KiB in blocks; edges %d of %d, features %d of %d"
              % (a.out, len(chosen), sum(map(len, chosen)), used * BLOCK // 1024,
                 len(got_cov), len(all_cov), len(got_ft), len(all_ft)))
        if crashed:
            print("left out, the target crashes on them (see artifacts/, tests/fuzz/):")
            print("\n".join("  " + p for p in crashed))
    finally:
        shutil.rmtree(tmp)


main()
