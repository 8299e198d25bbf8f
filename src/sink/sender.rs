//! Sender workers: a pool of threads per remote sink, each leasing due
//! events from the sink's spool, delivering them, and settling the outcome:
//! done (removed), retry (capped exponential backoff with jitter), or
//! permanent (dead-letter directory, reason logged).
//!
//! A slow receiver is not flooded. An attempt that gets no answer in time
//! may still be stored by the receiver, so retrying it at once at the same
//! pace multiplies its load (a retry storm). Each sink's [`Pacing`] is
//! adaptive: requests in flight follow AIMD (halved on a timeout or an
//! overload answer, +1/limit on a success, between 1 and `workers`), and
//! the timeout doubles after a timeout (up to 8x `timeout_ms`) and decays
//! back on answers that come quickly. Timeouts back off like 5xx.
//!
//! Draining has a hard deadline: from `finish`, workers take no new event
//! once it has passed and no attempt may wait beyond it, so the process
//! exits within the deadline plus a moment; what is left stays spooled.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::spool::Spool;
use super::{Delivery, Sink};

#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// Delay before attempt `attempts + 1`: initial * 2^attempts, capped,
    /// scaled by a jitter in [0.5, 1.0) so a fleet does not retry in step.
    pub fn delay(&self, attempts: u32, seed: u64) -> Duration {
        let base = self.initial.saturating_mul(1u32 << attempts.min(20)).min(self.max);
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (attempts as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 31;
        let jitter = 0.5 + (x % 1000) as f64 / 2000.0;
        base.mul_f64(jitter)
    }
}

/// Default worker count: max(4, cores / 2).
pub(crate) fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    (cores / 2).max(4)
}

/// How hard one sink is pushed: requests in flight and the timeout.
pub struct Pacing {
    state: Mutex<PaceState>,
    changed: Condvar,
    max_in_flight: usize,
    base_timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
struct PaceState {
    /// Requests allowed in flight (AIMD); at least 1.
    limit: f64,
    in_flight: usize,
    timeout: Duration,
    /// No attempt after (or waiting past) this instant: the drain deadline.
    deadline: Option<Instant>,
}

/// Longest timeout, as a multiple of the configured one.
const MAX_TIMEOUT_FACTOR: u32 = 8;

/// How long a learned pace is trusted after a stop: a receiver that was
/// slow an hour ago is met afresh.
const PACE_MEMORY: Duration = Duration::from_secs(3600);

/// Where a spool keeps its sink's pace between runs (one line: requests in
/// flight, timeout in ms, when it was saved in Unix ms). `Spool::replay`
/// reads only `*.ev`.
const PACE_FILE: &str = "pacing";

impl Pacing {
    pub fn new(max_in_flight: usize, base_timeout: Duration) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Pacing {
            state: Mutex::new(PaceState {
                limit: max_in_flight as f64,
                in_flight: 0,
                timeout: base_timeout,
                deadline: None,
            }),
            changed: Condvar::new(),
            max_in_flight,
            base_timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PaceState> {
        crate::sync::lock(&self.state)
    }

    /// Requests allowed in flight now, and the timeout an attempt gets.
    pub fn limit(&self) -> (usize, Duration) {
        let s = self.lock();
        (s.limit as usize, s.timeout)
    }

    pub(crate) fn set_deadline(&self, at: Instant) {
        self.lock().deadline = Some(at);
        self.changed.notify_all();
    }

    /// Waits (up to `wait`) for room to send; the timeout the attempt may
    /// use, or `None` (no room yet, or the deadline is too near).
    fn acquire(&self, wait: Duration) -> Option<Duration> {
        let mut s = self.lock();
        let until = Instant::now() + wait;
        while s.in_flight >= s.limit as usize {
            let now = Instant::now();
            if now >= until {
                return None;
            }
            s = crate::sync::wait_timeout(&self.changed, s, until - now);
        }
        let mut timeout = s.timeout;
        if let Some(d) = s.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(50) {
                return None;
            }
            timeout = timeout.min(left);
        }
        s.in_flight += 1;
        Some(timeout)
    }

