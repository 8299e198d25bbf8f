//! The detect thread: gathers frames from every camera's ring into one
//! batch, runs ONE inference per batch, and hands results to the tracker in
//! each camera's frame order.
//!
//! Policies: `detection_skip_frames` frames pass through undetected (the
//! tracker predicts; they are never colour-converted or resized). For live
//! (realtime) cameras the newest frame wins: older queued frames are dropped
//! as superseded, and frames older than `max_frame_age_ms` as stale, both
//! counted. Files read at full speed lose nothing.
//!
//! A detector that overlaps (`detector.overlap`) gets the next batch while
//! the last one runs; the last one's frames are handed on as soon as its
//! faces are back, always before the next batch's (see `dispatch`).
//!
//! A camera with a detection region (`detect_roi`, see `region`) has only
//! that part of each frame copied out and detected; its faces come back in
//! full-frame coordinates. Faces outside `min_face_px`..`max_face_px` are
//! dropped here, before the tracker.
//!
//! Motion gating (`detection = "motion"`, see `motion`): a frame due for
//! detection is run only if something moves in it or the camera had faces
//! in its last `motion_hold_frames` detected frames (a face standing still,
//! a track the tracker may still find again); gated frames go to the
//! tracker undetected and are counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::motion::MotionGate;
use super::region::{merge_tiles, FaceSize, Parts, Rect, RegionSpec, TileSpec};
use super::{Detections, Detector};
use crate::clock::Clocks;
use crate::metrics::stall::StallWatch;
use crate::metrics::{inc, Stats};
use crate::pool::{FrameRef, I420};
use crate::ring::{Backoff, Consumer, Producer};
use crate::track::preview::Preview;

/// Most frames (detected or passed through) held between two inferences.
const MAX_PENDING: usize = 256;
pub(crate) use crate::limits::MAX_BATCH;

/// What the tracker receives. Detections travel inline (no Box): the ring's
/// slots are allocated once, so a large variant costs memory, not allocations.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ToTrack {
    /// A frame and its faces; `None` = not run through the detector.
    Frame { frame: FrameRef, dets: Option<Detections> },
    /// No more frames will come from this camera.
    CameraEnded(u8),
}

pub(crate) struct CameraInput {
    pub camera: u8,
    pub frames: Consumer<FrameRef>,
    pub skip_frames: u32,
    pub realtime: bool,
    pub max_age_ms: u64,
    counter: u64,
    ended: bool,
    /// Motion gating, when the camera asks for it, and for how many
    /// detected frames after the last face it stays open.
    motion: Option<MotionGate>,
    hold_frames: u32,
    /// Detected frames since the last one with a face.
    since_face: u32,
    /// The detection region and tiles, and what they came to at the last
    /// frame size.
    region: Option<RegionSpec>,
    tiles: TileSpec,
    resolved: Option<((u32, u32), Cut)>,
    face_size: FaceSize,
    /// NMS threshold for merging tiles' faces.
    merge_iou: f32,
}

/// A frame size's parts: the area detected (region or whole frame), the
/// tiles it is cut into (empty: the whole frame, uncopied) and their
/// overlap.
#[derive(Clone)]
struct Cut {
    area: Rect,
    parts: Parts,
    overlap: f32,
}

impl CameraInput {
    pub fn new(camera: u8, frames: Consumer<FrameRef>, skip_frames: u32, realtime: bool, max_age_ms: u64) -> Self {
        CameraInput {
            camera,
            frames,
            skip_frames,
            realtime,
            max_age_ms,
            counter: 0,
            ended: false,
            motion: None,
            hold_frames: 0,
            since_face: u32::MAX,
            region: None,
            tiles: TileSpec::Off,
            resolved: None,
            face_size: FaceSize::default(),
            merge_iou: 0.4,
        }
    }

    /// Detects only `region` of each frame (None: the whole frame), cut
    /// into `tiles`, keeps faces within `face_size`, and merges tiles'
    /// faces with NMS at `merge_iou`.
    pub(crate) fn with_parts(
        mut self,
        region: Option<RegionSpec>,
        tiles: TileSpec,
        face_size: FaceSize,
        merge_iou: f32,
    ) -> Self {
        self.region = region;
        self.tiles = tiles;
        self.face_size = face_size;
        self.merge_iou = merge_iou;
        self
    }

