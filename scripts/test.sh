#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need (Debian
# packages, rustup targets: scripts/deps.sh, as root), fetches the runtime,
# models and videos (scripts/setup.sh, idempotent), checks formatting and
# lints, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/setup.sh
cargo fmt --check
# ARCHITECTURE.md's layer rule: no import of src/ runs up a layer.
scripts/layers.py
# `v4l2` adds USB cameras (its bindings are generated with libclang-dev).
cargo clippy --all-targets --features v4l2 -- -D warnings
cargo test --all-targets --features v4l2

# Tracking through occlusions against ground truth, next to supervision's
# ByteTrack on the same detections (py-motmetrics), on both scenes (pole,
# mixed), each with its own margin; the binary the tests built.
scripts/eval-tracking.sh --full target/debug/faceflow

# Instructions per iteration of letterbox, heatmap decode + NMS, tracker,
# quality and ring under valgrind, against benches/instructions.txt: a
# speed regression guard that machine load cannot make flaky. The guard
# must refuse another compiler's figures: with the machine's nightly (the
# one other toolchain here) it has to fail, naming the mismatch.
scripts/instructions.py
if rustup run nightly rustc --version >/dev/null 2>&1; then
    if guard=$(RUSTUP_TOOLCHAIN=nightly scripts/instructions.py 2>&1); then
        echo "test.sh: the instruction guard passed under $(rustup run nightly rustc --version)" >&2; exit 1
    fi
    grep -q "benches/instructions.txt is for" <<<"$guard" || { echo "test.sh: unexpected guard failure: $guard" >&2; exit 1; }
else
    echo "test.sh: no nightly toolchain: the instruction guard's compiler check is not exercised" >&2
fi

# Boards (scripts/package.sh, README "Building and deploying per board"):
# the aarch64 unit tests under qemu-user (Debian's gcc-aarch64-linux-gnu;
# .cargo/config.toml sets the linker, the runner and pkg-config's arm64
# directory), then each board's Debian package, built and checked against
# what the board's systems provide (sonames, glibc symbols, Depends,
# contents, systemd-analyze on the unit). The Jetson binary is linked
# against a Debian 11 arm64 sysroot (FFmpeg 4.3, glibc 2.31: JetPack 5/6's
# ABI) and runs the demo clip under qemu with only that sysroot's
# libraries. x86-cuda needs CUDA's ONNX Runtime to package: checked only.
# scripts/deps.sh installs all of it.
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null \
    && rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu; then
    scripts/setup.sh aarch64
    cargo test --release --target aarch64-unknown-linux-gnu --lib --no-default-features --features board-arm64,libav
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
    for b in x86-cpu:amd64 arm64:arm64 jetson-orin:arm64; do
        deb=$(scripts/package.sh "${b%%:*}" | tail -1)
        [ "$deb" = "dist/faceflow-${b%%:*}_${version}_${b##*:}.deb" ] || { echo "test.sh: package.sh made '$deb'" >&2; exit 1; }
        scripts/check-package.sh "${b%%:*}" "$deb"
    done
    scripts/qemu-check.sh jetson-orin "dist/faceflow-jetson-orin_${version}_arm64.deb"
    cargo check --no-default-features --features "board-x86-cuda,libav"
else
    echo "test.sh: aarch64 cross toolchain or qemu-user missing: skipping the board packages" >&2
fi

# m1-coreml type-checks for macOS on Apple silicon. There is no Apple SDK
# here, so C parts of -sys crates are stood in by scripts/check-only-cc
# (a check links nothing); the Rust code is checked for the real target.
# FFmpeg's bindings are generated from the target's headers, which only a
# Mac has: this check decodes with `openh264` (a real M1 build uses libav
# from Homebrew's FFmpeg, README).
if rustup target list --installed 2>/dev/null | grep -q aarch64-apple-darwin; then
    CC_aarch64_apple_darwin="$PWD/scripts/check-only-cc" CXX_aarch64_apple_darwin="$PWD/scripts/check-only-cc" \
        AR_aarch64_apple_darwin=ar TURBOJPEG_LIB_DIR=/nonexistent \
        cargo check --target aarch64-apple-darwin --no-default-features --features board-m1-coreml,openh264
else
    echo "test.sh: rustup target aarch64-apple-darwin missing: skipping the m1-coreml target check" >&2
fi

# Fuzzing with cargo-fuzz (libFuzzer, AddressSanitizer): the config parser,
# the spool reader and encoded video -> decoder -> detector input, each for
# FUZZ_SECONDS (default 30) on the kept corpora; a crash fails the tests.
# FUZZ_SECONDS=0 skips it (the sanitizer build takes minutes).
if [ "${FUZZ_SECONDS:-30}" != 0 ]; then
    scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
