#!/usr/bin/env bash
# The demo command (README): setup if needed, then faceflow on the built-in demo video.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo run --release -- demo "$@"
