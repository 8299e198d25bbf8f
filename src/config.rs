//! Runtime configuration: a TOML file of cameras, thresholds and outputs.
//!
//! Unknown keys and bad values are refused with the offending key named
//! (`cameras[1].url: ...`). Compile-time limits (camera count, frame size)
//! come from the board profile and are checked here too.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::board;

#[derive(Debug)]
pub struct ConfigError {
    /// Where: the file, if any.
    pub source: String,
    /// The dotted key path that is wrong, when known.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config {}: {}", self.source, self.message)
        } else {
            write!(f, "config {}: `{}`: {}", self.source, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub detector: DetectorConfig,
    #[serde(default)]
    pub tracker: TrackerConfig,
    #[serde(default)]
    pub quality: QualityConfig,
    #[serde(default)]
    pub validation: ValidationConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub findface: Option<FindFaceConfig>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    #[serde(default)]
    pub sender: SenderConfig,
    #[serde(default)]
    pub monitor: MonitorConfig,
    #[serde(default)]
    pub attention: AttentionConfig,
    #[serde(default)]
    pub landmarks: LandmarksConfig,
    #[serde(default)]
    pub cameras: Vec<CameraConfig>,
    /// Per-frame track output in MOTChallenge format (`faceflow run
    /// --tracks FILE`; not a config key). With several cameras, one file
    /// each: `FILE` with `-<camera>` before its extension.
    #[serde(skip)]
    pub tracks_out: Option<std::path::PathBuf>,
    /// The detections the tracker saw, same format (`--detections FILE`).
    #[serde(skip)]
    pub detections_out: Option<std::path::PathBuf>,
}

impl Config {
    /// What `faceflow check-config` checks beyond the text: the files the
    /// config names exist (camera videos, the model, the runtime library
    /// when set) and the spool directory is writable. One line per problem,
    /// naming the key.
    pub fn check_files(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, c) in self.cameras.iter().enumerate() {
            if let Ok(SourceKind::File(p)) = c.source() {
                if !p.is_file() {
                    problems.push(format!("cameras[{i}].url: video file {} does not exist", p.display()));
                } else if let Some(why) = frame_too_big(&p) {
                    problems.push(format!("cameras[{i}].url: {why}"));
                }
            }
        }
        let model = self.detector.model_path();
        if !model.is_file() {
            problems.push(format!(
                "detector.model: {} does not exist (scripts/setup.sh fetches the default models)",
                model.display()
            ));
        }
        if !self.detector.runtime.as_os_str().is_empty() && !self.detector.runtime.is_file() {
            problems.push(format!("detector.runtime: {} does not exist", self.detector.runtime.display()));
        }
        let ca_files = [
            ("findface.ca_file", self.findface.as_ref().and_then(|f| f.ca_file.as_ref())),
            ("webhook.ca_file", self.webhook.as_ref().and_then(|w| w.ca_file.as_ref())),
        ];
        for (key, path) in ca_files {
            if let Some(path) = path {
                if let Err(e) = crate::sink::tls::read_ca_file(path) {
                    problems.push(format!("{key}: {e}"));
                }
            }
        }
        if self.findface.is_some() || self.webhook.is_some() {
            let dir = &self.sender.spool_dir;
            let probe = dir.join(".faceflow-check");
            let ok = crate::sink::private_files::Access::PRIVATE
                .create_dir_all(dir)
                .and_then(|_| std::fs::write(&probe, b""))
                .is_ok();
            let _ = std::fs::remove_file(&probe);
            if !ok {
                problems.push(format!("sender.spool_dir: {} is not a writable directory", dir.display()));
            }
        }
        problems
    }

    /// The file of `camera` for an output path given on the command line.
    pub fn per_camera_path(&self, base: &std::path::Path, camera: &str) -> std::path::PathBuf {
        if self.cameras.len() <= 1 {
            return base.to_path_buf();
        }
        let stem = base.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let name = match base.extension() {
            Some(ext) => format!("{stem}-{camera}.{}", ext.to_string_lossy()),
            None => format!("{stem}-{camera}"),
        };
        base.with_file_name(name)
    }
}

/// Why a recording's frames do not fit this board's frame pool (its first
/// frame is decoded to know), or None when they fit or it cannot be read
/// (the run reports that).
fn frame_too_big(path: &Path) -> Option<String> {
    let mut size = None;
    crate::ingest::decode_file(path, 1, |p| size = Some((p.width, p.height))).ok()?;
    let (w, h) = size?;
    let b = crate::board::frame_limit_text();
    (w > crate::board::MAX_FRAME_WIDTH || h > crate::board::MAX_FRAME_HEIGHT)
        .then(|| format!("{} has {w}x{h} frames, more than {b}", path.display()))
}

/// A password or token: readable by the code that needs it, never printed
/// (`Debug` and `Display` show `***`).
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// FindFace Multi, as an external detector (shared/findface-api.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindFaceConfig {
    /// API base, e.g. `https://findface.local/api` (`/events/faces/add/` is appended).
    pub url: String,
    /// The cameras' events-creation token (form field `token`).
    pub token: Secret,
    /// Optional `Authorization: Token <api_token>`.
    #[serde(default)]
    pub api_token: Option<Secret>,
    #[serde(default = "default_mf_selector")]
    pub mf_selector: String,
    /// `roi` = face box grown by this share of its size on each side.
    #[serde(default = "default_roi_margin")]
    pub roi_margin: f32,
    #[serde(default = "default_http_timeout")]
    pub timeout_ms: u64,
    /// PEM file of the CA (or CAs) that signed the server's certificate,
    /// for servers with a private CA; verification is always on.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_mf_selector() -> String {
    "biggest".into()
}
fn default_roi_margin() -> f32 {
    0.5
}
fn default_http_timeout() -> u64 {
    10_000
}

/// The monitoring HTTP server (stats API, Prometheus, panel).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// `host:port`; loopback by default; "" disables the server.
    pub bind: String,
    /// When set, requests need `Authorization: Bearer <token>` (or `?token=`).
    /// Required when `bind` is not a loopback address (the panel shows
    /// faces), unless `allow_anonymous`.
    pub token: Option<Secret>,
    /// Serve the panel on the network without a token (WARN at every start).
    pub allow_anonymous: bool,
    /// Preview frames per second while someone watches.
    pub preview_fps: f64,
    /// Preview width in pixels (frames are scaled down to fit).
    pub preview_width: u32,
    /// A stage waiting this long (for a pool slot, for room in a ring) is
    /// reported: ERROR in the log, `failing` in `/healthz`.
    pub stall_report_s: f64,
    /// Best faces per camera the panel's recent-events strip keeps in
    /// memory (face crop and full frame JPEGs each).
    pub recent_faces: usize,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            bind: "127.0.0.1:8080".into(),
            token: None,
            allow_anonymous: false,
            preview_fps: 5.0,
            preview_width: 640,
            stall_report_s: 10.0,
            recent_faces: crate::monitor::gallery::DEFAULT_PER_CAMERA,
        }
    }
}

