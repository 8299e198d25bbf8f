//! Live counters and per-stage timers, shared by all threads through
//! atomics: recording never takes a lock or allocates. Every stage writes
//! its own figures here; the monitor (HTTP, Prometheus, panel) reads them.
//! Ground floor: it depends on no stage. `stall` watches waits,
//! `face_hist` keeps last-hour face sizes and qualities per camera.

pub mod face_hist;
pub mod stall;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::ring::RingStats;

/// Latency histogram in microseconds with log-linear buckets: every power
/// of two is split into [`SUB_BUCKETS`] equal sub-buckets (values under
/// `SUB_BUCKETS` us are exact), from 1 us to 2^26 us (~67 s; larger values
/// land in the last bucket). A bucket is at most 1/16 of its value wide, and
/// percentiles interpolate inside it, so p50/p95/p99 are within a few
/// percent of the exact ones (tested). Recording is three relaxed atomic
/// adds: no lock, no allocation.
pub struct Histogram {
    buckets: [AtomicU64; HIST_BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
    last_us: AtomicU64,
}

/// Sub-buckets per power of two.
pub(crate) const SUB_BUCKETS: usize = 16;
const SUB_BITS: u32 = 4;
/// Powers of two covered: values up to 2^26 us.
const TOP_EXP: u32 = 26;
const HIST_BUCKETS: usize = SUB_BUCKETS + (TOP_EXP - SUB_BITS) as usize * SUB_BUCKETS;

/// Bucket of a value.
fn bucket_of(us: u64) -> usize {
    if us < SUB_BUCKETS as u64 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros(); // floor(log2), >= SUB_BITS
    if e >= TOP_EXP {
        return HIST_BUCKETS - 1;
    }
    let m = ((us >> (e - SUB_BITS)) as usize) & (SUB_BUCKETS - 1);
    SUB_BUCKETS + (e - SUB_BITS) as usize * SUB_BUCKETS + m
}

/// [low, high) of a bucket in us.
fn bucket_range(i: usize) -> (u64, u64) {
    if i < SUB_BUCKETS {
        return (i as u64, i as u64 + 1);
    }
    let e = SUB_BITS + ((i - SUB_BUCKETS) / SUB_BUCKETS) as u32;
    let m = ((i - SUB_BUCKETS) % SUB_BUCKETS) as u64;
    let width = 1u64 << (e - SUB_BITS);
    let lo = (SUB_BUCKETS as u64 + m) * width;
    (lo, lo + width)
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record_us(&self, us: u64) {
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.last_us.store(us, Ordering::Relaxed);
    }
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    pub fn mean_us(&self) -> f64 {
        let n = self.count();
        if n == 0 {
            0.0
        } else {
            self.sum_us.load(Ordering::Relaxed) as f64 / n as f64
        }
    }
    pub(crate) fn last_us(&self) -> u64 {
        self.last_us.load(Ordering::Relaxed)
    }
    /// (upper bound in us, count) per power of two (1 us .. 2^26 us), the
    /// sub-buckets added up: Prometheus exposition keeps 26 `le` lines.
    pub fn buckets(&self) -> [(u64, u64); 26] {
        let mut out: [(u64, u64); 26] = std::array::from_fn(|i| (1u64 << (i + 1), 0));
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            if n > 0 {
                let (lo, _) = bucket_range(i);
                let k = (64 - lo.max(1).leading_zeros() as usize - 1).min(25);
                out[k].1 += n;
            }
        }
        out
    }
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Ordering::Relaxed)
    }
    /// Quantile `q` (0..=1) in us, interpolated inside its bucket.
    pub fn quantile_us(&self, q: f64) -> u64 {
        quantile_of(&[self], q)
    }
}

