//! Fixed-size pool of I420 frame buffers, allocated once at start.
//!
//! Capture takes a free slot ([`FramePool::acquire`]), writes a decoded
//! picture into it once, then freezes it into a [`FrameRef`]: a cheap,
//! reference-counted, read-only handle that detect, track and the sink pass
//! along instead of copying pixels. When the last handle drops, the slot goes
//! back to the free bitmap. Memory is bounded by `slots * slot_bytes`, and an
//! empty pool is a counted condition for the caller, never an allocation.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Metadata travelling with a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameMeta {
    /// Camera index in the config.
    pub camera: u8,
    /// Frame number within the camera's stream (0-based, counts every decoded frame).
    pub seq: u64,
    pub width: u32,
    pub height: u32,
    /// Presentation time from the stream (RTP or file timing), milliseconds.
    pub pts_ms: u64,
    /// Wall-clock capture time, ms since the Unix epoch.
    pub captured_unix_ms: u64,
    /// Monotonic capture time (pipeline clock), nanoseconds.
    pub captured_mono_ns: u64,
}

impl FrameMeta {
    pub fn luma_len(&self) -> usize {
        self.width as usize * self.height as usize
    }
    pub fn i420_len(&self) -> usize {
        i420_len(self.width, self.height)
    }
}

pub fn i420_len(width: u32, height: u32) -> usize {
    let (w, h) = (width as usize, height as usize);
    w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
}

struct Slot {
    data: UnsafeCell<Box<[u8]>>,
    meta: UnsafeCell<FrameMeta>,
    refs: AtomicU32,
}

struct Inner {
    slots: Box<[Slot]>,
    /// One bit per slot, set = free.
    free: Box<[AtomicU64]>,
    slot_bytes: usize,
    exhausted: AtomicU64,
}

// A slot's cells are written only through the unique `FrameMut` (refs == 1,
// slot taken out of the free bitmap) and read only through `FrameRef`s made
// after that write; the bitmap and refcount publish the writes.
// SAFETY: so no cell is read while written (acquire/release ordering).
unsafe impl Sync for Inner {}
// SAFETY: `Inner` owns its slots' buffers (boxed, never aliased outside the
// pool's handles), so moving it to another thread moves nothing shared.
unsafe impl Send for Inner {}

#[derive(Clone)]
pub struct FramePool {
    inner: Arc<Inner>,
}

impl FramePool {
    /// Allocates every slot now; nothing is allocated later.
    pub fn new(slots: usize, slot_bytes: usize) -> Self {
        assert!(slots > 0 && slots <= u16::MAX as usize, "pool slots out of range");
        let slots_v: Vec<Slot> = (0..slots)
            .map(|_| Slot {
                data: UnsafeCell::new(vec![0u8; slot_bytes].into_boxed_slice()),
                meta: UnsafeCell::new(FrameMeta::default()),
                refs: AtomicU32::new(0),
            })
            .collect();
        let words = slots.div_ceil(64);
        let free: Vec<AtomicU64> = (0..words)
            .map(|w| {
                let n = (slots - w * 64).min(64);
                AtomicU64::new(if n == 64 { u64::MAX } else { (1u64 << n) - 1 })
            })
            .collect();
        FramePool {
            inner: Arc::new(Inner {
                slots: slots_v.into_boxed_slice(),
                free: free.into_boxed_slice(),
                slot_bytes,
                exhausted: AtomicU64::new(0),
            }),
        }
    }

    pub fn capacity(&self) -> usize {
        self.inner.slots.len()
    }

    pub(crate) fn slot_bytes(&self) -> usize {
        self.inner.slot_bytes
    }

    pub(crate) fn free_slots(&self) -> usize {
        self.inner.free.iter().map(|w| w.load(Ordering::Relaxed).count_ones() as usize).sum()
    }

    /// How many times `acquire` found the pool empty.
    pub fn exhausted_count(&self) -> u64 {
        self.inner.exhausted.load(Ordering::Relaxed)
    }

    /// Takes a free slot for writing, or `None` (counted) when all are in use.
    pub fn acquire(&self) -> Option<FrameMut> {
        for (w, word) in self.inner.free.iter().enumerate() {
            let mut cur = word.load(Ordering::Relaxed);
            while cur != 0 {
                let bit = cur.trailing_zeros() as usize;
                match word.compare_exchange_weak(cur, cur & !(1u64 << bit), Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => {
                        let idx = w * 64 + bit;
                        self.inner.slots[idx].refs.store(1, Ordering::Relaxed);
                        return Some(FrameMut { pool: self.inner.clone(), idx: idx as u16 });
                    }
                    Err(now) => cur = now,
                }
            }
        }
        self.inner.exhausted.fetch_add(1, Ordering::Relaxed);
        None
    }
}

fn release(inner: &Inner, idx: u16) {
    let slot = &inner.slots[idx as usize];
    if slot.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
        let (w, bit) = (idx as usize / 64, idx as usize % 64);
        inner.free[w].fetch_or(1u64 << bit, Ordering::Release);
    }
}

/// Unique, writable access to one slot.
pub struct FrameMut {
    pool: Arc<Inner>,
    idx: u16,
}

