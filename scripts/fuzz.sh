#!/usr/bin/env bash
# Fuzzes the config parser, the spool reader and encoded video -> decoder ->
# detector input, each for a bounded time (default 60 s), with libFuzzer
# through cargo-fuzz. The corpora in fuzz/corpus/ are kept in the repository
# (seeds plus what earlier runs found, minimised with `cargo fuzz cmin`);
# new inputs go to fuzz/work/ (ignored by git), so a run leaves the tree
# clean. A crash leaves its input in fuzz/artifacts/ and fails this script.
# To keep what a long run found: copy fuzz/work/<t>/* into fuzz/corpus/<t>
# and run `RUSTC_BOOTSTRAP=1 cargo fuzz cmin --fuzz-dir fuzz <t> fuzz/corpus/<t>`.
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer); the stable toolchain
# accepts them with RUSTC_BOOTSTRAP=1, which is the only toolchain here.
# Usage: scripts/fuzz.sh [seconds per target]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
for t in config spool video; do
    mkdir -p "fuzz/work/$t"
    echo "fuzz: $t for ${SECS}s"
    cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$SECS" -rss_limit_mb=3072 -print_final_stats=1 2>&1 | tail -n 40
done
