//! The span of a bench run its figures cover. Untimed, the whole run (the
//! cameras read the demo once). Timed (`--seconds`), the cameras loop and a
//! thread of its own lets the pipeline warm up (`--warmup`: model shapes,
//! caches, thread placement), reads the counters at the window's start and
//! end, then stops the run: start-up and the drain after the stop stay
//! out, and the window is as long as asked, so a run that lasts a few
//! seconds at full speed is no longer decided by its warm-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use faceflow::metrics::{get, Stats};
use faceflow::monitor::process;

/// The longest the window waits for the run's first detected frame.
const START_UP_LIMIT: Duration = Duration::from_secs(120);

/// A timed window: `seconds` measured after `warmup`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub warmup: Duration,
    pub seconds: Duration,
}

/// The counters a bench row is made of, at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    at: Instant,
    cpu_s: f64,
    allocations: u64,
    detected: u64,
    dropped: u64,
    batches: u64,
    batched_frames: u64,
    inference_us: u64,
    detector_us: u64,
}

impl Reading {
    pub fn take(stats: &Stats) -> Reading {
        let cams = &stats.cameras;
        let st = &stats.stages;
        Reading {
            at: Instant::now(),
            cpu_s: process::sample().cpu_seconds,
            allocations: crate::cli::alloc_count::allocations(),
            detected: detected_frames(stats),
            dropped: cams.iter().map(|c| c.frames_dropped()).sum(),
            batches: get(&st.batches),
            batched_frames: get(&st.batched_frames),
            inference_us: st.inference.sum_us(),
            detector_us: st.preprocess_infer.sum_us(),
        }
    }
}

/// Frames detected so far over all cameras.
fn detected_frames(stats: &Stats) -> u64 {
    stats.cameras.iter().map(|c| get(&c.detected_frames)).sum()
}

/// What happened between two readings.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub wall_s: f64,
    pub cpu_s: f64,
    pub allocations: u64,
    pub detected: u64,
    pub dropped: u64,
    pub batches: u64,
    pub batched_frames: u64,
    /// Seconds the model ran (where the detector times its runs).
    pub inference_s: f64,
    /// Seconds the detect thread spent in the detector.
    pub detector_s: f64,
}

impl Span {
    pub fn between(a: &Reading, b: &Reading) -> Span {
        Span {
            wall_s: b.at.duration_since(a.at).as_secs_f64(),
            cpu_s: b.cpu_s - a.cpu_s,
            allocations: b.allocations.saturating_sub(a.allocations),
            detected: b.detected.saturating_sub(a.detected),
            dropped: b.dropped.saturating_sub(a.dropped),
            batches: b.batches.saturating_sub(a.batches),
            batched_frames: b.batched_frames.saturating_sub(a.batched_frames),
            inference_s: b.inference_us.saturating_sub(a.inference_us) as f64 / 1e6,
            detector_s: b.detector_us.saturating_sub(a.detector_us) as f64 / 1e6,
        }
    }
}

/// Watches a run's `stats`: waits for the first detected frame (start-up,
/// such as loading the landmark models, which takes 20 s on CUDA, stays
/// out), waits out the warm-up, reads, waits the window, reads, stops the
/// run. `None` when the run stopped first (it
/// failed, or its input ended): then there is no window to report.
pub fn watch(stats: Arc<Stats>, w: Window, stop: Arc<AtomicBool>) -> JoinHandle<Option<Span>> {
    std::thread::spawn(move || {
        let wait = |d: Duration| {
            let until = Instant::now() + d;
            while Instant::now() < until {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
            }
            true
        };
        // Bounded, for inputs the detector never sees a frame of (a
        // gated empty scene): the warm-up then starts anyway.
        let give_up = Instant::now() + START_UP_LIMIT;
        while detected_frames(&stats) == 0 && Instant::now() < give_up {
            if !wait(Duration::from_millis(20)) {
                return None;
            }
        }
        if !wait(w.warmup) {
            return None;
        }
        let a = Reading::take(&stats);
        if !wait(w.seconds) {
            return None;
        }
        let b = Reading::take(&stats);
        stop.store(true, Ordering::SeqCst);
        Some(Span::between(&a, &b))
    })
}

