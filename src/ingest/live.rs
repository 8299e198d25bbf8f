//! A live camera as a [`PacketSource`] that never ends on its own: it
//! connects, streams, notices stalls (no frame for `stall`), and reconnects
//! with capped exponential backoff and jitter, publishing its state
//! (connecting, streaming, backoff, failed with a reason) in the camera's
//! stats. The protocol sits behind [`StreamOpener`] / [`LiveStream`] and time
//! behind [`Clocks`], so every path here is unit-tested without sleeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{IngestError, Packet, PacketSource};
use crate::clock::Clocks;
use crate::decode::Codec;
use crate::metrics::{inc, CameraState, Stats};

/// Why a stream could not be opened or went away.
#[derive(Debug, Clone)]
pub struct StreamError {
    /// Retrying the same way will not help until someone fixes something
    /// (wrong password, unknown path, unsupported codec): the camera shows
    /// as failed, and is still retried at the longest backoff in case the
    /// camera side gets fixed.
    pub permanent: bool,
    pub message: String,
}

impl StreamError {
    pub(crate) fn transient(message: impl Into<String>) -> Self {
        StreamError { permanent: false, message: message.into() }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        StreamError { permanent: true, message: message.into() }
    }
}

/// One open connection to a camera.
pub trait LiveStream: Send {
    fn codec(&self) -> Codec;
    /// Waits at most `wait` for the next access unit and copies it (Annex B)
    /// into `buf`. `Ok(Some(pts_ms))` when one came (`pts_ms` in stream
    /// time, if the protocol has it), `Ok(None)` when none did in time.
    fn next_into(&mut self, wait: Duration, buf: &mut Vec<u8>) -> Result<Option<Option<u64>>, StreamError>;
    /// Parameter sets the stream stated when it was opened (Annex B), for
    /// the decoder before the first unit.
    fn parameter_sets(&self) -> &[u8] {
        &[]
    }
    /// Packets the network lost since the last call.
    fn take_lost_packets(&mut self) -> u64 {
        0
    }
}

/// Opens connections to one camera (a new one after each drop).
pub trait StreamOpener: Send {
    fn open(&mut self) -> Result<Box<dyn LiveStream>, StreamError>;
}

#[derive(Debug, Clone, Copy)]
pub struct ReconnectPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// No frame for this long: the stream is stalled and is reopened.
    pub stall: Duration,
}

impl ReconnectPolicy {
    /// Delay before reconnect attempt `attempt` (0-based): `initial * 2^n`
    /// capped at `max`, then "equal jitter" (half fixed, half random, from
    /// `unit` in 0..1) so cameras dropped together do not return in lockstep.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.initial.saturating_mul(1u32 << attempt.min(20)).min(self.max);
        base / 2 + base.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

/// How often a waiting stream is polled for `stop`.
const POLL: Duration = Duration::from_millis(200);

pub struct LiveSource {
    name: String,
    camera: usize,
    opener: Box<dyn StreamOpener>,
    stream: Option<Box<dyn LiveStream>>,
    policy: ReconnectPolicy,
    clocks: Arc<dyn Clocks>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    /// Failed attempts since the last frame.
    attempt: u32,
    /// Last frame (or connect) time, for stall detection.
    last_data: Duration,
    /// The next packet is the first of a connection.
    fresh: bool,
    /// The last failure logged, so a camera that stays down is not logged
    /// at every attempt.
    last_logged: String,
    buf: Vec<u8>,
    rng: u64,
}

impl LiveSource {
    pub fn new(
        name: String,
        camera: usize,
        opener: Box<dyn StreamOpener>,
        policy: ReconnectPolicy,
        clocks: Arc<dyn Clocks>,
        stats: Arc<Stats>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let seed = 0x9E37_79B9_7F4A_7C15u64 ^ ((camera as u64 + 1) << 32) ^ clocks.unix_ms();
        LiveSource {
            name,
            camera,
            opener,
            stream: None,
            policy,
            clocks,
            stats,
            stop,
            attempt: 0,
            last_data: Duration::ZERO,
            fresh: false,
            last_logged: String::new(),
            buf: Vec::with_capacity(256 * 1024),
            rng: seed | 1,
        }
    }

