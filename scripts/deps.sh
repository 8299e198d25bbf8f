#!/usr/bin/env bash
# Installs the Debian packages (and rustup parts) faceflow needs, when they
# are missing and we may (root with apt-get); otherwise names them and fails.
#   scripts/deps.sh run    build and run: scripts/setup.sh, scripts/demo.sh
#   scripts/deps.sh test   also what the tests use: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-run}"
# Build and run:
# - libavcodec-dev, libavformat-dev, libavutil-dev, libswscale-dev: FFmpeg's
#   decoder and demuxers, linked
#   (the `libav` feature); pkg-config finds them, clang/libclang-dev let
#   bindgen generate the bindings against the installed headers;
# - libturbojpeg0-dev: the JPEG encoder, linked statically;
# - ffmpeg: makes the demo and test videos (x264, x265); unzip unpacks wheels;
# - python3-venv: the venv setup.sh converts the models in.
pkgs=(ffmpeg unzip pkg-config clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libturbojpeg0-dev
    python3-venv)
if [ "$what" = test ]; then
    # - gcc/g++-aarch64-linux-gnu, qemu-user and the :arm64 libraries (Debian
    #   multiarch): the aarch64 cross build and its unit tests under qemu;
    # - gst-rtsp-server through python3-gi (qtdemux, rtph26xpay: plugins-good;
    #   h26xparse: plugins-bad): the loopback RTSP camera of the tests;
    # - chromium: the panel's browser test; valgrind: the instruction counts;
    # - debootstrap: the Jetson sysroot (scripts/sysroot.sh); systemd: its
    #   systemd-analyze checks the packages' unit (nothing is started);
    # - mosquitto, mosquitto-clients, redis-server: the event bus tests start
    #   their own broker and server on loopback (tests/bus.rs).
    dpkg --print-foreign-architectures | grep -q arm64 || {
        [ "$(id -u)" = 0 ] && dpkg --add-architecture arm64
    }
    pkgs+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
        libturbojpeg0-dev:arm64 libavcodec-dev:arm64 libavformat-dev:arm64 libavutil-dev:arm64 libswscale-dev:arm64
        python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
        chromium valgrind
        debootstrap systemd
        mosquitto mosquitto-clients redis-server)
    # - Node.js and npm: the panel's browser test drives Chromium through
    #   playwright-core (setup.sh runs `npm ci`); Debian's, where the machine
    #   has none of its own.
    command -v npm >/dev/null || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
    # dpkg-query, not `dpkg -s`: with an :arm64 copy beside it, a plain name
    # is ambiguous to `dpkg -s`, which then reports it missing.
    dpkg-query -W -f='${db:Status-Abbrev}\n' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "deps: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "deps: missing Debian packages; run: sudo apt-get install ${missing[*]}" >&2
        exit 2
    fi
fi
# The Rust toolchain rust-toolchain.toml pins (the instruction-count baseline
# belongs to one compiler). With a reachable rustup server it is installed;
# without one, a `stable` that is exactly that release is registered under
# the pinned name (the same files, linked); anything else fails here, naming
# both versions, rather than in the first cargo command.
if command -v rustup >/dev/null; then
    pinned=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
    host=$(rustup run stable rustc -vV | sed -n 's/^host: //p')
    if ! rustup run "$pinned" rustc --version >/dev/null 2>&1; then
        stable_version=$(rustup run stable rustc --version | awk '{print $2}')
        if [ "$stable_version" = "$pinned" ]; then
            ln -sfn "$(rustup run stable rustc --print sysroot)" "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$pinned-$host"
            echo "deps: Rust $pinned registered from the installed stable toolchain (the same release)" >&2
        elif ! rustup toolchain install "$pinned" --profile minimal -c clippy,rustfmt >/dev/null; then
            echo "deps: rust-toolchain.toml pins Rust $pinned; this machine has stable $stable_version and cannot fetch $pinned" >&2
            exit 2
        fi
    fi
    if [ "$what" = test ]; then
        rustup component add clippy rustfmt >/dev/null 2>&1 || true
        rustup target add aarch64-unknown-linux-gnu aarch64-apple-darwin >/dev/null
    fi
else
    echo "deps: rustup missing: faceflow is built with Rust $(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml) (rust-toolchain.toml)" >&2
fi