    /// Most images one frame of this camera adds to a batch.
    fn max_images(&self) -> usize {
        self.tiles.max_parts()
    }

    /// What of `frame` to detect. Resolved once per frame size (a camera
    /// may change size); the region is shown in the camera's preview.
    fn cut_of(&mut self, frame: &FrameRef, previews: &[Preview]) -> Cut {
        let size = (frame.meta().width, frame.meta().height);
        if let Some((_, cut)) = self.resolved.as_ref().filter(|(s, _)| *s == size) {
            return cut.clone();
        }
        let whole = Rect { x: 0, y: 0, w: size.0, h: size.1 };
        let area = match &self.region {
            None => whole,
            Some(spec) => spec.resolve(size.0, size.1).unwrap_or_else(|| {
                log::warn!(
                    "camera {}: detect_roi lies outside the {}x{} frame; detecting the whole frame",
                    self.camera,
                    size.0,
                    size.1
                );
                whole
            }),
        };
        if let Some(pv) = previews.get(self.camera as usize) {
            pv.set_region((area != whole).then_some([area.x, area.y, area.w, area.h]));
        }
        let input = (crate::board::DETECTOR_WIDTH, crate::board::DETECTOR_HEIGHT);
        let (mut parts, overlap) = self.tiles.cut(area, input, self.face_size.min, self.face_size.max);
        if parts.len() == 1 && parts[0] == whole {
            parts.clear();
        }
        if parts.len() > 1 {
            log::info!(
                "camera {}: {}x{} frames detected as {} tiles of {}x{} (overlap {overlap:.0} px)",
                self.camera,
                size.0,
                size.1,
                parts.len(),
                parts[0].w,
                parts[0].h
            );
        }
        let cut = Cut { area, parts, overlap };
        self.resolved = Some((size, cut.clone()));
        cut
    }

    /// Gates this camera's detection on motion (see the module docs).
    pub(crate) fn with_motion(mut self, gate: Option<MotionGate>, hold_frames: u32) -> Self {
        self.motion = gate;
        self.hold_frames = hold_frames;
        self
    }

    /// Whether a frame due for detection needs it: something moves, or a
    /// face was seen lately. The gate's mask goes to the camera's preview
    /// while someone watches it.
    fn needs_detection(&mut self, frame: &FrameRef, previews: &[Preview]) -> bool {
        let Some(gate) = self.motion.as_mut() else { return true };
        let m = frame.meta();
        let moving = gate.observe(frame.planes().y, m.width, m.height);
        if let Some(pv) = previews.get(self.camera as usize) {
            if pv.watchers.load(Ordering::Relaxed) > 0 {
                let (mask, grid) = gate.mask();
                pv.motion.store(mask, grid);
            }
        }
        moving || self.since_face < self.hold_frames
    }
}

pub(crate) struct DetectWorker {
    pub detector: Box<dyn Detector>,
    /// Regions and tiles copied out of their frames, one buffer per batch
    /// place, grown to the largest part once (see `region`).
    pub region_buffers: Vec<Vec<u8>>,
    pub inputs: Vec<CameraInput>,
    pub out: Producer<ToTrack>,
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub clocks: Arc<dyn Clocks>,
    pub stats: Arc<Stats>,
    /// Each camera's preview: the detection region and, while watched,
    /// what the motion gate saw move.
    pub previews: Arc<Vec<Preview>>,
    pub stop: Arc<AtomicBool>,
}

struct Pending {
    frame: FrameRef,
    detect: bool,
    /// What of the frame is detected (when `detect`).
    cut: Option<Cut>,
}

impl Pending {
    /// Images this frame adds to the batch.
    fn images(&self) -> usize {
        match (&self.cut, self.detect) {
            (_, false) => 0,
            (Some(c), true) => c.parts.len().max(1),
            (None, true) => 1,
        }
    }
}

