#!/usr/bin/env bash
# faceflow against the peer baseline (benches/baseline/baseline.py: OpenCV
# decode, ONNX Runtime, supervision's ByteTrack) on the same demo video,
# model, input size, camera count and thread budget; both at batch 1, every
# frame detected, full speed. Installs the baseline's packages from PyPI
# into .venv-baseline (pinned) and prints both rows and the ratios, which
# carry from machine to machine where the absolute figures do not.
# Both also report CPU per frame outside inference (their total minus what
# ONNX Runtime took), the part the two implementations really differ in.
# Usage: scripts/bench-baseline.sh [cameras] [centerface|blazeface]
set -euo pipefail
cd "$(dirname "$0")/.."
CAMS="${1:-4}"
DET="${2:-centerface}"
scripts/setup.sh >/dev/null
VENV=.venv-baseline
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "onnxruntime==1.31.1" "opencv-python==5.0.0.93" "supervision==0.26.1" "numpy<3"
cargo build --release -q
out=$(mktemp -d)
target/release/faceflow bench --cameras "$CAMS" --batches 1 --detector "$DET" --json "$out/faceflow.json" >/dev/null
"$VENV/bin/python" benches/baseline/baseline.py --video models/demo/demo.mp4 --model "models/$DET.onnx" \
    --detector "$DET" --cameras "$CAMS" --out "$out/baseline" > "$out/baseline.json"
python3 - "$out/faceflow.json" "$out/baseline.json" <<'PY'
import json, sys
ff = json.load(open(sys.argv[1]))
ff = (ff if isinstance(ff, list) else ff.get("rows", [ff]))[0]
py = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
print(f"{'':18} {'frames':>7} {'fps':>7} {'fps/cpu-s':>10} {'p50 ms':>7} {'p99 ms':>7}")
print(f"{'faceflow':18} {ff['frames_detected']:>7} {ff['fps']:>7.1f} {ff['fps_per_cpu_s']:>10.1f} {ff['latency_p50_ms']:>7.0f} {ff['latency_p99_ms']:>7.0f}")
print(f"{'python baseline':18} {py['frames']:>7} {py['fps']:>7.1f} {py['fps_per_cpu_s']:>10.1f} {py['p50_ms']:>7.0f} {py['p99_ms']:>7.0f}")
print(f"ratio faceflow/baseline: fps {ff['fps'] / py['fps']:.2f}x, frames per CPU-second {ff['fps_per_cpu_s'] / py['fps_per_cpu_s']:.2f}x")
ff_out = ff['cpu_ms_per_frame'] - ff['bare_detector_cpu_ms']
py_out = py['cpu_ms_per_frame'] - py['inference_cpu_ms_per_frame']
print(f"CPU ms per frame outside inference: faceflow {ff_out:.1f}, baseline {py_out:.1f} "
      f"(baseline / faceflow {py_out / max(ff_out, 1e-9):.2f}x); detector {ff['detector']}")
print(f"baseline: {py['events']} events, peak RSS {py['peak_rss_mb']} MB, {py['versions']}")
PY