/// A generic JSON webhook receiving every event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    #[serde(default = "default_http_timeout")]
    pub timeout_ms: u64,
    /// PEM file of a private CA that signed the server's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderConfig {
    /// Sender threads per remote sink; 0 = max(4, cores / 2).
    pub workers: usize,
    /// Durable spool; one subdirectory per remote sink.
    pub spool_dir: PathBuf,
    /// Disk cap of each spool; past it the oldest queued event is dropped (counted, logged).
    pub spool_max_mb: u64,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// At the end of a finite run (files), how long to wait for the spool to drain.
    pub drain_timeout_s: u64,
    /// Refused events kept in each spool's `dead/` (for inspection); the
    /// oldest beyond it are removed (counted).
    pub dead_letters_max: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            workers: 0,
            spool_dir: PathBuf::from("spool"),
            spool_max_mb: 1024,
            retry_initial_ms: 500,
            retry_max_ms: 60_000,
            drain_timeout_s: 10,
            dead_letters_max: crate::sink::spool::DEFAULT_DEAD_LETTERS_MAX,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Which model: `centerface` (default: any input size, faces from ~10
    /// frame pixels at the board's input) or `blazeface` (about a third of
    /// the inference cost, 256x256 input: for cameras that see faces up close).
    pub kind: DetectorKind,
    /// Path of the ONNX model; empty = the kind's file from scripts/setup.sh
    /// (`models/centerface.onnx`, `models/blazeface.onnx`).
    pub model: PathBuf,
    /// Path of libonnxruntime; empty = $ORT_DYLIB_PATH, then models/lib/<arch>/.
    pub runtime: PathBuf,
    /// Detections below this score are discarded before tracking.
    pub min_score: f32,
    /// IoU above which overlapping detections are merged by NMS.
    pub nms_iou: f32,
    /// Frames per inference; 0 = the board profile's `batch_size`.
    pub batch_size: usize,
    /// CenterFace's weights: `fp32`, `fp16` (GPU profiles), `int8` (static
    /// QDQ quantisation, made by scripts/setup.sh), or `board` (default: the
    /// board profile's `detector_precision`). Ignored when `model` is set.
    pub precision: Precision,
    /// Who letterboxes frames for CenterFace: `cpu` (the detect thread
    /// fills the model's RGB input), `model` (the model takes the raw I420
    /// frames and letterboxes them itself, on the execution provider: the
    /// `-i420-WxH` files scripts/setup.sh makes), or `board` (default: the
    /// board profile's `detector_preprocess`). Ignored when `model` is set:
    /// then the model's input says which.
    pub preprocess: Preprocess,
    /// Overlap batches: the model runs on a thread of its own while the
    /// detect thread gathers and copies in the next batch and hands the
    /// last one's faces on (two sets of input and output buffers). Unset =
    /// the board profile's `detect_overlap` (on for x86-cpu and x86-cuda,
    /// measured there; PERFORMANCE.md).
    pub overlap: Option<bool>,
    /// Put the detector's input and output buffers in page-locked memory
    /// where the execution provider offers it (CUDA's pinned allocator):
    /// the copies to and from the GPU are then DMA instead of staged by
    /// the CPU. Default true; no effect on the CPU provider.
    pub pinned_buffers: bool,
}

/// `detector.preprocess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preprocess {
    Board,
    Cpu,
    Model,
}

impl Preprocess {
    /// `Board` resolved to the board profile's choice.
    pub fn resolved(self) -> Preprocess {
        match self {
            Preprocess::Board if crate::board::DETECTOR_PREPROCESS == "model" => Preprocess::Model,
            Preprocess::Board => Preprocess::Cpu,
            p => p,
        }
    }
}

/// `detector.precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Board,
    Fp32,
    Fp16,
    Int8,
}

impl Precision {
    /// `Board` resolved to the board profile's precision.
    pub fn resolved(self) -> Precision {
        match self {
            Precision::Board => match crate::board::DETECTOR_PRECISION {
                "int8" => Precision::Int8,
                "fp16" => Precision::Fp16,
                _ => Precision::Fp32,
            },
            p => p,
        }
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            kind: DetectorKind::CenterFace,
            model: PathBuf::new(),
            runtime: PathBuf::new(),
            min_score: 0.3,
            nms_iou: 0.3,
            batch_size: 0,
            precision: Precision::Board,
            preprocess: Preprocess::Board,
            overlap: None,
            pinned_buffers: true,
        }
    }
}

/// The face detection models faceflow can run (`detector.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    CenterFace,
    BlazeFace,
}

impl DetectorKind {
    /// The name `detector.kind` takes.
    pub fn name(self) -> &'static str {
        match self {
            DetectorKind::CenterFace => "centerface",
            DetectorKind::BlazeFace => "blazeface",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Detections at or above this score drive ByteTrack's first matching stage.
    pub high_score: f32,
    /// A new track starts only from a detection at or above this score.
    pub new_track_score: f32,
    /// First-stage match: minimum IoU between prediction and detection.
    pub match_iou: f32,
    /// Second stage (low-score detections): minimum IoU.
    pub low_match_iou: f32,
    /// A lost track is removed after this many frames without a match
    /// (100: 4 s at 25 fps, people walking behind a pillar or another
    /// person are hidden that long).
    pub max_frames_lost: u32,
    /// A track's event is closed (and a new one begun) after this many frames.
    pub max_frames_per_track: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            high_score: 0.5,
            new_track_score: 0.6,
            match_iou: 0.2,
            low_match_iou: 0.5,
            max_frames_lost: 100,
            max_frames_per_track: 900,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Face width (px) at which the size part reaches 1.
    pub full_size_px: f32,
    /// Ideal face box width/height ratio.
    pub ideal_aspect: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig { full_size_px: 112.0, ideal_aspect: 0.78 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Minimum distance (px) the face centre must travel over the track.
    pub min_movement_px: f32,
    /// Minimum best detector confidence.
    pub min_confidence: f32,
    /// Minimum width (px) of the best face box.
    pub min_box_width: f32,
    /// Minimum share of observed frames in which the face moved.
    pub min_moving_share: f32,
    /// Per-frame centre shift (px) that counts a frame as moving.
    pub moving_frame_px: f32,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            min_movement_px: 10.0,
            min_confidence: 0.6,
            min_box_width: 32.0,
            min_moving_share: 0.2,
            moving_frame_px: 0.5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Directory for event records and JPEGs; empty disables the outbox.
    pub dir: PathBuf,
    pub jpeg_quality: u8,
    /// Events older than this many hours are removed; 0 keeps them forever.
    pub max_age_h: f64,
    /// The outbox is kept within this many bytes, oldest events removed
    /// first; 0: no limit.
    pub max_bytes: u64,
    /// `always` (within age and size) or `until_delivered`: removed once
    /// every remote sink (FindFace, webhook) has it.
    pub keep: crate::sink::retention::Keep,
    /// A group that may read the outbox (files 0640, directories 0750),
    /// e.g. an exporter's; unset: owner only (0600/0700).
    pub group: Option<String>,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            dir: PathBuf::from("outbox"),
            jpeg_quality: 90,
            max_age_h: 168.0,
            max_bytes: 1 << 30,
            keep: crate::sink::retention::Keep::Always,
            group: None,
        }
    }
}

