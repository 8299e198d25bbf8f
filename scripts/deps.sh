#!/usr/bin/env bash
# Installs the Debian packages (and rustup parts) faceflow needs, when they
# are missing and we may (root with apt-get); otherwise names them and fails.
#   scripts/deps.sh run    build and run: scripts/setup.sh, scripts/demo.sh
#   scripts/deps.sh test   also what the tests use: scripts/test.sh
set -euo pipefail
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
    #   systemd-analyze checks the packages' unit (nothing is started).
    dpkg --print-foreign-architectures | grep -q arm64 || {
        [ "$(id -u)" = 0 ] && dpkg --add-architecture arm64
    }
    pkgs+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
        libturbojpeg0-dev:arm64 libavcodec-dev:arm64 libavformat-dev:arm64 libavutil-dev:arm64 libswscale-dev:arm64
        python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
        chromium valgrind
        debootstrap systemd)
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
if [ "$what" = test ] && command -v rustup >/dev/null; then
    rustup component add clippy rustfmt >/dev/null 2>&1 || true
    rustup target add aarch64-unknown-linux-gnu aarch64-apple-darwin >/dev/null
fi
