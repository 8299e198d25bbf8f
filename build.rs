//! Turns the board profile chosen by cargo feature (`board-<name>`, exactly
//! one) into compile-time constants in `$OUT_DIR/board.rs`.

use serde::Deserialize;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Board {
    description: String,
    max_cameras: usize,
    frame_pool_slots: usize,
    max_frame_width: u32,
    max_frame_height: u32,
    capture_ring: usize,
    detect_ring: usize,
    event_ring: usize,
    detector_width: u32,
    detector_height: u32,
    /// CenterFace's weights on this board: "fp32", "fp16" or "int8".
    #[serde(default = "fp32")]
    detector_precision: String,
    /// Who letterboxes frames for the detector: "cpu" (the detect thread)
    /// or "model" (ops prepended to the model, run by the execution
    /// provider on the whole batch; scripts/prepend_i420.py).
    #[serde(default = "cpu")]
    detector_preprocess: String,
    batch_size: usize,
    batch_timeout_ms: u64,
    execution_providers: Vec<String>,
    intra_threads: usize,
    /// Let ONNX Runtime's intra-op threads spin between parallel sections
    /// (its default). Off where decode threads share the cores with
    /// inference: a spinning worker takes the CPU a decoder needs.
    #[serde(default = "yes")]
    intra_op_spinning: bool,
    /// Pad partial batches to the next power of two, so an accelerator sees
    /// a handful of shapes (each new shape costs a cuDNN search or a TensorRT
    /// engine) instead of every size up to `batch_size`.
    #[serde(default)]
    pad_batches: bool,
    /// Run the detector's model on a thread of its own over two sets of
    /// buffers, so the detect thread copies (or letterboxes) the next batch
    /// in while one runs (`detector.overlap`).
    #[serde(default)]
    detect_overlap: bool,
    /// How ONNX Runtime's CUDA provider picks each convolution's cuDNN
    /// algorithm: "exhaustive" (times every one at each new input shape,
    /// ORT's default) or "heuristic" (cuDNN's own ranking, no timing).
    #[serde(default = "exhaustive")]
    cuda_conv_search: String,
    pinning: Pinning,
    decode: Decode,
    capacity: Capacity,
    landmarks: Landmarks,
}

/// The landmarks stage's batching (see `src/landmarks/`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Landmarks {
    /// Faces per Face Mesh inference (the iris model runs twice as many eyes).
    batch_size: usize,
    /// How long a partial batch waits for more faces.
    batch_timeout_ms: u64,
    /// Frames the stage may hold at once (its requests hold pool frames):
    /// past it, the track thread scores with the detector's keypoints.
    frames_in_flight: usize,
    /// The landmark models' execution providers, in order; absent = the
    /// board's `execution_providers`.
    #[serde(default)]
    execution_providers: Option<Vec<String>>,
}

/// The one statement a profile's queue and store sizes follow: "up to
/// `faces_per_camera` faces in view per camera at `cameras` cameras at once".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Capacity {
    faces_per_camera: usize,
    cameras: usize,
}

/// Tracks held per face in view: the faces in view, plus those lost behind
/// something or just gone (kept for `max_frames_lost`), plus tentative ones.
const TRACKS_PER_FACE_NUM: usize = 3;
const TRACKS_PER_FACE_DEN: usize = 2;

impl Capacity {
    /// Tracks (live, lost or tentative) per camera: a power of two (the
    /// tracker's fixed tables), at least 16.
    fn max_tracks(&self) -> usize {
        (self.faces_per_camera * TRACKS_PER_FACE_NUM).div_ceil(TRACKS_PER_FACE_DEN).next_power_of_two().max(16)
    }
    /// Best faces held at once over all cameras (each live track keeps one).
    fn keep_faces(&self) -> usize {
        (self.faces_per_camera * self.cameras * TRACKS_PER_FACE_NUM).div_ceil(TRACKS_PER_FACE_DEN)
    }
}

/// How the board decodes H.264/H.265 (libavcodec, the `libav` feature).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decode {
    /// libavcodec threads per camera stream.
    threads: usize,
    /// Frame threading (throughput; adds `threads` frames of delay) rather
    /// than slice threading.
    frame_threads: bool,
    /// libavcodec decoders tried first, by name (hardware: `h264_cuvid`,
    /// `h264_nvv4l2dec`, `h264_v4l2m2m`); empty = software only.
    #[serde(default)]
    h264_hw: String,
    #[serde(default)]
    h265_hw: String,
}