/// Frames gathered for one batch (detected or passed through), in order.
type Batch = heapless::Vec<Pending, MAX_PENDING>;

/// The batch started and not yet finished.
struct Flight {
    frames: Batch,
    started: bool,
    /// The detect thread's time in `Detector::start` for it.
    start_time: Duration,
}

impl DetectWorker {
    pub fn run(mut self) {
        crate::board::pin_current_thread(crate::board::Role::Detect);
        let batch_size = self.batch_size.min(self.detector.max_batch()).clamp(1, MAX_BATCH);
        // A tiled frame goes into one inference whole, so a batch may hold
        // up to the detector's largest (pipeline sizes it for the tiles).
        let image_cap = self.detector.max_batch().clamp(1, MAX_BATCH);
        let mut pending: Batch = heapless::Vec::new();
        // The started batch whose faces are not back yet (see `dispatch`).
        let mut flight = Flight { frames: heapless::Vec::new(), started: false, start_time: Duration::ZERO };
        let mut results: Vec<Detections> = (0..image_cap).map(|_| Detections::new()).collect();
        let mut ended: heapless::Vec<u8, 256> = heapless::Vec::new();
        let mut rr = 0usize;
        let mut backoff = Backoff::default();
        let mut batch_started: Option<Duration> = None;
        let mut overload = super::overload::OverloadWatch::new(self.inputs.iter().map(|i| i.skip_frames));
        loop {
            // A batch whose run is over goes on at once, not when the next one is full.
            if flight.started && self.detector.ready() {
                self.complete(&mut flight, &mut results[..]);
            }
            let mut to_detect: usize = pending.iter().map(Pending::images).sum();
            let mut got_any = false;
            let n = self.inputs.len();
            for k in 0..n {
                let input = &mut self.inputs[(rr + k) % n];
                if input.ended
                    || to_detect >= batch_size
                    || to_detect + input.max_images() > image_cap
                    || pending.is_full()
                {
                    continue;
                }
                let Some(frame) = take(input, &self.clocks, &self.stats) else {
                    if input.frames.is_finished() {
                        input.ended = true;
                        let _ = ended.push(input.camera);
                    }
                    continue;
                };
                got_any = true;
                let mut detect = input.counter.is_multiple_of(input.skip_frames as u64 + 1);
                input.counter += 1;
                if detect && !input.needs_detection(&frame, &self.previews) {
                    detect = false;
                    inc(&self.stats.cameras[input.camera as usize].motion_gated);
                } else if !detect {
                    inc(&self.stats.cameras[input.camera as usize].skipped_frames);
                }
                let cut = if detect { Some(input.cut_of(&frame, &self.previews)) } else { None };
                let p = Pending { frame, detect, cut };
                to_detect += p.images();
                let _ = pending.push(p);
            }
            rr = rr.wrapping_add(1);
            let now = self.clocks.monotonic();
            overload.tick(now, &self.stats);
            if to_detect > 0 && batch_started.is_none() {
                batch_started = Some(now);
            }
            let all_ended = self.inputs.iter().all(|i| i.ended);
            let timed_out = batch_started.is_some_and(|t| now.saturating_sub(t) >= self.batch_timeout);
            let flush = !pending.is_empty()
                && (to_detect >= batch_size
                    || pending.is_full()
                    || timed_out
                    || all_ended
                    || (to_detect == 0 && !got_any));
            if flush {
                if self.dispatch(&mut pending, &mut flight, &mut results[..]) {
                    // Its frames lost meanwhile were start-up, not overload.
                    overload.restart(self.clocks.monotonic(), &self.stats);
                }
                batch_started = None;
                backoff.reset();
            }
            if flight.started && (all_ended || (!got_any && !flush) || self.stop.load(Ordering::Relaxed)) {
                // Nothing to gather meanwhile: wait for the batch's faces.
                self.complete(&mut flight, &mut results[..]);
            }
            if pending.is_empty() && !flight.started {
                for cam in ended.iter() {
                    let _ = self.out.push_wait(ToTrack::CameraEnded(*cam), &self.stop);
                }
                ended.clear();
                if all_ended {
                    break;
                }
            }
            if self.stop.load(Ordering::Relaxed) && pending.is_empty() && !flight.started {
                break;
            }
            if !got_any && !flush {
                backoff.snooze();
            } else if got_any {
                backoff.reset();
            }
        }
    }

