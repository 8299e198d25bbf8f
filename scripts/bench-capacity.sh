#!/usr/bin/env bash
# Cameras per box (PERFORMANCE.md): `faceflow bench --capacity` for the peer
# baseline (every frame detected, FP32), then one lever on at a time:
# motion gating (FP32), INT8, and faceflow's defaults (x86-cpu: gating,
# INT8 and overlapped batches), on the capacity videos
# (1080p25, x264 defaults). Each trial is 42 s of real time; the search
# takes about 3-4 minutes a policy on a 2-core machine. Run it on a quiet
# machine: anything else on the cores lowers the figure.
#
# --decoder also measures the decoder's share: the baseline policy with
# OpenH264 (a second build, --features openh264) against libav, on copies
# of the videos encoded without B-frames (OpenH264 cannot decode them).
#
# Usage: scripts/bench-capacity.sh [--decoder]   (JSON under target/capacity/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --release -q
out=target/capacity
mkdir -p "$out"
target/release/faceflow bench --capacity --policies baseline,gating,int8,default --json "$out/x264-defaults.json"

if [ "${1:-}" = --decoder ]; then
    bf0=models/demo/capacity-bf0
    if [ ! -e "$bf0/layout.json" ]; then
        mkdir -p "$bf0"
        for p in 0 1 2; do
            ffmpeg -v error -y -i "models/demo/capacity/phase$p.mp4" -c:v libx264 -bf 0 -g 50 -pix_fmt yuv420p "$bf0/phase$p.mp4"
        done
        cp models/demo/capacity/layout.json "$bf0/"
    fi
    cargo build --release -q --no-default-features --features board-x86-cpu,openh264 --target-dir target/openh264
    target/openh264/release/faceflow bench --capacity --policies baseline --videos "$bf0" --json "$out/bf0-openh264.json"
    target/release/faceflow bench --capacity --policies baseline --videos "$bf0" --json "$out/bf0-libav.json"
fi