/// Quantile `q` over several histograms together (e.g. every camera's).
pub fn quantile_of(hists: &[&Histogram], q: f64) -> u64 {
    let n: u64 = hists.iter().map(|h| h.count()).sum();
    if n == 0 {
        return 0;
    }
    let target = ((n as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0);
    let mut seen = 0u64;
    for i in 0..HIST_BUCKETS {
        let c: u64 = hists.iter().map(|h| h.buckets[i].load(Ordering::Relaxed)).sum();
        if c == 0 {
            continue;
        }
        if (seen + c) as f64 >= target {
            let (lo, hi) = bucket_range(i);
            // Values spread evenly over the bucket: the target's place in it.
            let pos = (target - seen as f64 - 0.5) / c as f64;
            return lo + ((hi - lo) as f64 * pos.clamp(0.0, 1.0)) as u64;
        }
        seen += c;
    }
    bucket_range(HIST_BUCKETS - 1).1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CameraState {
    Connecting = 0,
    Streaming = 1,
    Ended = 2,
    Failed = 3,
    /// Waiting to reconnect after a drop, a stall or a refused connection.
    Backoff = 4,
    /// Streaming, but packets keep failing to decode (the reason says how many).
    Degraded = 5,
}

impl CameraState {
    pub fn as_str(&self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Streaming => "streaming",
            CameraState::Ended => "ended",
            CameraState::Failed => "failed",
            CameraState::Backoff => "backoff",
            CameraState::Degraded => "degraded",
        }
    }
}

#[derive(Default)]
pub struct CameraStats {
    pub state: AtomicU8,
    pub decoded: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Live cameras: RTP packets the network lost (sequence-number gaps).
    pub packets_lost: AtomicU64,
    pub detected_frames: AtomicU64,
    pub skipped_frames: AtomicU64,
    /// Frames due for detection that motion gating let pass undetected.
    pub motion_gated: AtomicU64,
    /// Faces the detector found outside `min_face_px`..`max_face_px`.
    pub faces_out_of_size: AtomicU64,
    pub dropped_pool_empty: AtomicU64,
    pub dropped_ring_full: AtomicU64,
    pub dropped_superseded: AtomicU64,
    pub dropped_stale: AtomicU64,
    pub faces: AtomicU64,
    pub events: AtomicU64,
    /// Tracked faces whose head pose could be estimated, and those facing the camera.
    pub posed_faces: AtomicU64,
    pub attentive_faces: AtomicU64,
    pub zone_enters: AtomicU64,
    pub zone_exits: AtomicU64,
    pub dwell_ms_total: AtomicU64,
    /// Best faces not sent because of include/exclude zones.
    pub zone_filtered: AtomicU64,
    /// Best-face improvements not kept because the keep store was full.
    pub keep_refused: AtomicU64,
    /// Lost tracks stitched into a later track's event.
    pub tracks_stitched: AtomicU64,
    /// The camera's file was cut short: every intact frame was read, the
    /// rest is missing (the reason says what).
    pub partial: std::sync::atomic::AtomicBool,
    /// Face records with a new face (every post in realtime mode; one per
    /// track in overall mode), those that improved on an earlier post, and
    /// the time from a person's first frame to their first post.
    pub face_posts: AtomicU64,
    pub improved_posts: AtomicU64,
    pub first_post_latency: Histogram,
    pub capture_to_detect: Histogram,
    /// Live cameras: connection attempts after the first, and stalls seen.
    pub reconnects: AtomicU64,
    pub stalls: AtomicU64,
    /// Widths and qualities of the tracked faces over the last hour.
    pub face_hist: face_hist::FaceHistograms,
    /// Why the camera is failed or backing off (empty while streaming).
    /// Written on state changes only, never per frame.
    pub reason: std::sync::Mutex<String>,
    /// Whether detection keeps up with the camera (`detect::overload`).
    pub load: CameraLoad,
}

/// One camera's detect load over the last overload window, written once a
/// second by the detect thread (`detect::overload`).
#[derive(Default)]
pub struct CameraLoad {
    /// The camera loses frames to the detect stage's pace (superseded,
    /// stale, or dropped at capture for want of a slot), sustained.
    pub overloaded: std::sync::atomic::AtomicBool,
    /// Frames detected per second, in thousandths.
    pub detect_fps_milli: AtomicU64,
    /// Frames due for detection per second (the camera's frame rate over
    /// `detection_skip_frames + 1`), in thousandths.
    pub wanted_fps_milli: AtomicU64,
    /// Share of the camera's frames lost, in thousandths.
    pub lost_permille: AtomicU64,
}

impl CameraLoad {
    pub fn overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Relaxed)
    }
    pub fn detect_fps(&self) -> f64 {
        get(&self.detect_fps_milli) as f64 / 1000.0
    }
    pub fn wanted_fps(&self) -> f64 {
        get(&self.wanted_fps_milli) as f64 / 1000.0
    }
    pub fn lost_share(&self) -> f64 {
        get(&self.lost_permille) as f64 / 1000.0
    }
}

