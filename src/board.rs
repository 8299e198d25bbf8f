//! The board profile compiled in (see `boards/` and `build.rs`) and the
//! thread-to-core pinning it asks for.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}
pub use generated::*;

/// Pipeline thread roles a profile can pin to a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Capture,
    Detect,
    Track,
    Landmarks,
    Sender,
}

impl Role {
    pub fn core(self) -> i32 {
        match self {
            Role::Capture => PIN_CAPTURE,
            Role::Detect => PIN_DETECT,
            Role::Track => PIN_TRACK,
            Role::Landmarks => PIN_LANDMARKS,
            Role::Sender => PIN_SENDER,
        }
    }
}

/// Pins the calling thread to the core the profile gives `role`, if any.
/// A failure (core absent on this machine) is logged, never fatal: a
/// pipeline running unpinned beats one that does not run.
pub(crate) fn pin_current_thread(role: Role) {
    let core = role.core();
    if core < 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use nix::sched::{sched_setaffinity, CpuSet};
        use nix::unistd::Pid;
        let mut set = CpuSet::new();
        let r = set.set(core as usize).and_then(|_| sched_setaffinity(Pid::from_raw(0), &set));
        match r {
            Ok(()) => log::debug!("{role:?} thread pinned to core {core}"),
            Err(e) => {
                log::warn!("{role:?} thread: cannot pin to core {core} ({e}); running unpinned")
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    log::debug!("{role:?} thread: pinning to core {core} is not supported on this OS");
}

/// Bytes of one frame-pool slot: an I420 frame of the largest accepted size.
pub const FRAME_SLOT_BYTES: usize = (MAX_FRAME_WIDTH as usize) * (MAX_FRAME_HEIGHT as usize) * 3 / 2;

/// The board's frame limit and what it costs, for errors: "board `x86-cpu`'s
/// largest frame, 3840x2160 (a frame pool of 48 slots of 12.4 MB, 597 MB of
/// address space; memory is used only as frames fill it)".
pub(crate) fn frame_limit_text() -> String {
    let mb = |b: usize| b as f64 / 1e6;
    format!(
        "board `{NAME}`'s largest frame, {MAX_FRAME_WIDTH}x{MAX_FRAME_HEIGHT} (a frame pool of {FRAME_POOL_SLOTS} slots of \
         {:.1} MB, {:.0} MB of address space, used only as frames fill it); a board profile with a larger \
         max_frame_width/max_frame_height (boards/*.toml) takes it",
        mb(FRAME_SLOT_BYTES),
        mb(FRAME_SLOT_BYTES * FRAME_POOL_SLOTS)
    )
}