    fn cam(&self) -> &crate::metrics::CameraStats {
        &self.stats.cameras[self.camera]
    }

    fn jitter(&mut self) -> f64 {
        // xorshift64: jitter needs spread, not cryptographic randomness.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Drops the connection (if any), publishes why, and waits out the
    /// backoff in slices so `stop` is honoured promptly.
    fn back_off(&mut self, e: StreamError) {
        self.stream = None;
        let unit = self.jitter();
        let delay = if e.permanent { self.policy.max } else { self.policy.delay(self.attempt, unit) };
        let state = if e.permanent { CameraState::Failed } else { CameraState::Backoff };
        self.cam().set_state_reason(state, &e.message);
        if e.message != self.last_logged {
            if e.permanent {
                log::error!("camera {}: {}; retrying every {:.1} s", self.name, e.message, delay.as_secs_f64());
            } else {
                log::warn!("camera {}: {}; reconnecting in {:.1} s", self.name, e.message, delay.as_secs_f64());
            }
            self.last_logged = e.message.clone();
        } else {
            log::debug!("camera {}: {} again; next attempt in {:.1} s", self.name, e.message, delay.as_secs_f64());
        }
        let until = self.clocks.monotonic() + delay;
        while !self.stop.load(Ordering::Relaxed) {
            let now = self.clocks.monotonic();
            if now >= until {
                break;
            }
            self.clocks.sleep((until - now).min(POLL));
        }
        self.attempt = self.attempt.saturating_add(1);
        inc(&self.cam().reconnects);
    }
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, IngestError> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let Some(stream) = self.stream.as_mut() else {
                if self.cam().state() != CameraState::Failed {
                    self.cam().set_state_reason(CameraState::Connecting, "");
                }
                match self.opener.open() {
                    Ok(s) => {
                        log::info!("camera {}: connected ({})", self.name, s.codec().as_str());
                        self.stream = Some(s);
                        self.last_data = self.clocks.monotonic();
                        self.fresh = true;
                    }
                    Err(e) => self.back_off(e),
                }
                continue;
            };
            let waited = self.clocks.monotonic().saturating_sub(self.last_data);
            if waited >= self.policy.stall {
                inc(&self.stats.cameras[self.camera].stalls);
                let msg = format!("no frame for {:.1} s (stalled)", waited.as_secs_f64());
                self.back_off(StreamError::transient(msg));
                continue;
            }
            let codec = stream.codec();
            let r = stream.next_into((self.policy.stall - waited).min(POLL), &mut self.buf);
            let lost = stream.take_lost_packets();
            if lost > 0 {
                self.stats.cameras[self.camera].packets_lost.fetch_add(lost, Ordering::Relaxed);
            }
            match r {
                Ok(Some(pts_ms)) => {
                    self.last_data = self.clocks.monotonic();
                    if self.attempt > 0 || self.cam().state() != CameraState::Streaming {
                        self.cam().set_state_reason(CameraState::Streaming, "");
                        if !self.last_logged.is_empty() {
                            log::info!("camera {}: streaming again", self.name);
                        }
                        self.attempt = 0;
                        self.last_logged.clear();
                    }
                    let fresh = std::mem::take(&mut self.fresh);
                    let extradata = self.stream.as_ref().map_or(&[][..], |s| s.parameter_sets());
                    return Ok(Some(Packet { data: &self.buf, codec, whole_unit: true, pts_ms, fresh, extradata }));
                }
                Ok(None) => continue,
                Err(e) => self.back_off(e),
            }
        }
    }

    fn fps(&self) -> Option<f32> {
        None
    }

