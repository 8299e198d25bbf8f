//! SIGTERM/SIGINT handling: the first signal asks the pipeline to stop in
//! order (ingest stops, rings drain, open tracks are closed into events,
//! events are written or spooled, senders get `drain_timeout_s`); a second
//! signal exits at once. The handler only bumps an atomic counter (all it
//! may safely do); a watcher thread acts on it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

static SIGNALS: AtomicU32 = AtomicU32::new(0);

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
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || loop {
        match SIGNALS.load(Ordering::SeqCst) {
            0 => {}
            1 => {
                if !s2.swap(true, Ordering::SeqCst) {
                    log::info!("stop requested: draining (a second signal exits at once)");
                }
            }
            _ => {
                log::warn!("second stop signal: exiting now");
                std::process::exit(130);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    });
    stop
}