    /// Starts the gathered batch's inference, then hands on the batch
    /// started before it (whose run overlapped this one's gathering), so
    /// a detector that overlaps always has the next batch queued behind
    /// the running one. Frames reach the tracker in each camera's order:
    /// the older batch always goes first. Returns whether the detector
    /// first ran its shapes at a new frame size (a known long wait: the
    /// stages behind it do not report it as a stall).
    fn dispatch(&mut self, pending: &mut Batch, flight: &mut Flight, results: &mut [Detections]) -> bool {
        if flight.started && self.detector.depth() < 2 {
            self.complete(flight, results);
        }
        if self.region_buffers.len() < MAX_BATCH {
            self.region_buffers.resize_with(MAX_BATCH, Vec::new);
        }
        let mut pics: heapless::Vec<I420<'_>, MAX_BATCH> = heapless::Vec::new();
        let mut buffers = self.region_buffers.iter_mut();
        for p in pending.iter().filter(|p| p.detect) {
            let whole = p.frame.planes();
            match p.cut.as_ref().filter(|c| !c.parts.is_empty()) {
                None => {
                    let _ = pics.push(whole);
                }
                Some(cut) => {
                    for part in cut.parts.iter() {
                        if let Some(buf) = buffers.next() {
                            let _ = pics.push(part.crop(&whole, buf));
                        }
                    }
                }
            }
        }
        let n = pics.len();
        if n == 0 {
            drop(pics);
            self.complete(flight, results);
            self.forward(pending, results, false);
            return false;
        }
        let new_size = pics.iter().find(|p| !self.detector.is_prepared(p.width, p.height)).map(|p| (p.width, p.height));
        let known_wait = new_size.map(|(w, h)| {
            log::info!(
                "detect: first frames at {w}x{h}: the detector runs its batch shapes at that size before them \
                 (seconds on an accelerator); waits behind it are not stalls, nor its lost frames overload"
            );
            self.stats.stalls.expect()
        });
        let t0 = self.clocks.monotonic();
        let started = self.detector.start(&pics);
        drop(known_wait);
        drop(pics);
        let start_time = self.clocks.monotonic() - t0;
        self.complete(flight, results);
        match started {
            Ok(()) => {
                std::mem::swap(&mut flight.frames, pending);
                flight.started = true;
                flight.start_time = start_time;
            }
            Err(e) => {
                log::error!("{e}; {n} frame(s) go to the tracker undetected");
                self.forward(pending, results, false);
            }
        }
        new_size.is_some()
    }

    /// Waits for the started batch's faces, if one is started, and hands
    /// its frames on.
    fn complete(&mut self, flight: &mut Flight, results: &mut [Detections]) {
        if !flight.started {
            return;
        }
        flight.started = false;
        let n: usize = flight.frames.iter().map(Pending::images).sum();
        let t0 = self.clocks.monotonic();
        let ok = match self.detector.finish(&mut results[..n]) {
            Ok(()) => true,
            Err(e) => {
                log::error!("{e}; {n} frame(s) go to the tracker undetected");
                false
            }
        };
        let st = &self.stats.stages;
        // The detect thread's own time in the detector (copying in,
        // letterboxing, waiting, decoding); the model's run apart, when the
        // detector knows it (with overlap, the two add to more than the wall).
        st.preprocess_infer.record_us((flight.start_time + (self.clocks.monotonic() - t0)).as_micros() as u64);
        if let Some(run) = self.detector.last_inference() {
            st.inference.record_us(run.as_micros() as u64);
        }
        inc(&st.batches);
        st.batched_frames.fetch_add(n as u64, Ordering::Relaxed);
        st.last_batch.store(n as u64, Ordering::Relaxed);
        self.forward(&mut flight.frames, results, ok);
    }