fn fp32() -> String {
    "fp32".into()
}

fn cpu() -> String {
    "cpu".into()
}

fn exhaustive() -> String {
    "exhaustive".into()
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pinning {
    capture: i32,
    detect: i32,
    track: i32,
    landmarks: i32,
    sender: i32,
}

const KNOWN_PROVIDERS: &[&str] = &["cpu", "cuda", "tensorrt", "coreml"];

fn main() {
    println!("cargo:rerun-if-changed=boards");
    let boards: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_BOARD_").map(|b| b.to_lowercase().replace('_', "-")))
        .collect();
    let name = match boards.as_slice() {
        [one] => one.clone(),
        [] => fail("no board profile selected: enable exactly one `board-<name>` feature (see boards/)"),
        many => fail(&format!(
            "{} board profiles selected ({}): enable exactly one; with a non-default board use --no-default-features --features board-<name>",
            many.len(),
            many.join(", ")
        )),
    };
    let path = Path::new("boards").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    let b: Board = toml::from_str(&text).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    check(&path, &b);

    let mut out = String::new();
    let _ = writeln!(out, "/// Board profile name (boards/{name}.toml).\npub const NAME: &str = {name:?};");
    let _ = writeln!(out, "pub const DESCRIPTION: &str = {:?};", b.description);
    let _ = writeln!(out, "pub const MAX_CAMERAS: usize = {};", b.max_cameras);
    let _ = writeln!(out, "pub const FRAME_POOL_SLOTS: usize = {};", b.frame_pool_slots);
    let _ = writeln!(out, "pub const MAX_FRAME_WIDTH: u32 = {};", b.max_frame_width);
    let _ = writeln!(out, "pub const MAX_FRAME_HEIGHT: u32 = {};", b.max_frame_height);
    let _ = writeln!(out, "pub const CAPTURE_RING: usize = {};", b.capture_ring);
    let _ = writeln!(out, "pub const DETECT_RING: usize = {};", b.detect_ring);
    let _ = writeln!(out, "pub const EVENT_RING: usize = {};", b.event_ring);
    let _ = writeln!(out, "pub const DETECTOR_WIDTH: u32 = {};", b.detector_width);
    let _ = writeln!(out, "pub const DETECTOR_HEIGHT: u32 = {};", b.detector_height);
    let _ = writeln!(out, "pub const BATCH_SIZE: usize = {};", b.batch_size);
    let _ = writeln!(out, "pub const DETECTOR_PRECISION: &str = {:?};", b.detector_precision);
    let _ = writeln!(out, "pub const DETECTOR_PREPROCESS: &str = {:?};", b.detector_preprocess);
    let _ = writeln!(out, "pub const BATCH_TIMEOUT_MS: u64 = {};", b.batch_timeout_ms);
    let eps: Vec<String> = b.execution_providers.iter().map(|p| format!("{p:?}")).collect();
    let _ = writeln!(out, "pub const EXECUTION_PROVIDERS: &[&str] = &[{}];", eps.join(", "));
    let _ = writeln!(
        out,
        "/// Every execution provider name a board profile or config may give.\npub const KNOWN_PROVIDERS: &[&str] = &{KNOWN_PROVIDERS:?};"
    );
    let _ = writeln!(out, "pub const INTRA_THREADS: usize = {};", b.intra_threads);
    let _ = writeln!(out, "pub const PAD_BATCHES: bool = {};", b.pad_batches);
    let _ = writeln!(out, "pub const DETECT_OVERLAP: bool = {};", b.detect_overlap);
    let _ = writeln!(out, "pub const INTRA_OP_SPINNING: bool = {};", b.intra_op_spinning);
    let _ = writeln!(out, "pub const CUDA_CONV_SEARCH: &str = {:?};", b.cuda_conv_search);
    let l = &b.landmarks;
    let _ = writeln!(out, "pub const LANDMARK_BATCH: usize = {};", l.batch_size);
    let _ = writeln!(out, "pub const LANDMARK_BATCH_TIMEOUT_MS: u64 = {};", l.batch_timeout_ms);
    let _ = writeln!(out, "pub const LANDMARK_FRAMES: usize = {};", l.frames_in_flight);
    let leps: Vec<String> =
        l.execution_providers.as_ref().unwrap_or(&b.execution_providers).iter().map(|p| format!("{p:?}")).collect();
    let _ = writeln!(out, "pub const LANDMARK_EXECUTION_PROVIDERS: &[&str] = &[{}];", leps.join(", "));
    let p = &b.pinning;
    let _ = writeln!(
        out,
        "pub const PIN_CAPTURE: i32 = {};\npub const PIN_DETECT: i32 = {};\npub const PIN_TRACK: i32 = {};\npub const PIN_LANDMARKS: i32 = {};\npub const PIN_SENDER: i32 = {};",
        p.capture, p.detect, p.track, p.landmarks, p.sender
    );
    let c = &b.capacity;
    let _ = writeln!(
        out,
        "/// Sized for up to {} faces in view per camera at {} cameras (boards/{name}.toml `[capacity]`).",
        c.faces_per_camera, c.cameras
    );
    let _ = writeln!(out, "pub const CAPACITY_FACES_PER_CAMERA: usize = {};", c.faces_per_camera);
    let _ = writeln!(out, "pub const CAPACITY_CAMERAS: usize = {};", c.cameras);
    let _ = writeln!(out, "/// Tracks per camera (in view, lost or tentative): derived from the capacity.");
    let _ = writeln!(out, "pub const MAX_TRACKS: usize = {};", c.max_tracks());
    let _ = writeln!(out, "/// Detections per frame the detector keeps: derived from the capacity.");
    let _ = writeln!(out, "pub const MAX_DETECTIONS: usize = {};", c.max_tracks());
    let _ = writeln!(out, "/// Best faces held at once over all cameras (the keep store): derived from the capacity.");
    let _ = writeln!(out, "pub const KEEP_FACES: usize = {};", c.keep_faces());
    let d = &b.decode;
    let _ = writeln!(out, "pub const DECODE_THREADS: usize = {};", d.threads);
    let _ = writeln!(out, "pub const DECODE_FRAME_THREADS: bool = {};", d.frame_threads);
    let _ = writeln!(out, "pub const HW_DECODER_H264: &str = {:?};", d.h264_hw);
    let _ = writeln!(out, "pub const HW_DECODER_H265: &str = {:?};", d.h265_hw);
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("board.rs");
    std::fs::write(dest, out).unwrap();
    link_turbojpeg();
    let libav = std::env::var_os("CARGO_FEATURE_LIBAV").is_some();
    let openh264 = std::env::var_os("CARGO_FEATURE_OPENH264").is_some();
    if !libav && !openh264 {
        fail("no video decoder: enable the `libav` feature (FFmpeg's libavcodec, the default) or `openh264` (H.264 only, no system libraries)");
    }
    let names_hw = !d.h264_hw.is_empty() || !d.h265_hw.is_empty();
    if !libav && names_hw {
        println!(
            "cargo:warning=board {name} names hardware decoders, which need the `libav` feature; this build decodes H.264 with OpenH264 in software"
        );
    }
}

/// libjpeg-turbo's TurboJPEG library, statically when its archive is there
/// (boards then need nothing installed). Looked up in $TURBOJPEG_LIB_DIR,
/// else Debian's multiarch directory for the target (`libturbojpeg0-dev`,
/// or `libturbojpeg0-dev:arm64` for the aarch64 cross build).
fn link_turbojpeg() {
    println!("cargo:rerun-if-env-changed=TURBOJPEG_LIB_DIR");
    let target = std::env::var("TARGET").unwrap_or_default();
    let dir = match std::env::var("TURBOJPEG_LIB_DIR") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => {
            let arch = target.split('-').next().unwrap_or("");
            let multiarch = Path::new("/usr/lib").join(format!("{arch}-linux-gnu"));
            if target.contains("apple") {
                Path::new("/opt/homebrew/opt/jpeg-turbo/lib").to_path_buf()
            } else {
                multiarch
            }
        }
    };
    if dir.join("libturbojpeg.a").exists() {
        // Copied alone into OUT_DIR: searching the whole multiarch directory
        // would let the cross linker pick that directory's libc over the
        // cross toolchain's.
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
        std::fs::copy(dir.join("libturbojpeg.a"), out.join("libturbojpeg.a")).unwrap();
        println!("cargo:rustc-link-search=native={}", out.display());
        println!("cargo:rustc-link-lib=static=turbojpeg");
        return;
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    if dir.join("libturbojpeg.so").exists() || dir.join("libturbojpeg.dylib").exists() {
        println!("cargo:rustc-link-lib=dylib=turbojpeg");
    } else {
        println!(
            "cargo:warning=libturbojpeg not found in {} (install libturbojpeg0-dev for {target}, or set TURBOJPEG_LIB_DIR); linking will fail",
            dir.display()
        );
        println!("cargo:rustc-link-lib=dylib=turbojpeg");
    }
}

fn check(path: &Path, b: &Board) {
    let bad = |key: &str, why: &str| fail(&format!("{}: `{key}` {why}", path.display()));
    for (key, v) in [
        ("max_cameras", b.max_cameras),
        ("frame_pool_slots", b.frame_pool_slots),
        ("capture_ring", b.capture_ring),
        ("detect_ring", b.detect_ring),
        ("event_ring", b.event_ring),
        ("batch_size", b.batch_size),
        ("intra_threads", b.intra_threads),
        ("decode.threads", b.decode.threads),
        ("landmarks.batch_size", b.landmarks.batch_size),
        ("landmarks.frames_in_flight", b.landmarks.frames_in_flight),
    ] {
        if v == 0 {
            bad(key, "must be at least 1");
        }
    }
    if b.max_cameras > 255 {
        bad("max_cameras", "must be at most 255");
    }
    for (key, v) in [("detector_width", b.detector_width), ("detector_height", b.detector_height)] {
        if v == 0 || !v.is_multiple_of(32) {
            bad(key, "must be a positive multiple of 32 (the detector's stride)");
        }
    }
    if !b.max_frame_width.is_multiple_of(2)
        || !b.max_frame_height.is_multiple_of(2)
        || b.max_frame_width == 0
        || b.max_frame_height == 0
    {
        bad("max_frame_width/max_frame_height", "must be positive and even (4:2:0 chroma)");
    }
    let c = &b.capacity;
    if c.faces_per_camera == 0 || c.cameras == 0 {
        bad("capacity", "needs at least one face and one camera");
    }
    if c.cameras > b.max_cameras {
        bad("capacity.cameras", &format!("is more than max_cameras ({})", b.max_cameras));
    }
    if c.faces_per_camera > 1024 {
        bad("capacity.faces_per_camera", "must be at most 1024");
    }
    // The capture side never waits on held faces (they live in the keep
    // store), so the pool serves only frames in flight: per camera at
    // capacity a full capture ring, the picture being decoded and the one
    // the preview shows, plus the batch being gathered (and, overlapped,
    // the one running) and the frames the landmarks stage may hold.
    if !["exhaustive", "heuristic"].contains(&b.cuda_conv_search.as_str()) {
        bad("cuda_conv_search", &format!("is \"exhaustive\" or \"heuristic\", not {:?}", b.cuda_conv_search));
    }
    let batches = if b.detect_overlap { 2 } else { 1 };
    let in_flight = c.cameras * (b.capture_ring + 2) + batches * b.batch_size + b.landmarks.frames_in_flight;
    if b.frame_pool_slots < in_flight {
        bad(
            "frame_pool_slots",
            &format!(
                "must cover the frames in flight at capacity: {} cameras x (capture_ring {} + 2) + {batches} x batch_size {} + landmarks.frames_in_flight {} = {in_flight}",
                c.cameras, b.capture_ring, b.batch_size, b.landmarks.frames_in_flight
            ),
        );
    }
    if b.frame_pool_slots > 65535 {
        bad("frame_pool_slots", "must be at most 65535");
    }
    if c.keep_faces() > 65535 {
        bad("capacity", "holds more than 65535 best faces; lower faces_per_camera or cameras");
    }
    if !["fp32", "fp16", "int8"].contains(&b.detector_precision.as_str()) {
        bad("detector_precision", "must be \"fp32\", \"fp16\" or \"int8\"");
    }
    if !["cpu", "model"].contains(&b.detector_preprocess.as_str()) {
        bad("detector_preprocess", "must be \"cpu\" or \"model\"");
    }
    if b.execution_providers.is_empty() {
        bad("execution_providers", "must name at least one provider");
    }
    let landmark_eps = b.landmarks.execution_providers.as_deref().unwrap_or_default();
    for (key, eps) in
        [("execution_providers", &b.execution_providers[..]), ("landmarks.execution_providers", landmark_eps)]
    {
        for ep in eps {
            if !KNOWN_PROVIDERS.contains(&ep.as_str()) {
                bad(key, &format!("names unknown provider {ep:?} (known: {KNOWN_PROVIDERS:?})"));
            }
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: faceflow board profile: {msg}");
    panic!("faceflow board profile: {msg}");
}
