//! SIGTERM/SIGINT handling: the first signal asks the pipeline to stop in
//! order (ingest stops, rings drain, open tracks are closed into events,
//! events are written or spooled, senders get `drain_timeout_s`); a second
//! signal exits at once. The handler only bumps an atomic counter (all it
//! may safely do); a watcher thread acts on it.
//!
//! Signals that arrive together (`timeout -s INT` and a terminal's Ctrl-C
//! reach the process twice at once) count as one: only a signal more than
//! [`SECOND_SIGNAL_AFTER`] after the first is the "exit now" one. Exiting
//! now is `_exit`: no atexit handlers or static destructors run while
//! worker threads are inside ONNX Runtime, so the runtime logs no error on
//! the way out.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// A signal this long after the first is a second one.
pub(crate) const SECOND_SIGNAL_AFTER: Duration = Duration::from_millis(500);

extern "C" fn on_signal(_: nix::libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Installs the handlers and returns the stop flag they set.
pub fn install() -> Arc<AtomicBool> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only touches an atomic.
        if let Err(e) = unsafe { sigaction(sig, &action) } {
            log::warn!("cannot handle {sig}: {e}");
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        // (signal count, when) of the first stop.
        let mut first: Option<(u32, std::time::Instant)> = None;
        loop {
            let n = SIGNALS.load(Ordering::SeqCst);
            match first {
                None if n > 0 => {
                    first = Some((n, std::time::Instant::now()));
                    s2.store(true, Ordering::SeqCst);
                    log::info!("stop requested: draining (a second signal exits at once)");
                }
                Some((seen, at)) if n > seen => {
                    if at.elapsed() < SECOND_SIGNAL_AFTER {
                        // Sent together with the first: the same request.
                        first = Some((n, at));
                    } else {
                        log::warn!("second stop signal: exiting now");
                        // SAFETY: ends the process without running atexit
                        // handlers or destructors (see the module docs).
                        unsafe { nix::libc::_exit(130) };
                    }
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    stop
}
