//! The landmarks thread and the track thread's end of it.
//!
//! The track thread sends candidate best faces ([`LandmarkRequest`]) through
//! a ring of 3x the batch size; the landmarks thread takes up to a batch of
//! them (from every camera), waiting at most the board's fill timeout for
//! a partial batch (or not at all when the track thread is waiting for
//! results: the `flush` flag), runs one mesh and one iris inference, and
//! sends each face back ([`LandmarkResult`]) in request order through a
//! second ring. Requests hold their frame: the client caps the frames in
//! flight at `board::LANDMARK_FRAMES` and, past it or with a full queue,
//! says no, and the track thread scores that face from the detector's
//! keypoints (counted as a fallback).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::LandmarkModel;
use super::{analyze, KeptRegion, LandmarkRequest, LandmarkResult, Points, POINTS};
use crate::board;
use crate::detect::Detection;
use crate::metrics::Stats;
use crate::pool::FrameRef;
use crate::ring::{self, Backoff, Consumer, Producer};

/// Requests the ring holds per batch slot.
pub(crate) const QUEUE_BATCHES: usize = 3;

pub struct LandmarkWorker {
    pub input: Consumer<LandmarkRequest>,
    pub out: Producer<LandmarkResult>,
    pub model: LandmarkModel,
    pub stats: Arc<Stats>,
    pub batch_timeout: Duration,
    pub flush: Arc<AtomicBool>,
}

/// Whether the stage reads irises (gaze).
impl LandmarkClient {
    pub(crate) fn has_iris(&self) -> bool {
        self.iris
    }
}

/// Both rings and the worker, built together.
pub fn stage(
    model: LandmarkModel,
    stats: Arc<Stats>,
    batch_timeout: Duration,
    max_frames: usize,
) -> (LandmarkWorker, LandmarkClient) {
    let batch = model.max_batch();
    let iris = model.has_iris();
    let (req_tx, req_rx) = ring::channel(QUEUE_BATCHES * batch);
    // Results: everything that can be in flight, so the worker never waits
    // on a track thread that is itself waiting for a result.
    let (res_tx, res_rx) = ring::channel((QUEUE_BATCHES + 1) * batch);
    let flush = Arc::new(AtomicBool::new(false));
    stats.stages.landmark.enabled.store(true, Ordering::Relaxed);
    stats.stages.landmark.queue_capacity.store((QUEUE_BATCHES * batch) as u64, Ordering::Relaxed);
    let worker =
        LandmarkWorker { input: req_rx, out: res_tx, model, stats: stats.clone(), batch_timeout, flush: flush.clone() };
    let client = LandmarkClient {
        iris,
        requests: req_tx,
        results: res_rx,
        flush,
        frames: heapless::Deque::new(),
        max_frames: max_frames.min(MAX_FRAMES),
        stats,
    };
    (worker, client)
}

/// The stage the config asks for: None when `landmarks.enabled` is `off`,
/// or `auto` and the mesh model is missing (one WARN: faces are then scored
/// from the detector's keypoints). A missing iris model leaves gaze out.
pub(crate) fn from_config(
    cfg: &crate::config::Config,
    stats: Arc<Stats>,
) -> Result<Option<(LandmarkWorker, LandmarkClient)>, crate::detect::DetectError> {
    use crate::config::LandmarksMode;
    let lc = &cfg.landmarks;
    if lc.enabled == LandmarksMode::Off {
        return Ok(None);
    }
    let mesh = lc.mesh_path();
    if !mesh.exists() {
        if lc.enabled == LandmarksMode::On {
            return Err(crate::detect::DetectError::load(format!(
                "landmarks.model {} does not exist (landmarks.enabled = \"on\"): run scripts/setup.sh",
                mesh.display()
            )));
        }
        log::warn!(
            "landmarks: {} not found (run scripts/setup.sh); faces are scored from the detector's keypoints",
            mesh.display()
        );
        return Ok(None);
    }
    let iris = lc.iris_path();
    let iris = if iris.exists() {
        Some(iris)
    } else {
        log::warn!("landmarks: {} not found; events carry no gaze", iris.display());
        None
    };
    let model = LandmarkModel::load(
        &cfg.detector.runtime,
        &mesh,
        iris.as_deref(),
        &lc.providers(),
        board::LANDMARK_BATCH,
        board::PAD_BATCHES,
    )?;
    log::info!(
        "landmarks: Face Mesh{} on candidate best faces, batches of up to {} faces",
        if iris.is_some() { " + Iris" } else { "" },
        board::LANDMARK_BATCH
    );
    Ok(Some(stage(model, stats, Duration::from_millis(board::LANDMARK_BATCH_TIMEOUT_MS), board::LANDMARK_FRAMES)))
}

