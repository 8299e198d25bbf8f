//! Live counters and per-stage timers, shared by all threads through
//! atomics: recording never takes a lock or allocates. Submodules serve
//! them: `http` (stats API, Prometheus, panel, MJPEG previews), `prometheus`
//! (text exposition), `preview` (what the preview shows), `process` (CPU,
//! memory, file descriptors), `history` (60-sample series for sparklines).

pub mod history;
pub mod http;
pub mod preview;
pub mod process;
pub mod prometheus;
pub mod stall;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::ring::RingStats;
use crate::sink::spool::Spool;

/// Latency histogram with fixed log2-spaced microsecond buckets
/// (1 us .. ~33 s), so percentiles cost nothing to record.
pub struct Histogram {
    buckets: [AtomicU64; 26],
    count: AtomicU64,
    sum_us: AtomicU64,
    last_us: AtomicU64,
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
        let b = (64 - us.max(1).leading_zeros() as usize - 1).min(25);
        self.buckets[b].fetch_add(1, Ordering::Relaxed);
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
    pub fn last_us(&self) -> u64 {
        self.last_us.load(Ordering::Relaxed)
    }
    /// (upper bound in us, count) of every bucket, for exposition.
    pub fn buckets(&self) -> [(u64, u64); 26] {
        std::array::from_fn(|i| (1u64 << (i + 1), self.buckets[i].load(Ordering::Relaxed)))
    }
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Ordering::Relaxed)
    }
    /// Upper bound (us) of the bucket holding quantile `q` (0..=1).
    pub fn quantile_us(&self, q: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let target = ((n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= target {
                return 1u64 << (i + 1);
            }
        }
        1 << 26
    }
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
    pub detected_frames: AtomicU64,
    pub skipped_frames: AtomicU64,
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
    /// Why the camera is failed or backing off (empty while streaming).
    /// Written on state changes only, never per frame.
    pub reason: std::sync::Mutex<String>,
}

impl CameraStats {
    pub fn set_state(&self, s: CameraState) {
        self.state.store(s as u8, Ordering::Relaxed);
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
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        r.clear();
        r.push_str(reason);
        self.set_state(s);
    }
    pub fn reason(&self) -> String {
        self.reason.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[derive(Default)]
pub struct StageStats {
    pub decode: Histogram,
    pub preprocess_infer: Histogram,
    pub track: Histogram,
    pub sink: Histogram,
    pub batches: AtomicU64,
    pub batched_frames: AtomicU64,
    /// Frames in the most recent inference call.
    pub last_batch: AtomicU64,
    pub events_written: AtomicU64,
    pub sink_errors: AtomicU64,
    pub rejected: AtomicU64,
}

pub struct Stats {
    pub camera_names: Vec<String>,
    pub cameras: Vec<CameraStats>,
    pub stages: StageStats,
    /// Latest annotated frame per camera, kept only while someone watches.
    pub previews: Vec<preview::Preview>,
    /// Queues by name, for their fill levels (registered at start).
    pub rings: Mutex<Vec<(String, Arc<RingStats>)>>,
    /// Remote sinks' spools, for sender outcomes (registered at start).
    pub spools: Mutex<Vec<(String, Arc<Spool>)>>,
    pub started: std::time::Instant,
    /// Stages waiting too long (see `stall`).
    pub stalls: stall::Stalls,
    /// Best faces held in the keep store now, and its capacity.
    pub keep_in_use: AtomicU64,
    pub keep_capacity: AtomicU64,
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
            previews: (0..n).map(|_| preview::Preview::default()).collect(),
            rings: Mutex::new(Vec::new()),
            spools: Mutex::new(Vec::new()),
            started: std::time::Instant::now(),
            stalls: stall::Stalls::default(),
            keep_in_use: AtomicU64::new(0),
            keep_capacity: AtomicU64::new(0),
        })
    }
    pub fn register_ring(&self, name: impl Into<String>, stats: Arc<RingStats>) {
        self.rings.lock().unwrap_or_else(|p| p.into_inner()).push((name.into(), stats));
    }
    pub fn register_spool(&self, name: impl Into<String>, spool: Arc<Spool>) {
        self.spools.lock().unwrap_or_else(|p| p.into_inner()).push((name.into(), spool));
    }
}

/// What `/healthz` says.
pub struct Health {
    /// `ok`, `degraded` (some camera failed or degraded) or `failing`
    /// (every camera failed, or a stage is stalled).
    pub status: &'static str,
    pub reasons: Vec<String>,
    pub cameras_failed: usize,
    pub cameras_degraded: usize,
}

pub fn health(s: &Stats) -> Health {
    let mut reasons = s.stalls.reasons();
    let stalled = !reasons.is_empty();
    let (mut failed, mut degraded) = (0, 0);
    for (name, c) in s.camera_names.iter().zip(&s.cameras) {
        let st = c.state();
        if matches!(st, CameraState::Failed | CameraState::Degraded) {
            if st == CameraState::Failed {
                failed += 1;
            } else {
                degraded += 1;
            }
            let why = c.reason();
            reasons.push(if why.is_empty() {
                format!("camera {name}: {}", st.as_str())
            } else {
                format!("camera {name}: {}: {why}", st.as_str())
            });
        }
    }
    let all_failed = failed == s.cameras.len() && failed > 0;
    let status = if stalled || all_failed {
        "failing"
    } else if failed + degraded > 0 {
        "degraded"
    } else {
        "ok"
    };
    Health { status, reasons, cameras_failed: failed, cameras_degraded: degraded }
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
    fn percentiles_land_in_the_right_bucket() {
        let h = Histogram::default();
        for _ in 0..98 {
            h.record_us(100);
        }
        h.record_us(10_000);
        h.record_us(10_000);
        assert_eq!(h.quantile_us(0.5), 128);
        assert_eq!(h.quantile_us(0.99), 16_384);
        assert_eq!(h.count(), 100);
        assert!((h.mean_us() - 298.0).abs() < 1e-9);
    }
}
