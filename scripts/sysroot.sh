#!/usr/bin/env bash
# The Jetson sysroot: Debian 11 (bullseye) arm64 with FFmpeg 4.3's
# development files (libavcodec.so.58) and glibc 2.31, the ABI that JetPack 5
# (Ubuntu 20.04) and JetPack 6 (Ubuntu 22.04) both provide. A binary linked
# against it starts on either; one linked against Debian 12 (FFmpeg 5.1,
# glibc 2.36) starts on neither.
#
# debootstrap only downloads and unpacks (--foreign: nothing runs); the
# packages come from Debian's archive like every other. Then, for building
# and for running under qemu-user:
#   * absolute symlinks are pointed inside the sysroot;
#   * FFmpeg's headers get a folder of their own (the .pc files point at
#     it), so ffmpeg-sys-next's host-compiled version probe does not mix
#     the sysroot's glibc headers with the host's;
#   * every runtime library is also reachable from lib/aarch64-linux-gnu,
#     where the loader looks first (qemu -L falls back to the host's own
#     arm64 libraries for a path the sysroot lacks);
#   * proc/cpuinfo describes two Cortex-A78AE cores (Orin's): under
#     qemu-user ONNX Runtime's cpuinfo would read the x86 host's and crash.
# Idempotent. Usage: scripts/sysroot.sh [dir]   (default target/sysroot/bullseye-arm64)
set -euo pipefail
cd "$(dirname "$0")/.."
S="$(realpath -m "${1:-target/sysroot/bullseye-arm64}")"
if [ -e "$S/.complete" ]; then
    echo "$S"
    exit 0
fi
command -v debootstrap >/dev/null || {
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    else
        echo "sysroot: debootstrap is missing (apt-get install debootstrap)" >&2
        exit 2
    fi
}
rm -rf "$S"
mkdir -p "$(dirname "$S")"
debootstrap --foreign --no-merged-usr --arch=arm64 --variant=minbase \
    --include=libc6-dev,libavcodec-dev,libavformat-dev,libswscale-dev,libavutil-dev,libturbojpeg0-dev \
    bullseye "$S" http://deb.debian.org/debian >"$S.log" 2>&1 || {
    tail -20 "$S.log" >&2
    exit 1
}
for deb in "$S"/var/cache/apt/archives/*.deb; do
    dpkg-deb -x "$deb" "$S"
done
find "$S" -type l -lname '/*' | while read -r l; do
    ln -sfn "$S$(readlink "$l")" "$l"
done
mkdir -p "$S/usr/include/ffmpeg"
for d in "$S"/usr/include/aarch64-linux-gnu/libav* "$S"/usr/include/aarch64-linux-gnu/libsw*; do
    ln -sfn "../aarch64-linux-gnu/$(basename "$d")" "$S/usr/include/ffmpeg/$(basename "$d")"
done
sed -i 's|^includedir=.*|includedir=${prefix}/include/ffmpeg|' \
    "$S"/usr/lib/aarch64-linux-gnu/pkgconfig/libav*.pc "$S"/usr/lib/aarch64-linux-gnu/pkgconfig/libsw*.pc
for f in "$S"/usr/lib/aarch64-linux-gnu/*.so.*; do
    b=$(basename "$f")
    [ -e "$S/lib/aarch64-linux-gnu/$b" ] || ln -s "../../usr/lib/aarch64-linux-gnu/$b" "$S/lib/aarch64-linux-gnu/$b"
done
mkdir -p "$S/proc"
: >"$S/proc/cpuinfo"
for i in 0 1; do
    printf 'processor\t: %s\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd42\nCPU revision\t: 1\n\n' "$i" >>"$S/proc/cpuinfo"
done
rm -rf "$S/var/cache/apt/archives"/*.deb
touch "$S/.complete"
echo "$S"
