//! Sender workers: a pool of threads per remote sink, each leasing due
//! events from the sink's spool, delivering them, and settling the outcome:
//! done (removed), retry (capped exponential backoff with jitter), or
//! permanent (dead-letter directory, reason logged).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::spool::Spool;
use super::{Delivery, Sink};

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
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
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    (cores / 2).max(4)
}

pub struct SenderPool {
    pub spool: Arc<Spool>,
    pub sink_name: String,
    handles: Vec<JoinHandle<()>>,
}

impl SenderPool {
    pub fn start(
        sink: Arc<dyn Sink>,
        spool: Arc<Spool>,
        workers: usize,
        retry: RetryPolicy,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let sink_name = sink.name().to_string();
        let handles = (0..workers.max(1))
            .map(|i| {
                let (sink, spool, stop) = (sink.clone(), spool.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("send-{}-{i}", sink.name()))
                    .spawn(move || {
                        crate::board::pin_current_thread(crate::board::Role::Sender);
                        work(&*sink, &spool, retry, &stop)
                    })
                    .expect("spawn sender thread")
            })
            .collect();
        SenderPool { spool, sink_name, handles }
    }

    /// Waits up to `timeout` for the spool to empty, then stops the workers
    /// (an in-flight send finishes first). Returns how many events remain
    /// spooled for the next start.
    pub fn finish(self, timeout: Duration) -> usize {
        self.spool.wait_drained(timeout);
        self.spool.close();
        for h in self.handles {
            let _ = h.join();
        }
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

fn work(sink: &dyn Sink, spool: &Spool, retry: RetryPolicy, stop: &AtomicBool) {
    loop {
        let Some(lease) = spool.take(Duration::from_millis(200)) else {
            if stop.load(Ordering::Relaxed) || spool.is_closed() {
                return;
            }
            continue;
        };
        let id = &lease.record.record.id;
        match sink.deliver(&lease.record) {
            Delivery::Done(info) => {
                log::info!("sink {}: event {id} delivered ({info})", sink.name());
                spool.done(lease.seq);
            }
            Delivery::Retry(why) => {
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
}
