//! Bounded single-producer/single-consumer queues between pipeline threads.
//!
//! A thin layer over `ringbuf`'s lock-free SPSC ring, allocated once with a
//! fixed capacity. Every ring has an explicit full policy at the push site
//! ([`Producer::push_or_drop`] counts the drop; [`Producer::push_wait`] waits
//! and counts the stall) and exposes its fill level for monitoring.

use ringbuf::traits::{Consumer as _, Observer as _, Producer as _, Split as _};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::Duration;

/// Counters shared by both ends of a ring.
#[derive(Default, Debug)]
pub struct RingStats {
    pub pushed: AtomicU64,
    pub popped: AtomicU64,
    pub dropped_full: AtomicU64,
    pub waits: AtomicU64,
}

pub struct Producer<T> {
    inner: HeapProd<T>,
    stats: Arc<RingStats>,
}

pub struct Consumer<T> {
    inner: HeapCons<T>,
    stats: Arc<RingStats>,
}

/// Creates a ring of `capacity` items (allocated here, once).
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let (p, c) = HeapRb::<T>::new(capacity).split();
    let stats = Arc::new(RingStats::default());
    (Producer { inner: p, stats: stats.clone() }, Consumer { inner: c, stats })
}

/// Waits with a short spin, then yields, then sleeps: low latency when the
/// peer is about to act, no burned core when it is idle.
#[derive(Default)]
pub struct Backoff {
    step: u32,
}

impl Backoff {
    pub(crate) fn snooze(&mut self) {
        if self.step < 8 {
            std::hint::spin_loop();
        } else if self.step < 16 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(if self.step < 64 { 100 } else { 1000 }));
        }
        self.step = self.step.saturating_add(1);
    }
    pub(crate) fn reset(&mut self) {
        self.step = 0;
    }
}

