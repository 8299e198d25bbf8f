//! Runtime configuration: a TOML file of cameras, thresholds and outputs.
//!
//! Unknown keys and bad values are refused with the offending key named
//! (`cameras[1].url: ...`). Compile-time limits (camera count, frame size)
//! come from the board profile and are checked here too.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::board;

mod bus;
mod camera;
pub mod region;
mod validate;

pub use bus::{broker_address, BrokerUrlError, MqttConfig, RedisConfig};
pub use camera::*;

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
    pub mqtt: Option<MqttConfig>,
    #[serde(default)]
    pub redis: Option<RedisConfig>,
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
    /// Whether any remote sink (FindFace, webhook, MQTT, Redis) is set:
    /// then events go through the spool.
    pub fn has_remote_sink(&self) -> bool {
        self.findface.is_some() || self.webhook.is_some() || self.mqtt.is_some() || self.redis.is_some()
    }

    /// The file of `camera` for an output path given on the command line.
    pub(crate) fn per_camera_path(&self, base: &std::path::Path, camera: &str) -> std::path::PathBuf {
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

/// Where libonnxruntime is: the config's path, else $ORT_DYLIB_PATH, else
/// `models/lib/<arch>/libonnxruntime.so` under the working directory.
pub(crate) fn runtime_library_path(configured: &Path) -> PathBuf {
    if !configured.as_os_str().is_empty() {
        return configured.to_path_buf();
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return PathBuf::from(p);
    }
    let name = if cfg!(target_os = "macos") { "libonnxruntime.dylib" } else { "libonnxruntime.so" };
    PathBuf::from("models/lib").join(std::env::consts::ARCH).join(name)
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
    pub(crate) fn expose(&self) -> &str {
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
            recent_faces: crate::limits::RECENT_FACES_PER_CAMERA,
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
            dead_letters_max: crate::limits::DEAD_LETTERS_MAX,
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
    /// How the CUDA provider picks each convolution's cuDNN algorithm:
    /// `exhaustive` (ONNX Runtime's default: every algorithm timed at each
    /// new input shape, seconds per shape at load), `heuristic` (cuDNN's
    /// ranking, nothing timed) or `board` (default: the profile's
    /// `cuda_conv_search`). No effect on other providers.
    pub cuda_conv_search: ConvSearch,
}

/// `detector.cuda_conv_search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvSearch {
    Board,
    Exhaustive,
    Heuristic,
}

impl ConvSearch {
    /// The name `detector.cuda_conv_search` takes.
    pub fn name(self) -> &'static str {
        match self {
            ConvSearch::Board => "board",
            ConvSearch::Exhaustive => "exhaustive",
            ConvSearch::Heuristic => "heuristic",
        }
    }

    /// `Board` resolved to the board profile's choice.
    pub fn resolved(self) -> ConvSearch {
        match self {
            ConvSearch::Board if crate::board::CUDA_CONV_SEARCH == "heuristic" => ConvSearch::Heuristic,
            ConvSearch::Board => ConvSearch::Exhaustive,
            c => c,
        }
    }
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
    pub(crate) fn resolved(self) -> Preprocess {
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
    pub(crate) fn resolved(self) -> Precision {
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
            cuda_conv_search: ConvSearch::Board,
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
    pub keep: Keep,
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
            keep: Keep::Always,
            group: None,
        }
    }
}

/// When an outbox copy may go once it is within age and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// Until age or size says otherwise.
    Always,
    /// Until every remote sink delivered it (or refused it for good: the
    /// spool's `dead/` keeps refused events, within its own bound).
    UntilDelivered,
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
    /// ONNX Runtime execution providers for Face Mesh and Iris, tried in
    /// order (`cpu`, `cuda`, `tensorrt`, `coreml`); empty = the board
    /// profile's `[landmarks] execution_providers`. A GPU box short of
    /// GPU memory or time keeps them on its cores with `["cpu"]`.
    pub execution_providers: Vec<String>,
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
            execution_providers: Vec::new(),
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
    /// The providers the landmark models are tried on: the config's, else
    /// the board profile's.
    pub fn providers(&self) -> Vec<&str> {
        if self.execution_providers.is_empty() {
            crate::board::LANDMARK_EXECUTION_PROVIDERS.to_vec()
        } else {
            self.execution_providers.iter().map(String::as_str).collect()
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
            self.detector.runtime = locate(&runtime_library_path(&self.detector.runtime), config_dir);
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
}

/// Where a data file named by a relative path is: beside the config file
/// (`config_dir`), else in the installation (`../share/faceflow` from the
/// executable's folder, as the packages install it; the executable's folder
/// and the three above it, which covers `target/release/faceflow` and the
/// test binaries in `target/debug/deps` of a checkout; then
/// `/usr/share/faceflow` and `/usr/local/share/faceflow`), else the
/// working directory. An absolute path, or one found nowhere, is returned
/// as it is.
pub(crate) fn locate(path: &Path, config_dir: Option<&Path>) -> PathBuf {
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
mod tests;