/// min, median, max of `v` (empty: zeros).
pub fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    (v[0], median, v[n - 1])
}

/// With several runs per batch size: min / median / max of fps and
/// efficiency, and max over min.
pub fn print_spread(rows: &[super::BenchRow]) {
    let mut batches: Vec<usize> = rows.iter().map(|r| r.batch).collect();
    batches.dedup();
    for b in batches {
        let runs: Vec<&super::BenchRow> = rows.iter().filter(|r| r.batch == b).collect();
        if runs.len() < 2 {
            continue;
        }
        let (f0, f1, f2) = spread(runs.iter().map(|r| r.fps).collect());
        let (e0, e1, e2) = spread(runs.iter().map(|r| r.efficiency).collect());
        println!(
            "batch {b}: {} runs{}: fps min {f0:.1} median {f1:.1} max {f2:.1} (max/min {:.2}); efficiency min {e0:.2} median {e1:.2} max {e2:.2}",
            runs.len(),
            runs[0].warmup_s.map_or(String::new(), |w| format!(" of {:.0} s after {w:.0} s warm-up", runs[0].wall_s)),
            f2 / f0.max(1e-9)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faceflow::metrics::inc;

    #[test]
    fn a_window_counts_only_what_happened_inside_it_and_stops_the_run() {
        let stats = Stats::new(1);
        let stop = Arc::new(AtomicBool::new(false));
        // Frames detected during the warm-up stay out of the window.
        for _ in 0..1000 {
            inc(&stats.cameras[0].detected_frames);
        }
        let w = Window { warmup: Duration::from_millis(100), seconds: Duration::from_millis(300) };
        let h = watch(stats.clone(), w, stop.clone());
        std::thread::sleep(Duration::from_millis(200));
        for _ in 0..7 {
            inc(&stats.cameras[0].detected_frames);
        }
        let span = h.join().unwrap().expect("a window");
        assert!(stop.load(Ordering::Relaxed), "the window's end stops the run");
        assert_eq!(span.detected, 7);
        assert!(span.wall_s >= 0.3 && span.wall_s < 5.0, "{}", span.wall_s);
    }

    #[test]
    fn the_warm_up_starts_at_the_first_detected_frame_not_at_start_up() {
        let stats = Stats::new(1);
        let stop = Arc::new(AtomicBool::new(false));
        let w = Window { warmup: Duration::from_millis(100), seconds: Duration::from_millis(1000) };
        let h = watch(stats.clone(), w, stop.clone());
        // Start-up (models loading) longer than warm-up and window together:
        // the window must not have begun, let alone ended.
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!stop.load(Ordering::Relaxed), "the window ran out during start-up");
        inc(&stats.cameras[0].detected_frames);
        std::thread::sleep(Duration::from_millis(500));
        for _ in 0..5 {
            inc(&stats.cameras[0].detected_frames);
        }
        let span = h.join().unwrap().expect("a window");
        assert_eq!(span.detected, 5, "the first frame is warm-up, the next five in the window");
    }

    #[test]
    fn a_run_that_stops_during_the_warm_up_has_no_window() {
        let stop = Arc::new(AtomicBool::new(true));
        let w = Window { warmup: Duration::from_secs(60), seconds: Duration::from_secs(60) };
        assert!(watch(Stats::new(1), w, stop).join().unwrap().is_none());
    }

    #[test]
    fn spread_is_min_median_max() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), (1.0, 2.0, 3.0));
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]), (1.0, 2.5, 4.0));
        assert_eq!(spread(vec![]), (0.0, 0.0, 0.0));
    }
}