impl RingStats {
    /// Items queued now (pushed minus popped).
    pub fn len(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed).saturating_sub(self.popped.load(Ordering::Relaxed))
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Producer<T> {
    pub fn try_push(&mut self, item: T) -> Result<(), T> {
        let r = self.inner.try_push(item);
        if r.is_ok() {
            self.stats.pushed.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Pushes, or drops the item and counts it when the ring is full.
    /// Returns whether it was queued.
    pub(crate) fn push_or_drop(&mut self, item: T) -> bool {
        match self.try_push(item) {
            Ok(()) => true,
            Err(_) => {
                self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Waits for room (counting the stall) until pushed or `stop` is set.
    /// Returns the item back if stopped first.
    pub(crate) fn push_wait(&mut self, item: T, stop: &AtomicBool) -> Result<(), T> {
        self.push_wait_with(item, stop, || {})
    }

    /// As `push_wait`, calling `waiting` on every turn of the wait (a
    /// `monitor::stall::StallWatch` reports a wait that lasts).
    pub(crate) fn push_wait_with(
        &mut self,
        mut item: T,
        stop: &AtomicBool,
        mut waiting: impl FnMut(),
    ) -> Result<(), T> {
        let mut backoff = Backoff::default();
        let mut counted = false;
        loop {
            match self.try_push(item) {
                Ok(()) => return Ok(()),
                Err(back) => item = back,
            }
            if stop.load(Ordering::Relaxed) {
                return Err(item);
            }
            if !counted {
                self.stats.waits.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            waiting();
            backoff.snooze();
        }
    }

    pub fn len(&self) -> usize {
        self.inner.occupied_len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn stats(&self) -> &Arc<RingStats> {
        &self.stats
    }
}

impl<T> Consumer<T> {
    pub fn try_pop(&mut self) -> Option<T> {
        let v = self.inner.try_pop();
        if v.is_some() {
            self.stats.popped.fetch_add(1, Ordering::Relaxed);
        }
        v
    }
    pub fn len(&self) -> usize {
        self.inner.occupied_len()
    }
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.inner.capacity().get()
    }
    pub fn stats(&self) -> &Arc<RingStats> {
        &self.stats
    }
    /// True once the producer is gone and nothing is left to read.
    pub(crate) fn is_finished(&self) -> bool {
        self.inner.is_empty() && !self.inner.write_is_held()
    }
}

/// A ring whose receiver sleeps (parks) until an item comes, for a thread
/// with nothing else to do meanwhile (the detector's model thread waiting
/// for a batch, the detect thread waiting for a run): no spinning, no
/// sleep-sized latency, and no allocation per item (the receiver's thread
/// handle is stored once, at its first wait).
pub(crate) fn handoff<T>(capacity: usize) -> (HandoffSender<T>, HandoffReceiver<T>) {
    let (p, c) = channel(capacity);
    let waiter = Arc::new(Mutex::new(None));
    (HandoffSender { ring: Some(p), waiter: waiter.clone() }, HandoffReceiver { ring: c, waiter })
}

/// The receiving thread, once it has waited.
type Waiter = Arc<Mutex<Option<Thread>>>;

pub(crate) struct HandoffSender<T> {
    /// Taken on drop, so the receiver sees the sender gone when woken.
    ring: Option<Producer<T>>,
    waiter: Waiter,
}

pub(crate) struct HandoffReceiver<T> {
    ring: Consumer<T>,
    waiter: Waiter,
}

impl<T> HandoffSender<T> {
    /// Queues `item` and wakes the receiver; the item back if the ring is full.
    pub fn send(&mut self, item: T) -> Result<(), T> {
        match self.ring.as_mut() {
            Some(ring) => ring.try_push(item)?,
            None => return Err(item),
        }
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        if let Some(t) = crate::sync::lock(&self.waiter).as_ref() {
            t.unpark();
        }
    }
}

impl<T> Drop for HandoffSender<T> {
    fn drop(&mut self) {
        self.ring.take();
        self.wake();
    }
}

impl<T> HandoffReceiver<T> {
    /// The next item, without waiting.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        self.ring.try_pop()
    }

    /// The next item, waiting for it; None once the sender is gone and
    /// everything it sent was received.
    pub(crate) fn recv(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.ring.try_pop() {
                return Some(item);
            }
            if self.ring.is_finished() {
                return None;
            }
            {
                let mut w = crate::sync::lock(&self.waiter);
                if w.as_ref().map(|t| t.id()) != Some(std::thread::current().id()) {
                    *w = Some(std::thread::current());
                }
            }
            // Checked again after registering: an item sent before the
            // registration is seen here, one sent after it unparks us.
            if let Some(item) = self.ring.try_pop() {
                return Some(item);
            }
            if self.ring.is_finished() {
                return None;
            }
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handoff_delivers_everything_in_order_and_ends_with_its_sender() {
        let (mut tx, mut rx) = handoff::<u32>(2);
        let t = std::thread::spawn(move || {
            for i in 0..10_000 {
                let mut item = i;
                while let Err(back) = tx.send(item) {
                    item = back;
                    std::thread::yield_now();
                }
            }
        });
        for i in 0..10_000 {
            assert_eq!(rx.recv(), Some(i));
        }
        t.join().unwrap();
        assert_eq!(rx.recv(), None, "the sender is gone: recv returns instead of waiting");
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn full_ring_drops_and_counts() {
        let (mut p, mut c) = channel::<u32>(2);
        assert!(p.push_or_drop(1));
        assert!(p.push_or_drop(2));
        assert!(!p.push_or_drop(3));
        assert_eq!(p.stats().dropped_full.load(Ordering::Relaxed), 1);
        assert_eq!(c.try_pop(), Some(1));
        assert_eq!(c.try_pop(), Some(2));
        assert_eq!(c.try_pop(), None);
    }

    #[test]
    fn push_wait_delivers_everything_in_order() {
        let (mut p, mut c) = channel::<u32>(4);
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            for i in 0..10_000 {
                p.push_wait(i, &s2).unwrap();
            }
        });
        let mut next = 0;
        let mut backoff = Backoff::default();
        while next < 10_000 {
            match c.try_pop() {
                Some(v) => {
                    assert_eq!(v, next);
                    next += 1;
                    backoff.reset();
                }
                None => backoff.snooze(),
            }
        }
        t.join().unwrap();
        assert!(c.is_finished());
    }

    #[test]
    fn push_wait_gives_the_item_back_on_stop() {
        let (mut p, _c) = channel::<u32>(1);
        p.try_push(1).unwrap();
        let stop = AtomicBool::new(true);
        assert_eq!(p.push_wait(2, &stop), Err(2));
    }
}