impl OutboxConfig {
    pub fn retention(&self) -> crate::sink::retention::Policy {
        crate::sink::retention::Policy {
            max_age: (self.max_age_h > 0.0).then(|| std::time::Duration::from_secs_f64(self.max_age_h * 3600.0)),
            max_bytes: (self.max_bytes > 0).then_some(self.max_bytes),
            keep: self.keep,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub name: String,
    /// `file:<path>` (or a bare path) to an H.264 Annex B or MP4 file.
    pub url: String,
    /// Files: pace frames at their frame rate (true) or read as fast as the
    /// pipeline takes them, losing nothing (false).
    #[serde(default)]
    pub realtime: bool,
    /// Frame rate assumed for files without timing (Annex B).
    #[serde(default = "default_fps")]
    pub fps: f32,
    /// Run detection on one frame, then skip this many (tracker predicts).
    #[serde(default)]
    pub detection_skip_frames: u32,
    /// Files: start over at the end (demos, soak tests).
    #[serde(default, rename = "loop")]
    pub loop_file: bool,
    /// Live streams: frames older than this when detection reaches them are dropped.
    #[serde(default = "default_max_age")]
    pub max_frame_age_ms: u64,
    /// FindFace camera id (required when `[findface]` is configured).
    #[serde(default)]
    pub findface_camera: Option<u64>,
    /// Polygon zones in frame pixels.
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
    /// Which point of a face box decides zone membership.
    #[serde(default)]
    pub zone_anchor: ZoneAnchor,
    /// Entering needs the anchor this far inside, leaving this far outside.
    #[serde(default = "default_hysteresis")]
    pub zone_hysteresis_px: f32,
    /// RTSP user name (or `user:password@` in the URL).
    #[serde(default)]
    pub username: Option<String>,
    /// RTSP password; never logged (URLs are redacted everywhere).
    #[serde(default)]
    pub password: Option<Secret>,
    /// RTSP transport: `tcp` (interleaved, the default) or `udp`.
    #[serde(default)]
    pub transport: RtspTransport,
    /// Live cameras: first reconnect delay; doubles up to `reconnect_max_ms`,
    /// with jitter.
    #[serde(default = "default_reconnect_initial")]
    pub reconnect_initial_ms: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// Live cameras: no frame for this long means stalled: reconnect.
    #[serde(default = "default_stall")]
    pub stall_timeout_ms: u64,
    /// Files: the wall-clock time of the stream's start, for event
    /// timestamps (stream time is added to it): `now` (default: when the run
    /// starts), `mtime` (the file's modification time) or an RFC 3339 time
    /// such as `2026-11-30T08:15:00Z`. Live cameras stamp arrival times.
    #[serde(default = "default_start_time")]
    pub start_time: String,
    /// `overall` (default): one best face per track, when it ends.
    /// `realtime`: a first face as soon as one is good enough, then better
    /// ones at most every `realtime_interval_ms`, and the final best.
    #[serde(default)]
    pub mode: EventMode,
    #[serde(default = "default_rt_interval")]
    pub realtime_interval_ms: u64,
    /// The first post waits for a face this good (quality 0..1)...
    #[serde(default = "default_rt_min_quality")]
    pub realtime_min_quality: f32,
    /// ...or until the track is this old, then posts its best so far.
    #[serde(default = "default_rt_max_wait")]
    pub realtime_max_wait_ms: u64,
    /// A later post only when the quality rose by at least this much.
    #[serde(default = "default_rt_min_improvement")]
    pub realtime_min_improvement: f32,
    /// `motion` (default) runs the detector on a frame due
    /// (`detection_skip_frames`) only where something moves or a face was
    /// seen in the last `motion_hold_frames` detected frames: a camera
    /// watching an empty scene costs decoding only. `always` runs it on
    /// every frame due.
    #[serde(default)]
    pub detection: DetectionMode,
    /// Grey levels a sampled point must change by to count as motion.
    #[serde(default = "default_motion_threshold")]
    pub motion_threshold: u8,
    /// Share of sampled points that must change for a frame to move.
    #[serde(default = "default_motion_min_share")]
    pub motion_min_share: f32,
    /// Detected frames the gate stays open after the last face.
    #[serde(default = "default_motion_hold")]
    pub motion_hold_frames: u32,
    /// The part of the frame the detector sees, `[x, y, width, height]` in
    /// pixels or shares (`["25%", "40%", "50%", "60%"]`): letterboxed at the
    /// detector's input on its own, so small faces in a big frame stay big
    /// enough to find. Tracks, events and zones stay in frame coordinates.
    #[serde(default)]
    pub detect_roi: Option<crate::detect::region::RegionSpec>,
    /// Cut the frame (or region) into tiles, each detected at the
    /// detector's input size: `"off"`, `"auto"` (from `min_face_px`) or
    /// `[cols, rows]`. For small faces over a whole wide frame.
    #[serde(default)]
    pub detect_tiles: crate::detect::region::TileSpec,
    /// Faces narrower than this many frame pixels are dropped before
    /// tracking (0: none); `max_face_px` likewise for wider ones.
    #[serde(default)]
    pub min_face_px: f32,
    #[serde(default)]
    pub max_face_px: f32,
}

/// When a camera's face events leave (see `event`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EventMode {
    #[default]
    Overall,
    Realtime,
}

fn default_start_time() -> String {
    "now".into()
}

/// Milliseconds since the Unix epoch of an RFC 3339 time
/// (`YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)`).
/// Where a data file named by a relative path is: beside the config file
/// (`config_dir`), else in the installation (`../share/faceflow` from the
/// executable's folder, as the packages install it; the executable's folder
/// and the three above it, which covers `target/release/faceflow` and the
/// test binaries in `target/debug/deps` of a checkout; then
/// `/usr/share/faceflow` and `/usr/local/share/faceflow`), else the
/// working directory. An absolute path, or one found nowhere, is returned
/// as it is.
pub fn locate(path: &Path, config_dir: Option<&Path>) -> PathBuf {
    if path.is_absolute() || path.as_os_str().is_empty() {
        return path.to_path_buf();
    }
    let exe = std::env::current_exe().ok();
    let share = exe.as_deref().and_then(|e| Some(e.parent()?.parent()?.join("share/faceflow")));
    let installed = share.as_deref().into_iter().chain(exe.iter().flat_map(|e| e.ancestors().skip(1).take(4)));
    let system = [Path::new("/usr/share/faceflow"), Path::new("/usr/local/share/faceflow")];
    let found = config_dir
        .filter(|d| !d.as_os_str().is_empty())
        .into_iter()
        .chain(installed)
        .chain(system)
        .map(|root| root.join(path))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| path.to_path_buf())
}

pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        let frac = s.get(start..i)?;
        ms = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, mm) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

fn default_rt_interval() -> u64 {
    1000
}
fn default_rt_min_quality() -> f32 {
    0.7
}
fn default_rt_max_wait() -> u64 {
    1000
}
fn default_rt_min_improvement() -> f32 {
    0.03
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    #[default]
    Tcp,
    Udp,
}

fn default_reconnect_initial() -> u64 {
    500
}
fn default_reconnect_max() -> u64 {
    30_000
}
fn default_stall() -> u64 {
    10_000
}

fn default_hysteresis() -> f32 {
    8.0
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ZoneAnchor {
    /// Bottom centre of the box.
    #[default]
    Foot,
    Center,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    /// Only faces inside an include zone are sent.
    Include,
    /// Faces inside are never sent.
    Exclude,
    /// Enter/exit events with dwell time per track.
    Presence,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    pub kind: ZoneKind,
    /// Polygon vertices `[x, y]` in frame pixels, at least 3.
    pub points: Vec<[f32; 2]>,
}

/// The landmarks stage (Face Mesh + Iris on candidate best faces).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LandmarksConfig {
    /// `auto` (default): on when the mesh model is there, else the
    /// detector's keypoints score faces (one WARN at start); `on`: a missing
    /// model is an error; `off`.
    pub enabled: LandmarksMode,
    /// Face Mesh ONNX model; empty = `models/landmarks/face_mesh.onnx`.
    pub model: PathBuf,
    /// Iris ONNX model (gaze); empty = `models/landmarks/iris.onnx`; gaze
    /// is left out when it is missing.
    pub iris_model: PathBuf,
    /// A face is a candidate for landmarks when its detector-based quality
    /// is within this much of the track's best (0..=1).
    pub candidate_margin: f32,
    /// Face-presence probability below which the mesh model's verdict is
    /// "not a face": the face cannot be a best face, and a track with no
    /// face above it makes no event.
    pub min_presence: f32,
    /// A track's face that is not better than its best is looked at no
    /// more often than this (stream time).
    pub min_interval_ms: u64,
    /// How long the track thread waits for an ending track's landmarks.
    pub wait_ms: u64,
}

/// `landmarks.enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LandmarksMode {
    Auto,
    On,
    Off,
}

impl Default for LandmarksConfig {
    fn default() -> Self {
        LandmarksConfig {
            enabled: LandmarksMode::Auto,
            model: PathBuf::new(),
            iris_model: PathBuf::new(),
            candidate_margin: 0.1,
            min_presence: 0.5,
            min_interval_ms: 500,
            wait_ms: 500,
        }
    }
}

impl LandmarksConfig {
    pub fn mesh_path(&self) -> PathBuf {
        if self.model.as_os_str().is_empty() {
            PathBuf::from("models/landmarks/face_mesh.onnx")
        } else {
            self.model.clone()
        }
    }
    pub fn iris_path(&self) -> PathBuf {
        if self.iris_model.as_os_str().is_empty() {
            PathBuf::from("models/landmarks/iris.onnx")
        } else {
            self.iris_model.clone()
        }
    }
}

/// Head-pose limits for "facing the camera".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttentionConfig {
    pub max_yaw_deg: f32,
    pub max_pitch_deg: f32,
}

impl Default for AttentionConfig {
    fn default() -> Self {
        AttentionConfig { max_yaw_deg: 25.0, max_pitch_deg: 20.0 }
    }
}

fn default_motion_threshold() -> u8 {
    12
}
fn default_motion_min_share() -> f32 {
    0.002
}
fn default_motion_hold() -> u32 {
    50
}

/// `detection` per camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectionMode {
    Always,
    #[default]
    Motion,
}

fn default_fps() -> f32 {
    25.0
}
fn default_max_age() -> u64 {
    500
}

/// Where a camera's frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    File(PathBuf),
    /// `url` carries no credentials: they travel apart, so no error or log
    /// line built from the URL can leak them.
    Rtsp {
        url: String,
        username: Option<String>,
        password: Option<Secret>,
    },
    /// A USB camera: `v4l2:/dev/video0?width=1280&height=720&format=mjpeg`.
    V4l2 {
        device: String,
        width: u32,
        height: u32,
        format: V4l2Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V4l2Format {
    Mjpeg,
    Yuyv,
}

impl CameraConfig {
    pub fn source(&self) -> Result<SourceKind, String> {
        let u = self.url.trim();
        if let Some(p) = u.strip_prefix("file:") {
            return Ok(SourceKind::File(PathBuf::from(p)));
        }
        if u.starts_with("rtsp://") || u.starts_with("rtsps://") {
            return self.rtsp_source(u);
        }
        if let Some(rest) = u.strip_prefix("v4l2:") {
            return v4l2_source(rest);
        }
        if u.contains("://") {
            let scheme = u.split("://").next().unwrap_or("");
            return Err(format!("scheme `{scheme}` is not supported (supported: rtsp://, rtsps://, v4l2:, file:)"));
        }
        Ok(SourceKind::File(PathBuf::from(u)))
    }
}

impl CameraConfig {
    fn rtsp_source(&self, u: &str) -> Result<SourceKind, String> {
        let mut parsed = url::Url::parse(u).map_err(|e| format!("not a valid URL ({e}): {}", redact_url(u)))?;
        if parsed.host_str().is_none_or(|h| h.is_empty()) {
            return Err(format!("no host in {}", redact_url(u)));
        }
        let decode = |s: &str| percent_decode(s);
        let (mut username, mut password) = (None, None);
        if !parsed.username().is_empty() {
            username = Some(decode(parsed.username()));
            password = parsed.password().map(|p| Secret::new(decode(p)));
        }
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        if self.username.is_some() {
            username = self.username.clone();
        }
        if self.password.is_some() {
            password = self.password.clone();
        }
        if password.is_some() && username.is_none() {
            return Err("a password is set but no username".into());
        }
        Ok(SourceKind::Rtsp { url: parsed.to_string(), username, password })
    }

    /// The camera's URL with any credentials replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

fn v4l2_source(rest: &str) -> Result<SourceKind, String> {
    let rest = rest.trim_start_matches("//");
    let (device, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !device.starts_with("/dev/") {
        return Err(format!("V4L2 device must be a /dev path, got {device:?}"));
    }
    let (mut width, mut height, mut format) = (1280u32, 720u32, V4l2Format::Mjpeg);
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let num = || v.parse::<u32>().map_err(|_| format!("V4L2 `{k}` must be a number, got {v:?}"));
        match k {
            "width" => width = num()?,
            "height" => height = num()?,
            "format" => {
                format = match v {
                    "mjpeg" => V4l2Format::Mjpeg,
                    "yuyv" => V4l2Format::Yuyv,
                    _ => return Err(format!("V4L2 format must be mjpeg or yuyv, got {v:?}")),
                }
            }
            _ => return Err(format!("unknown V4L2 option `{k}` (width, height, format)")),
        }
    }
    if width == 0 || height == 0 || width > crate::board::MAX_FRAME_WIDTH || height > crate::board::MAX_FRAME_HEIGHT {
        return Err(format!(
            "V4L2 size {width}x{height} outside 1x1..{}x{} (board `{}`)",
            crate::board::MAX_FRAME_WIDTH,
            crate::board::MAX_FRAME_HEIGHT,
            crate::board::NAME
        ));
    }
    Ok(SourceKind::V4l2 { device: device.to_string(), width, height, format })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces `user:password@` in a URL with `***@`, for logs and stats.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            return format!("{}://***@{}", &url[..scheme_end], &rest[at + 1..]);
        }
    }
    url.to_string()
}