impl LandmarkWorker {
    pub fn run(self) {
        board::pin_current_thread(board::Role::Landmarks);
        let LandmarkWorker { mut input, mut out, mut model, stats, batch_timeout, flush } = self;
        let max = model.max_batch();
        let mut batch: Vec<LandmarkRequest> = Vec::with_capacity(max);
        let mut points: Vec<Points> = vec![[[0.0; 3]; POINTS]; max];
        let mut presence = vec![0.0f32; max];
        let mut backoff = Backoff::default();
        let never = AtomicBool::new(false);
        let st = &stats.stages.landmark;
        let mut first_at: Option<Instant> = None;
        loop {
            while batch.len() < max {
                match input.try_pop() {
                    Some(r) => {
                        first_at.get_or_insert_with(Instant::now);
                        batch.push(r);
                    }
                    None => break,
                }
            }
            let finished = input.is_finished() && input.is_empty();
            let due = batch.len() == max
                || finished
                || flush.load(Ordering::Relaxed)
                || first_at.is_some_and(|t| t.elapsed() >= batch_timeout);
            if batch.is_empty() {
                if finished {
                    break;
                }
                backoff.snooze();
                continue;
            }
            if !due {
                backoff.snooze();
                continue;
            }
            backoff.reset();
            first_at = None;
            let n = batch.len();
            let t0 = Instant::now();
            for (i, r) in batch.iter().enumerate() {
                match &r.kept {
                    Some(k) => model.set_face(i, &r.frame.planes(), &k.to_region(&r.det)),
                    None => model.set_face(i, &r.frame.planes(), &r.det),
                }
            }
            let ok = match model.run(n, |i| batch[i].frame.planes(), |i| batch[i].iris, &mut points, &mut presence) {
                Ok(eyes) => {
                    st.iris_faces.fetch_add(eyes as u64, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    log::error!("landmarks: inference over {n} faces failed: {e}; they are scored from the detector's keypoints");
                    false
                }
            };
            let with_iris = model.has_iris();
            stats.stages.landmarks.record_us(t0.elapsed().as_micros() as u64);
            st.batches.fetch_add(1, Ordering::Relaxed);
            st.faces.fetch_add(n as u64, Ordering::Relaxed);
            for (i, r) in batch.drain(..).enumerate() {
                if let (Some(k), true) = (&r.kept, ok) {
                    for p in points[i].iter_mut() {
                        *p = k.to_frame(*p);
                    }
                }
                let geometry =
                    if ok { analyze(&points[i], presence[i], with_iris && r.iris) } else { Default::default() };
                let res = LandmarkResult {
                    frame: r.frame,
                    camera: r.camera,
                    track_id: r.track_id,
                    part: r.part,
                    det: r.det,
                    kept: r.kept,
                    iris: r.iris,
                    points: ok.then(|| points[i]),
                    geometry,
                };
                // The track thread drains results in every loop and while
                // it waits for them: this wait is short.
                let _ = out.push_wait(res, &never);
            }
        }
    }
}

/// Most frames the client tracks in flight (the board's value is capped here).
pub(crate) const MAX_FRAMES: usize = 64;

/// The track thread's end of the stage.
pub struct LandmarkClient {
    requests: Producer<LandmarkRequest>,
    results: Consumer<LandmarkResult>,
    flush: Arc<AtomicBool>,
    /// Frames with requests in flight, oldest first: (camera, frame
    /// sequence number, requests outstanding). Results come back in
    /// request order, so the front is the one they drain.
    frames: heapless::Deque<(u8, u64, u32), MAX_FRAMES>,
    max_frames: usize,
    stats: Arc<Stats>,
    iris: bool,
}

impl LandmarkClient {
    /// Asks for landmarks on one face; false (counted as a fallback) when
    /// the stage holds its most frames or its queue is full.
    pub fn request(&mut self, frame: &FrameRef, track_id: u32, part: u32, det: &Detection) -> bool {
        let m = frame.meta();
        let key = (m.camera, m.seq);
        let same_frame = self.frames.back().is_some_and(|&(c, s, _)| (c, s) == key);
        if !same_frame && self.frames.len() >= self.max_frames {
            crate::metrics::inc(&self.stats.stages.landmark.fallback);
            return false;
        }
        let req = LandmarkRequest {
            frame: frame.clone(),
            camera: m.camera,
            track_id,
            part,
            det: *det,
            kept: None,
            iris: false,
        };
        if self.requests.try_push(req).is_err() {
            crate::metrics::inc(&self.stats.stages.landmark.fallback);
            return false;
        }
        if same_frame {
            if let Some(b) = self.frames.back_mut() {
                b.2 += 1;
            }
        } else {
            let _ = self.frames.push_back((key.0, key.1, 1));
        }
        self.stats.stages.landmark.queued.store(self.requests.len() as u64, Ordering::Relaxed);
        true
    }

    /// Asks for landmarks on a kept best face (its keep-store crop `crop`
    /// at `region` of its frame): it holds no pool frame, so only a full
    /// queue refuses it (false).
    pub(crate) fn request_kept(
        &mut self,
        crop: &FrameRef,
        region: KeptRegion,
        track_id: u32,
        part: u32,
        det: &Detection,
        iris: bool,
    ) -> bool {
        let req = LandmarkRequest {
            frame: crop.clone(),
            camera: crop.meta().camera,
            track_id,
            part,
            det: *det,
            kept: Some(region),
            iris,
        };
        self.requests.try_push(req).is_ok()
    }

    /// The next result, if one is ready.
    pub(crate) fn poll(&mut self) -> Option<LandmarkResult> {
        let r = self.results.try_pop()?;
        if r.kept.is_some() {
            // Kept faces' requests hold no pool frame (not in `frames`).
            return Some(r);
        }
        if let Some(front) = self.frames.front_mut() {
            front.2 -= 1;
            if front.2 == 0 {
                self.frames.pop_front();
            }
        }
        Some(r)
    }

    /// Requests waiting in the queue.
    pub fn queued(&self) -> usize {
        self.requests.len()
    }

    /// While the track thread waits for results: the worker runs what it
    /// has without waiting to fill a batch.
    pub(crate) fn set_flush(&self, on: bool) {
        self.flush.store(on, Ordering::Relaxed);
    }
}
