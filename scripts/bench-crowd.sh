#!/usr/bin/env bash
# Crowd scaling (PERFORMANCE.md): 1, 10 and 40 faces in view at 1080p, one
# camera read at full speed, each in its own process (so peak RSS is that
# run's): frames per second and per CPU-second, events, peak RSS, and the
# track stage's cost per frame and per face.
# Usage: scripts/bench-crowd.sh [--json DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
for n in 1 10; do
    [ -e "models/demo/crowd-$n/crowd.h264" ] ||
        .venv/bin/python scripts/make_crowd.py --faces "$n" --photos models/cache/faces \
            --model models/centerface.onnx --out "models/demo/crowd-$n" >/dev/null
done
cargo build --release -q
for d in models/demo/crowd-1 models/demo/crowd-10 models/demo/crowd; do
    target/release/faceflow bench --crowd "$d" ${1:+"$@"}
done