/// The whole box's detect load (`detect::overload`).
#[derive(Default)]
pub struct OverloadStats {
    /// Episodes so far: from the first camera overloaded to none.
    pub episodes: AtomicU64,
    /// During an episode: how many cameras this box detects at their
    /// configured rate (all frames detected per second over the mean
    /// rate a camera wants), in thousandths; 0 outside an episode.
    pub cameras_carried_milli: AtomicU64,
}

impl CameraStats {
    pub(crate) fn set_state(&self, s: CameraState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }
    /// The state as shown (`/api/stats`, panel): `overloaded` while
    /// streaming and losing frames to the detect stage's pace.
    pub fn shown_state(&self) -> &'static str {
        match self.state() {
            CameraState::Streaming if self.load.overloaded() => "overloaded",
            s => s.as_str(),
        }
    }
    pub fn state(&self) -> CameraState {
        match self.state.load(Ordering::Relaxed) {
            1 => CameraState::Streaming,
            2 => CameraState::Ended,
            3 => CameraState::Failed,
            4 => CameraState::Backoff,
            5 => CameraState::Degraded,
            _ => CameraState::Connecting,
        }
    }
    /// Sets the state and its reason together (state changes, not per frame).
    pub fn set_state_reason(&self, s: CameraState, reason: &str) {
        let mut r = crate::sync::lock(&self.reason);
        r.clear();
        r.push_str(reason);
        self.set_state(s);
    }
    pub fn reason(&self) -> String {
        crate::sync::lock(&self.reason).clone()
    }
    /// Frames decoded that never reached the tracker: every drop counter.
    pub fn frames_dropped(&self) -> u64 {
        get(&self.dropped_pool_empty)
            + get(&self.dropped_ring_full)
            + get(&self.dropped_superseded)
            + get(&self.dropped_stale)
    }
}

#[derive(Default)]
pub struct StageStats {
    pub decode: Histogram,
    /// The detect thread's time in the detector per batch: copying or
    /// letterboxing frames in, the run (or waiting for it), decoding.
    pub preprocess_infer: Histogram,
    /// The model's run alone per batch (what an accelerator is busy with),
    /// where the detector measures it.
    pub inference: Histogram,
    pub track: Histogram,
    pub sink: Histogram,
    /// The landmarks stage: one record per batch (crops, mesh and iris).
    pub landmarks: Histogram,
    pub landmark: LandmarkStats,
    pub batches: AtomicU64,
    pub batched_frames: AtomicU64,
    /// Frames in the most recent inference call.
    pub last_batch: AtomicU64,
    pub events_written: AtomicU64,
    pub sink_errors: AtomicU64,
    pub rejected: AtomicU64,
}

/// What the landmarks stage did (see `landmarks`).
#[derive(Default)]
pub struct LandmarkStats {
    /// The stage runs (a mesh model was loaded).
    pub enabled: std::sync::atomic::AtomicBool,
    pub batches: AtomicU64,
    pub faces: AtomicU64,
    /// Faces whose irises were read too (final best faces).
    pub iris_faces: AtomicU64,
    /// Candidate faces scored from the detector's keypoints instead: the
    /// stage held its most frames, or its queue was full.
    pub fallback: AtomicU64,
    /// Results for a track that had already ended (its wait timed out).
    pub late: AtomicU64,
    /// Faces the mesh model said were not faces (presence below threshold).
    pub not_face: AtomicU64,
    /// Requests waiting in the stage's queue (sampled by the track thread).
    pub queued: AtomicU64,
    pub queue_capacity: AtomicU64,
}

