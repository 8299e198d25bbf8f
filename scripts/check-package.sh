#!/usr/bin/env bash
# Checks a board package (scripts/package.sh) against the board's promise:
#   * dpkg-deb --info: name, architecture, the FFmpeg sonames' packages in Depends;
#   * dpkg-deb --contents: binary, config, unit, models, runtime, README;
#   * readelf: every NEEDED soname is one the board's systems provide, and
#     no glibc symbol is newer than the board's glibc;
#   * systemd-analyze verify on the unit, against the unpacked package.
# Usage: scripts/check-package.sh <board> <file.deb>
set -euo pipefail
cd "$(dirname "$0")/.."
board="$1" deb="$2"
fail() {
    echo "check-package $board: $*" >&2
    exit 1
}
case "$board" in
    x86-cpu | x86-cuda) arch=amd64 glibc=2.36 av="avcodec.so.59 avformat.so.59 avutil.so.57 swscale.so.6" readelf=readelf ;;
    arm64) arch=arm64 glibc=2.36 av="avcodec.so.59 avformat.so.59 avutil.so.57 swscale.so.6" readelf=aarch64-linux-gnu-readelf ;;
    jetson-orin) arch=arm64 glibc=2.31 av="avcodec.so.58 avformat.so.58 avutil.so.56 swscale.so.5" readelf=aarch64-linux-gnu-readelf ;;
    *) fail "unknown board" ;;
esac
info=$(dpkg-deb --info "$deb")
grep -q "^ Package: faceflow-$board$" <<<"$info" || fail "package name: $info"
grep -q "^ Architecture: $arch$" <<<"$info" || fail "architecture is not $arch"
depends=$(sed -n 's/^ Depends: //p' <<<"$info")
for so in $av; do
    pkg="lib$(sed 's/\.so\./ /' <<<"$so" | tr -d ' ')"
    grep -q "$pkg" <<<"$depends" || fail "Depends lacks $pkg: $depends"
done
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
for f in ./usr/bin/faceflow ./etc/faceflow/faceflow.toml ./lib/systemd/system/faceflow.service \
    "./lib/systemd/system/faceflow@.service" \
    ./usr/share/faceflow/models/centerface.onnx ./usr/share/faceflow/models/landmarks/face_mesh.onnx \
    "./usr/share/doc/faceflow-$board/README.md"; do
    grep -qx "$f" <<<"$contents" || fail "$f is not in the package"
done
grep -q "^./usr/share/faceflow/models/lib/.*/libonnxruntime.so$" <<<"$contents" || fail "no ONNX Runtime library"
# Listed whole first: `| grep -q` would stop reading early, and under
# pipefail the writer's SIGPIPE fails the check at random.
control=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)
grep -q conffiles <<<"$control" || fail "the config is not a conffile"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
bin="$root/usr/bin/faceflow"
allowed=" libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libgcc_s.so.1 ld-linux-aarch64.so.1 ld-linux-x86-64.so.2 "
for so in $av; do allowed+="lib$so "; done
needed=$($readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for so in $needed; do
    [[ "$allowed" == *" $so "* ]] || fail "links $so, which is not among the board's ($allowed)"
done
for so in $av; do
    grep -qx "lib$so" <<<"$needed" || fail "does not link lib$so"
done
newest=$($readelf -V "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
[ "$(printf '%s\n%s\n' "$newest" "$glibc" | sort -V | tail -1)" = "$glibc" ] ||
    fail "needs glibc $newest, newer than the board's $glibc"
# The unit's dependencies (sysinit.target, ...) come from this machine's
# systemd, copied beside it without overwriting the package's own files.
cp -n /lib/systemd/system/*.target /lib/systemd/system/*.slice /lib/systemd/system/*.socket \
    /lib/systemd/system/*.service "$root/lib/systemd/system/" 2>/dev/null || true
for unit in faceflow.service faceflow@gate.service; do
    # A template is verified through an instance of it.
    [ "$unit" = faceflow.service ] || ln -sf "faceflow@.service" "$root/lib/systemd/system/$unit"
    verify=$(systemd-analyze verify --man=no --root="$root" "/lib/systemd/system/$unit" 2>&1) ||
        fail "systemd-analyze verify $unit: $verify"
    [ -z "$verify" ] || fail "systemd-analyze verify $unit: $verify"
done
echo "check-package $board: ok ($(basename "$deb"): $(tr '\n' ' ' <<<"$needed")glibc <= $newest)"
