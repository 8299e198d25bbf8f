//! Live preview of a camera: the track thread publishes its latest frame
//! (a pool reference, no copy) with the tracked boxes, but only while a
//! viewer is connected and at most `fps` times a second; the viewer's own
//! HTTP thread draws and JPEG-encodes it. Nobody watching = no cost.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::geom::BBox;
use crate::pool::{FrameRef, I420};

pub const MAX_BOXES: usize = 32;

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
}

impl Preview {
    /// Whether the track thread should publish now (someone watches and the
    /// last publish is older than `interval_ns`).
    pub fn wanted(&self, now_ns: u64, interval_ns: u64) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
            && now_ns.saturating_sub(self.last_ns.load(Ordering::Relaxed)) >= interval_ns
    }

    /// Never blocks: if a viewer holds the lock, this frame is skipped.
    pub fn publish(&self, now_ns: u64, frame: PreviewFrame) {
        if let Ok(mut g) = self.latest.try_lock() {
            *g = Some(frame);
            self.last_ns.store(now_ns, Ordering::Relaxed);
            self.version.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn take(&self) -> Option<PreviewFrame> {
        self.latest.lock().ok()?.take()
    }

    /// Drops a held frame (its pool slot) when the last viewer leaves.
    pub fn clear(&self) {
        if let Ok(mut g) = self.latest.lock() {
            *g = None;
        }
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

/// Draws `p` into an RGB buffer scaled to at most `max_width`; returns (w, h).
pub fn render(p: &PreviewFrame, max_width: u32, rgb: &mut Vec<u8>) -> (u32, u32) {
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
    let mut put = |x: i64, y: i64, c: [u8; 3]| {
        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
            let i = (y as usize * w + x as usize) * 3;
            rgb[i..i + 3].copy_from_slice(&c);
        }
    };
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
