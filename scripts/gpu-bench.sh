#!/usr/bin/env bash
# The x86-cuda figures in PERFORMANCE.md, from a clean checkout, on a GPU
# machine that reaches no package registry (the borrowed H100/H200).
#
#   scripts/gpu-bench.sh pack       here, after scripts/setup.sh: builds
#                                   faceflow for board-x86-cuda and packs
#                                   what the GPU machine lacks into .gpu/1..5
#                                   (.gpu/1..6 with libav)
#   scripts/gpu-bench.sh receive N  there, one call per part: keeps part N
#                                   (.gpu/N, carried by that call) in $STAGE
#                                   (the borrowed machine goes back after
#                                   30 s idle, and $STAGE with it: make the
#                                   calls back to back, the last part's
#                                   call running a verb too)
#   scripts/gpu-bench.sh run        there, after parts 1-5: unpacks, finds the
#                                   CUDA and cuDNN libraries, runs the bench
#                                   and writes the JSON and the log to $OUT
#   scripts/gpu-bench.sh faces      there, after parts 1-6 of a libav pack:
#                                   FP16 against FP32, the events on the
#                                   demo and the crowd video compared
#   scripts/gpu-bench.sh landmarks  there, after parts 1-6 of a libav pack:
#                                   the landmark models on CUDA, timed
#                                   alone, then profiled beside the
#                                   detector (ONNX Runtime's profiler;
#                                   GPU_BENCH_QUICK=1: the timing alone)
#   scripts/gpu-bench.sh shapes     there, after parts 1-6: 8 cameras paced
#                                   at 25 fps (their batches change size
#                                   at start-up and whenever the cameras
#                                   fall out of step) with a session per batch
#                                   shape (x86-cuda's way), then one
#                                   session for all of them
#                                   (FACEFLOW_SESSION_PER_SHAPE=1, =0)
#   scripts/gpu-bench.sh decoders   there, after parts 1-6 of a libav pack:
#                                   NVDEC against libavcodec's software
#                                   decoder, 1080p H.264 and H.265, 1 and
#                                   32 streams (bench --decoders)
#
# GPU_BENCH_DECODER=libav (pack): faceflow built with libavcodec (board
# x86-cuda decodes with h264_cuvid/hevc_cuvid, NVDEC, through the
# driver's libnvcuvid) instead of OpenH264, and part 6 carries Debian's
# libavcodec/libavformat/libswscale with every shared library they need
# but glibc, libstdc++ and libgcc (the machine's are newer).
#
# Why parts: the CUDA execution provider of the PyPI `onnxruntime-gpu`
# wheel (CUDA 13, the machine's CUDA) is a 284 MB library, 186 MB
# compressed, and a call carries at most 64 MiB, the working tree
# included, as a tar (so keep the tree small: bench logs are committed
# xz-compressed). Parts 1-4 are its compressed bytes, ~47 MB each (three
# of 62 MB went until the tree's tar passed 4.9 MB: its 2600 files); part
# 5 is faceflow, libonnxruntime, the models and the demo. The CUDA 13 and cuDNN 9 libraries come from the machine's own
# PyTorch install (nvidia-* wheels); nothing else is needed there.
#
# Decoder: without GPU_BENCH_DECODER=libav faceflow is built with OpenH264
# (bundled source) and the demo goes as a B-frame-free encode (OpenH264
# cannot read B-frames); that pack needs no part 6. The libav pack (part
# 6: 129 libraries, ~47 MB with xz) decodes with NVDEC, as x86-cuda is
# deployed, and is what the `decoders` and `faces` verbs need.
#
# Each row is a timed window (`faceflow bench --seconds`): the cameras
# loop at full speed, GPU_BENCH_WARMUP seconds (default 5) of warm-up are
# left out and GPU_BENCH_SECONDS (default 20) are measured, so a row is no
# longer a 3-4 s run decided by its warm-up; GPU_BENCH_REPEAT=N (default 1)
# runs each N times and prints min/median/max (issue #36 asks for 5 at 32
# cameras, batch 32: GPU_BENCH_SPECS="fp16:model fp32:model"
# GPU_BENCH_CAMERAS=32 GPU_BENCH_BATCHES=32 GPU_BENCH_REPEAT=5).
#
# The bench: 8 cameras on the demo at full speed, batches 1, 8 and 32, the
# letterbox on the CPU ("cpu") and inside the model ("model"), FP32 and FP16,
# batches overlapped or not (`detector.overlap`), buffers page-locked or not
# (`detector.pinned_buffers`). GPU_BENCH_SPECS (a list of
# precision:letterbox[:overlap on|off[:pinned on|off[:board|exhaustive|heuristic]]],
# the last being cuDNN's convolution search, the board's by default), GPU_BENCH_BATCHES
# and GPU_BENCH_CAMERAS change them. The landmark models are carried but
# left out (the stage's `auto` turns it off), as this bench measures detection;
# GPU_BENCH_LANDMARKS=1 puts them in on the board's providers (`[landmarks]
# execution_providers`), GPU_BENCH_LANDMARKS=cuda or =cpu on that provider
# (`landmarks.execution_providers`, bench --landmark-providers).
# GPU_BENCH_HWDEC=off decodes the cameras in software on a libav pack
# (the cameras' `hardware_decode`; default on: NVDEC).
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${STAGE:-/tmp/faceflow-gpu}
ORT_GPU_VERSION=1.31.1
PARTS=4
# After the provider's parts: the bundle, then the libav libraries.
BUNDLE=$((PARTS + 1))
LIBAV=$((PARTS + 2))

