//! Face detection: the `Detector` trait, its result type, and the ONNX
//! models that implement it (CenterFace, the default, and BlazeFace, a
//! lighter one for close-range cameras; `detector.kind` picks).
//!
//! Submodules: `model` (letterbox, one inference per batch, decode, NMS,
//! back to frame pixels: what every model shares), `centerface` and
//! `blazeface` (each model's output decoding), `bound` (a session over
//! preallocated buffers), `letterbox` (frame -> model tensor, and back),
//! `motion` (the motion gate), `nms`, `region` (a camera's detection
//! region and face-size limits), `runtime` (loading ONNX Runtime and the board's execution
//! providers), `worker` (the batching detect thread).

pub mod blazeface;
pub mod bound;
pub mod centerface;
pub mod letterbox;
pub mod model;
pub mod motion;
pub mod nms;
pub(crate) mod overload;
pub mod region;
pub mod runtime;
pub mod worker;

use crate::geom::BBox;
use crate::pool::I420;

/// Most faces kept per frame; the lowest-scoring are cut beyond it.
pub(crate) const MAX_DETECTIONS: usize = crate::board::MAX_DETECTIONS;

/// Five facial keypoints: left eye, right eye, nose, left and right mouth corners
/// (left/right as seen in the picture).
pub(crate) type Keypoints = [[f32; 2]; 5];

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub keypoints: Keypoints,
}

pub type Detections = heapless::Vec<Detection, MAX_DETECTIONS>;

crate::error::context_error!(
    /// An ONNX model (the detector's or the landmark stage's) that could
    /// not be loaded: names the file, and the runtime's error as the cause.
    ModelLoadError,
    "model load: "
);

crate::error::context_error!(
    /// An inference call that failed, with the runtime's error as the cause.
    InferenceError,
    "inference: "
);

/// An ONNX model that could not be loaded or run; the caller says whose it
/// was (`PipelineError::Detector` or `::Landmarks`).
#[derive(Debug)]
pub enum DetectError {
    Load(ModelLoadError),
    Inference(InferenceError),
}

impl DetectError {
    /// A model that could not be loaded, for the reason given.
    pub fn load(context: impl Into<String>) -> Self {
        DetectError::Load(ModelLoadError::new(context))
    }
    /// A model that could not be loaded because of `cause`.
    pub fn load_caused(context: impl Into<String>, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        DetectError::Load(ModelLoadError::caused(context, cause))
    }
    /// An inference that failed, for the reason given.
    pub fn inference(context: impl Into<String>) -> Self {
        DetectError::Inference(InferenceError::new(context))
    }
    /// An inference that failed because of `cause`.
    pub fn inference_caused(
        context: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DetectError::Inference(InferenceError::caused(context, cause))
    }
}

impl std::fmt::Display for DetectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectError::Load(e) => e.fmt(f),
            DetectError::Inference(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DetectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DetectError::Load(e) => e.source(),
            DetectError::Inference(e) => e.source(),
        }
    }
}

/// A face detector that runs one inference over a batch of frames, in two
/// steps so that a caller can gather the next batch while one runs:
/// [`Detector::start`] takes the frames in (they may be released as soon
/// as it returns) and [`Detector::finish`] gives the faces of the oldest
/// started batch. Up to [`Detector::depth`] batches may be started and not
/// yet finished.
pub trait Detector: Send {
    /// Largest batch one call accepts.
    fn max_batch(&self) -> usize;
    /// Batches that may be started before the oldest is finished: 1 for a
    /// detector that runs the model inside `start`, 2 for one that runs it
    /// on a thread of its own (`detector.overlap`).
    fn depth(&self) -> usize {
        1
    }
    /// Gets ready for frames of `width` x `height`: a detector that takes
    /// raw frames runs every batch shape once at that size, because the
    /// first run of a shape at a new frame size is slow on an accelerator
    /// (seconds on CUDA). `start` does this itself on the first frame of a
    /// new size; calling it first keeps that out of the first batch.
    fn prepare(&mut self, _width: u32, _height: u32) -> Result<(), DetectError> {
        Ok(())
    }
    /// Whether frames of `width` x `height` run without [`Detector::prepare`]'s
    /// first runs at that size (false: `start` runs them first, and the
    /// caller may say that the wait is known).
    fn is_prepared(&self, _width: u32, _height: u32) -> bool {
        true
    }
    /// Copies `frames` in and starts ONE inference over them. On an error
    /// nothing was started.
    fn start(&mut self, frames: &[I420<'_>]) -> Result<(), DetectError>;
    /// Whether [`Detector::finish`] would return without waiting.
    fn ready(&mut self) -> bool {
        true
    }
    /// Waits for the oldest started batch; `out[i]` receives its frame i's
    /// faces in frame pixel coordinates.
    fn finish(&mut self, out: &mut [Detections]) -> Result<(), DetectError>;
    /// How long the model itself ran for the batch `finish` last returned
    /// (what an accelerator was busy with), when the detector knows.
    fn last_inference(&self) -> Option<std::time::Duration> {
        None
    }
    /// Both steps at once.
    fn detect_batch(&mut self, frames: &[I420<'_>], out: &mut [Detections]) -> Result<(), DetectError> {
        self.start(frames)?;
        self.finish(out)
    }
}
