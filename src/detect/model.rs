//! What every ONNX face detector here shares: each frame of a batch is
//! letterboxed into the bound input (N x 3 x H x W, RGB 0..255), ONE
//! inference runs, then the model's [`Head`] decodes each item into boxes,
//! NMS thins them, and boxes and keypoints go back to frame pixels.
//!
//! A model is a `Head` (its outputs' layout and decoding): CenterFace
//! (`centerface`) and BlazeFace (`blazeface`).
//!
//! Who letterboxes is read off the model's input: an f32 N x 3 x H x W
//! input is filled by the CPU letterbox (`letterbox`), a u8 N x H*3/2 x W
//! input takes the raw I420 frames and letterboxes inside the model
//! (`scripts/prepend_i420.py`, bit for bit the same), so an accelerator
//! does the conversion and the resize on the whole batch while the detect
//! thread only copies frames (`detector.preprocess`).

use std::path::Path;

use super::bound::{takes_i420, BoundSession, InputLayout};
use super::letterbox::{Letterbox, Resampler};
use super::nms::nms;
use super::runtime;
use super::{DetectError, Detection, Detections, Detector};
use crate::pool::I420;

/// A model's output decoding.
pub trait Head: Send {
    /// The model's name, for messages.
    const NAME: &'static str;
    /// How many outputs the model has, and what they are (for the error
    /// that a wrong model gets).
    const OUTPUTS: (usize, &'static str);
    /// Values per batch item each output must have at this input size
    /// (a model of another kind with as many outputs is caught here).
    fn output_item_lens(&self) -> [usize; 4];
    /// Decodes item `b` of a run over `n` items into `out` (cleared by the
    /// caller), in model-input pixels.
    fn decode(&self, session: &BoundSession, n: usize, b: usize, out: &mut Detections) -> Result<(), DetectError>;
}

#[derive(Clone, Copy, Debug)]
pub struct DetectorParams {
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

pub struct ModelDetector<H: Head> {
    session: BoundSession,
    resamplers: Vec<Resampler>,
    letterboxes: Vec<Letterbox>,
    in_w: u32,
    in_h: u32,
    nms_iou: f32,
    pad_batches: bool,
    head: H,
}

impl<H: Head> ModelDetector<H> {
    /// Loads `model` on the board's execution providers and binds every
    /// batch shape it will run.
    pub fn new(runtime_lib: &Path, model: &Path, p: DetectorParams, head: H) -> Result<Self, DetectError> {
        let env = runtime::environment(runtime_lib)?;
        let session = runtime::session(env, model)?;
        let (ni, no) = (session.inputs().len(), session.outputs().len());
        if ni != 1 || no != H::OUTPUTS.0 {
            return Err(DetectError::Load(format!(
                "model {} has {ni} inputs and {no} outputs; {} has 1 input and {} outputs ({}): is `detector.kind` right?",
                model.display(),
                H::NAME,
                H::OUTPUTS.0,
                H::OUTPUTS.1
            )));
        }
        // Bind (and so warm up) every shape the detector will run: ORT plans
        // memory per shape, and the first run of a shape is slow and
        // allocates (on CUDA it also searches cuDNN's algorithms, seconds
        // per shape).
        let shapes: Vec<usize> = (1..=p.max_batch).filter(|&n| run_shape(n, p.max_batch, p.pad_batches) == n).collect();
        let layout = if takes_i420(&session) {
            // Frames are cropped to even sizes (see `copy_even`).
            InputLayout::I420 {
                max_width: crate::board::MAX_FRAME_WIDTH as usize & !1,
                max_height: crate::board::MAX_FRAME_HEIGHT as usize & !1,
            }
        } else {
            InputLayout::F32 { item: [3, p.input_height as usize, p.input_width as usize] }
        };
        let warm = (p.input_width as usize & !1, p.input_height as usize & !1);
        let session = BoundSession::with_layout(session, layout, warm, p.max_batch, &shapes).map_err(|e| {
            DetectError::Load(format!("model {} ({}): {e} (is `detector.kind` right?)", model.display(), H::NAME))
        })?;
        let want = head.output_item_lens();
        if session.output_item_lens() != want {
            return Err(DetectError::Load(format!(
                "model {}: outputs hold {:?} values per frame, {} at {}x{} holds {want:?}: is `detector.kind` right?",
                model.display(),
                session.output_item_lens(),
                H::NAME,
                p.input_width,
                p.input_height
            )));
        }
        Ok(ModelDetector {
            session,
            resamplers: (0..p.max_batch).map(|_| Resampler::new(p.input_width, p.input_height)).collect(),
            letterboxes: vec![Letterbox::new(1, 1, 1, 1); p.max_batch],
            in_w: p.input_width,
            in_h: p.input_height,
            nms_iou: p.nms_iou,
            pad_batches: p.pad_batches,
            head,
        })
    }
}

impl<H: Head> Detector for ModelDetector<H> {
    fn max_batch(&self) -> usize {
        self.session.max_batch()
    }

