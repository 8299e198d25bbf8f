//! Live preview of a camera: the track thread publishes its latest frame
//! (a pool reference, no copy) with the tracked boxes, but only while a
//! viewer is connected and at most `fps` times a second; the viewer's own
//! HTTP thread draws and JPEG-encodes it. Nobody watching = no cost.
//! Cameras with motion gating also publish the gate's mask of changed
//! points (`?motion=1` tints them red), from the detect thread, lock-free.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::detect::motion::{mask_has, MASK_WORDS};
use crate::geom::BBox;
use crate::pool::{FrameRef, I420};

pub(crate) const MAX_BOXES: usize = 32;

#[derive(Clone, Copy, Debug)]
pub struct PreviewBox {
    pub bbox: BBox,
    pub track_id: u32,
    /// This frame holds the track's best face so far.
    pub best: bool,
}

pub struct PreviewFrame {
    pub frame: FrameRef,
    pub boxes: heapless::Vec<PreviewBox, MAX_BOXES>,
}

#[derive(Default)]
pub struct Preview {
    pub watchers: AtomicUsize,
    last_ns: AtomicU64,
    latest: Mutex<Option<PreviewFrame>>,
    /// Bumped on every publish, so viewers can tell a new frame.
    pub version: AtomicU64,
    /// The motion gate's latest mask, for cameras with `detection = "motion"`.
    pub motion: MotionMask,
    /// The camera's detection region (`detect_roi`) in the current frame
    /// size, x | y << 16 | w << 32 | h << 48; 0 = the whole frame. Stored
    /// by the detect thread when it resolves the region.
    pub region: AtomicU64,
}

impl Preview {
    pub(crate) fn set_region(&self, r: Option<[u32; 4]>) {
        let v = r.map_or(0, |[x, y, w, h]| {
            (x as u64 & 0xffff) | (y as u64 & 0xffff) << 16 | (w as u64 & 0xffff) << 32 | (h as u64 & 0xffff) << 48
        });
        self.region.store(v, Ordering::Relaxed);
    }

    /// [x, y, w, h] of the detection region, if the camera has one.
    pub fn region(&self) -> Option<[u32; 4]> {
        let v = self.region.load(Ordering::Relaxed);
        (v != 0).then_some([v as u32 & 0xffff, (v >> 16) as u32 & 0xffff, (v >> 32) as u32 & 0xffff, (v >> 48) as u32])
    }
}

/// The motion gate's changed points, shared without a lock: the detect
/// thread stores words, a viewer loads them (a mask torn between two
/// frames only shows a cell of either, which a preview can afford).
pub struct MotionMask {
    words: Box<[AtomicU64; MASK_WORDS]>,
    /// Grid points across << 16 | down; 0 = no mask published yet.
    grid: AtomicU32,
}

impl Default for MotionMask {
    fn default() -> Self {
        MotionMask { words: Box::new(std::array::from_fn(|_| AtomicU64::new(0))), grid: AtomicU32::new(0) }
    }
}

impl MotionMask {
    pub fn store(&self, mask: &[u64; MASK_WORDS], grid: (usize, usize)) {
        for (w, m) in self.words.iter().zip(mask.iter()) {
            w.store(*m, Ordering::Relaxed);
        }
        self.grid.store(((grid.0 as u32) << 16) | grid.1 as u32, Ordering::Release);
    }

    /// A copy of the mask and its grid, or None before the first store.
    pub fn load(&self) -> Option<([u64; MASK_WORDS], (usize, usize))> {
        let g = self.grid.load(Ordering::Acquire);
        if g == 0 {
            return None;
        }
        let words = std::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
        Some((words, ((g >> 16) as usize, (g & 0xffff) as usize)))
    }
}

impl Preview {
    /// Whether the track thread should publish now (someone watches and the
    /// last publish is older than `interval_ns`).
    pub(crate) fn wanted(&self, now_ns: u64, interval_ns: u64) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
            && now_ns.saturating_sub(self.last_ns.load(Ordering::Relaxed)) >= interval_ns
    }

    /// Never blocks: if a viewer holds the lock, this frame is skipped.
    pub(crate) fn publish(&self, now_ns: u64, frame: PreviewFrame) {
        if let Some(mut g) = crate::sync::try_lock(&self.latest) {
            *g = Some(frame);
            self.last_ns.store(now_ns, Ordering::Relaxed);
            self.version.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn take(&self) -> Option<PreviewFrame> {
        crate::sync::lock(&self.latest).take()
    }

    /// Drops a held frame (its pool slot) when the last viewer leaves.
    pub fn clear(&self) {
        *crate::sync::lock(&self.latest) = None;
    }
}

/// 3x5 bitmap digits for track ids.
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 2, 2, 2],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

