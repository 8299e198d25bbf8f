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
//! Motion gating (`detection = "motion"`, see `motion`): a frame due for
//! detection is run only if something moves in it or the camera had faces
//! in its last `motion_hold_frames` detected frames (a face standing still,
//! a track the tracker may still find again); gated frames go to the
//! tracker undetected and are counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::motion::MotionGate;
use super::{Detections, Detector};
use crate::clock::Clocks;
use crate::monitor::stall::StallWatch;
use crate::monitor::{inc, Stats};
use crate::pool::{FrameRef, I420};
use crate::ring::{Backoff, Consumer, Producer};

/// Most frames (detected or passed through) held between two inferences.
const MAX_PENDING: usize = 256;
pub const MAX_BATCH: usize = 64;

/// What the tracker receives. Detections travel inline (no Box): the ring's
/// slots are allocated once, so a large variant costs memory, not allocations.
#[allow(clippy::large_enum_variant)]
pub enum ToTrack {
    /// A frame and its faces; `None` = not run through the detector.
    Frame { frame: FrameRef, dets: Option<Detections> },
    /// No more frames will come from this camera.
    CameraEnded(u8),
}

pub struct CameraInput {
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
        }
    }

    /// Gates this camera's detection on motion (see the module docs).
    pub fn with_motion(mut self, gate: Option<MotionGate>, hold_frames: u32) -> Self {
        self.motion = gate;
        self.hold_frames = hold_frames;
        self
    }

    /// Whether a frame due for detection needs it: something moves, or a
    /// face was seen lately. The gate's mask goes to the camera's preview
    /// while someone watches it.
    fn needs_detection(&mut self, frame: &FrameRef, stats: &Stats) -> bool {
        let Some(gate) = self.motion.as_mut() else { return true };
        let m = frame.meta();
        let moving = gate.observe(frame.planes().y, m.width, m.height);
        if let Some(pv) = stats.previews.get(self.camera as usize) {
            if pv.watchers.load(Ordering::Relaxed) > 0 {
                let (mask, grid) = gate.mask();
                pv.motion.store(mask, grid);
            }
        }
        moving || self.since_face < self.hold_frames
    }
}

pub struct DetectWorker {
    pub detector: Box<dyn Detector>,
    pub inputs: Vec<CameraInput>,
    pub out: Producer<ToTrack>,
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub clocks: Arc<dyn Clocks>,
    pub stats: Arc<Stats>,
    pub stop: Arc<AtomicBool>,
}

struct Pending {
    frame: FrameRef,
    detect: bool,
}

impl DetectWorker {
    pub fn run(mut self) {
        crate::board::pin_current_thread(crate::board::Role::Detect);
        let batch_size = self.batch_size.min(self.detector.max_batch()).clamp(1, MAX_BATCH);
        let mut pending: heapless::Vec<Pending, MAX_PENDING> = heapless::Vec::new();
        let mut results: Vec<Detections> = (0..batch_size).map(|_| Detections::new()).collect();
        let mut ended: heapless::Vec<u8, 256> = heapless::Vec::new();
        let mut rr = 0usize;
        let mut backoff = Backoff::default();
        let mut batch_started: Option<Duration> = None;
        loop {
            let mut to_detect = pending.iter().filter(|p| p.detect).count();
            let mut got_any = false;
            let n = self.inputs.len();
            for k in 0..n {
                let input = &mut self.inputs[(rr + k) % n];
                if input.ended || to_detect >= batch_size || pending.is_full() {
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
                if detect && !input.needs_detection(&frame, &self.stats) {
                    detect = false;
                    inc(&self.stats.cameras[input.camera as usize].motion_gated);
                } else if detect {
                    to_detect += 1;
                } else {
                    inc(&self.stats.cameras[input.camera as usize].skipped_frames);
                }
                let _ = pending.push(Pending { frame, detect });
            }
            rr = rr.wrapping_add(1);
            let now = self.clocks.monotonic();
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
                self.infer_and_forward(&mut pending, &mut results[..]);
                batch_started = None;
                backoff.reset();
            }
            if pending.is_empty() {
                for cam in ended.iter() {
                    let _ = self.out.push_wait(ToTrack::CameraEnded(*cam), &self.stop);
                }
                ended.clear();
                if all_ended {
                    break;
                }
            }
            if self.stop.load(Ordering::Relaxed) && pending.is_empty() {
                break;
            }
            if !got_any && !flush {
                backoff.snooze();
            } else if got_any {
                backoff.reset();
            }
        }
    }

