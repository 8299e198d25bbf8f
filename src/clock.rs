//! Time behind a trait, so reconnect, stall and batching logic can be
//! tested deterministically without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clocks: Send + Sync + 'static {
    /// Monotonic time since an arbitrary origin, for intervals.
    fn monotonic(&self) -> Duration;
    /// Wall-clock time as milliseconds since the Unix epoch, for timestamps.
    fn unix_ms(&self) -> u64;
    /// Waits `d` (a simulated clock advances instead).
    fn sleep(&self, d: Duration);
}

#[derive(Clone)]
pub struct RealClocks {
    origin: Instant,
}

impl Default for RealClocks {
    fn default() -> Self {
        RealClocks { origin: Instant::now() }
    }
}

impl Clocks for RealClocks {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
    fn unix_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A clock that moves only when told to (or when something sleeps on it).
#[derive(Clone, Default)]
pub struct SimulatedClocks {
    nanos: Arc<AtomicU64>,
    unix_origin_ms: u64,
}

impl SimulatedClocks {
    pub fn new(unix_origin_ms: u64) -> Self {
        SimulatedClocks { nanos: Arc::new(AtomicU64::new(0)), unix_origin_ms }
    }
    pub(crate) fn advance(&self, d: Duration) {
        self.nanos.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clocks for SimulatedClocks {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
    fn unix_ms(&self) -> u64 {
        self.unix_origin_ms + self.monotonic().as_millis() as u64
    }
    fn sleep(&self, d: Duration) {
        self.advance(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clock_moves_only_when_told() {
        let c = SimulatedClocks::new(1_000);
        assert_eq!(c.monotonic(), Duration::ZERO);
        c.sleep(Duration::from_millis(250));
        assert_eq!(c.unix_ms(), 1_250);
        assert_eq!(c.monotonic(), Duration::from_millis(250));
    }
}
