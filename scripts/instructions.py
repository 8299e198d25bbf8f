#!/usr/bin/env python3
"""Instruction-count regression check (CI): each stage of benches/instructions.rs
runs under valgrind's cachegrind without cache simulation; instructions per
iteration (minus the same binary's set-up, measured by a `none` run) are
compared with benches/instructions.txt. Counts do not depend on the
machine's speed or load, so the band can be tight where wall-clock
thresholds could not.

  scripts/instructions.py            check: fail when a stage costs more than
                                     TOLERANCE over its baseline
  scripts/instructions.py --update   measure and rewrite the baseline

The baseline belongs to one rustc, the one rust-toolchain.toml pins (and
scripts/deps.sh installs): on another compiler the check fails before it
builds anything, naming both (code generation differs between compilers, so
a baseline from one proves nothing about another; `--update` with the new
compiler, committed with the pin, moves both). A missing valgrind fails too:
the test command installs it, so a skip here would hide a guard that never ran.
"""
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "benches", "instructions.txt")
TOLERANCE = 0.05
ITERATIONS = {"letterbox": 20, "heatmap": 200, "anchors": 200, "track": 500, "quality": 500, "ring": 500}


def build():
    out = subprocess.run(
        ["cargo", "bench", "--bench", "instructions", "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "instructions" and msg.get("executable"):
            return msg["executable"]
    sys.exit("instructions.py: cargo built no `instructions` bench executable")


def instructions(exe, stage, n):
    r = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", exe, stage, str(n)],
        cwd=ROOT, capture_output=True, text=True,
    )
    m = re.search(r"I\s+refs:\s+([\d,]+)", r.stderr)
    if r.returncode != 0 or not m:
        sys.exit(f"instructions.py: valgrind on stage {stage} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def rustc():
    return subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def main():
    if not shutil.which("valgrind"):
        sys.exit("instructions.py: valgrind missing (scripts/deps.sh test installs Debian's valgrind)")
    compiler = rustc()
    lines = open(BASELINE).read().splitlines()
    base_compiler = lines[1].lstrip("# ").strip()
    if compiler != base_compiler and "--update" not in sys.argv:
        sys.exit(f"instructions.py: benches/instructions.txt is for {base_compiler}, this is {compiler}: "
                 "build with the toolchain rust-toolchain.toml pins, or move the pin and run --update")
    exe = build()
    setup = instructions(exe, "none", 1)
    measured = {s: (instructions(exe, s, n) - setup) / n for s, n in ITERATIONS.items()}
    if "--update" in sys.argv:
        with open(BASELINE, "w") as f:
            f.write(f"# instructions per iteration, scripts/instructions.py --update\n# {compiler}\n")
            for s, v in measured.items():
                f.write(f"{s} {v:.0f}\n")
        print(open(BASELINE).read(), end="")
        return
    base = {l.split()[0]: float(l.split()[1]) for l in lines if l and not l.startswith("#")}
    print(f"{'stage':<10} {'baseline':>12} {'now':>12} {'ratio':>7}")
    failed = []
    for s, v in measured.items():
        ratio = v / base[s]
        print(f"{s:<10} {base[s]:>12.0f} {v:>12.0f} {ratio:>7.3f}")
        if ratio > 1 + TOLERANCE:
            failed.append(f"{s} {ratio:.3f}x")
    if failed:
        sys.exit(f"instructions.py: more instructions than the baseline (+{TOLERANCE:.0%} allowed): {', '.join(failed)}"
                 " -- if intended, run scripts/instructions.py --update and commit benches/instructions.txt")
    print(f"instructions: every stage within +{TOLERANCE:.0%} of its baseline")


main()
