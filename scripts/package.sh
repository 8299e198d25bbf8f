#!/usr/bin/env bash
# A Debian package per board profile: the release binary built for the
# board's target and ABI, the models and ONNX Runtime's CPU library, an
# example config, the systemd unit (journald logging), and a README.
#
#   scripts/package.sh <board> [--no-build]     -> dist/faceflow-<board>_<version>_<arch>.deb
#
# | board       | arch  | ABI (what the binary links)                      | built with                                   |
# |-------------|-------|--------------------------------------------------|----------------------------------------------|
# | x86-cpu     | amd64 | Debian 12 / Ubuntu 22.04+: FFmpeg 5.1 (.so.59)   | cargo, the host's FFmpeg                     |
# | x86-cuda    | amd64 | the same                                         | cargo --features board-x86-cuda,libav        |
# | arm64       | arm64 | Debian 12 / Raspberry Pi OS bookworm (.so.59)    | gcc-aarch64-linux-gnu, Debian's :arm64 FFmpeg |
# | jetson-orin | arm64 | JetPack 5/6: FFmpeg 4.x (.so.58), glibc <= 2.31  | the bullseye sysroot (scripts/sysroot.sh)     |
#
# The Depends line names the FFmpeg sonames' packages (libavcodec58 vs
# libavcodec59), so apt refuses the package on a system of the other ABI.
# Models come from scripts/setup.sh (setup.sh aarch64 adds the arm64
# runtime library); --no-build packages a binary built before.
set -euo pipefail
cd "$(dirname "$0")/.."
board="${1:?usage: scripts/package.sh <x86-cpu|x86-cuda|arm64|jetson-orin> [--no-build]}"
build=1
[ "${2:-}" = --no-build ] && build=0
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

case "$board" in
    x86-cpu | x86-cuda)
        arch=amd64 triple=x86_64-unknown-linux-gnu libarch=x86_64
        av="libavcodec59, libavformat59, libavutil57, libswscale6, libc6 (>= 2.34)"
        ;;
    arm64)
        arch=arm64 triple=aarch64-unknown-linux-gnu libarch=aarch64
        av="libavcodec59, libavformat59, libavutil57, libswscale6, libc6 (>= 2.34)"
        ;;
    jetson-orin)
        arch=arm64 triple=aarch64-unknown-linux-gnu libarch=aarch64
        av="libavcodec58, libavformat58, libavutil56, libswscale5, libc6 (>= 2.31)"
        ;;
    *)
        echo "package: unknown board '$board' (x86-cpu, x86-cuda, arm64, jetson-orin)" >&2
        exit 2
        ;;
esac

features=(--no-default-features --features "board-$board,libav")
# x86 boards build for the host in the usual target directory, and arm64
# cross-builds there too: they share compiled dependencies with the test
# suite's builds. Jetson's sysroot changes every C part, so it has its own.
target_dir=target
target_flag=(--target "$triple")
bin="target/$triple/release/faceflow"
[ "$arch" = amd64 ] && target_flag=() bin=target/release/faceflow
env_for_board=()
if [ "$board" = jetson-orin ]; then
    target_dir=target/boards/jetson-orin
    bin="$target_dir/$triple/release/faceflow"
    S=$(scripts/sysroot.sh)
    # The linker, the C compiler, pkg-config and bindgen all read the
    # sysroot; the target-specific variables win over .cargo/config.toml's.
    env_for_board=(
        "PKG_CONFIG_SYSROOT_DIR=$S"
        "PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=$S/usr/lib/aarch64-linux-gnu/pkgconfig:$S/usr/share/pkgconfig"
        "BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu=--sysroot=$S"
        "CFLAGS_aarch64_unknown_linux_gnu=--sysroot=$S"
        "TURBOJPEG_LIB_DIR=$S/usr/lib/aarch64-linux-gnu"
        # -L the sysroot's /lib first: libgcc_s.so.1 from it, not the cross
        # toolchain's (gcc 12's needs glibc 2.35).
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS=-C link-arg=--sysroot=$S -C link-arg=-L$S/lib/aarch64-linux-gnu"
    )
fi
if [ "$build" = 1 ]; then
    env "${env_for_board[@]}" CARGO_TARGET_DIR="$target_dir" \
        cargo build --release --locked "${target_flag[@]}" "${features[@]}"
fi
[ -x "$bin" ] || { echo "package: $bin is missing (build it, or drop --no-build)" >&2; exit 1; }
runtime="models/lib/$libarch/libonnxruntime.so"
[ -e "$runtime" ] || { echo "package: $runtime is missing: run scripts/setup.sh $libarch" >&2; exit 1; }

root="target/package/$board"
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/faceflow/models/landmarks" \
    "$root/usr/share/faceflow/models/lib/$libarch" "$root/etc/faceflow" "$root/lib/systemd/system" \
    "$root/usr/share/doc/faceflow-$board"
install -m 755 "$bin" "$root/usr/bin/faceflow"
install -m 644 models/*.onnx "$root/usr/share/faceflow/models/"
install -m 644 models/landmarks/*.onnx "$root/usr/share/faceflow/models/landmarks/"
install -m 644 "$(readlink -f "$runtime")" "$root/usr/share/faceflow/models/lib/$libarch/libonnxruntime.so"
install -m 644 boards/systemd/faceflow.service "$root/lib/systemd/system/faceflow.service"
install -m 644 "boards/systemd/faceflow@.service" "$root/lib/systemd/system/faceflow@.service"
install -m 640 boards/package/faceflow.toml "$root/etc/faceflow/faceflow.toml"
install -m 644 "boards/package/README-$board.md" "$root/usr/share/doc/faceflow-$board/README.md"
install -m 644 boards/package/copyright "$root/usr/share/doc/faceflow-$board/copyright"
echo /etc/faceflow/faceflow.toml >"$root/DEBIAN/conffiles"
install -m 755 boards/package/postinst "$root/DEBIAN/postinst"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
description=$("$bin" --version 2>/dev/null | sed -n 's/.*(board [^:]*: \(.*\))/\1/p' || true)
[ -n "$description" ] || description=$(sed -n 's/^description = "\(.*\)"/\1/p' "boards/$board.toml")
cat >"$root/DEBIAN/control" <<EOF
Package: faceflow-$board
Version: $version
Architecture: $arch
Maintainer: faceflow developers <faceflow@localhost>
Installed-Size: $size
Depends: $av
Provides: faceflow
Conflicts: faceflow
Replaces: faceflow
Section: video
Priority: optional
Description: edge face capture for FindFace, board $board
 faceflow turns camera streams into one high-quality face event per person
 and posts it to a FindFace server. This package is built for the
 $board board profile ($description).
EOF
mkdir -p dist
deb="dist/faceflow-${board}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