    /// Hands a batch's frames to the tracker in order, with their faces
    /// (`results`, in the order of the batch's detected frames) when `ok`.
    fn forward(&mut self, frames: &mut Batch, results: &mut [Detections], ok: bool) {
        let now_ns = self.clocks.monotonic().as_nanos() as u64;
        let mut ri = 0;
        for p in frames.iter() {
            let cam = &self.stats.cameras[p.frame.meta().camera as usize];
            let dets = if p.detect {
                let images = p.images();
                let parts = &results[ri..ri + images];
                ri += images;
                cam.capture_to_detect.record_us(now_ns.saturating_sub(p.frame.meta().captured_mono_ns) / 1000);
                if ok {
                    let cam_i = p.frame.meta().camera;
                    let input = self.inputs.iter_mut().find(|i| i.camera == cam_i);
                    let merge_iou = input.as_ref().map_or(0.4, |i| i.merge_iou);
                    let d = gather(p.cut.as_ref(), parts, merge_iou);
                    let mut d = d;
                    if let Some(size) = input.as_ref().map(|i| i.face_size).filter(|s| *s != FaceSize::default()) {
                        let before = d.len();
                        d.retain(|f| size.admits(f));
                        cam.faces_out_of_size.fetch_add((before - d.len()) as u64, Ordering::Relaxed);
                    }
                    inc(&cam.detected_frames);
                    cam.faces.fetch_add(d.len() as u64, Ordering::Relaxed);
                    if let Some(input) = input {
                        input.since_face = if d.is_empty() { input.since_face.saturating_add(1) } else { 0 };
                    }
                    Some(d)
                } else {
                    None
                }
            } else {
                None
            };
            let msg = ToTrack::Frame { frame: p.frame.clone(), dets };
            let mut watch = StallWatch::new("detect", None, "room in the ring to the track thread");
            let stats = &self.stats;
            let pushed = self.out.push_wait_with(msg, &self.stop, || watch.waiting(stats));
            watch.done(&self.stats);
            if pushed.is_err() {
                break;
            }
        }
        frames.clear();
    }
}

/// A frame's faces in frame pixels from its parts' results: moved back
/// from each part; with tiles, faces cut by an inner tile edge that the
/// neighbour holds whole are dropped and the rest merged.
fn gather(cut: Option<&Cut>, parts: &[Detections], merge_iou: f32) -> Detections {
    let Some(cut) = cut.filter(|c| !c.parts.is_empty()) else { return parts[0].clone() };
    let tiled = cut.parts.len() > 1;
    let mut d = Detections::new();
    for (rect, found) in cut.parts.iter().zip(parts) {
        for f in found.iter() {
            let mut f = *f;
            rect.to_frame(&mut f);
            let whole_elsewhere = f.bbox.width() <= cut.overlap && f.bbox.height() <= cut.overlap;
            if tiled && whole_elsewhere && rect.cuts(&cut.area, &f, 2.0) {
                continue;
            }
            if d.push(f).is_err() {
                // Full: make room by merging what is there.
                merge_tiles(&mut d, merge_iou);
                let _ = d.push(f);
            }
        }
    }
    if tiled {
        merge_tiles(&mut d, merge_iou);
    }
    d
}