    fn detect_batch(&mut self, frames: &[I420<'_>], out: &mut [Detections]) -> Result<(), DetectError> {
        let n = frames.len();
        assert!(n <= self.max_batch() && out.len() >= n, "batch larger than the detector's");
        if n == 0 {
            return Ok(());
        }
        if let InputLayout::I420 { .. } = self.session.layout() {
            return self.detect_i420(frames, out);
        }
        let (w, h) = (self.in_w, self.in_h);
        for (i, f) in frames.iter().enumerate() {
            let plane = self.session.input_item_mut(i);
            self.letterboxes[i] = self.resamplers[i].fill(f, w, h, plane);
        }
        // Rows n.. of a padded batch hold older frames; their results are ignored.
        let shape = run_shape(n, self.max_batch(), self.pad_batches);
        self.session.run(shape)?;
        for (b, dets) in out.iter_mut().enumerate().take(n) {
            self.finish_item(n, b, dets)?;
        }
        Ok(())
    }
}

impl<H: Head> ModelDetector<H> {
    /// Decodes batch item `b` of a run over `n` items into `dets`, in frame
    /// pixels through that item's letterbox.
    fn finish_item(&self, n: usize, b: usize, dets: &mut Detections) -> Result<(), DetectError> {
        dets.clear();
        self.head.decode(&self.session, n, b, dets)?;
        nms(dets, self.nms_iou);
        let lb = &self.letterboxes[b];
        for d in dets.iter_mut() {
            d.bbox = lb.to_frame(&d.bbox);
            for k in d.keypoints.iter_mut() {
                *k = lb.point_to_frame(*k);
            }
        }
        Ok(())
    }

