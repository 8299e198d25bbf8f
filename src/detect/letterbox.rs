//! Letterboxing: scales a frame into the detector's fixed input, keeping the
//! aspect ratio (padding right and bottom), and maps boxes back.
//!
//! The I420 -> RGB conversion and the resize are one pass with precomputed
//! source indices (nearest sample), written straight into the preallocated
//! planar f32 tensor: no intermediate RGB frame exists.

use crate::geom::BBox;
use crate::pool::{yuv_to_rgb, I420};

/// Mapping between frame pixels and model-input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// model = frame * scale
    pub scale: f32,
    pub src_w: u32,
    pub src_h: u32,
    pub dst_w: u32,
    pub dst_h: u32,
}

impl Letterbox {
    pub fn new(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Self {
        let scale = (dst_w as f32 / src_w as f32).min(dst_h as f32 / src_h as f32);
        Letterbox { scale, src_w, src_h, dst_w, dst_h }
    }
    /// Width and height covered by picture (the rest is padding).
    pub fn content(&self) -> (u32, u32) {
        (
            ((self.src_w as f32 * self.scale).round() as u32).min(self.dst_w),
            ((self.src_h as f32 * self.scale).round() as u32).min(self.dst_h),
        )
    }
    pub fn to_model(&self, b: &BBox) -> BBox {
        let s = self.scale;
        BBox::new(b.x1 * s, b.y1 * s, b.x2 * s, b.y2 * s)
    }
    pub fn to_frame(&self, b: &BBox) -> BBox {
        let s = 1.0 / self.scale;
        BBox::new(b.x1 * s, b.y1 * s, b.x2 * s, b.y2 * s).clip(self.src_w as f32, self.src_h as f32)
    }
    pub(crate) fn point_to_frame(&self, p: [f32; 2]) -> [f32; 2] {
        [p[0] / self.scale, p[1] / self.scale]
    }
}

/// Reusable source-index tables for one (source size, model size) pair.
pub struct Resampler {
    lb: Option<Letterbox>,
    xs: Vec<u32>,
    ys: Vec<u32>,
}

impl Resampler {
    /// Reserves tables for model inputs up to `dst_w` x `dst_h` (no later allocation).
    pub fn new(dst_w: u32, dst_h: u32) -> Self {
        Resampler { lb: None, xs: Vec::with_capacity(dst_w as usize), ys: Vec::with_capacity(dst_h as usize) }
    }

    /// Writes `frame` letterboxed into `plane` (3 x dst_h x dst_w, RGB, 0..255).
    pub fn fill(&mut self, frame: &I420<'_>, dst_w: u32, dst_h: u32, plane: &mut [f32]) -> Letterbox {
        let lb = Letterbox::new(frame.width, frame.height, dst_w, dst_h);
        if self.lb != Some(lb) {
            let (cw, ch) = lb.content();
            self.xs.clear();
            self.ys.clear();
            for x in 0..cw {
                self.xs.push((((x as f32 + 0.5) / lb.scale) as u32).min(frame.width - 1));
            }
            for y in 0..ch {
                self.ys.push((((y as f32 + 0.5) / lb.scale) as u32).min(frame.height - 1));
            }
            self.lb = Some(lb);
        }
        let (dw, dh) = (dst_w as usize, dst_h as usize);
        let area = dw * dh;
        let (r, rest) = plane[..3 * area].split_at_mut(area);
        let (g, b) = rest.split_at_mut(area);
        let (cw, ch) = (self.xs.len(), self.ys.len());
        let stride = frame.width as usize;
        let cstride = frame.chroma_stride();
        for (row, &sy) in self.ys.iter().enumerate() {
            let sy = sy as usize;
            let yrow = &frame.y[sy * stride..(sy + 1) * stride];
            let crow = (sy / 2) * cstride;
            let (urow, vrow) = (&frame.u[crow..crow + cstride], &frame.v[crow..crow + cstride]);
            let o = row * dw;
            let (rrow, grow, brow) = (&mut r[o..o + dw], &mut g[o..o + dw], &mut b[o..o + dw]);
            // Row slices and zipped outputs: only the source reads keep a
            // bounds check, so the loop's code does not hinge on what the
            // optimiser proves about `o + col` from one build to the next
            // (scripts/instructions.py saw 7% move with unrelated changes).
            let outputs = rrow.iter_mut().zip(grow.iter_mut()).zip(brow.iter_mut());
            for (&sx, ((rp, gp), bp)) in self.xs.iter().zip(outputs) {
                let sx = sx as usize;
                let [rr, gg, bb] = yuv_to_rgb(yrow[sx] as i32, urow[sx / 2] as i32, vrow[sx / 2] as i32);
                *rp = rr as f32;
                *gp = gg as f32;
                *bp = bb as f32;
            }
            for p in [rrow, grow, brow] {
                p[cw..].fill(0.0);
            }
        }
        for p in [r, g, b] {
            p[ch * dw..].fill(0.0);
        }
        lb
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_round_trip_is_identity() {
        for (sw, sh) in [(640, 480), (1920, 1080), (300, 700)] {
            let lb = Letterbox::new(sw, sh, 416, 320);
            let b = BBox::new(10.5, 20.25, 200.0, 260.0);
            let back = lb.to_frame(&lb.to_model(&b));
            for (x, y) in [(b.x1, back.x1), (b.y1, back.y1), (b.x2, back.x2), (b.y2, back.y2)] {
                assert!((x - y).abs() < 1e-3, "{sw}x{sh}: {b:?} -> {back:?}");
            }
            let (cw, ch) = lb.content();
            assert!(cw <= 416 && ch <= 320);
            assert!(cw == 416 || ch == 320, "one side fills the input");
        }
    }

    #[test]
    fn pixels_land_where_the_mapping_says() {
        // 64x32 frame, a bright 8x8 square at (32..40, 8..16), into 32x32: scale 0.5.
        let (w, h) = (64u32, 32u32);
        let mut buf = vec![16u8; (w * h) as usize];
        buf.extend(std::iter::repeat_n(128u8, (w * h / 2) as usize));
        for y in 8..16 {
            for x in 32..40 {
                buf[(y * w + x) as usize] = 235;
            }
        }
        let frame = I420::new(&buf, w, h);
        let mut rs = Resampler::new(32, 32);
        let mut plane = vec![-1.0f32; 3 * 32 * 32];
        let lb = rs.fill(&frame, 32, 32, &mut plane);
        assert_eq!(lb.scale, 0.5);
        let at = |x: usize, y: usize| plane[y * 32 + x];
        assert_eq!(at(17, 5), 255.0, "inside the square");
        assert_eq!(at(5, 5), 0.0, "dark background");
        assert_eq!(at(5, 20), 0.0, "padding is zero");
        assert!(plane.iter().all(|&v| v >= 0.0), "every element written");
        let b = lb.to_frame(&BBox::new(16.0, 4.0, 20.0, 8.0));
        assert_eq!(b, BBox::new(32.0, 8.0, 40.0, 16.0));
    }
}