/// Draws `p` into an RGB buffer scaled to at most `max_width`, with the
/// motion mask's changed cells tinted red and the detection region outlined
/// (dashed, cyan) when given; returns (w, h).
pub fn render(
    p: &PreviewFrame,
    max_width: u32,
    motion: Option<&([u64; MASK_WORDS], (usize, usize))>,
    region: Option<[u32; 4]>,
    rgb: &mut Vec<u8>,
) -> (u32, u32) {
    let pic: I420<'_> = p.frame.planes();
    let step = pic.width.div_ceil(max_width.max(1)).max(1) as usize;
    let (w, h) = (pic.width as usize / step, pic.height as usize / step);
    rgb.clear();
    rgb.reserve(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&pic.rgb_at(x * step, y * step));
        }
    }
    if let Some((mask, (gw, gh))) = motion.filter(|m| m.1 .0 > 0 && m.1 .1 > 0) {
        // Grid point (gx, gy) stands for the frame's cell of that index.
        for y in 0..h {
            let gy = (y * step * gh / pic.height as usize).min(gh - 1);
            for x in 0..w {
                let gx = (x * step * gw / pic.width as usize).min(gw - 1);
                if mask_has(mask, gx, gy) {
                    let i = (y * w + x) * 3;
                    rgb[i] = rgb[i] / 2 + 127;
                    rgb[i + 1] /= 2;
                    rgb[i + 2] /= 2;
                }
            }
        }
    }
    let mut put = |x: i64, y: i64, c: [u8; 3]| {
        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
            let i = (y as usize * w + x as usize) * 3;
            rgb[i..i + 3].copy_from_slice(&c);
        }
    };
    if let Some([rx, ry, rw, rh]) = region {
        let (x1, y1) = ((rx as usize / step) as i64, (ry as usize / step) as i64);
        let (x2, y2) = (((rx + rw) as usize / step) as i64 - 1, ((ry + rh) as usize / step) as i64 - 1);
        let cyan = [0, 220, 255];
        for x in (x1..=x2).filter(|x| (x / 6) % 2 == 0) {
            put(x, y1, cyan);
            put(x, y2, cyan);
        }
        for y in (y1..=y2).filter(|y| (y / 6) % 2 == 0) {
            put(x1, y, cyan);
            put(x2, y, cyan);
        }
    }
    for b in p.boxes.iter() {
        let c = if b.best { [40, 220, 90] } else { [255, 200, 0] };
        let s = step as f32;
        let (x1, y1, x2, y2) =
            ((b.bbox.x1 / s) as i64, (b.bbox.y1 / s) as i64, (b.bbox.x2 / s) as i64, (b.bbox.y2 / s) as i64);
        for t in 0..2 {
            for x in x1..=x2 {
                put(x, y1 + t, c);
                put(x, y2 - t, c);
            }
            for y in y1..=y2 {
                put(x1 + t, y, c);
                put(x2 - t, y, c);
            }
        }
        // Track id above the box, digits 3x5 scaled x2.
        let label = b.track_id.to_string();
        for (k, ch) in label.bytes().enumerate() {
            let g = DIGITS[(ch - b'0') as usize];
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                            put(x1 + (k as i64 * 8) + col * 2 + dx, y1 - 12 + row as i64 * 2 + dy, c);
                        }
                    }
                }
            }
        }
    }
    (w as u32, h as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::motion::{MotionGate, GRID_H};
    use crate::pool::FramePool;

    /// A grey 320x240 frame whose luma has a bright 40x40 square at (x, y).
    fn frame(pool: &FramePool, square: Option<(usize, usize)>) -> FrameRef {
        let (w, h) = (320usize, 240usize);
        let mut f = pool.acquire().expect("slot");
        let buf = f.buffer_mut();
        buf[..w * h].fill(100);
        buf[w * h..w * h * 3 / 2].fill(128);
        if let Some((sx, sy)) = square {
            for y in sy..sy + 40 {
                buf[y * w + sx..y * w + sx + 40].fill(240);
            }
        }
        let m = f.meta_mut();
        (m.width, m.height) = (w as u32, h as u32);
        f.freeze()
    }

    #[test]
    fn the_motion_mask_tints_what_moved_and_nothing_else() {
        let pool = FramePool::new(2, 320 * 240 * 3 / 2);
        let mut gate = MotionGate::new(12, 0.002);
        let still = frame(&pool, None);
        gate.observe(still.planes().y, 320, 240);
        drop(still);
        let moved = frame(&pool, Some((200, 120)));
        assert!(gate.observe(moved.planes().y, 320, 240));
        let shared = MotionMask::default();
        assert!(shared.load().is_none(), "nothing published yet");
        let (mask, grid) = gate.mask();
        shared.store(mask, grid);
        let loaded = shared.load().expect("published");
        assert_eq!(loaded.1, (160, GRID_H), "320x240: 160 points across, 90 down");
        let p = PreviewFrame { frame: moved, boxes: heapless::Vec::new() };
        let (mut plain, mut tinted) = (Vec::new(), Vec::new());
        let (w, _) = render(&p, 320, None, None, &mut plain);
        render(&p, 320, Some(&loaded), None, &mut tinted);
        let px =
            |rgb: &[u8], x: usize, y: usize| -> [u8; 3] { rgb[(y * w as usize + x) * 3..][..3].try_into().unwrap() };
        // Inside the square: redder than without the mask, and less green.
        let (a, b) = (px(&plain, 220, 140), px(&tinted, 220, 140));
        assert!(b[0] > b[1] + 50 && b[1] < a[1], "square {a:?} -> {b:?}");
        // Far from it: unchanged.
        assert_eq!(px(&plain, 40, 40), px(&tinted, 40, 40));
        // The detection region is outlined in cyan; inside it, nothing changes.
        let pv = Preview::default();
        assert_eq!(pv.region(), None);
        pv.set_region(Some([40, 20, 200, 100]));
        assert_eq!(pv.region(), Some([40, 20, 200, 100]));
        let mut outlined = Vec::new();
        render(&p, 320, None, pv.region(), &mut outlined);
        assert_eq!(px(&outlined, 40, 20), [0, 220, 255]);
        assert_eq!(px(&outlined, 239, 24), [0, 220, 255]);
        assert_eq!(px(&outlined, 100, 60), px(&plain, 100, 60));
    }
}
