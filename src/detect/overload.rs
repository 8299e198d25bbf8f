//! Overload that says so. When detection cannot keep up with the live
//! cameras, frames are lost by design (the newest frame wins: older ones
//! are dropped as superseded or stale, and capture drops frames that find
//! no pool slot or ring room) and people are still captured, at a lower
//! detect rate. A few such losses are normal (one long batch); a camera
//! that loses a fifth of its frames over the last [`WINDOW_S`] seconds is
//! overloaded, until its loss falls under a twentieth.
//!
//! The detect thread samples each camera's counters once a second (a clock
//! read per turn of its loop; nothing is allocated but the log lines).
//! An episode runs from the first camera overloaded to none: its start is
//! logged at WARN once, naming the cameras, their detect rate against the
//! rate they want, and how many such cameras this box carries at the
//! configured rate; cameras joining or leaving it and its end at INFO.
//! The state shows in `/api/stats` (`overloaded`), `/healthz` (degraded),
//! the panel and `/metrics` (see `metrics::CameraLoad`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::metrics::{get, CameraStats, Stats};

/// Seconds a camera's losses are judged over.
pub(crate) const WINDOW_S: usize = 10;
/// Share of frames lost over the window that makes a camera overloaded,
/// and the share under which it keeps up again.
const ENTER_SHARE: f64 = 0.2;
const LEAVE_SHARE: f64 = 0.05;
/// Fewest frames over the window for a judgement (a camera barely
/// streaming is not judged on a handful of frames).
const MIN_FRAMES: u64 = 2 * WINDOW_S as u64;

/// One camera's counters at one sample.
#[derive(Clone, Copy, Default)]
struct Sample {
    at: Duration,
    decoded: u64,
    lost: u64,
    detected: u64,
}

impl Sample {
    fn of(at: Duration, c: &CameraStats) -> Sample {
        Sample { at, decoded: get(&c.decoded), lost: c.frames_dropped(), detected: get(&c.detected_frames) }
    }
}

/// A camera's samples over the window, oldest first once full.
struct CameraWindow {
    skip_frames: u32,
    samples: [Sample; WINDOW_S + 1],
    next: usize,
    filled: usize,
    /// What the last full window said.
    last: Option<Load>,
}

/// What the last window says of one camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Load {
    pub detect_fps: f64,
    pub wanted_fps: f64,
    pub lost_share: f64,
    pub frames: u64,
}

impl CameraWindow {
    fn push(&mut self, s: Sample) -> Option<Load> {
        self.samples[self.next] = s;
        self.next = (self.next + 1) % self.samples.len();
        self.filled = (self.filled + 1).min(self.samples.len());
        if self.filled < self.samples.len() {
            return None;
        }
        let old = self.samples[self.next];
        let secs = s.at.saturating_sub(old.at).as_secs_f64().max(1e-3);
        let frames = s.decoded.saturating_sub(old.decoded);
        let lost = s.lost.saturating_sub(old.lost);
        Some(Load {
            detect_fps: s.detected.saturating_sub(old.detected) as f64 / secs,
            wanted_fps: frames as f64 / secs / (self.skip_frames as f64 + 1.0),
            lost_share: if frames > 0 { (lost as f64 / frames as f64).min(1.0) } else { 0.0 },
            frames,
        })
    }
}

/// The detect thread's overload judge (see the module header).
pub(crate) struct OverloadWatch {
    cameras: Vec<CameraWindow>,
    last: Option<Duration>,
    /// When the episode in progress started.
    episode: Option<Duration>,
}

impl OverloadWatch {
    /// Cameras in order, each with its `detection_skip_frames`.
    pub fn new(skip_frames: impl IntoIterator<Item = u32>) -> Self {
        let cameras = skip_frames
            .into_iter()
            .map(|skip_frames| CameraWindow {
                skip_frames,
                samples: [Sample::default(); WINDOW_S + 1],
                next: 0,
                filled: 0,
                last: None,
            })
            .collect();
        OverloadWatch { cameras, last: None, episode: None }
    }

