#!/usr/bin/env bash
# The test command (README, .ci/run): fetches the runtime, model and demo
# (scripts/setup.sh, idempotent), checks formatting and lints, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
