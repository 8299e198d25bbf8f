//! Waits that cannot go unnoticed. A stage that waits (for a pool slot, for
//! room in a ring) holds a [`StallWatch`]; once the wait has lasted the
//! configured time (`monitor.stall_report_s`) it logs ERROR once, naming
//! the stage, the camera and what it waits for, and the stall is listed in
//! `/healthz` (`failing`, with the reason) and `/api/stats` until the wait
//! ends, which is logged too. Watching costs a clock read per turn of the
//! wait loop; nothing is allocated until a stall is reported.
//!
//! Some waits are known to be long and are not stalls: the detector's
//! first runs at a new frame size (seconds on CUDA, more on a Jetson)
//! hold every stage behind it. While such a wait is announced
//! ([`Stalls::expect`]), waits do not count; they count again from its end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Stats;

/// The stalls being reported now, and when a wait becomes one.
pub struct Stalls {
    after_ms: AtomicU64,
    now: Mutex<Vec<(&'static str, Option<u8>, String)>>,
    /// Known long waits in progress ([`Stalls::expect`]).
    expected: AtomicU64,
    /// Stalls reported since start.
    pub total: AtomicU64,
}

impl Default for Stalls {
    fn default() -> Self {
        Stalls {
            after_ms: AtomicU64::new(10_000),
            now: Mutex::new(Vec::new()),
            expected: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

/// A known long wait in progress; it ends when this is dropped.
pub struct ExpectedWait<'a>(&'a Stalls);

impl Drop for ExpectedWait<'_> {
    fn drop(&mut self) {
        self.0.expected.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stalls {
    pub fn set_after(&self, after: Duration) {
        self.after_ms.store(after.as_millis().max(1) as u64, Ordering::Relaxed);
    }
    pub fn after(&self) -> Duration {
        Duration::from_millis(self.after_ms.load(Ordering::Relaxed))
    }
    /// Announces a known long wait (the caller logs what it is): until the
    /// returned guard drops, no wait becomes a stall.
    pub fn expect(&self) -> ExpectedWait<'_> {
        self.expected.fetch_add(1, Ordering::Relaxed);
        ExpectedWait(self)
    }
    pub(crate) fn expecting(&self) -> bool {
        self.expected.load(Ordering::Relaxed) > 0
    }
    /// The reasons of the stalls in progress.
    pub fn reasons(&self) -> Vec<String> {
        crate::sync::lock(&self.now).iter().map(|(_, _, r)| r.clone()).collect()
    }
}

/// One stage's view of one kind of wait.
pub(crate) struct StallWatch {
    stage: &'static str,
    camera: Option<u8>,
    what: &'static str,
    since: Option<Instant>,
    reported: bool,
}

impl StallWatch {
    /// `stage` waits (for `camera`, if any) for `what`, e.g. "a free frame-pool slot".
    pub const fn new(stage: &'static str, camera: Option<u8>, what: &'static str) -> Self {
        StallWatch { stage, camera, what, since: None, reported: false }
    }

    /// One turn of the wait loop.
    pub fn waiting(&mut self, stats: &Stats) {
        let now = Instant::now();
        if stats.stalls.expecting() {
            // Counted from the known wait's end (a stall already reported
            // stays reported).
            if !self.reported {
                self.since = Some(now);
            }
            return;
        }
        let since = *self.since.get_or_insert(now);
        if !self.reported && now.duration_since(since) >= stats.stalls.after() {
            self.reported = true;
            let reason = self.reason(stats, now.duration_since(since));
            log::error!("{reason}");
            stats.stalls.total.fetch_add(1, Ordering::Relaxed);
            crate::sync::lock(&stats.stalls.now).push((self.stage, self.camera, reason));
        }
    }

    /// The wait is over (the item went in, or the stage stops).
    pub fn done(&mut self, stats: &Stats) {
        if self.reported {
            let waited = self.since.map(|s| s.elapsed()).unwrap_or_default();
            log::info!("{}: going on after {:.1} s", self.who(stats), waited.as_secs_f64());
            let mut now = crate::sync::lock(&stats.stalls.now);
            now.retain(|(s, c, _)| !(*s == self.stage && *c == self.camera));
        }
        self.since = None;
        self.reported = false;
    }

    fn who(&self, stats: &Stats) -> String {
        match self.camera.and_then(|c| stats.camera_names.get(c as usize)) {
            Some(name) => format!("{} thread, camera {name}", self.stage),
            None => format!("{} thread", self.stage),
        }
    }

    fn reason(&self, stats: &Stats, waited: Duration) -> String {
        format!("{}: stalled, no progress for {:.1} s waiting for {}", self.who(stats), waited.as_secs_f64(), self.what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_wait_is_reported_once_and_cleared_when_it_ends() {
        let stats = Stats::with_names(vec!["door".into()]);
        stats.stalls.set_after(Duration::from_millis(30));
        let mut w = StallWatch::new("capture", Some(0), "a free frame-pool slot");
        w.waiting(&stats);
        assert!(stats.stalls.reasons().is_empty(), "not yet");
        std::thread::sleep(Duration::from_millis(40));
        w.waiting(&stats);
        w.waiting(&stats);
        let r = stats.stalls.reasons();
        assert_eq!(r.len(), 1, "reported once: {r:?}");
        assert!(r[0].starts_with("capture thread, camera door: stalled"), "{}", r[0]);
        assert!(r[0].contains("waiting for a free frame-pool slot"), "{}", r[0]);
        w.done(&stats);
        assert!(stats.stalls.reasons().is_empty());
        assert_eq!(stats.stalls.total.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_wait_during_a_known_long_one_counts_from_its_end() {
        let stats = Stats::with_names(vec!["door".into()]);
        stats.stalls.set_after(Duration::from_millis(30));
        let mut w = StallWatch::new("capture", Some(0), "a free frame-pool slot");
        let known = stats.stalls.expect();
        w.waiting(&stats);
        std::thread::sleep(Duration::from_millis(40));
        w.waiting(&stats);
        assert!(stats.stalls.reasons().is_empty(), "the detector's warm-up is no stall");
        drop(known);
        w.waiting(&stats);
        assert!(stats.stalls.reasons().is_empty(), "counted from the known wait's end");
        std::thread::sleep(Duration::from_millis(40));
        w.waiting(&stats);
        assert_eq!(stats.stalls.reasons().len(), 1, "past the limit after it: a stall");
        w.done(&stats);
    }
}
