//! One policy for poisoned locks: recover the data and go on.
//!
//! A mutex is poisoned when a thread panicked holding it. That panic is
//! already reported (the pipeline joins every thread and names the one that
//! panicked); the data under faceflow's locks (a spool's index, the
//! gallery, the monitor's lists, a ring's waiter) is left consistent at
//! every step or only appended to, so taking down the sender threads or the
//! panel over another thread's panic would only lose events or visibility.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

/// Locks `m`, recovering the guard of a poisoned mutex.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks `m` if no one holds it now (None when someone does), recovering
/// the guard of a poisoned mutex. For writers that must never wait.
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Waits on `cv` for at most `timeout`, recovering a poisoned guard.
pub(crate) fn wait_timeout<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>, timeout: Duration) -> MutexGuard<'a, T> {
    cv.wait_timeout(guard, timeout).unwrap_or_else(PoisonError::into_inner).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_gives_its_data_back() {
        let m = std::sync::Arc::new(Mutex::new(vec![1]));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            g.push(2);
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), vec![1, 2]);
        assert_eq!(*try_lock(&m).expect("free, though poisoned"), vec![1, 2]);
        let held = lock(&m);
        assert!(try_lock(&m).is_none(), "held: no waiting");
        drop(held);
    }
}
