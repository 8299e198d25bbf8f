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
/// A role without a core of its own keeps off the cores the pinned roles
/// hold (see [`fenced_cores`]): a pinned core helps only while it is kept
/// for its thread, and capture threads (with their decoder threads, which
/// inherit the mask) would otherwise run there too. A failure (core absent
/// on this machine) is logged, never fatal: a pipeline running unpinned
/// beats one that does not run.
pub(crate) fn pin_current_thread(role: Role) {
    let core = role.core();
    if core < 0 {
        keep_off_pinned_cores(role);
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

/// Every role's core (-1: none).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const PINNED: [i32; 5] = [PIN_CAPTURE, PIN_DETECT, PIN_TRACK, PIN_LANDMARKS, PIN_SENDER];

/// The cores an unpinned thread may use: those it is `allowed` without
/// those in `pinned`, or None (no change) when nothing is pinned or fewer
/// than two cores would be left (a small board shares its cores).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn fenced_cores(allowed: &[usize], pinned: &[i32]) -> Option<Vec<usize>> {
    let held: Vec<usize> = pinned.iter().filter(|&&c| c >= 0).map(|&c| c as usize).collect();
    if held.is_empty() {
        return None;
    }
    let free: Vec<usize> = allowed.iter().copied().filter(|c| !held.contains(c)).collect();
    (free.len() >= 2).then_some(free)
}

/// The cores this thread may run on (its affinity mask).
#[cfg(target_os = "linux")]
fn allowed_cores() -> Option<Vec<usize>> {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    let now = sched_getaffinity(Pid::from_raw(0)).ok()?;
    Some((0..CpuSet::count()).filter(|&c| now.is_set(c).unwrap_or(false)).collect())
}

/// How many cores the unpinned threads (capture with its decoders,
/// senders) have: the process's cores without those the pinned roles hold,
/// where [`fenced_cores`] keeps them off those. Call it from an unpinned
/// thread (the pipeline's start).
pub fn cores_for_unpinned() -> usize {
    #[cfg(target_os = "linux")]
    if let Some(allowed) = allowed_cores() {
        return fenced_cores(&allowed, &PINNED).map_or(allowed.len(), |free| free.len()).max(1);
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(target_os = "linux")]
fn keep_off_pinned_cores(role: Role) {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let Some(allowed) = allowed_cores() else { return };
    let Some(free) = fenced_cores(&allowed, &PINNED) else { return };
    let mut set = CpuSet::new();
    let r = free.iter().try_for_each(|&c| set.set(c)).and_then(|_| sched_setaffinity(Pid::from_raw(0), &set));
    match r {
        Ok(()) => log::debug!("{role:?} thread kept to cores {free:?}, off the pinned threads' cores"),
        Err(e) => log::warn!("{role:?} thread: cannot keep off the pinned cores ({e}); running on any core"),
    }
}

#[cfg(not(target_os = "linux"))]
fn keep_off_pinned_cores(role: Role) {
    log::debug!("{role:?} thread: core sets are not supported on this OS");
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

#[cfg(test)]
mod tests {
    use super::fenced_cores;

    #[test]
    fn unpinned_threads_keep_off_the_pinned_cores_where_enough_are_left() {
        let all: Vec<usize> = (0..16).collect();
        // x86-cuda: detect 0, track 1, landmarks 2.
        assert_eq!(fenced_cores(&all, &[-1, 0, 1, 2, -1]), Some((3..16).collect()));
        // Nothing pinned: no change.
        assert_eq!(fenced_cores(&all, &[-1; 5]), None);
        // A 2-core box with one pinned core: sharing beats one core for all.
        assert_eq!(fenced_cores(&[0, 1], &[-1, 0, -1, -1, -1]), None);
        // Only the cores this process may use count (a cpuset).
        assert_eq!(fenced_cores(&[4, 5, 6], &[-1, 4, -1, -1, -1]), Some(vec![5, 6]));
    }
}