/// Next frame of a camera under its policy.
fn take(input: &mut CameraInput, clocks: &Arc<dyn Clocks>, stats: &Stats) -> Option<FrameRef> {
    let cam = &stats.cameras[input.camera as usize];
    if !input.realtime {
        return input.frames.try_pop();
    }
    let mut newest = input.frames.try_pop()?;
    while let Some(f) = input.frames.try_pop() {
        inc(&cam.dropped_superseded);
        input.counter += 1; // the skip cadence follows the camera's frames, not the detector's pace
        newest = f;
    }
    let age_ms = clocks.monotonic().as_nanos().saturating_sub(newest.meta().captured_mono_ns as u128) / 1_000_000;
    if age_ms as u64 > input.max_age_ms {
        inc(&cam.dropped_stale);
        return None;
    }
    Some(newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::RealClocks;
    use crate::detect::DetectError;
    use crate::pool::{FrameMeta, FramePool};
    use std::sync::Mutex;

    /// Records each call's frames by the tag written in their first luma
    /// byte; with `depth` 2 it holds started batches like an overlapping
    /// detector and records the most it held at once.
    struct CountingDetector {
        calls: Arc<Mutex<Vec<Vec<u8>>>>,
        max: usize,
        depth: usize,
        started: std::collections::VecDeque<usize>,
        most_started: Arc<Mutex<usize>>,
        /// Frames are new to it until its first start (a warm-up there),
        /// which records whether a known wait was announced around it.
        cold: bool,
        stats: Arc<Stats>,
        known_wait_at_start: Arc<Mutex<Vec<bool>>>,
    }

    impl Detector for CountingDetector {
        fn max_batch(&self) -> usize {
            self.max
        }
        fn depth(&self) -> usize {
            self.depth
        }
        /// Overlapping: a run lasts until the worker waits for it.
        fn ready(&mut self) -> bool {
            self.depth < 2
        }
        fn is_prepared(&self, _width: u32, _height: u32) -> bool {
            !self.cold
        }
        fn start(&mut self, frames: &[I420<'_>]) -> Result<(), DetectError> {
            assert!(self.started.len() < self.depth, "started past the detector's depth");
            self.known_wait_at_start.lock().unwrap().push(self.stats.stalls.expecting());
            self.cold = false;
            self.calls.lock().unwrap().push(frames.iter().map(|f| f.y[0]).collect());
            self.started.push_back(frames.len());
            let mut most = self.most_started.lock().unwrap();
            *most = (*most).max(self.started.len());
            Ok(())
        }
        fn finish(&mut self, out: &mut [Detections]) -> Result<(), DetectError> {
            let n = self.started.pop_front().expect("finish without start");
            assert_eq!(out.len(), n, "one result per started frame");
            for o in out.iter_mut() {
                o.clear();
            }
            Ok(())
        }
    }

    fn frame(pool: &FramePool, camera: u8, seq: u64, clocks: &RealClocks) -> FrameRef {
        let mut f = pool.acquire().unwrap();
        f.buffer_mut()[0] = camera * 50 + seq as u8;
        *f.meta_mut() = FrameMeta {
            camera,
            seq,
            width: 4,
            height: 4,
            captured_mono_ns: clocks.monotonic().as_nanos() as u64,
            ..Default::default()
        };
        f.freeze()
    }

    /// Tags of each inference call; per camera, (seq, detected) in arrival
    /// order; the most batches started at once.
    type Outcome = (Vec<Vec<u8>>, Vec<Vec<(u64, bool)>>, Arc<Stats>, usize);

    fn run(cams: &[(u64, u32, bool)], batch: usize) -> Outcome {
        run_at_depth(cams, batch, 1)
    }

    fn run_at_depth(cams: &[(u64, u32, bool)], batch: usize, depth: usize) -> Outcome {
        run_with(cams, batch, depth, false).0
    }

    /// Runs a worker over pre-filled rings of (frames, skip, realtime)
    /// cameras; `cold`: the detector warms up at its first start. Also
    /// gives whether each start ran inside a known wait.
    fn run_with(cams: &[(u64, u32, bool)], batch: usize, depth: usize, cold: bool) -> (Outcome, Vec<bool>) {
        let pool = FramePool::new(64, 64);
        let clocks = RealClocks::default();
        let stats = Stats::new(cams.len());
        let mut inputs = Vec::new();
        for (i, &(frames, skip, realtime)) in cams.iter().enumerate() {
            let (mut p, c) = crate::ring::channel(16);
            for s in 0..frames {
                p.try_push(frame(&pool, i as u8, s, &clocks)).unwrap();
            }
            drop(p); // the camera is done
            inputs.push(CameraInput::new(i as u8, c, skip, realtime, 60_000));
        }
        let calls = Arc::new(Mutex::new(Vec::new()));
        let most_started = Arc::new(Mutex::new(0));
        let (out, mut from) = crate::ring::channel(64);
        let detector = CountingDetector {
            calls: calls.clone(),
            max: batch,
            depth,
            started: Default::default(),
            most_started: most_started.clone(),
            cold,
            stats: stats.clone(),
            known_wait_at_start: Arc::new(Mutex::new(Vec::new())),
        };
        let known_waits = detector.known_wait_at_start.clone();
        let w = DetectWorker {
            region_buffers: Vec::new(),
            detector: Box::new(detector),
            inputs,
            out,
            batch_size: batch,
            batch_timeout: Duration::from_millis(5),
            clocks: Arc::new(clocks),
            stats: stats.clone(),
            previews: Arc::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
        };
        std::thread::spawn(move || w.run()).join().unwrap();
        let mut seen = vec![Vec::new(); cams.len()];
        while let Some(m) = from.try_pop() {
            if let ToTrack::Frame { frame, dets } = m {
                seen[frame.meta().camera as usize].push((frame.meta().seq, dets.is_some()));
            }
        }
        let calls = calls.lock().unwrap().clone();
        let most = *most_started.lock().unwrap();
        let known_waits = known_waits.lock().unwrap().clone();
        ((calls, seen, stats, most), known_waits)
    }

    #[test]
    fn the_first_start_at_a_new_frame_size_is_a_known_wait_and_no_other() {
        let ((calls, _, stats, _), known) = run_with(&[(4, 0, false)], 2, 1, true);
        assert_eq!(calls.len(), 2);
        assert_eq!(known, vec![true, false], "the warm-up's start only");
        assert!(!stats.stalls.expecting(), "the known wait ended with the start");
        let (_, known) = run_with(&[(4, 0, false)], 2, 1, false);
        assert_eq!(known, vec![false, false]);
    }

    #[test]
    fn one_inference_per_batch_across_cameras_in_camera_order() {
        let (calls, seen, stats, _) = run(&[(4, 0, false), (4, 0, false), (4, 0, false)], 3);
        assert_eq!(calls.len(), 4, "12 frames in batches of 3: {calls:?}");
        for c in &calls {
            let mut cams: Vec<u8> = c.iter().map(|t| t / 50).collect();
            cams.sort();
            assert_eq!(cams, vec![0, 1, 2], "each batch takes one frame of every camera");
        }
        for s in &seen {
            assert_eq!(s.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1, 2, 3], "per-camera order kept");
        }
        assert_eq!(get(&stats.stages.batches), 4);
    }

    #[test]
    fn skipped_frames_never_reach_the_detector_but_reach_the_tracker() {
        let (calls, seen, stats, _) = run(&[(7, 2, false)], 4);
        let detected: Vec<u8> = calls.concat();
        assert_eq!(detected, vec![0, 3, 6], "detect one, skip two");
        assert_eq!(seen[0].iter().map(|x| x.0).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
        assert_eq!(seen[0].iter().filter(|x| x.1).count(), 3);
        assert_eq!(get(&stats.cameras[0].skipped_frames), 4);
    }

    #[test]
    fn live_camera_newest_frame_wins_and_drops_are_counted() {
        let (calls, seen, stats, _) = run(&[(5, 0, true)], 4);
        assert_eq!(calls.concat(), vec![4], "only the newest of 5 queued frames is detected");
        assert_eq!(seen[0], vec![(4, true)]);
        assert_eq!(get(&stats.cameras[0].dropped_superseded), 4);
    }

    #[test]
    fn an_overlapping_detector_gets_the_next_batch_before_the_last_finishes_and_order_holds() {
        let (calls, seen, stats, most) = run_at_depth(&[(9, 0, false), (9, 1, false)], 4, 2);
        assert_eq!(most, 2, "a second batch was started while the first was out");
        let detected: usize = calls.iter().map(|c| c.len()).sum();
        assert_eq!(detected, 9 + 5, "every frame of camera 0, every other of camera 1");
        for s in &seen {
            assert_eq!(s.iter().map(|x| x.0).collect::<Vec<_>>(), (0..9).collect::<Vec<_>>(), "per-camera order kept");
        }
        assert_eq!(seen[1].iter().filter(|x| x.1).count(), 5);
        assert_eq!(get(&stats.stages.batched_frames), 14);
    }

    fn get(a: &std::sync::atomic::AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}