pub struct Stats {
    pub camera_names: Vec<String>,
    pub cameras: Vec<CameraStats>,
    pub stages: StageStats,
    /// Queues by name, for their fill levels (registered at start).
    pub rings: Mutex<Vec<(String, Arc<RingStats>)>>,
    pub started: std::time::Instant,
    /// Stages waiting too long (see `stall`).
    pub stalls: stall::Stalls,
    /// Best faces held in the keep store now, and its capacity.
    pub keep_in_use: AtomicU64,
    pub keep_capacity: AtomicU64,
    /// What the outbox holds and what retention removed.
    pub outbox: Arc<OutboxStats>,
    /// Whether detection keeps up with the cameras.
    pub overload: OverloadStats,
}

impl Stats {
    pub fn new(cameras: usize) -> Arc<Stats> {
        Self::with_names((0..cameras).map(|i| format!("cam{i}")).collect())
    }
    pub fn with_names(names: Vec<String>) -> Arc<Stats> {
        let n = names.len();
        Arc::new(Stats {
            camera_names: names,
            cameras: (0..n).map(|_| CameraStats::default()).collect(),
            stages: StageStats::default(),
            rings: Mutex::new(Vec::new()),
            started: std::time::Instant::now(),
            stalls: stall::Stalls::default(),
            keep_in_use: AtomicU64::new(0),
            keep_capacity: AtomicU64::new(0),
            outbox: Arc::default(),
            overload: OverloadStats::default(),
        })
    }
    pub fn register_ring(&self, name: impl Into<String>, stats: Arc<RingStats>) {
        crate::sync::lock(&self.rings).push((name.into(), stats));
    }
}

/// What the outbox holds and what retention removed (shown by the monitor).
#[derive(Default, Debug)]
pub struct OutboxStats {
    pub bytes: AtomicU64,
    pub files: AtomicU64,
    pub events: AtomicU64,
    pub pruned_events: AtomicU64,
    pub pruned_files: AtomicU64,
    pub pruned_bytes: AtomicU64,
}

pub fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_once_and_stay_narrow() {
        let mut prev = 0;
        for i in 0..HIST_BUCKETS {
            let (lo, hi) = bucket_range(i);
            assert_eq!(lo, prev, "bucket {i} starts where the last ended");
            assert!(hi > lo && (hi - lo) * 16 <= lo.max(16), "bucket {i} [{lo}, {hi}) at most 1/16 of its value");
            assert_eq!(bucket_of(lo), i);
            assert_eq!(bucket_of(hi - 1), i);
            prev = hi;
        }
        assert_eq!(prev, 1 << TOP_EXP);
        assert_eq!(bucket_of(u64::MAX), HIST_BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_a_few_percent_of_the_exact_ones() {
        // A skewed, known sample: 20 000 latencies from 150 us to ~2.6 s.
        let mut sample: Vec<u64> = (0..20_000u64)
            .map(|i| {
                let x = (i * 7919 % 20_000) as f64 / 20_000.0;
                (150.0 * (x * 9.75).exp()) as u64
            })
            .collect();
        let h = Histogram::default();
        for &v in &sample {
            h.record_us(v);
        }
        sample.sort_unstable();
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let exact = sample[((sample.len() as f64 * q).ceil() as usize).max(1) - 1] as f64;
            let got = h.quantile_us(q) as f64;
            let err = (got - exact).abs() / exact;
            assert!(err < 0.03, "p{q}: {got} vs exact {exact} ({:.1}% off)", 100.0 * err);
        }
        assert_eq!(h.count(), 20_000);
        // Two histograms together give the quantile of the union.
        let (a, b) = (Histogram::default(), Histogram::default());
        for _ in 0..50 {
            a.record_us(1000);
            b.record_us(3000);
        }
        assert!((quantile_of(&[&a, &b], 0.75) as i64 - 3000).abs() < 100);
        // The old power-of-two exposition still adds up.
        assert_eq!(h.buckets().iter().map(|b| b.1).sum::<u64>(), 20_000);
    }
}
