#!/usr/bin/env python3
"""Summarises ONNX Runtime profiles (FACEFLOW_ORT_PROFILE, see
src/detect/runtime.rs): per profile, the runs (count, median, p99, max,
first and slowest), the time outside the nodes (run time minus the summed
node time: waits, copies, synchronisation), the runs whose input shape
differs from the run before against those at the same shape (a provider
that re-plans on every change of shape, as CUDA's convolutions do, shows
here), and the ops and providers the node time went to. For a model that
runs slowly on one provider: where its runs spend the time.

Usage: scripts/ort_profile.py [--runs] PROFILE.json[.xz] ...
  --runs   also print every run: its time, input shape and slowest node
"""
import collections
import json
import lzma
import sys


def load(path):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def pct(sorted_values, q):
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def summarise(path):
    events = load(path)
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    print(f"== {path}")
    if not runs:
        print("no model_run events")
        return
    durs = sorted(e["dur"] for e in runs)
    print(f"runs {len(runs)}: median {pct(durs, 0.5) / 1e3:.2f} ms, p99 {pct(durs, 0.99) / 1e3:.2f} ms, "
          f"max {durs[-1] / 1e3:.2f} ms, first {runs[0]['dur'] / 1e3:.2f} ms")
    # Node time inside each run, to tell kernels from what lies between them.
    inside = [0] * len(runs)
    starts = [r["ts"] for r in runs]
    j = 0
    for n in sorted(nodes, key=lambda e: e["ts"]):
        while j + 1 < len(runs) and n["ts"] >= starts[j + 1]:
            j += 1
        if runs[j]["ts"] <= n["ts"] <= runs[j]["ts"] + runs[j]["dur"]:
            inside[j] += n["dur"]
    total_run = sum(r["dur"] for r in runs)
    total_nodes = sum(inside)
    print(f"run time {total_run / 1e6:.3f} s, of it in nodes {total_nodes / 1e6:.3f} s, "
          f"outside nodes {(total_run - total_nodes) / 1e6:.3f} s")
    in_run = [[] for _ in runs]
    j = 0
    for n in sorted(nodes, key=lambda e: e["ts"]):
        while j + 1 < len(runs) and n["ts"] >= starts[j + 1]:
            j += 1
        if runs[j]["ts"] <= n["ts"] <= runs[j]["ts"] + runs[j]["dur"]:
            in_run[j].append(n)
    # A run's input shape: its first node's first input.
    shape = [str((r[0]["args"].get("input_type_shape") or [None])[0]) if r else None for r in in_run]
    slow = sorted(range(len(runs)), key=lambda i: -runs[i]["dur"])[:5]
    for i in slow:
        print(f"  slow run {i}: {runs[i]['dur'] / 1e3:.2f} ms, {inside[i] / 1e3:.2f} ms in nodes, input {shape[i]}")
    changed = [runs[i]["dur"] for i in range(1, len(runs)) if shape[i] != shape[i - 1]]
    same = [runs[i]["dur"] for i in range(1, len(runs)) if shape[i] == shape[i - 1]]
    for what, d in (("after a change of input shape", changed), ("at the run before's shape", same)):
        d = sorted(d)
        if d:
            print(f"  runs {what}: {len(d)}, median {pct(d, 0.5) / 1e3:.2f} ms, max {d[-1] / 1e3:.2f} ms, "
                  f"sum {sum(d) / 1e6:.3f} s")
    if RUNS:
        t0 = runs[0]["ts"]
        for i, r in enumerate(runs):
            top = max(in_run[i], key=lambda n: n["dur"], default=None)
            slowest = f"{top['name'].removesuffix('_kernel_time')} {top['dur'] / 1e3:.1f} ms" if top else "-"
            print(f"  run {i} at {(r['ts'] - t0) / 1e6:.2f} s: {r['dur'] / 1e3:.1f} ms, input {shape[i]}, "
                  f"thread {r.get('tid')}, slowest node {slowest}")
    by_op = collections.Counter()
    by_provider = collections.Counter()
    for n in nodes:
        a = n.get("args", {})
        by_op[a.get("op_name", "?")] += n["dur"]
        by_provider[a.get("provider", "?")] += n["dur"]
    print("node time by provider: " + ", ".join(f"{p} {d / 1e6:.3f} s" for p, d in by_provider.most_common()))
    print("node time by op: " + ", ".join(f"{o} {d / 1e6:.3f} s" for o, d in by_op.most_common(8)))


RUNS = False


def main():
    global RUNS
    args = sys.argv[1:]
    if args and args[0] == "--runs":
        RUNS = True
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    for p in args:
        summarise(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
