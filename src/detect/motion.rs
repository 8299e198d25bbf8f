//! Motion gating (`detection = "motion"`), as Frigate gates its object
//! detector: a camera with nothing moving and no live track needs no
//! inference.
//!
//! The luma plane is sampled on a fixed grid (at most [`GRID_W`] x
//! [`GRID_H`] points, each the mean of a 2x2 block, so single-pixel noise
//! averages out) and compared with a running background average. A point
//! has changed when it differs from the background by more than
//! `motion_threshold` grey levels; the frame has motion when at least
//! `motion_min_share` of the points changed. The background follows the
//! scene slowly (1/16 per frame) so light changes fade in without
//! triggering, and everything is allocated at start. The points that
//! changed are kept as a bit mask, which the panel's preview can show.

/// Grid points across and down (1080p: one every 12 pixels).
pub(crate) const GRID_W: usize = 160;
pub(crate) const GRID_H: usize = 90;

/// Words of the changed-points mask (one bit per grid point, row-major
/// over the full `GRID_W` x `GRID_H` grid).
pub(crate) const MASK_WORDS: usize = (GRID_W * GRID_H).div_ceil(64);

/// Background = background + (sample - background) / 2^BG_SHIFT.
const BG_SHIFT: u32 = 4;

pub(crate) struct MotionGate {
    /// Background in grey levels x 16 (fixed point).
    bg: Vec<u16>,
    size: (u32, u32),
    threshold: u16,
    min_changed: usize,
    min_share: f32,
    /// The share of grid points that changed in the last frame.
    pub last_share: f32,
    /// Which points changed in the last frame (bit `gy * GRID_W + gx`).
    mask: Box<[u64; MASK_WORDS]>,
    /// The grid used for the last frame: points across and down.
    grid: (usize, usize),
}

impl MotionGate {
    pub fn new(threshold: u8, min_share: f32) -> Self {
        MotionGate {
            bg: vec![0; GRID_W * GRID_H],
            size: (0, 0),
            threshold: threshold as u16 * 16,
            min_changed: 1,
            min_share,
            last_share: 0.0,
            mask: Box::new([0; MASK_WORDS]),
            grid: (0, 0),
        }
    }

    /// The last frame's changed points and the grid (across, down) they
    /// lie on; a point's cell spans `width / across` x `height / down`
    /// pixels of the frame.
    pub(crate) fn mask(&self) -> (&[u64; MASK_WORDS], (usize, usize)) {
        (&self.mask, self.grid)
    }
}

/// The mask's bit for grid point (`gx`, `gy`): the one place its layout
/// (row-major over `GRID_W`, 64 points a word) is spelled out.
fn mask_bit(gx: usize, gy: usize) -> (usize, u64) {
    let bit = gy * GRID_W + gx;
    (bit / 64, 1 << (bit % 64))
}

/// Whether grid point (`gx`, `gy`) changed in `mask`.
pub(crate) fn mask_has(mask: &[u64; MASK_WORDS], gx: usize, gy: usize) -> bool {
    let (word, bit) = mask_bit(gx, gy);
    mask[word] & bit != 0
}

impl MotionGate {
    /// Looks at one frame (its luma plane, `width` x `height`): true when
    /// something moves. The first frame (and a size change) counts as
    /// motion: there is no background yet.
    pub(crate) fn observe(&mut self, y: &[u8], width: u32, height: u32) -> bool {
        let (gw, gh) = ((width as usize / 2).min(GRID_W), (height as usize / 2).min(GRID_H));
        if gw == 0 || gh == 0 {
            return true;
        }
        let fresh = self.size != (width, height);
        if fresh {
            self.size = (width, height);
            self.min_changed = ((gw * gh) as f32 * self.min_share).ceil().max(1.0) as usize;
        }
        let w = width as usize;
        let mut changed = 0usize;
        self.grid = (gw, gh);
        self.mask.fill(0);
        for gy in 0..gh {
            // Top-left of the 2x2 block, kept inside the picture.
            let py = (gy * (height as usize - 1) / gh) & !1;
            for gx in 0..gw {
                let px = (gx * (w - 1) / gw) & !1;
                let i = py * w + px;
                let s = (y[i] as u16 + y[i + 1] as u16 + y[i + w] as u16 + y[i + w + 1] as u16) * 4;
                let b = &mut self.bg[gy * GRID_W + gx];
                if fresh {
                    *b = s;
                    continue;
                }
                if s.abs_diff(*b) > self.threshold {
                    changed += 1;
                    let (word, bit) = mask_bit(gx, gy);
                    self.mask[word] |= bit;
                }
                // Move 1/16 of the way toward the sample.
                *b = ((*b as i32) + ((s as i32 - *b as i32) >> BG_SHIFT)) as u16;
            }
        }
        self.last_share = changed as f32 / (gw * gh) as f32;
        fresh || changed >= self.min_changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, seed: u32, square: Option<(usize, usize)>) -> Vec<u8> {
        // A textured still scene with a little noise per frame.
        let mut v: Vec<u8> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let noise = (((i as u32).wrapping_mul(2654435761).wrapping_add(seed * 97)) >> 29) as u8;
                ((x * 3 + y * 5) % 160) as u8 + 40 + noise
            })
            .collect();
        if let Some((sx, sy)) = square {
            for y in sy..sy + 60 {
                for x in sx..sx + 60 {
                    v[y * w + x] = 250;
                }
            }
        }
        v
    }

    #[test]
    fn a_still_noisy_scene_is_quiet_and_a_moving_square_is_not() {
        let (w, h) = (640, 360);
        let mut g = MotionGate::new(12, 0.002);
        assert!(g.observe(&frame(w, h, 0, None), w as u32, h as u32), "first frame: no background yet");
        for k in 1..30 {
            assert!(!g.observe(&frame(w, h, k, None), w as u32, h as u32), "frame {k}: noise is not motion");
        }
        // A 60x60 square (a small face at 640x360) walking in.
        for k in 0..5 {
            assert!(g.observe(&frame(w, h, 30 + k, Some((100 + 20 * k as usize, 100))), w as u32, h as u32));
        }
        // The mask marks the square's cells (x 180..240, y 100..160 in the
        // last frame; a cell is 2 px here) and nothing far from it.
        let (mask, (gw, gh)) = g.mask();
        assert_eq!((gw, gh), (160, 90));
        let set = |gx: usize, gy: usize| mask_has(mask, gx, gy);
        let cell = |x: usize, y: usize| (x * gw / w, y * gh / h);
        let (cx, cy) = cell(210, 130);
        assert!(set(cx, cy), "the square's centre moved");
        let (fx, fy) = cell(500, 300);
        assert!(!set(fx, fy), "a far corner did not");
        let marked: u32 = mask.iter().map(|m| m.count_ones()).sum();
        assert!((50..=1200).contains(&marked), "{marked} points marked for one 60x60 square");
    }

    #[test]
    fn a_size_change_restarts_the_background() {
        let mut g = MotionGate::new(12, 0.002);
        g.observe(&frame(64, 64, 0, None), 64, 64);
        assert!(!g.observe(&frame(64, 64, 1, None), 64, 64));
        assert!(g.observe(&frame(128, 64, 1, None), 128, 64));
    }
}