    fn infer_and_forward(&mut self, pending: &mut heapless::Vec<Pending, MAX_PENDING>, results: &mut [Detections]) {
        let mut pics: heapless::Vec<I420<'_>, MAX_BATCH> = heapless::Vec::new();
        for p in pending.iter().filter(|p| p.detect) {
            let _ = pics.push(p.frame.planes());
        }
        let n = pics.len();
        let t0 = self.clocks.monotonic();
        let ok = if n > 0 {
            match self.detector.detect_batch(&pics, &mut results[..n]) {
                Ok(()) => true,
                Err(e) => {
                    log::error!("{e}; {n} frame(s) go to the tracker undetected");
                    false
                }
            }
        } else {
            true
        };
        drop(pics);
        if n > 0 {
            let dt = self.clocks.monotonic() - t0;
            self.stats.stages.preprocess_infer.record_us(dt.as_micros() as u64);
            inc(&self.stats.stages.batches);
            self.stats.stages.batched_frames.fetch_add(n as u64, Ordering::Relaxed);
            self.stats.stages.last_batch.store(n as u64, Ordering::Relaxed);
        }
        let now_ns = self.clocks.monotonic().as_nanos() as u64;
        let mut ri = 0;
        for p in pending.iter() {
            let cam = &self.stats.cameras[p.frame.meta().camera as usize];
            let dets = if p.detect {
                let d = results[ri].clone();
                ri += 1;
                cam.capture_to_detect.record_us(now_ns.saturating_sub(p.frame.meta().captured_mono_ns) / 1000);
                if ok {
                    inc(&cam.detected_frames);
                    cam.faces.fetch_add(d.len() as u64, Ordering::Relaxed);
                    let cam_i = p.frame.meta().camera;
                    if let Some(input) = self.inputs.iter_mut().find(|i| i.camera == cam_i) {
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
        pending.clear();
    }
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

    /// Records each call's frames by the tag written in their first luma byte.
    struct CountingDetector {
        calls: Arc<Mutex<Vec<Vec<u8>>>>,
        max: usize,
    }

    impl Detector for CountingDetector {
        fn max_batch(&self) -> usize {
            self.max
        }
        fn detect_batch(&mut self, frames: &[I420<'_>], out: &mut [Detections]) -> Result<(), DetectError> {
            self.calls.lock().unwrap().push(frames.iter().map(|f| f.y[0]).collect());
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

    /// Tags of each inference call; per camera, (seq, detected) in arrival order.
    type Outcome = (Vec<Vec<u8>>, Vec<Vec<(u64, bool)>>, Arc<Stats>);

    /// Runs a worker over pre-filled rings of (frames, skip, realtime) cameras.
    fn run(cams: &[(u64, u32, bool)], batch: usize) -> Outcome {
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
        let (out, mut from) = crate::ring::channel(64);
        let w = DetectWorker {
            detector: Box::new(CountingDetector { calls: calls.clone(), max: batch }),
            inputs,
            out,
            batch_size: batch,
            batch_timeout: Duration::from_millis(5),
            clocks: Arc::new(clocks),
            stats: stats.clone(),
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
        (calls, seen, stats)
    }

    #[test]
    fn one_inference_per_batch_across_cameras_in_camera_order() {
        let (calls, seen, stats) = run(&[(4, 0, false), (4, 0, false), (4, 0, false)], 3);
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
        let (calls, seen, stats) = run(&[(7, 2, false)], 4);
        let detected: Vec<u8> = calls.concat();
        assert_eq!(detected, vec![0, 3, 6], "detect one, skip two");
        assert_eq!(seen[0].iter().map(|x| x.0).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
        assert_eq!(seen[0].iter().filter(|x| x.1).count(), 3);
        assert_eq!(get(&stats.cameras[0].skipped_frames), 4);
    }

    #[test]
    fn live_camera_newest_frame_wins_and_drops_are_counted() {
        let (calls, seen, stats) = run(&[(5, 0, true)], 4);
        assert_eq!(calls.concat(), vec![4], "only the newest of 5 queued frames is detected");
        assert_eq!(seen[0], vec![(4, true)]);
        assert_eq!(get(&stats.cameras[0].dropped_superseded), 4);
    }

    fn get(a: &std::sync::atomic::AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}
