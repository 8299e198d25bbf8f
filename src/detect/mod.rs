//! Face detection: the `Detector` trait, its result type, and the ONNX
//! models that implement it (CenterFace, the default, and BlazeFace, a
//! lighter one for close-range cameras; `detector.kind` picks).
//!
//! Submodules: `model` (letterbox, one inference per batch, decode, NMS,
//! back to frame pixels: what every model shares), `centerface` and
//! `blazeface` (each model's output decoding), `bound` (a session over
//! preallocated buffers), `letterbox` (frame -> model tensor, and back),
//! `motion` (the motion gate), `nms`, `runtime` (loading ONNX Runtime and the board's execution
//! providers), `worker` (the batching detect thread).

pub mod blazeface;
pub mod bound;
pub mod centerface;
pub mod letterbox;
pub mod model;
pub mod motion;
pub mod nms;
pub mod runtime;
pub mod worker;

use crate::geom::BBox;
use crate::pool::I420;

/// Most faces kept per frame; the lowest-scoring are cut beyond it.
pub const MAX_DETECTIONS: usize = crate::board::MAX_DETECTIONS;

/// Five facial keypoints: left eye, right eye, nose, left and right mouth corners
/// (left/right as seen in the picture).
pub type Keypoints = [[f32; 2]; 5];

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub keypoints: Keypoints,
}

pub type Detections = heapless::Vec<Detection, MAX_DETECTIONS>;

#[derive(Debug)]
pub enum DetectError {
    /// The model or runtime could not be loaded; names the file.
    Load(String),
    /// An inference call failed.
    Inference(String),
}

impl std::fmt::Display for DetectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectError::Load(m) => write!(f, "detector load: {m}"),
            DetectError::Inference(m) => write!(f, "detector inference: {m}"),
        }
    }
}

impl std::error::Error for DetectError {}

/// A face detector that runs one inference over a batch of frames.
pub trait Detector: Send {
    /// Largest batch one call accepts.
    fn max_batch(&self) -> usize;
    /// Detects faces in every frame of `frames` with ONE inference call;
    /// `out[i]` receives frame i's faces in frame pixel coordinates.
    fn detect_batch(&mut self, frames: &[I420<'_>], out: &mut [Detections]) -> Result<(), DetectError>;
}