impl DetectorConfig {
    /// The model file: `model` if set, else the kind's file from scripts/setup.sh.
    pub fn model_path(&self) -> PathBuf {
        if !self.model.as_os_str().is_empty() {
            return self.model.clone();
        }
        let weights = match self.precision.resolved() {
            Precision::Int8 => "-int8",
            Precision::Fp16 => "-fp16",
            _ => "",
        };
        match (self.kind, self.preprocess.resolved()) {
            (DetectorKind::CenterFace, Preprocess::Model) => PathBuf::from(format!(
                "models/centerface{weights}-i420-{}x{}.onnx",
                crate::board::DETECTOR_WIDTH,
                crate::board::DETECTOR_HEIGHT
            )),
            (DetectorKind::CenterFace, _) => PathBuf::from(format!("models/centerface{weights}.onnx")),
            // BlazeFace ships in one precision and letterboxes on the CPU
            // (validate refuses the others).
            (DetectorKind::BlazeFace, _) => PathBuf::from("models/blazeface.onnx"),
        }
    }

    /// Whether batches overlap: the config's choice or the board's.
    pub fn overlap(&self) -> bool {
        self.overlap.unwrap_or(crate::board::DETECT_OVERLAP)
    }

    /// Frames per inference: the config's override or the board's.
    pub fn batch(&self) -> usize {
        if self.batch_size == 0 {
            crate::board::BATCH_SIZE
        } else {
            self.batch_size
        }
    }
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source: source.clone(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        let mut cfg = Config::from_toml(&text, &source)?;
        cfg.locate_data_files(path.parent());
        Ok(cfg)
    }

    /// Relative model and runtime paths (the defaults `models/...` too)
    /// are looked for beside the config file, then in the installation
    /// ([`locate`]), so a run started from another directory finds them;
    /// a file found nowhere keeps its path, and check-config names it.
    fn locate_data_files(&mut self, config_dir: Option<&Path>) {
        self.detector.model = locate(&self.detector.model_path(), config_dir);
        self.landmarks.model = locate(&self.landmarks.mesh_path(), config_dir);
        self.landmarks.iris_model = locate(&self.landmarks.iris_path(), config_dir);
        if !self.detector.runtime.as_os_str().is_empty() || std::env::var_os("ORT_DYLIB_PATH").is_none() {
            self.detector.runtime = locate(&crate::detect::runtime::library_path(&self.detector.runtime), config_dir);
        }
    }