    /// One turn of the detect loop: samples once a second.
    pub fn tick(&mut self, now: Duration, stats: &Stats) {
        if self.last.is_some_and(|t| now.saturating_sub(t) < Duration::from_secs(1)) {
            return;
        }
        self.last = Some(now);
        let mut changed = false;
        for (i, w) in self.cameras.iter_mut().enumerate() {
            let Some(c) = stats.cameras.get(i) else { continue };
            w.last = w.push(Sample::of(now, c));
            let Some(load) = w.last else { continue };
            let cl = &c.load;
            cl.detect_fps_milli.store((load.detect_fps * 1000.0) as u64, Ordering::Relaxed);
            cl.wanted_fps_milli.store((load.wanted_fps * 1000.0) as u64, Ordering::Relaxed);
            cl.lost_permille.store((load.lost_share * 1000.0) as u64, Ordering::Relaxed);
            let was = cl.overloaded();
            let is = if was {
                load.lost_share >= LEAVE_SHARE && load.frames > 0
            } else {
                load.lost_share >= ENTER_SHARE && load.frames >= MIN_FRAMES
            };
            if is != was {
                cl.overloaded.store(is, Ordering::Relaxed);
                changed = true;
            }
        }
        let carried = cameras_carried(self.cameras.iter().filter_map(|w| w.last));
        let any = stats.cameras.iter().any(|c| c.load.overloaded());
        let milli = if any { (carried * 1000.0) as u64 } else { 0 };
        stats.overload.cameras_carried_milli.store(milli, Ordering::Relaxed);
        if changed {
            self.report(now, stats, carried, any);
        }
    }

    /// Judges from `now` on, what came before forgotten: after a known long
    /// wait (the detector's first runs at a new frame size), whose losses
    /// are start-up, not overload. They stay counted in the stats; a
    /// camera overloaded before stays so until a full window says.
    pub fn restart(&mut self, now: Duration, stats: &Stats) {
        for w in &mut self.cameras {
            w.next = 0;
            w.filled = 0;
        }
        self.last = None;
        self.tick(now, stats);
    }

    /// Logs an episode's start (WARN), its changes and its end (INFO).
    fn report(&mut self, now: Duration, stats: &Stats, carried: f64, any: bool) {
        let mut named = String::new();
        for (i, (c, w)) in stats.cameras.iter().zip(&self.cameras).enumerate() {
            if let (true, Some(l)) = (c.load.overloaded(), w.last) {
                let sep = if named.is_empty() { "" } else { ", " };
                let name = stats.camera_names.get(i).map_or("?", |n| n.as_str());
                let _ = write!(
                    named,
                    "{sep}{name} ({:.1} of {:.1} fps detected, {:.0}% of frames lost)",
                    l.detect_fps,
                    l.wanted_fps,
                    l.lost_share * 100.0
                );
            }
        }
        match (self.episode, any) {
            (None, true) => {
                self.episode = Some(now);
                stats.overload.episodes.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "overload: detection cannot keep up with camera(s) {named} over the last {WINDOW_S} s; \
                     this box detects about {carried:.1} such camera(s) at their configured rate: \
                     raise detection_skip_frames, lower the cameras' frame rate, or move cameras to another box"
                );
            }
            (Some(_), true) => log::info!("overload goes on; overloaded now: {named}"),
            (Some(start), false) => {
                self.episode = None;
                log::info!(
                    "overload over after {:.0} s: detection keeps up with every camera",
                    now.saturating_sub(start).as_secs_f64()
                );
            }
            (None, false) => {}
        }
    }
}