    /// A batch through a model that letterboxes: frames are copied raw, one
    /// run per frame size in the batch (cameras of one size, the usual
    /// case, make one run).
    fn detect_i420(&mut self, frames: &[I420<'_>], out: &mut [Detections]) -> Result<(), DetectError> {
        let n = frames.len();
        let mut done = [false; crate::detect::worker::MAX_BATCH];
        let mut group: heapless::Vec<usize, { crate::detect::worker::MAX_BATCH }> = heapless::Vec::new();
        for first in 0..n {
            if done[first] {
                continue;
            }
            // Odd sizes lose their last column or row (I420 in the model
            // needs even planes); boxes map back unchanged.
            let size = (frames[first].width & !1, frames[first].height & !1);
            group.clear();
            for (i, f) in frames.iter().enumerate().skip(first) {
                if !done[i] && (f.width & !1, f.height & !1) == size {
                    done[i] = true;
                    let _ = group.push(i);
                }
            }
            let (w, h) = (size.0 as usize, size.1 as usize);
            for (j, &i) in group.iter().enumerate() {
                copy_even(&frames[i], self.session.input_frame_mut(j, w, h)?);
                self.letterboxes[j] = Letterbox::new(size.0, size.1, self.in_w, self.in_h);
            }
            let m = group.len();
            let shape = run_shape(m, self.max_batch(), self.pad_batches);
            self.session.run_frames(shape, w, h)?;
            for (j, &i) in group.iter().enumerate() {
                self.finish_item(m, j, &mut out[i])?;
            }
        }
        Ok(())
    }
}

/// Copies `f` into `dst` as an I420 frame of its even size (the last
/// column and row of an odd-sized frame are left out).
fn copy_even(f: &I420<'_>, dst: &mut [u8]) {
    let (w, h) = (f.width as usize & !1, f.height as usize & !1);
    let (stride, cstride) = (f.width as usize, f.chroma_stride());
    let (y, rest) = dst.split_at_mut(w * h);
    let (u, v) = rest.split_at_mut(w * h / 4);
    if w == stride {
        y.copy_from_slice(&f.y[..w * h]);
    } else {
        for (r, row) in y.chunks_exact_mut(w).enumerate() {
            row.copy_from_slice(&f.y[r * stride..r * stride + w]);
        }
    }
    for (src, dst) in [(f.u, u), (f.v, v)] {
        if w / 2 == cstride {
            dst.copy_from_slice(&src[..w * h / 4]);
        } else {
            for (r, row) in dst.chunks_exact_mut(w / 2).enumerate() {
                row.copy_from_slice(&src[r * cstride..r * cstride + w / 2]);
            }
        }
    }
}

/// Adds `det` to `out`; when `out` is full, it replaces the weakest if it
/// scores higher (so a crowded frame keeps its best faces, never errors).
pub fn push_best(out: &mut Detections, det: Detection) {
    if let Err(det) = out.push(det) {
        let (mi, min) = out
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.score.total_cmp(&b.1.score))
            .map(|(i, d)| (i, d.score))
            .expect("a full buffer is not empty");
        if det.score > min {
            out[mi] = det;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::BBox;

    #[test]
    fn padded_batches_run_at_powers_of_two_capped_by_the_maximum() {
        let shapes: Vec<usize> = (1..=12).map(|n| run_shape(n, 12, true)).collect();
        assert_eq!(shapes, [1, 2, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12]);
        assert_eq!(run_shape(5, 12, false), 5);
    }

    #[test]
    fn an_odd_frame_is_copied_as_its_even_crop() {
        // 5x3 frame: Y values 10*row + col, U 100 + .., V 200 + .. (chroma 3x2).
        let (w, h) = (5u32, 3u32);
        let mut buf: Vec<u8> = (0..h).flat_map(|r| (0..w).map(move |c| (10 * r + c) as u8)).collect();
        buf.extend((0..2).flat_map(|r| (0..3).map(move |c| (100 + 10 * r + c) as u8)));
        buf.extend((0..2).flat_map(|r| (0..3).map(move |c| (200 + 10 * r + c) as u8)));
        let frame = I420::new(&buf, w, h);
        let mut dst = [0u8; 12];
        copy_even(&frame, &mut dst);
        assert_eq!(dst, [0, 1, 2, 3, 10, 11, 12, 13, 100, 101, 200, 201], "4x2 of Y, then the top 2x1 of U and of V");
        let mut even = vec![0u8; 4 * 2 * 3 / 2];
        let (ew, eh) = (4u32, 2u32);
        let src: Vec<u8> = (0..12).collect();
        copy_even(&I420::new(&src, ew, eh), &mut even);
        assert_eq!(even, src, "an even frame is copied as it is");
    }

    #[test]
    fn a_full_buffer_keeps_the_best_scores() {
        let det = |score: f32| Detection { bbox: BBox::new(0.0, 0.0, 1.0, 1.0), score, keypoints: Default::default() };
        let mut out = Detections::new();
        for i in 0..super::super::MAX_DETECTIONS {
            push_best(&mut out, det(0.5 + i as f32 * 1e-3));
        }
        push_best(&mut out, det(0.1));
        assert!(out.iter().all(|d| d.score >= 0.5), "a weaker face does not displace a kept one");
        push_best(&mut out, det(0.99));
        assert_eq!(out.len(), super::super::MAX_DETECTIONS);
        assert!(out.iter().any(|d| d.score == 0.99) && !out.iter().any(|d| d.score == 0.5));
    }
}