    pub fn from_toml(text: &str, source: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let key = e.span().map(|s| key_at(text, s.start)).unwrap_or_default();
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            ConfigError {
                source: match line {
                    Some(l) => format!("{source}:{l}"),
                    None => source.to_string(),
                },
                key,
                message: msg,
            }
        })?;
        cfg.validate().map_err(|(key, message)| ConfigError { source: source.to_string(), key, message })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let unit = |key: &str, v: f32| -> Result<(), (String, String)> {
            if !(0.0..=1.0).contains(&v) || v.is_nan() {
                return Err((key.to_string(), format!("must be between 0 and 1, got {v}")));
            }
            Ok(())
        };
        let nonneg = |key: &str, v: f32| -> Result<(), (String, String)> {
            if v < 0.0 || !v.is_finite() {
                return Err((key.to_string(), format!("must be a finite number >= 0, got {v}")));
            }
            Ok(())
        };
        unit("detector.min_score", self.detector.min_score)?;
        unit("landmarks.candidate_margin", self.landmarks.candidate_margin)?;
        unit("landmarks.min_presence", self.landmarks.min_presence)?;
        if self.detector.batch_size > crate::detect::worker::MAX_BATCH {
            return Err((
                "detector.batch_size".into(),
                format!("must be at most {}, got {}", crate::detect::worker::MAX_BATCH, self.detector.batch_size),
            ));
        }
        unit("detector.nms_iou", self.detector.nms_iou)?;
        if self.detector.kind == DetectorKind::BlazeFace
            && matches!(self.detector.precision, Precision::Int8 | Precision::Fp16)
        {
            return Err((
                "detector.precision".into(),
                "BlazeFace comes in fp32 only; int8 and fp16 are CenterFace's".into(),
            ));
        }
        if self.detector.kind == DetectorKind::BlazeFace && self.detector.preprocess == Preprocess::Model {
            return Err((
                "detector.preprocess".into(),
                "BlazeFace letterboxes on the CPU only; \"model\" is CenterFace's".into(),
            ));
        }
        unit("tracker.high_score", self.tracker.high_score)?;
        unit("tracker.new_track_score", self.tracker.new_track_score)?;
        unit("tracker.match_iou", self.tracker.match_iou)?;
        unit("tracker.low_match_iou", self.tracker.low_match_iou)?;
        if self.tracker.high_score < self.detector.min_score {
            return Err((
                "tracker.high_score".into(),
                format!("must be >= detector.min_score ({}), got {}", self.detector.min_score, self.tracker.high_score),
            ));
        }
        if self.tracker.max_frames_per_track == 0 {
            return Err(("tracker.max_frames_per_track".into(), "must be at least 1".into()));
        }
        if self.quality.full_size_px <= 0.0 {
            return Err(("quality.full_size_px".into(), "must be > 0".into()));
        }
        if self.quality.ideal_aspect <= 0.0 {
            return Err(("quality.ideal_aspect".into(), "must be > 0".into()));
        }
        nonneg("validation.min_movement_px", self.validation.min_movement_px)?;
        unit("validation.min_confidence", self.validation.min_confidence)?;
        nonneg("validation.min_box_width", self.validation.min_box_width)?;
        unit("validation.min_moving_share", self.validation.min_moving_share)?;
        nonneg("validation.moving_frame_px", self.validation.moving_frame_px)?;
        if !(1..=100).contains(&self.outbox.jpeg_quality) {
            return Err(("outbox.jpeg_quality".into(), format!("must be 1..=100, got {}", self.outbox.jpeg_quality)));
        }
        if !(self.outbox.max_age_h >= 0.0 && self.outbox.max_age_h.is_finite()) {
            return Err((
                "outbox.max_age_h".into(),
                format!("must be hours >= 0 (0: no limit), got {}", self.outbox.max_age_h),
            ));
        }
        if self.outbox.keep == crate::sink::retention::Keep::UntilDelivered
            && self.findface.is_none()
            && self.webhook.is_none()
        {
            return Err((
                "outbox.keep".into(),
                "\"until_delivered\" needs a remote sink ([findface] or [webhook]) to deliver to; \
                 without one the outbox would keep nothing"
                    .into(),
            ));
        }
        if let Err(e) = crate::sink::private_files::Access::with_group(self.outbox.group.as_deref()) {
            return Err(("outbox.group".into(), e));
        }
        if let Some(ff) = &self.findface {
            check_url("findface.url", &ff.url)?;
            if ff.token.expose().is_empty() {
                return Err(("findface.token".into(), "must not be empty (the camera's events-creation token)".into()));
            }
            if ff.mf_selector != "biggest" && ff.mf_selector != "all" {
                return Err((
                    "findface.mf_selector".into(),
                    format!("must be \"biggest\" or \"all\", got {:?}", ff.mf_selector),
                ));
            }
            nonneg("findface.roi_margin", ff.roi_margin)?;
            if ff.timeout_ms == 0 {
                return Err(("findface.timeout_ms".into(), "must be at least 1".into()));
            }
            for (i, c) in self.cameras.iter().enumerate() {
                if c.findface_camera.is_none() {
                    return Err((
                        format!("cameras[{i}].findface_camera"),
                        "is required when [findface] is configured".into(),
                    ));
                }
            }
        }
        if let Some(wh) = &self.webhook {
            check_url("webhook.url", &wh.url)?;
            if wh.timeout_ms == 0 {
                return Err(("webhook.timeout_ms".into(), "must be at least 1".into()));
            }
        }
        if !self.monitor.bind.is_empty() && self.monitor.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "monitor.bind".into(),
                format!("must be host:port with an IP address, got {:?}", self.monitor.bind),
            ));
        }
        if let Ok(addr) = self.monitor.bind.parse::<std::net::SocketAddr>() {
            let no_token = self.monitor.token.as_ref().is_none_or(|t| t.expose().is_empty());
            if !addr.ip().is_loopback() && no_token && !self.monitor.allow_anonymous {
                return Err((
                    "monitor.token".into(),
                    format!(
                        "is required: monitor.bind = {:?} serves the panel, face crops and frames beyond this \
                         machine; set a token, bind to 127.0.0.1, or set monitor.allow_anonymous = true to \
                         serve them to anyone who can reach it",
                        self.monitor.bind
                    ),
                ));
            }
        }
        if self.monitor.recent_faces > 64 {
            return Err((
                "monitor.recent_faces".into(),
                format!("must be at most 64 (each holds two JPEGs in memory), got {}", self.monitor.recent_faces),
            ));
        }
        if !(self.monitor.stall_report_s > 0.0 && self.monitor.stall_report_s <= 3600.0) {
            return Err((
                "monitor.stall_report_s".into(),
                format!("must be in (0, 3600] seconds, got {}", self.monitor.stall_report_s),
            ));
        }
        if !(self.monitor.preview_fps > 0.0 && self.monitor.preview_fps <= 30.0) {
            return Err((
                "monitor.preview_fps".into(),
                format!("must be in (0, 30], got {}", self.monitor.preview_fps),
            ));
        }
        if self.sender.spool_max_mb == 0 {
            return Err(("sender.spool_max_mb".into(), "must be at least 1".into()));
        }
        if self.sender.retry_initial_ms == 0 || self.sender.retry_max_ms < self.sender.retry_initial_ms {
            return Err(("sender.retry_max_ms".into(), "retry_initial_ms must be >= 1 and <= retry_max_ms".into()));
        }
        if self.cameras.is_empty() {
            return Err(("cameras".into(), "at least one [[cameras]] entry is needed".into()));
        }
        if self.cameras.len() > board::MAX_CAMERAS {
            return Err((
                "cameras".into(),
                format!(
                    "{} cameras configured, board `{}` supports at most {}",
                    self.cameras.len(),
                    board::NAME,
                    board::MAX_CAMERAS
                ),
            ));
        }
        for (i, c) in self.cameras.iter().enumerate() {
            let k = |f: &str| format!("cameras[{i}].{f}");
            if c.name.trim().is_empty() || !c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
                return Err((
                    k("name"),
                    format!("must be non-empty and use only letters, digits, '-', '_', '.', got {:?}", c.name),
                ));
            }
            if self.cameras[..i].iter().any(|o| o.name == c.name) {
                return Err((k("name"), format!("duplicate camera name {:?}", c.name)));
            }
            c.source().map_err(|m| (k("url"), m))?;
            nonneg(&k("min_face_px"), c.min_face_px)?;
            nonneg(&k("max_face_px"), c.max_face_px)?;
            if c.detect_tiles == crate::detect::region::TileSpec::Auto && c.min_face_px <= 0.0 {
                return Err((
                    k("detect_tiles"),
                    "\"auto\" picks tiles from the smallest face wanted: set min_face_px (frame pixels)".into(),
                ));
            }
            if c.max_face_px > 0.0 && c.max_face_px < c.min_face_px {
                return Err((
                    k("max_face_px"),
                    format!("must be at least min_face_px ({}) or 0, got {}", c.min_face_px, c.max_face_px),
                ));
            }
            if !matches!(c.start_time.as_str(), "now" | "mtime") && parse_rfc3339_ms(&c.start_time).is_none() {
                return Err((
                    k("start_time"),
                    format!(
                        "must be \"now\", \"mtime\" or an RFC 3339 time like 2026-11-30T08:15:00Z, got {:?}",
                        c.start_time
                    ),
                ));
            }
            if c.realtime_interval_ms < 40 {
                return Err((
                    k("realtime_interval_ms"),
                    format!("must be at least 40, got {}", c.realtime_interval_ms),
                ));
            }
            if !(0.0..=1.0).contains(&c.realtime_min_quality) {
                return Err((k("realtime_min_quality"), format!("must be in [0, 1], got {}", c.realtime_min_quality)));
            }
            if !(0.0..=1.0).contains(&c.realtime_min_improvement) {
                return Err((
                    k("realtime_min_improvement"),
                    format!("must be in [0, 1], got {}", c.realtime_min_improvement),
                ));
            }
            if !(0.0..=1.0).contains(&c.motion_min_share) || c.motion_min_share.is_nan() {
                return Err((k("motion_min_share"), format!("must be in [0, 1], got {}", c.motion_min_share)));
            }
            for (j, z) in c.zones.iter().enumerate() {
                if z.points.len() < 3 {
                    return Err((
                        format!("cameras[{i}].zones[{j}].points"),
                        format!("a polygon needs at least 3 points, got {}", z.points.len()),
                    ));
                }
                if z.points.iter().flatten().any(|v| !v.is_finite()) {
                    return Err((
                        format!("cameras[{i}].zones[{j}].points"),
                        "coordinates must be finite numbers".into(),
                    ));
                }
                if z.name.is_empty() || c.zones[..j].iter().any(|o| o.name == z.name) {
                    return Err((
                        format!("cameras[{i}].zones[{j}].name"),
                        format!("must be non-empty and unique, got {:?}", z.name),
                    ));
                }
            }
            if c.zones.len() > crate::zones::MAX_ZONES {
                return Err((
                    format!("cameras[{i}].zones"),
                    format!("at most {} zones per camera", crate::zones::MAX_ZONES),
                ));
            }
            nonneg(&k("zone_hysteresis_px"), c.zone_hysteresis_px)?;
            if !(c.fps > 0.0 && c.fps <= 240.0) {
                return Err((k("fps"), format!("must be in (0, 240], got {}", c.fps)));
            }
        }
        Ok(())
    }
}

