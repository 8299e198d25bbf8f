//! A counting global allocator: the binary installs it so `faceflow bench`
//! can report heap allocations per frame, and `tests/alloc.rs` installs it
//! to prove steady-state frames allocate nothing.
//!
//! It costs one relaxed atomic add per allocation, and the hot path makes
//! none. Only Rust-side allocations pass through it: ONNX Runtime and the
//! C decoders allocate with their own `malloc` calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting allocations and reallocations.
pub struct CountingAllocator;

// The counter is an atomic with no effect on the memory handed out.
// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds GlobalAlloc's contract.
unsafe impl GlobalAlloc for CountingAllocator {
    // SAFETY (contract): the caller's guarantees, passed on to `System`.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `alloc` (non-zero size) are
        // passed on as they came.
        unsafe { System.alloc(layout) }
    }
    // SAFETY (contract): the caller's guarantees, passed on to `System`.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    // SAFETY (contract): `ptr` came from this allocator, that is from
    // `System`, with this `layout`, as GlobalAlloc requires of the caller.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees (see above).
        unsafe { System.dealloc(ptr, layout) }
    }
    // SAFETY (contract): as for `dealloc`, and `new_size` is non-zero and
    // fits `isize` once rounded to `layout`'s alignment.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees (see above).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations so far in this process; stays 0 where the allocator is not
/// installed (e.g. the library's unit tests).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Whether this process counts (anything that ran has allocated by now).
pub fn installed() -> bool {
    allocations() > 0
}