    /// Settles one attempt: how it went and how long it took.
    fn release(&self, outcome: &Delivery, took: Duration) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        match outcome {
            Delivery::TimedOut(_) => {
                s.limit = (s.limit / 2.0).max(1.0);
                s.timeout = (s.timeout * 2).min(self.base_timeout * MAX_TIMEOUT_FACTOR);
            }
            Delivery::Retry(_) => s.limit = (s.limit / 2.0).max(1.0),
            Delivery::Done(_) | Delivery::Permanent(_) => {
                s.limit = (s.limit + 1.0 / s.limit).min(self.max_in_flight as f64);
                // A quick answer: the receiver keeps up; come back toward
                // the configured timeout.
                if took < s.timeout / 2 {
                    s.timeout = (s.timeout.mul_f64(0.8)).max(self.base_timeout);
                }
            }
        }
        self.changed.notify_all();
    }

    /// Gives back room taken by `acquire` when nothing was sent.
    fn cancel(&self) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Writes what was learned (requests in flight, timeout) to `path`, so
    /// the next start (a restart, `faceflow drain`) does not meet the same
    /// slow receiver at full pace again; a failure is logged.
    pub(crate) fn save(&self, path: &Path) {
        let s = *self.lock();
        let line = format!("{} {} {}\n", s.limit, s.timeout.as_millis(), super::now_unix_ms());
        if let Err(e) = crate::private_files::Access::PRIVATE.write_atomic(path, line.as_bytes()) {
            log::warn!("{}: cannot keep the sender's pace for the next start: {e}", path.display());
        }
    }

    /// Starts from the pace saved at `path` when it is recent (within
    /// [`PACE_MEMORY`]) and slower than the configured one, clamped to this
    /// run's bounds; returns whether it did.
    pub(crate) fn restore(&self, path: &Path) -> bool {
        let Ok(text) = std::fs::read_to_string(path) else { return false };
        let mut f = text.split_whitespace();
        let (Some(Ok(limit)), Some(Ok(timeout_ms)), Some(Ok(at))) =
            (f.next().map(str::parse::<f64>), f.next().map(str::parse::<u64>), f.next().map(str::parse::<u64>))
        else {
            return false;
        };
        let age = Duration::from_millis(super::now_unix_ms().saturating_sub(at));
        if age > PACE_MEMORY || !limit.is_finite() {
            return false;
        }
        let mut s = self.lock();
        s.limit = limit.clamp(1.0, self.max_in_flight as f64);
        s.timeout = Duration::from_millis(timeout_ms).clamp(self.base_timeout, self.base_timeout * MAX_TIMEOUT_FACTOR);
        s.limit < self.max_in_flight as f64 || s.timeout > self.base_timeout
    }

    /// The drain deadline has passed (or is too near to start an attempt).
    fn past_deadline(&self) -> bool {
        self.lock().deadline.is_some_and(|d| Instant::now() + Duration::from_millis(50) >= d)
    }
}

pub(crate) struct SenderPool {
    pub spool: Arc<Spool>,
    pub sink_name: String,
    pub pacing: Arc<Pacing>,
    handles: Vec<JoinHandle<()>>,
}

impl SenderPool {
    pub fn start(
        sink: Arc<dyn Sink>,
        spool: Arc<Spool>,
        workers: usize,
        retry: RetryPolicy,
        stop: Arc<AtomicBool>,
        gallery: Option<Arc<super::gallery::Gallery>>,
    ) -> Self {
        let sink_name = sink.name().to_string();
        let pacing = Arc::new(Pacing::new(workers, sink.base_timeout()));
        if pacing.restore(&spool.dir().join(PACE_FILE)) {
            let (limit, timeout) = pacing.limit();
            log::info!(
                "sink {sink_name}: resuming the pace learned before the restart: {limit} request(s) in flight, {} ms timeout",
                timeout.as_millis()
            );
        }
        let handles = (0..workers.max(1))
            .map(|i| {
                let (sink, spool, stop, pacing) = (sink.clone(), spool.clone(), stop.clone(), pacing.clone());
                let gallery = gallery.clone();
                std::thread::Builder::new()
                    .name(format!("send-{}-{i}", sink.name()))
                    .spawn(move || {
                        crate::board::pin_current_thread(crate::board::Role::Sender);
                        work(&*sink, &spool, retry, &pacing, &stop, gallery.as_deref())
                    })
                    .expect("spawn sender thread")
            })
            .collect();
        SenderPool { spool, sink_name, pacing, handles }
    }

    /// Delivers for at most `timeout` more (a hard deadline: no attempt
    /// starts or waits past it), then stops the workers. Returns how many
    /// events remain spooled for the next start.
    pub fn finish(self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        self.pacing.set_deadline(deadline);
        self.spool.wait_drained(timeout);
        self.spool.close();
        for h in self.handles {
            let _ = h.join();
        }
        self.pacing.save(&self.spool.dir().join(PACE_FILE));
        let left = self.spool.pending();
        if left > 0 {
            log::warn!(
                "sink {}: {left} event(s) not yet delivered stay in {} and will be sent on the next start",
                self.sink_name,
                self.spool.dir().display()
            );
        }
        left
    }
}