pack() {
    [ -e models/centerface-i420-640x384.onnx ] || { echo "gpu-bench: run scripts/setup.sh first" >&2; exit 2; }
    local decoder=${GPU_BENCH_DECODER:-openh264}
    case "$decoder" in openh264 | libav) ;; *) echo "gpu-bench: GPU_BENCH_DECODER is openh264 or libav" >&2; exit 2 ;; esac
    cargo build --release --no-default-features --features "board-x86-cuda,$decoder" --target-dir "target/gpu-$decoder"
    local built="target/gpu-$decoder/release/faceflow"
    rm -rf .gpu && mkdir -p .gpu/cache .gpu/bundle/models/lib/x86_64 .gpu/bundle/models/demo
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
        -d models/cache "onnxruntime-gpu==$ORT_GPU_VERSION"
    whl=$(ls models/cache/onnxruntime_gpu-"$ORT_GPU_VERSION"-*.whl | head -1)
    unzip -o -q -j "$whl" 'onnxruntime/capi/libonnxruntime*.so*' -d .gpu/cache
    # The CUDA provider, compressed, in $PARTS parts.
    xz -T0 -6 -c .gpu/cache/libonnxruntime_providers_cuda.so > .gpu/cache/cuda.so.xz
    size=$(stat -c %s .gpu/cache/cuda.so.xz)
    split -n $PARTS -d -a 1 .gpu/cache/cuda.so.xz .gpu/cache/cuda.so.xz.
    for i in $(seq 1 $PARTS); do mkdir -p ".gpu/$i" && mv ".gpu/cache/cuda.so.xz.$((i - 1))" ".gpu/$i/part"; done
    # The bundle (part $BUNDLE): everything else.
    b=.gpu/bundle
    strip -o "$b/faceflow" "$built"
    cp .gpu/cache/libonnxruntime.so.$ORT_GPU_VERSION .gpu/cache/libonnxruntime_providers_shared.so "$b/models/lib/x86_64/"
    ln -sf libonnxruntime.so.$ORT_GPU_VERSION "$b/models/lib/x86_64/libonnxruntime.so"
    cp models/centerface.onnx models/centerface-fp16.onnx models/centerface-i420-640x384.onnx \
        models/centerface-fp16-i420-640x384.onnx "$b/models/"
    mkdir -p "$b/models/landmarks-carried"
    # With the face crop `bench --landmarks` times them on.
    cp models/landmarks/face_mesh.onnx models/landmarks/iris.onnx models/landmarks/face_mesh.input.f32 \
        "$b/models/landmarks-carried/"
    if [ "$decoder" = libav ]; then
        # libavcodec reads B-frames: the demo as it is, and 1080p clips of
        # both codecs for the decoder bench (x264 and x265 defaults).
        cp models/demo/demo.h264 "$b/models/demo/demo.h264"
        mkdir -p "$b/models/demo/enc"
        cp models/demo/enc/1080p.h264 "$b/models/demo/enc/"
        # For `faces`: the demo's and the crowd video's ground truth.
        mkdir -p "$b/models/demo/crowd"
        cp models/demo/truth.json "$b/models/demo/"
        cp models/demo/crowd/crowd.h264 models/demo/crowd/truth.json "$b/models/demo/crowd/"
        mkdir -p "$b/scripts"
        cp scripts/compare_events.py scripts/ort_profile.py "$b/scripts/"
        ffmpeg -v error -y -i models/demo/enc/1080p.h264 -c:v libx265 -x265-params log-level=error \
            -f hevc "$b/models/demo/enc/1080p.h265"
        pack_libav "$built"
    else
        ffmpeg -v error -y -i models/demo/demo.mp4 -c:v libx264 -bf 0 -f h264 "$b/models/demo/demo.h264"
    fi
    mkdir -p ".gpu/$BUNDLE"
    tar -C "$b" -cJf ".gpu/$BUNDLE/bundle.tar.xz" .
    echo "$size" > ".gpu/$BUNDLE/cuda-size"
    rm -rf .gpu/bundle .gpu/cache
    grep -qx '/.gpu' .git/info/exclude 2>/dev/null || echo '/.gpu' >> .git/info/exclude
    du -sh .gpu/*
    echo "gpu-bench: now, on the GPU machine, one call each (carry .gpu/N):"
    for i in $(ls .gpu | grep -x "[0-9]*"); do echo "  scripts/gpu-bench.sh receive $i"; done
    echo "  scripts/gpu-bench.sh run      (no carry needed)"
}

# Part 5: the shared libraries `faceflow` needs (ldd, transitively) but the
# C and C++ runtimes, which the GPU machine has in newer versions.
pack_libav() {
    local bin=$1 dir=.gpu/cache/libav
    mkdir -p "$dir" ".gpu/$LIBAV"
    ldd "$bin" | awk '/=> \// {print $3}' | while read -r lib; do
        case "$(basename "$lib")" in
            libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libstdc++.so* | libgcc_s.so*) ;;
            *) cp -L "$lib" "$dir/" ;;
        esac
    done
    tar -C "$dir" -cJf ".gpu/$LIBAV/libav.tar.xz" .
    ls "$dir" | wc -l | sed "s/^/gpu-bench: libraries carried in part $LIBAV: /"
}

receive() {
    local i=$1
    mkdir -p "$STAGE"
    cp -r ".gpu/$i/." "$STAGE/"
    [ "$i" -le $PARTS ] && mv "$STAGE/part" "$STAGE/part$i"
    ls -la "$STAGE"
}

run_bench() {
    # GPU_BENCH_BINARY: a faceflow rebuilt since the pack (carried by this
    # call), run instead of the bundle's.
    local binary=${GPU_BENCH_BINARY:+$(realpath "$GPU_BENCH_BINARY")}
    cd "$STAGE"
    if [ ! -e faceflow ]; then
        for i in $(seq 1 $PARTS); do
            [ -e "part$i" ] || { echo "gpu-bench: part $i missing in $STAGE: receive it first" >&2; exit 2; }
        done
        [ -e bundle.tar.xz ] || { echo "gpu-bench: part $BUNDLE missing in $STAGE" >&2; exit 2; }
        tar -xJf bundle.tar.xz
        cat $(seq -f 'part%g' 1 $PARTS) > cuda.so.xz
        [ "$(stat -c %s cuda.so.xz)" = "$(cat cuda-size)" ] || { echo "gpu-bench: provider parts are incomplete" >&2; exit 2; }
        xz -d -c cuda.so.xz > models/lib/x86_64/libonnxruntime_providers_cuda.so
        rm -f cuda.so.xz part? bundle.tar.xz
    fi
    if [ -e libav.tar.xz ]; then mkdir -p libav && tar -xJf libav.tar.xz -C libav && rm libav.tar.xz; fi
    if [ -n "$binary" ]; then cp "$binary" faceflow; fi
    # CUDA 13 and cuDNN 9 from the machine's PyTorch (nvidia-* wheels).
    site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
    libs=$(find "$site/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd: || true)
    export LD_LIBRARY_PATH="$PWD/models/lib/x86_64:$PWD/libav:$libs:${LD_LIBRARY_PATH:-}"
    out=${OUT:-$PWD/out}
    mkdir -p "$out"
    { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"; } | tee "$out/gpu.txt"
    nproc | sed 's/^/cpu cores: /' | tee -a "$out/gpu.txt"
    grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: /cpu: /' | tee -a "$out/gpu.txt" || true
    rm -rf models/landmarks
    local landmarks=${GPU_BENCH_LANDMARKS:-0} lm_args=()
    case "$landmarks" in
        0) ;;
        1) cp -r models/landmarks-carried models/landmarks ;;
        cuda) cp -r models/landmarks-carried models/landmarks && lm_args=(--landmark-providers cuda,cpu) ;;
        cpu) cp -r models/landmarks-carried models/landmarks && lm_args=(--landmark-providers cpu) ;;
        *) echo "gpu-bench: GPU_BENCH_LANDMARKS is 0, 1, cuda or cpu" >&2; exit 2 ;;
    esac
    local specs=${GPU_BENCH_SPECS:-"fp32:cpu:off fp32:model:off fp32:model:on fp16:model:on"}
    # The GPU's clocks, power, utilisation and memory once a second beside
    # the rows (a repeat that drifts: throttling, or the GPU kept busy).
    local dmon=
    if [ "$specs" != none ] && command -v nvidia-smi >/dev/null; then
        nvidia-smi dmon -s pucm -o T >"$out/dmon.txt" 2>&1 &
        dmon=$!
    fi
    for spec in $specs; do
        [ "$spec" = none ] && continue
        IFS=: read -r prec pre overlap pinned search <<<"$spec"
        overlap=${overlap:-on}
        pinned=${pinned:-on}
        search=${search:-board}
        model=models/centerface.onnx
        [ "$prec" = fp16 ] && model=models/centerface-fp16.onnx
        [ "$pre" = model ] && model=${model%.onnx}-i420-640x384.onnx
        name="cuda-$prec-$pre-overlap-$overlap-pinned-$pinned-$search${GPU_BENCH_CAMERAS:+-c$GPU_BENCH_CAMERAS}"
        [ "$landmarks" != 0 ] && name="$name-landmarks-$landmarks"
        [ "${GPU_BENCH_HWDEC:-on}" = off ] && name="$name-software-decode"
        echo "== $prec, letterbox on the $pre ($model), overlap $overlap, pinned buffers $pinned, cuDNN search $search"
        RUST_LOG=${RUST_LOG:-info} ./faceflow bench --cameras "${GPU_BENCH_CAMERAS:-8}" --batches "${GPU_BENCH_BATCHES:-1,8,32}" \
            --model "$model" --overlap "$overlap" --pinned "$pinned" --conv-search "$search" --json "$out/$name.json" \
            --seconds "${GPU_BENCH_SECONDS:-20}" --warmup "${GPU_BENCH_WARMUP:-5}" --repeat "${GPU_BENCH_REPEAT:-1}" --hardware-decode "${GPU_BENCH_HWDEC:-on}" "${lm_args[@]}" 2>&1 | tee "$out/$name.log" |
            { grep -v -e 'faceflow::sink: event' -e 'stream ended' -e ' DEBUG ' -e ' TRACE ' || true; }
    done
    if [ -n "$dmon" ]; then kill "$dmon" 2>/dev/null || true; wait "$dmon" 2>/dev/null || true; xz -f "$out/dmon.txt"; fi
}

# The detector at the load cameras put on it, not at full speed: batches of
# 1 to 8 frames while the cameras start and whenever they fall out of step
# (the looping demo's cameras run in step once started: full batches).
# ONNX Runtime's CUDA convolutions re-plan on every change of a session's
# input shape; faceflow keeps a session per shape on CUDA. Both ways, the
# same cameras (per shape first: the one-session run may not finish).
shapes() {
    GPU_BENCH_SPECS=none run_bench
    local out=${OUT:-$PWD/out}
    cd "$STAGE"
    for per_shape in 1 0; do
        echo "== 8 cameras at 25 fps, batch 8, FP16, FACEFLOW_SESSION_PER_SHAPE=$per_shape" | tee -a "$out/shapes.txt"
        FACEFLOW_SESSION_PER_SHAPE=$per_shape RUST_LOG=info timeout 170 ./faceflow bench --cameras 8 --batches 8 \
            --model models/centerface-fp16-i420-640x384.onnx --realtime 120 --seconds 15 --warmup 10 \
            --json "$out/shapes-per-shape-$per_shape.json" 2>&1 |
            grep -v -e 'faceflow::sink: event' -e 'stream ended' | tee -a "$out/shapes.txt" || true
    done
}

# NVDEC against software on this machine: bare decoders, 1 and 32 streams.
decoders() {
    GPU_BENCH_SPECS=none run_bench
    local out=${OUT:-$PWD/out}
    cd "$STAGE"
    # Each clip ten times over (Annex B streams join end to end; each copy
    # starts at an IDR with its parameter sets): 1500 frames a stream, so
    # the timed part is decoding. The decoders are opened before the clock
    # starts (bench --decoders waits for every stream's).
    local clips=()
    for f in 1080p.h264 1080p.h265; do
        for _ in $(seq 10); do cat "models/demo/enc/$f"; done > "models/demo/enc/x10-$f"
        clips+=("models/demo/enc/x10-$f")
    done
    for streams in 1 32; do
        for hw in "" --hardware; do
            echo "== decoders, $streams stream(s) ${hw:-software}"
            ./faceflow bench $hw --streams $streams --json "$out/decoders-$streams${hw:+-nvdec}.json" \
                --decoders "${clips[@]}" 2>&1 | tee -a "$out/decoders.log"
        done
    done
}

# A `faceflow run` config for one file camera, events kept in an outbox:
# run_config OUTBOX MODEL LANDMARK_PROVIDERS (empty: the board's) NAME FILE [FPS]
run_config() {
    cat <<EOF
[outbox]
dir = "$PWD/$1"
[monitor]
bind = ""
[detector]
model = "$2"
${3:+[landmarks]
execution_providers = [$3]}
[[cameras]]
name = "$4"
url = "file:$5"
${6:+fps = $6}
EOF
}

# FP16 against FP32 on this GPU: the pipeline on the demo and the crowd
# video (one camera each, full speed, letterbox in the model) with each
# precision, then scripts/compare_events.py on the two outboxes against
# the video's ground truth: the same people captured, no extra events,
# best frames and boxes side by side. Landmarks as GPU_BENCH_LANDMARKS.
faces() {
    GPU_BENCH_SPECS=none run_bench
    local out=${OUT:-$PWD/out} status=0
    cd "$STAGE"
    for video in demo crowd; do
        local file=models/demo/demo.h264 truth=models/demo/truth.json
        [ "$video" = crowd ] && file=models/demo/crowd/crowd.h264 truth=models/demo/crowd/truth.json
        for prec in fp32 fp16; do
            local model=models/centerface-i420-640x384.onnx
            [ "$prec" = fp16 ] && model=models/centerface-fp16-i420-640x384.onnx
            rm -rf "faces/$video-$prec" && mkdir -p "faces/$video-$prec"
            local providers=
            case "${GPU_BENCH_LANDMARKS:-0}" in cuda) providers='"cuda", "cpu"' ;; cpu) providers='"cpu"' ;; esac
            run_config "faces/$video-$prec" "$model" "$providers" "$video" "$file" 25 >"faces/$video-$prec.toml"
            echo "== faces: $video, $prec"
            ./faceflow run --config "faces/$video-$prec.toml" 2>"$out/faces-$video-$prec.log" | tee -a "$out/faces.txt"
        done
        echo "== faces: $video, fp32 against fp16" | tee -a "$out/faces.txt"
        python3 scripts/compare_events.py "$truth" "faces/$video-fp32" "faces/$video-fp16" --names fp32 fp16 |
            tee -a "$out/faces.txt" || status=1
    done
    return $status
}

# The landmark models on CUDA, diagnosed (PERFORMANCE.md: they slow
# themselves and the detector there): `bench --landmarks` on the CUDA
# provider (the models alone, per batch size), then the demo through
# `faceflow run` with the landmarks on CUDA, ONNX Runtime's profiler on for
# the detector and both landmark models (FACEFLOW_ORT_PROFILE), each
# profile summarised by scripts/ort_profile.py (run time against node time,
# slowest runs, ops, providers) and kept xz-compressed.
landmarks() {
    GPU_BENCH_SPECS=none GPU_BENCH_LANDMARKS=cuda run_bench
    local out=${OUT:-$PWD/out}
    cd "$STAGE"
    # Alone (warm, per batch size), then their share of the pipeline on
    # the demo and the crowd; last, the same on the CPU, this machine's
    # figure to set them against.
    lm_bench() {
        echo "== bench --landmarks, providers $1" | tee -a "$out/landmarks.txt"
        timeout "$2" ./faceflow bench --landmarks --landmark-providers "$1" --batches 1,2,4,8,16 2>&1 |
            grep -v -e 'decoded in' -e 'faceflow::sink' | tee -a "$out/landmarks.txt" || true
    }
    lm_bench cuda,cpu 200
    # GPU_BENCH_QUICK=1: the timing alone.
    [ "${GPU_BENCH_QUICK:-0}" = 1 ] && return
    rm -rf profile faces/landmarks && mkdir -p profile faces/landmarks
    run_config faces/landmarks models/centerface-fp16-i420-640x384.onnx '"cuda", "cpu"' demo models/demo/demo.h264 \
        >faces/landmarks.toml
    echo "== the demo, landmarks on CUDA, profiled" | tee -a "$out/landmarks.txt"
    FACEFLOW_ORT_PROFILE="$PWD/profile/ort" timeout 150 ./faceflow run --config faces/landmarks.toml \
        2>"$out/landmarks-run.log" | tee -a "$out/landmarks.txt" || true
    python3 scripts/ort_profile.py profile/*.json | tee -a "$out/landmarks.txt"
    for f in profile/*.json; do xz -T0 -c "$f" >"$out/$(basename "$f").xz"; done
    xz -f "$out/landmarks-run.log"
    lm_bench cpu 120
}

case "${1:-}" in
    pack) pack ;;
    receive) receive "${2:?part number}" ;;
    run) run_bench ;;
    decoders) decoders ;;
    faces) faces ;;
    landmarks) landmarks ;;
    shapes) shapes ;;
    *) sed -n '2,/^# GPU_BENCH_DECODER/p' "$0" | sed '$d'; exit 2 ;;
esac