impl FrameMut {
    /// The whole slot buffer; callers write `meta.i420_len()` bytes of it.
    pub(crate) fn buffer_mut(&mut self) -> &mut [u8] {
        // SAFETY: unique handle (see `Inner`).
        unsafe { &mut *self.pool.slots[self.idx as usize].data.get() }
    }
    pub(crate) fn meta_mut(&mut self) -> &mut FrameMeta {
        // SAFETY: unique handle (see `Inner`).
        unsafe { &mut *self.pool.slots[self.idx as usize].meta.get() }
    }
    /// Ends writing: from here on the frame is shared and read-only.
    pub(crate) fn freeze(self) -> FrameRef {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: moving the Arc out of a ManuallyDrop that is never used again.
        let pool = unsafe { std::ptr::read(&this.pool) };
        FrameRef { pool, idx: this.idx }
    }
}

impl Drop for FrameMut {
    fn drop(&mut self) {
        release(&self.pool, self.idx);
    }
}

/// Shared, read-only handle to a frame in the pool. Clone is a refcount bump.
pub struct FrameRef {
    pool: Arc<Inner>,
    idx: u16,
}

impl FrameRef {
    pub(crate) fn meta(&self) -> &FrameMeta {
        // SAFETY: frozen frames are read-only.
        unsafe { &*self.pool.slots[self.idx as usize].meta.get() }
    }
    /// The I420 picture: Y plane, then U, then V.
    pub fn i420(&self) -> &[u8] {
        let len = self.meta().i420_len();
        // SAFETY: frozen frames are read-only.
        unsafe { &(&*self.pool.slots[self.idx as usize].data.get())[..len] }
    }
    pub(crate) fn planes(&self) -> I420<'_> {
        let m = self.meta();
        I420::new(self.i420(), m.width, m.height)
    }
    pub fn slot(&self) -> u16 {
        self.idx
    }
    /// The whole slot buffer (for slots that hold something other than a
    /// picture, such as a face's landmarks).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: frozen frames are read-only.
        unsafe { &*self.pool.slots[self.idx as usize].data.get() }
    }
}

impl Clone for FrameRef {
    fn clone(&self) -> Self {
        self.pool.slots[self.idx as usize].refs.fetch_add(1, Ordering::Relaxed);
        FrameRef { pool: self.pool.clone(), idx: self.idx }
    }
}

impl Drop for FrameRef {
    fn drop(&mut self) {
        release(&self.pool, self.idx);
    }
}

impl std::fmt::Debug for FrameRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrameRef(slot {}, {:?})", self.idx, self.meta())
    }
}

/// Borrowed I420 planes with their strides (tightly packed).
#[derive(Clone, Copy)]
pub struct I420<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub width: u32,
    pub height: u32,
}

impl<'a> I420<'a> {
    pub fn new(buf: &'a [u8], width: u32, height: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (y, rest) = buf.split_at(w * h);
        let (u, v) = rest.split_at(cw * ch);
        I420 { y, u, v: &v[..cw * ch], width, height }
    }
    pub(crate) fn chroma_stride(&self) -> usize {
        (self.width as usize).div_ceil(2)
    }
    /// RGB of one pixel (BT.601 limited range, as x264/openh264 emit by default).
    #[inline]
    pub(crate) fn rgb_at(&self, x: usize, y: usize) -> [u8; 3] {
        let yy = self.y[y * self.width as usize + x] as i32;
        let ci = (y / 2) * self.chroma_stride() + x / 2;
        yuv_to_rgb(yy, self.u[ci] as i32, self.v[ci] as i32)
    }
}

#[inline]
pub(crate) fn yuv_to_rgb(y: i32, u: i32, v: i32) -> [u8; 3] {
    let c = (y - 16).max(0) * 298;
    let d = u - 128;
    let e = v - 128;
    let r = (c + 409 * e + 128) >> 8;
    let g = (c - 100 * d - 208 * e + 128) >> 8;
    let b = (c + 516 * d + 128) >> 8;
    [r.clamp(0, 255) as u8, g.clamp(0, 255) as u8, b.clamp(0, 255) as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_come_back_when_the_last_reference_drops() {
        let pool = FramePool::new(3, 64);
        let mut a = pool.acquire().unwrap();
        a.buffer_mut()[0] = 7;
        *a.meta_mut() = FrameMeta { width: 4, height: 4, ..Default::default() };
        let a = a.freeze();
        let a2 = a.clone();
        let _b = pool.acquire().unwrap();
        let _c = pool.acquire().unwrap();
        assert!(pool.acquire().is_none(), "pool of 3 gives out 3 slots");
        assert_eq!(pool.exhausted_count(), 1);
        drop(a);
        assert!(pool.acquire().is_none(), "a clone still holds the slot");
        assert_eq!(a2.i420()[0], 7);
        drop(a2);
        assert_eq!(pool.free_slots(), 1);
        assert!(pool.acquire().is_some());
    }

    #[test]
    fn pool_works_across_threads_without_losing_slots() {
        let pool = FramePool::new(70, 16);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = pool.clone();
                std::thread::spawn(move || {
                    for _ in 0..5_000 {
                        if let Some(f) = p.acquire() {
                            let r = f.freeze();
                            let r2 = r.clone();
                            drop(r);
                            drop(r2);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(pool.free_slots(), 70);
    }

    #[test]
    fn bt601_grey_and_white() {
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
    }
}