fn work(
    sink: &dyn Sink,
    spool: &Spool,
    retry: RetryPolicy,
    pacing: &Pacing,
    stop: &AtomicBool,
    gallery: Option<&super::gallery::Gallery>,
) {
    loop {
        if pacing.past_deadline() {
            return;
        }
        // Room to send first, then an event: a slow receiver gets fewer
        // requests at once, never more.
        let Some(timeout) = pacing.acquire(Duration::from_millis(200)) else {
            if spool.is_closed() {
                return;
            }
            continue;
        };
        let Some(lease) = spool.take(Duration::from_millis(200)) else {
            pacing.cancel();
            if stop.load(Ordering::Relaxed) || spool.is_closed() {
                return;
            }
            continue;
        };
        let id = &lease.record.record.id;
        let t0 = Instant::now();
        let outcome = sink.deliver(&lease.record, timeout);
        pacing.release(&outcome, t0.elapsed());
        if let Some(g) = gallery {
            g.delivery(id, sink.name(), &outcome, lease.attempts + 1);
        }
        match outcome {
            Delivery::Done(info) => {
                log::info!("sink {}: event {id} delivered ({info})", sink.name());
                spool.done(lease.seq);
            }
            Delivery::Retry(why) | Delivery::TimedOut(why) => {
                let d = retry.delay(lease.attempts, lease.seq);
                log::warn!(
                    "sink {}: event {id} attempt {} failed ({why}); retrying in {:?}",
                    sink.name(),
                    lease.attempts + 1,
                    d
                );
                spool.retry(lease.seq, d);
            }
            Delivery::Permanent(why) => {
                log::error!(
                    "sink {}: event {id} refused permanently ({why}); kept in {}/dead/",
                    sink.name(),
                    spool.dir().display()
                );
                spool.dead(lease.seq, &why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = RetryPolicy { initial: Duration::from_millis(100), max: Duration::from_secs(5) };
        for a in 0..10u32 {
            let d = p.delay(a, 7);
            let base = Duration::from_millis(100 * (1u64 << a)).min(Duration::from_secs(5));
            assert!(d >= base / 2 && d < base, "attempt {a}: {d:?} vs {base:?}");
        }
        assert_ne!(p.delay(3, 1), p.delay(3, 2), "jitter depends on the event");
    }

    #[test]
    fn pacing_halves_on_timeouts_grows_back_and_stretches_the_timeout() {
        let p = Pacing::new(4, Duration::from_secs(2));
        assert_eq!(p.limit(), (4, Duration::from_secs(2)));
        let timed_out = Delivery::TimedOut("slow".into());
        let t = p.acquire(Duration::ZERO).unwrap();
        assert_eq!(t, Duration::from_secs(2));
        p.release(&timed_out, t);
        assert_eq!(p.limit(), (2, Duration::from_secs(4)), "half the requests, twice the patience");
        for _ in 0..5 {
            let t = p.acquire(Duration::ZERO).unwrap();
            p.release(&timed_out, t);
        }
        assert_eq!(p.limit(), (1, Duration::from_secs(16)), "at least one in flight, at most 8x the timeout");
        // One in flight: a second request waits.
        let t = p.acquire(Duration::ZERO).unwrap();
        assert!(p.acquire(Duration::from_millis(20)).is_none());
        p.release(&Delivery::Done("ok".into()), Duration::from_millis(100));
        // Quick answers bring both back.
        for _ in 0..40 {
            let t = p.acquire(Duration::ZERO).unwrap();
            p.release(&Delivery::Done("ok".into()), Duration::from_millis(100));
            let _ = t;
        }
        let (limit, timeout) = p.limit();
        assert!(limit >= 3 && timeout == Duration::from_secs(2), "{limit} {timeout:?}");
        let _ = t;
    }

    #[test]
    fn no_attempt_waits_past_the_deadline() {
        let p = Pacing::new(2, Duration::from_secs(10));
        p.set_deadline(Instant::now() + Duration::from_millis(500));
        let t = p.acquire(Duration::ZERO).unwrap();
        assert!(t <= Duration::from_millis(500), "{t:?}");
        p.set_deadline(Instant::now());
        assert!(p.acquire(Duration::ZERO).is_none());
        assert!(p.past_deadline());
    }
}