    fn is_live(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimulatedClocks;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// What a scripted connection does on each `next_into`.
    #[derive(Clone)]
    enum Step {
        Frame(u64),
        /// Nothing arrives: the simulated clock moves by the wait.
        Silence,
        Drop(&'static str),
    }

    struct ScriptedStream {
        steps: VecDeque<Step>,
        clocks: SimulatedClocks,
    }

    impl LiveStream for ScriptedStream {
        fn codec(&self) -> Codec {
            Codec::H264
        }
        fn next_into(&mut self, wait: Duration, buf: &mut Vec<u8>) -> Result<Option<Option<u64>>, StreamError> {
            match self.steps.pop_front().unwrap_or(Step::Silence) {
                Step::Frame(pts) => {
                    self.clocks.advance(Duration::from_millis(40));
                    buf.clear();
                    buf.extend_from_slice(&pts.to_le_bytes());
                    Ok(Some(Some(pts)))
                }
                Step::Silence => {
                    self.clocks.advance(wait);
                    Ok(None)
                }
                Step::Drop(why) => Err(StreamError::transient(why)),
            }
        }
    }

    /// Each `open` takes the next outcome: a connection's script, or an error.
    struct ScriptedOpener {
        outcomes: VecDeque<Result<Vec<Step>, StreamError>>,
        clocks: SimulatedClocks,
        opened_at: Arc<Mutex<Vec<Duration>>>,
    }

    impl StreamOpener for ScriptedOpener {
        fn open(&mut self) -> Result<Box<dyn LiveStream>, StreamError> {
            self.opened_at.lock().unwrap().push(self.clocks.monotonic());
            match self.outcomes.pop_front().unwrap_or(Err(StreamError::transient("connection refused"))) {
                Ok(steps) => Ok(Box::new(ScriptedStream { steps: steps.into(), clocks: self.clocks.clone() })),
                Err(e) => Err(e),
            }
        }
    }

    const POLICY: ReconnectPolicy = ReconnectPolicy {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(8),
        stall: Duration::from_secs(5),
    };

    fn source(
        outcomes: Vec<Result<Vec<Step>, StreamError>>,
    ) -> (LiveSource, Arc<Stats>, SimulatedClocks, Arc<Mutex<Vec<Duration>>>) {
        let clocks = SimulatedClocks::new(1_700_000_000_000);
        let stats = Stats::with_names(vec!["cam".into()]);
        let opened_at = Arc::new(Mutex::new(Vec::new()));
        let opener = ScriptedOpener { outcomes: outcomes.into(), clocks: clocks.clone(), opened_at: opened_at.clone() };
        let src = LiveSource::new(
            "cam".into(),
            0,
            Box::new(opener),
            POLICY,
            Arc::new(clocks.clone()),
            stats.clone(),
            Arc::new(AtomicBool::new(false)),
        );
        (src, stats, clocks, opened_at)
    }

    fn pts(src: &mut LiveSource) -> (u64, bool) {
        let p = src.next_packet().unwrap().expect("a packet");
        (p.pts_ms.unwrap(), p.fresh)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let p = POLICY;
        for (attempt, base_ms) in [(0u32, 500u64), (1, 1000), (2, 2000), (3, 4000), (4, 8000), (9, 8000), (40, 8000)] {
            let base = Duration::from_millis(base_ms);
            assert_eq!(p.delay(attempt, 0.0), base / 2, "attempt {attempt}");
            assert_eq!(p.delay(attempt, 1.0), base, "attempt {attempt}");
            let mid = p.delay(attempt, 0.5);
            assert!(mid > base / 2 && mid < base);
        }
    }

    #[test]
    fn reconnects_after_refusals_with_growing_delays_then_streams() {
        let refused = || Err(StreamError::transient("connection refused"));
        let (mut src, stats, _clocks, opened_at) =
            source(vec![refused(), refused(), refused(), Ok(vec![Step::Frame(0), Step::Frame(40)])]);
        assert_eq!(pts(&mut src), (0, true), "the first packet of a connection is fresh");
        assert_eq!(pts(&mut src), (40, false));
        let at = opened_at.lock().unwrap().clone();
        assert_eq!(at.len(), 4);
        // Gaps between attempts follow the policy: [base/2, base] for 500, 1000, 2000 ms.
        for (i, w) in at.windows(2).enumerate() {
            let base = POLICY.initial * (1 << i);
            let gap = w[1] - w[0];
            assert!(gap >= base / 2 && gap <= base, "attempt {i}: gap {gap:?} for base {base:?}");
        }
        let cam = &stats.cameras[0];
        assert_eq!(cam.state(), CameraState::Streaming);
        assert_eq!(cam.reason(), "");
        assert_eq!(crate::metrics::get(&cam.reconnects), 3);
    }

    #[test]
    fn a_dropped_connection_backs_off_from_the_initial_delay_again() {
        let (mut src, stats, _c, opened_at) = source(vec![
            Ok(vec![Step::Frame(0), Step::Drop("server closed the connection")]),
            Ok(vec![Step::Frame(1000)]),
        ]);
        assert_eq!(pts(&mut src), (0, true));
        assert_eq!(pts(&mut src), (1000, true), "resumes on a new, fresh connection");
        let at = opened_at.lock().unwrap().clone();
        let gap = at[1] - at[0];
        assert!(
            gap <= POLICY.initial + Duration::from_millis(40),
            "first retry after a drop uses the initial delay: {gap:?}"
        );
        assert_eq!(crate::metrics::get(&stats.cameras[0].reconnects), 1);
    }

    #[test]
    fn a_silent_stream_is_a_stall_and_is_reopened() {
        let (mut src, stats, clocks, opened_at) =
            source(vec![Ok(vec![Step::Frame(0), Step::Silence, Step::Silence]), Ok(vec![Step::Frame(7)])]);
        assert_eq!(pts(&mut src), (0, true));
        let t0 = clocks.monotonic();
        assert_eq!(pts(&mut src), (7, true));
        let cam = &stats.cameras[0];
        assert_eq!(crate::metrics::get(&cam.stalls), 1);
        let at = opened_at.lock().unwrap().clone();
        // Reopened after the stall timeout plus one backoff, not earlier.
        let reopened = at[1] - t0;
        assert!(reopened >= POLICY.stall && reopened <= POLICY.stall + POLICY.initial, "{reopened:?}");
    }

    #[test]
    fn a_permanent_error_shows_failed_with_its_reason_and_retries_at_the_cap() {
        let denied = || Err(StreamError::permanent("401 Unauthorized: check cameras[0].username/password"));
        let (mut src, stats, _c, opened_at) = source(vec![denied(), denied(), Ok(vec![Step::Frame(5)])]);
        // Watch the state from the opener's side: failed while retrying.
        assert_eq!(pts(&mut src), (5, true));
        let at = opened_at.lock().unwrap().clone();
        assert_eq!(at.len(), 3);
        for w in at.windows(2) {
            assert_eq!(w[1] - w[0], POLICY.max, "permanent failures retry at the longest delay");
        }
        assert_eq!(stats.cameras[0].state(), CameraState::Streaming);
    }

    #[test]
    fn failed_state_and_reason_are_visible_while_down_and_stop_ends_the_wait() {
        let (mut src, stats, _c, _) = source(vec![Err(StreamError::permanent("404 Not Found: no such stream path"))]);
        let stop = src.stop.clone();
        // Sets stop on the second attempt: the source must return None, not spin.
        struct StopOnSecond(Arc<AtomicBool>, u32);
        impl StreamOpener for StopOnSecond {
            fn open(&mut self) -> Result<Box<dyn LiveStream>, StreamError> {
                self.1 += 1;
                if self.1 >= 2 {
                    self.0.store(true, Ordering::SeqCst);
                }
                Err(StreamError::permanent("404 Not Found: no such stream path"))
            }
        }
        src.opener = Box::new(StopOnSecond(stop, 0));
        assert!(src.next_packet().unwrap().is_none());
        let cam = &stats.cameras[0];
        assert_eq!(cam.state(), CameraState::Failed);
        assert!(cam.reason().contains("404"), "{}", cam.reason());
    }
}