/// How many cameras wanting the mean rate of the judged ones the frames
/// detected per second would serve (meaningful while the detector is
/// saturated, that is during an episode).
fn cameras_carried(loads: impl Iterator<Item = Load>) -> f64 {
    let judged = loads.filter(|l| l.frames > 0);
    let (n, detected, wanted) =
        judged.fold((0usize, 0.0, 0.0), |(n, d, w), l| (n + 1, d + l.detect_fps, w + l.wanted_fps));
    if n == 0 || wanted <= 0.0 {
        return 0.0;
    }
    detected / (wanted / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CameraState;
    use std::sync::atomic::AtomicU64;

    fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }

    /// One second of a camera at 25 fps of which `detected` were detected
    /// and `lost` dropped as superseded.
    fn second(c: &CameraStats, detected: u64, lost: u64) {
        add(&c.decoded, 25);
        add(&c.detected_frames, detected);
        add(&c.dropped_superseded, lost);
    }

    #[test]
    fn sustained_loss_is_an_episode_and_a_camera_that_keeps_up_is_not() {
        let stats = Stats::with_names(vec!["door".into(), "hall".into()]);
        for c in &stats.cameras {
            c.set_state(CameraState::Streaming);
        }
        let mut w = OverloadWatch::new([0, 0]);
        let mut t = Duration::ZERO;
        // 5 s of losses: too short to judge (the window is not full yet).
        for _ in 0..5 {
            second(&stats.cameras[0], 10, 15);
            second(&stats.cameras[1], 24, 1);
            w.tick(t, &stats);
            t += Duration::from_secs(1);
        }
        assert!(!stats.cameras[0].load.overloaded());
        for _ in 0..8 {
            second(&stats.cameras[0], 10, 15);
            second(&stats.cameras[1], 24, 1);
            w.tick(t, &stats);
            t += Duration::from_secs(1);
        }
        let (door, hall) = (&stats.cameras[0], &stats.cameras[1]);
        assert!(door.load.overloaded(), "60% lost over 10 s");
        assert_eq!(door.shown_state(), "overloaded");
        assert!(!hall.load.overloaded(), "4% lost is normal");
        assert_eq!(hall.shown_state(), "streaming");
        assert!((door.load.detect_fps() - 10.0).abs() < 0.01, "{}", door.load.detect_fps());
        assert!((door.load.wanted_fps() - 25.0).abs() < 0.01);
        assert!((door.load.lost_share() - 0.6).abs() < 0.01);
        assert_eq!(get(&stats.overload.episodes), 1);
        // 34 frames detected per second, 25 wanted per camera.
        let carried = get(&stats.overload.cameras_carried_milli) as f64 / 1000.0;
        assert!((carried - (10.0 + 24.0) / 25.0).abs() < 0.01, "{carried}");
    }

    /// The detect loop does not tick while the detector warms up at a new
    /// frame size: the frames lost meanwhile land in the next sample.
    #[test]
    fn losses_during_a_warm_up_are_no_overload_once_the_watch_restarts_after_it() {
        for restart in [false, true] {
            let stats = Stats::with_names(vec!["door".into()]);
            stats.cameras[0].set_state(CameraState::Streaming);
            let mut w = OverloadWatch::new([0]);
            w.tick(Duration::ZERO, &stats);
            for _ in 0..9 {
                second(&stats.cameras[0], 0, 25);
            }
            let mut t = Duration::from_secs(9);
            if restart {
                w.restart(t, &stats);
            } else {
                w.tick(t, &stats);
            }
            for _ in 0..11 {
                second(&stats.cameras[0], 24, 1);
                t += Duration::from_secs(1);
                w.tick(t, &stats);
            }
            let overloaded = get(&stats.overload.episodes) > 0;
            assert_eq!(overloaded, !restart, "restarted after the warm-up: {restart}");
            assert_eq!(stats.cameras[0].frames_dropped(), 9 * 25 + 11, "the losses stay counted");
        }
    }

    #[test]
    fn an_episode_ends_once_losses_fall_under_the_lower_share_and_a_new_one_counts_again() {
        let stats = Stats::with_names(vec!["door".into()]);
        stats.cameras[0].set_state(CameraState::Streaming);
        let mut w = OverloadWatch::new([1]);
        let mut t = Duration::ZERO;
        let mut run = |secs: usize, detected: u64, lost: u64| {
            for _ in 0..secs {
                second(&stats.cameras[0], detected, lost);
                w.tick(t, &stats);
                t += Duration::from_secs(1);
            }
        };
        run(12, 5, 10);
        assert!(stats.cameras[0].load.overloaded());
        // detection_skip_frames 1: 12.5 frames a second wanted.
        assert!((stats.cameras[0].load.wanted_fps() - 12.5).abs() < 0.01);
        // 8% lost: under the entry share, over the exit share: still overloaded.
        run(12, 11, 2);
        assert!(stats.cameras[0].load.overloaded(), "hysteresis: 8% keeps an episode going");
        run(12, 12, 0);
        assert!(!stats.cameras[0].load.overloaded());
        assert_eq!(get(&stats.overload.cameras_carried_milli), 0, "no estimate outside an episode");
        run(12, 5, 10);
        assert_eq!(get(&stats.overload.episodes), 2);
    }

    #[test]
    fn a_camera_that_stops_sending_leaves_overload_and_ticks_inside_a_second_do_nothing() {
        let stats = Stats::with_names(vec!["door".into()]);
        let mut w = OverloadWatch::new([0]);
        for s in 0..12u64 {
            second(&stats.cameras[0], 5, 20);
            w.tick(Duration::from_secs(s), &stats);
            // Many turns of the loop inside one second: one sample.
            w.tick(Duration::from_secs(s) + Duration::from_millis(500), &stats);
        }
        assert!(stats.cameras[0].load.overloaded());
        assert!((stats.cameras[0].load.wanted_fps() - 25.0).abs() < 0.01, "one sample a second");
        for s in 12..24u64 {
            w.tick(Duration::from_secs(s), &stats);
        }
        assert!(!stats.cameras[0].load.overloaded(), "no frames: nothing lost");
    }
}
