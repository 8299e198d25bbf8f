#!/usr/bin/env bash
# The tracking evaluation (README, PERFORMANCE.md): faceflow's tracker and
# events against ground truth on generated occlusion videos, next to
# supervision's ByteTrack on the same detections (py-motmetrics: MOTA,
# IDF1, ID switches; duplicate and missed events). Fails unless no person
# is missed, duplicates are <= 5% of people and, per video, faceflow's IDF1
# leads supervision's by that video's margin (10 points on `pole`, 0 on
# `mixed`: eval_tracking.py's GAIN_POINTS).
#   scripts/eval-tracking.sh [--full] [faceflow binary]
# Without --full, the `pole` video (long occlusions); --full adds `mixed`
# (crossings, in and out of frame, a stop, a wall). The test command runs
# --full.
set -euo pipefail
cd "$(dirname "$0")/.."
full=0
if [ "${1:-}" = --full ]; then full=1; shift; fi
bin="${1:-target/release/faceflow}"
scripts/setup.sh >/dev/null
if ! .venv/bin/python -c 'import motmetrics, supervision' 2>/dev/null; then
    .venv/bin/python -m pip install -q --disable-pip-version-check "motmetrics==1.4.0" "supervision==0.26.1"
fi
if [ ! -x "$bin" ]; then
    cargo build --release -q
fi
dirs=(models/demo/occlusion-pole)
[ "$full" = 1 ] && dirs+=(models/demo/occlusion-mixed)
.venv/bin/python scripts/eval_tracking.py --faceflow "$bin" --check "${dirs[@]}"