fn check_url(key: &str, url: &str) -> Result<(), (String, String)> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err((key.into(), format!("must start with http:// or https://, got {:?}", redact_url(url))));
    }
    Ok(())
}

/// Best-effort dotted key for an error at byte `pos`: the table header above
/// it and the key on its line.
fn key_at(text: &str, pos: usize) -> String {
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[pos..].find('\n').map(|i| pos + i).unwrap_or(text.len());
    let line = text[line_start..line_end].trim();
    let key = line.split('=').next().unwrap_or("").trim().to_string();
    let mut table = String::new();
    let mut array_index: std::collections::HashMap<String, usize> = Default::default();
    for l in text[..line_start].lines() {
        let l = l.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            let n = array_index.entry(name.to_string()).and_modify(|n| *n += 1).or_insert(0);
            table = format!("{name}[{n}]");
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.to_string();
        }
    }
    if line.starts_with('[') {
        return line.trim_matches(|c| c == '[' || c == ']').to_string();
    }
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[detector]
model = "m.onnx"
[[cameras]]
name = "door"
url = "file:a.h264"
[[cameras]]
name = "hall"
url = "b.mp4"
detection_skip_frames = 2
"#;

    #[test]
    fn good_config_parses() {
        let c = Config::from_toml(GOOD, "t.toml").unwrap();
        assert_eq!(c.cameras.len(), 2);
        assert_eq!(c.cameras[1].detection_skip_frames, 2);
        assert_eq!(c.tracker.max_frames_lost, 100);
        assert_eq!(c.tracker.max_frames_per_track, 900);
        assert_eq!(c.cameras[0].source().unwrap(), SourceKind::File("a.h264".into()));
    }

    #[test]
    fn unknown_key_is_named() {
        let t = GOOD.replace("detection_skip_frames = 2", "detection_skip_frame = 2");
        let e = Config::from_toml(&t, "t.toml").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("cameras[1].detection_skip_frame"), "{s}");
        assert!(s.contains("unknown field"), "{s}");
    }

    #[test]
    fn detector_kind_picks_the_default_model_and_a_wrong_kind_is_named() {
        let t = GOOD.replace("model = \"m.onnx\"", "kind = \"blazeface\"");
        let c = Config::from_toml(&t, "t.toml").unwrap();
        assert_eq!(c.detector.kind, DetectorKind::BlazeFace);
        assert_eq!(c.detector.model_path(), PathBuf::from("models/blazeface.onnx"));
        let c = Config::from_toml(GOOD, "t.toml").unwrap();
        assert_eq!(c.detector.kind, DetectorKind::CenterFace);
        assert_eq!(c.detector.model_path(), PathBuf::from("m.onnx"), "an explicit model wins");
        let t = GOOD.replace("model = \"m.onnx\"", "kind = \"yunet\"");
        let e = Config::from_toml(&t, "t.toml").unwrap_err().to_string();
        assert!(e.contains("detector.kind") && e.contains("yunet"), "{e}");
    }

    #[test]
    fn preprocess_and_precision_pick_the_model_file() {
        let with = |d: &str| Config::from_toml(&GOOD.replace("model = \"m.onnx\"", d), "t.toml");
        let path = |d: &str| with(d).unwrap().detector.model_path();
        let (w, h) = (crate::board::DETECTOR_WIDTH, crate::board::DETECTOR_HEIGHT);
        assert_eq!(path("preprocess = \"cpu\"\nprecision = \"fp32\""), PathBuf::from("models/centerface.onnx"));
        assert_eq!(
            path("preprocess = \"model\"\nprecision = \"int8\""),
            PathBuf::from(format!("models/centerface-int8-i420-{w}x{h}.onnx"))
        );
        assert_eq!(
            path("preprocess = \"model\"\nprecision = \"fp16\""),
            PathBuf::from(format!("models/centerface-fp16-i420-{w}x{h}.onnx"))
        );
        let e = with("kind = \"blazeface\"\npreprocess = \"model\"").unwrap_err().to_string();
        assert!(e.contains("detector.preprocess") && e.contains("BlazeFace"), "{e}");
        let e = with("preprocess = \"gpu\"").unwrap_err().to_string();
        assert!(e.contains("detector.preprocess") && e.contains("gpu"), "{e}");
    }

    #[test]
    fn unknown_table_key_is_named() {
        let t = GOOD.replace("model = \"m.onnx\"", "model = \"m.onnx\"\nthreshold = 3");
        let e = Config::from_toml(&t, "t.toml").unwrap_err().to_string();
        assert!(e.contains("detector.threshold"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("[validation]\nmin_confidence = 1.5\n", "validation.min_confidence"),
            ("[tracker]\nmax_frames_per_track = 0\n", "tracker.max_frames_per_track"),
            ("[outbox]\njpeg_quality = 0\n", "outbox.jpeg_quality"),
            ("[outbox]\nmax_age_h = -1\n", "outbox.max_age_h"),
            ("[outbox]\nkeep = \"until_delivered\"\n", "outbox.keep"),
            ("[outbox]\ngroup = \"no-such-group-faceflow\"\n", "outbox.group"),
            ("[monitor]\nbind = \"0.0.0.0:8080\"\n", "monitor.token"),
            (
                "[[cameras]]\nname = \"c\"\nurl = \"c.mp4\"\nmax_face_px = 20\nmin_face_px = 40\n",
                "cameras[0].max_face_px",
            ),
            ("[[cameras]]\nname = \"c\"\nurl = \"c.mp4\"\ndetect_roi = [0, 0, 10]\n", "cameras[0].detect_roi"),
            ("[[cameras]]\nname = \"c\"\nurl = \"c.mp4\"\ndetect_tiles = \"auto\"\n", "cameras[0].detect_tiles"),
            ("[[cameras]]\nname = \"c\"\nurl = \"c.mp4\"\ndetect_tiles = [5, 5]\n", "cameras[0].detect_tiles"),
        ];
        for (extra, key) in cases {
            let t = format!("{extra}{GOOD}");
            let e = Config::from_toml(&t, "t.toml").unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
        let e = Config::from_toml(&GOOD.replace("\"hall\"", "\"door\""), "t").unwrap_err();
        assert_eq!(e.key, "cameras[1].name");
        let e = Config::from_toml(&GOOD.replace("b.mp4", "ftp://x/y"), "t").unwrap_err();
        assert_eq!(e.key, "cameras[1].url");
        let e = Config::from_toml("", "t").unwrap_err();
        assert_eq!(e.key, "cameras");
    }

    #[test]
    fn v4l2_urls_parse_with_defaults_and_named_errors() {
        assert_eq!(
            v4l2_source("/dev/video2?width=640&height=480&format=yuyv").unwrap(),
            SourceKind::V4l2 { device: "/dev/video2".into(), width: 640, height: 480, format: V4l2Format::Yuyv }
        );
        assert_eq!(
            v4l2_source("///dev/video0").unwrap(),
            SourceKind::V4l2 { device: "/dev/video0".into(), width: 1280, height: 720, format: V4l2Format::Mjpeg }
        );
        assert!(v4l2_source("/dev/video0?format=h264").unwrap_err().contains("mjpeg or yuyv"));
        assert!(v4l2_source("/dev/video0?fps=30").unwrap_err().contains("unknown V4L2 option `fps`"));
        assert!(v4l2_source("/dev/video0?width=9000").unwrap_err().contains("outside"));
        assert!(v4l2_source("video0").unwrap_err().contains("/dev path"));
    }

    #[test]
    fn rtsp_credentials_are_taken_out_of_the_url() {
        let cam = |extra: &str| {
            let t = format!("[[cameras]]\nname = \"c\"\nurl = \"rtsp://u%40x:p%3Aw@10.0.0.5:554/live\"\n{extra}");
            Config::from_toml(&t, "t").map(|c| c.cameras[0].clone())
        };
        let c = cam("").unwrap();
        let SourceKind::Rtsp { url, username, password } = c.source().unwrap() else { panic!("rtsp") };
        assert_eq!(url, "rtsp://10.0.0.5:554/live");
        assert_eq!(username.as_deref(), Some("u@x"));
        assert_eq!(password.unwrap().expose(), "p:w");
        assert_eq!(c.redacted_url(), "rtsp://***@10.0.0.5:554/live");
        // Config keys win over the URL's.
        let c = cam("username = \"other\"\npassword = \"k\"\ntransport = \"udp\"").unwrap();
        let SourceKind::Rtsp { username, password, .. } = c.source().unwrap() else { panic!("rtsp") };
        assert_eq!((username.as_deref(), password.unwrap().expose()), (Some("other"), "k"));
        assert_eq!(c.transport, RtspTransport::Udp);
        let e =
            Config::from_toml("[[cameras]]\nname = \"c\"\nurl = \"rtsp://h/x\"\npassword = \"k\"\n", "t").unwrap_err();
        assert_eq!(e.key, "cameras[0].url");
        assert!(e.to_string().contains("no username"), "{e}");
        let e = Config::from_toml("[[cameras]]\nname = \"c\"\nurl = \"rtsp://h/x\"\ntransport = \"quic\"\n", "t")
            .unwrap_err();
        assert!(e.to_string().contains("cameras[0].transport"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let t = GOOD.replace("detection_skip_frames = 2", "detection_skip_frames = \"two\"");
        let e = Config::from_toml(&t, "t.toml").unwrap_err().to_string();
        assert!(e.contains("cameras[1].detection_skip_frames"), "{e}");
    }

    #[test]
    fn secrets_never_print_and_findface_needs_camera_ids() {
        let t = format!("[findface]\nurl = \"http://127.0.0.1:1/api\"\ntoken = \"tok-SECRET\"\n{GOOD}");
        let e = Config::from_toml(&t, "t").unwrap_err();
        assert_eq!(e.key, "cameras[0].findface_camera");
        let t = t
            .replace("url = \"file:a.h264\"", "url = \"file:a.h264\"\nfindface_camera = 1")
            .replace("url = \"b.mp4\"", "url = \"b.mp4\"\nfindface_camera = 2");
        let c = Config::from_toml(&t, "t").unwrap();
        let dump = format!("{c:?}");
        assert!(!dump.contains("tok-SECRET"), "{dump}");
        assert_eq!(c.findface.unwrap().token.expose(), "tok-SECRET");
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("rtsp://admin:s3cret@10.0.0.5:554/live"), "rtsp://***@10.0.0.5:554/live");
        assert_eq!(redact_url("rtsp://cam/live@x"), "rtsp://cam/live@x");
        assert_eq!(redact_url("file:a.h264"), "file:a.h264");
    }

    #[test]
    fn rfc3339_times_parse_to_unix_ms() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2026-11-30T08:15:00Z"), Some(1_796_026_500_000));
        assert_eq!(parse_rfc3339_ms("2026-11-30T09:15:00.250+01:00"), Some(1_796_026_500_250));
        // 12:00 at UTC-00:30 is 12:30 UTC.
        assert_eq!(parse_rfc3339_ms("2000-02-29T12:00:00-00:30"), Some(951_825_600_000 + 30 * 60_000));
        for bad in ["2026-13-01T00:00:00Z", "yesterday", "2026-11-30 08:15", "2026-11-30T08:15:00"] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        let t = GOOD.replace("[[cameras]]", "[[cameras]]\nstart_time = \"soon\"");
        let e = Config::from_toml(&t, "t").unwrap_err();
        assert!(e.to_string().contains("start_time"), "{e}");
    }
}
