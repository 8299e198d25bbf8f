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
//!
//! Where the model runs: in `start` on the caller's thread, or, with
//! `detector.overlap`, on a thread of its own: each batch is a `Slot`
//! (buffers, letterboxes) that goes there and back through two handoff
//! rings, and two slots let the caller copy one batch in while the other
//! runs. Results come back in the order batches were started.

use std::collections::VecDeque;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::bound::{takes_i420, BoundSession, Buffers, HostBuffers, InputLayout, Runner};
use super::letterbox::{Letterbox, Resampler};
use super::nms::nms;
use super::runtime;
use super::{DetectError, Detection, Detections, Detector};
use crate::pool::I420;
use crate::ring::{handoff, HandoffReceiver, HandoffSender};

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
    fn decode(&self, outputs: &Buffers, n: usize, b: usize, out: &mut Detections) -> Result<(), DetectError>;
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
    /// Run the model on a thread of its own, over two sets of buffers, so
    /// the next batch is copied in while one runs (`detector.overlap`).
    pub overlap: bool,
    /// Ask for page-locked buffers (`detector.pinned_buffers`).
    pub pinned_buffers: bool,
    /// cuDNN's convolution algorithms on CUDA (`detector.cuda_conv_search`).
    pub cuda_conv_search: crate::config::ConvSearch,
    /// The raw frame size a model that takes I420 frames is warmed up at
    /// on load (`None`: its input size). Where the cameras' size is known
    /// at start (the bench's demo), this saves a second warm-up of every
    /// shape in `prepare`: seconds on CUDA.
    pub warm_frame: Option<(u32, u32)>,
}

/// The batch dimension a batch of `n` frames runs at.
pub(crate) fn run_shape(n: usize, max_batch: usize, pad: bool) -> usize {
    if pad {
        n.next_power_of_two().min(max_batch)
    } else {
        n
    }
}

/// One batch on its way: its buffers, how each frame was letterboxed, and
/// the run to make. It moves to the model's thread and back when the
/// detector overlaps batches.
struct Slot {
    buffers: Buffers,
    /// Per batch item: the letterbox its frame went through.
    letterboxes: Vec<Letterbox>,
    /// Frames in the batch.
    n: usize,
    /// The values to run with (a `Buffers` binding); None = nothing to run.
    run: Option<usize>,
    result: Result<(), DetectError>,
    /// How long the model ran.
    elapsed: Duration,
    /// A batch of several frame sizes runs size by size as it starts
    /// (one buffer holds one size at a time); its faces wait in `dets`.
    decoded: bool,
    dets: Vec<Detections>,
}

impl Slot {
    fn new(buffers: Buffers, max_batch: usize) -> Box<Self> {
        Box::new(Slot {
            buffers,
            letterboxes: vec![Letterbox::new(1, 1, 1, 1); max_batch],
            n: 0,
            run: None,
            result: Ok(()),
            elapsed: Duration::ZERO,
            decoded: false,
            dets: vec![Detections::new(); max_batch],
        })
    }

    /// Runs the model over this slot's buffers (on whichever thread holds it).
    fn run_on(&mut self, runner: &mut Runner) {
        let t0 = Instant::now();
        self.result = match self.run.take() {
            Some(k) => runner.run(&mut self.buffers, k),
            None => Ok(()),
        };
        self.elapsed = t0.elapsed();
    }
}

/// Where the model runs.
enum Engine {
    /// Inside `start`, on the caller's thread.
    Inline(Runner),
    /// On a thread of its own: slots go there through `jobs` and come back
    /// through `done` in the order they went (one thread, FIFO rings).
    Thread {
        jobs: Option<HandoffSender<Box<Slot>>>,
        done: HandoffReceiver<Box<Slot>>,
        thread: Option<JoinHandle<()>>,
        /// Slots sent and not yet received back.
        away: usize,
    },
}

pub struct ModelDetector<H: Head> {
    engine: Engine,
    /// Slots free to take a batch (one inline, two overlapped); boxed, as
    /// they travel to the model's thread and back as pointers.
    #[allow(clippy::vec_box)]
    free: Vec<Box<Slot>>,
    /// Batches run and not yet finished, oldest first; all older than any
    /// slot still away on the model's thread.
    finished: VecDeque<Box<Slot>>,
    depth: usize,
    max_batch: usize,
    resamplers: Vec<Resampler>,
    in_w: u32,
    in_h: u32,
    nms_iou: f32,
    pad_batches: bool,
    last_inference: Option<Duration>,
    /// The batch shapes that run (every size, or powers of two when padded).
    shapes: Vec<usize>,
    /// Whether the model takes raw frames (I420), which are warmed per size.
    raw_frames: bool,
    /// Raw frame sizes every shape has run at (see `prepare`).
    prepared: heapless::Vec<(u32, u32), MAX_PREPARED_SIZES>,
    head: H,
}

/// Raw frame sizes remembered as prepared; past it, the oldest is forgotten
/// (and a camera of that size costs one more warm-up).
const MAX_PREPARED_SIZES: usize = 8;

impl<H: Head> ModelDetector<H> {
    /// Loads `model` on the board's execution providers and binds every
    /// batch shape it will run.
    pub fn new(runtime_lib: &Path, model: &Path, p: DetectorParams, head: H) -> Result<Self, DetectError> {
        let env = runtime::environment(runtime_lib)?;
        let (session, reopen) = runtime::open(env, model, crate::board::EXECUTION_PROVIDERS, p.cuda_conv_search)?;
        let (ni, no) = (session.inputs().len(), session.outputs().len());
        if ni != 1 || no != H::OUTPUTS.0 {
            return Err(DetectError::load(format!(
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
        let (warm_w, warm_h) = p.warm_frame.unwrap_or((p.input_width, p.input_height));
        let warm = (warm_w as usize & !1, warm_h as usize & !1);
        let load_error = |e: DetectError| {
            DetectError::load(format!("model {} ({}): {e} (is `detector.kind` right?)", model.display(), H::NAME))
        };
        let host = if p.pinned_buffers { HostBuffers::PinnedIfOffered } else { HostBuffers::Heap };
        let BoundSession { runner, buffers } =
            BoundSession::with_layout(session, reopen.per_shape(), layout, warm, p.max_batch, &shapes, host)
                .map_err(load_error)?;
        let want = head.output_item_lens();
        if buffers.output_item_lens() != want {
            return Err(DetectError::load(format!(
                "model {}: outputs hold {:?} values per frame, {} at {}x{} holds {want:?}: is `detector.kind` right?",
                model.display(),
                buffers.output_item_lens(),
                H::NAME,
                p.input_width,
                p.input_height
            )));
        }
        let mut free = Vec::with_capacity(2);
        let engine = if p.overlap {
            free.push(Slot::new(buffers.spare().map_err(load_error)?, p.max_batch));
            free.push(Slot::new(buffers, p.max_batch));
            // Capacity 2: never more slots than that exist, so a send never fails.
            let (jobs, mut from_detector) = handoff::<Box<Slot>>(2);
            let (mut to_detector, done) = handoff::<Box<Slot>>(2);
            let thread = std::thread::Builder::new()
                .name("detect-model".into())
                .spawn(move || {
                    let mut runner = runner;
                    while let Some(mut slot) = from_detector.recv() {
                        slot.run_on(&mut runner);
                        if to_detector.send(slot).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| DetectError::load_caused("starting the detector's model thread", e))?;
            Engine::Thread { jobs: Some(jobs), done, thread: Some(thread), away: 0 }
        } else {
            free.push(Slot::new(buffers, p.max_batch));
            Engine::Inline(runner)
        };
        Ok(ModelDetector {
            depth: free.len(),
            engine,
            free,
            finished: VecDeque::with_capacity(2),
            max_batch: p.max_batch,
            resamplers: (0..p.max_batch).map(|_| Resampler::new(p.input_width, p.input_height)).collect(),
            in_w: p.input_width,
            in_h: p.input_height,
            nms_iou: p.nms_iou,
            pad_batches: p.pad_batches,
            last_inference: None,
            shapes,
            raw_frames: matches!(layout, InputLayout::I420 { .. }),
            // The load's warm-up ran every shape at this size.
            prepared: match layout {
                InputLayout::I420 { .. } => {
                    heapless::Vec::from_slice(&[(warm.0 as u32, warm.1 as u32)]).unwrap_or_default()
                }
                InputLayout::F32 { .. } => heapless::Vec::new(),
            },
            head,
        })
    }
}

impl<H: Head> Detector for ModelDetector<H> {
    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn depth(&self) -> usize {
        self.depth
    }

    fn start(&mut self, frames: &[I420<'_>]) -> Result<(), DetectError> {
        let n = frames.len();
        assert!(n <= self.max_batch, "batch larger than the detector's");
        let Some(mut slot) = self.free.pop() else {
            return Err(DetectError::inference(format!(
                "{} batches already started (or the model's thread stopped)",
                self.depth
            )));
        };
        slot.n = n;
        slot.run = None;
        slot.decoded = false;
        if let InputLayout::I420 { .. } = slot.buffers.layout() {
            for f in frames {
                let size = (f.width & !1, f.height & !1);
                if !self.prepared.contains(&size) {
                    slot = self.warm_slot(slot, size)?;
                }
            }
        }
        let staged = match slot.buffers.layout() {
            _ if n == 0 => Ok(Staged::One),
            InputLayout::I420 { .. } => self.stage_i420(&mut slot, frames),
            InputLayout::F32 { .. } => self.stage_f32(&mut slot, frames),
        };
        match staged {
            Ok(Staged::One) => self.launch(slot),
            Ok(Staged::BySize) => self.run_by_size(slot, frames),
            Err(e) => {
                self.free.push(slot);
                Err(e)
            }
        }
    }

    fn ready(&mut self) -> bool {
        if !self.finished.is_empty() {
            return true;
        }
        if let Engine::Thread { done, away, .. } = &mut self.engine {
            if *away > 0 {
                if let Some(slot) = done.try_recv() {
                    *away -= 1;
                    self.finished.push_back(slot);
                    return true;
                }
                return false;
            }
        }
        true
    }

    fn finish(&mut self, out: &mut [Detections]) -> Result<(), DetectError> {
        let mut slot = self.next_finished()?;
        let result = std::mem::replace(&mut slot.result, Ok(()));
        self.last_inference = Some(slot.elapsed);
        let n = slot.n;
        assert!(out.len() >= n, "fewer result slots than frames");
        let decoded = result.and_then(|()| {
            for (b, dets) in out.iter_mut().enumerate().take(n) {
                if slot.decoded {
                    std::mem::swap(dets, &mut slot.dets[b]);
                } else {
                    self.decode_item(&slot, n, b, dets)?;
                }
            }
            Ok(())
        });
        self.free.push(slot);
        decoded
    }

    fn last_inference(&self) -> Option<Duration> {
        self.last_inference
    }

    fn is_prepared(&self, width: u32, height: u32) -> bool {
        !self.raw_frames || self.prepared.contains(&(width & !1, height & !1))
    }

    fn prepare(&mut self, width: u32, height: u32) -> Result<(), DetectError> {
        if self.is_prepared(width, height) {
            return Ok(());
        }
        let size = (width & !1, height & !1);
        let Some(slot) = self.free.pop() else {
            return Err(DetectError::inference("no free buffers to prepare with"));
        };
        self.warm(slot, size)
    }
}

/// What staging a batch left to do.
enum Staged {
    /// One run over the slot (all frames of one size, or f32 items).
    One,
    /// Raw frames of several sizes: one run per size (`run_by_size`).
    BySize,
}

impl<H: Head> ModelDetector<H> {
    /// Letterboxes every frame into the slot's f32 input (the CPU letterbox).
    fn stage_f32(&mut self, slot: &mut Slot, frames: &[I420<'_>]) -> Result<Staged, DetectError> {
        let (w, h) = (self.in_w, self.in_h);
        for (i, f) in frames.iter().enumerate() {
            slot.letterboxes[i] = self.resamplers[i].fill(f, w, h, slot.buffers.input_item_mut(i));
        }
        // Rows n.. of a padded batch hold older frames; their results are ignored.
        slot.run = Some(slot.buffers.binding(run_shape(frames.len(), self.max_batch, self.pad_batches))?);
        Ok(Staged::One)
    }

    /// Copies raw frames into the slot when they share one size (the usual
    /// case: cameras of one resolution); otherwise says which sizes there are.
    fn stage_i420(&mut self, slot: &mut Slot, frames: &[I420<'_>]) -> Result<Staged, DetectError> {
        // Odd sizes lose their last column or row (I420 in the model needs
        // even planes); boxes map back unchanged.
        let sizes = even_sizes(frames);
        if sizes.len() > 1 {
            return Ok(Staged::BySize);
        }
        let (w, h) = sizes[0];
        for (i, f) in frames.iter().enumerate() {
            copy_even(f, slot.buffers.input_frame_mut(i, w as usize, h as usize)?);
            slot.letterboxes[i] = Letterbox::new(w, h, self.in_w, self.in_h);
        }
        let shape = run_shape(frames.len(), self.max_batch, self.pad_batches);
        slot.run = Some(slot.buffers.frames_binding(shape, w as usize, h as usize)?);
        Ok(Staged::One)
    }

    /// Runs every batch shape once over gray frames of `size` through
    /// `slot`, which goes back to the free slots.
    fn warm(&mut self, slot: Box<Slot>, size: (u32, u32)) -> Result<(), DetectError> {
        let slot = self.warm_slot(slot, size)?;
        self.free.push(slot);
        Ok(())
    }

    /// As `warm`, handing the slot back for the batch that needed it. On an
    /// error the slot goes back to the free slots.
    fn warm_slot(&mut self, mut slot: Box<Slot>, size: (u32, u32)) -> Result<Box<Slot>, DetectError> {
        let t0 = Instant::now();
        if let Err(e) = self.bring_back_away() {
            self.free.push(slot);
            return Err(e);
        }
        let (w, h) = (size.0 as usize, size.1 as usize);
        for i in 0..self.shapes.len() {
            let n = self.shapes[i];
            let staged = (|| {
                for j in 0..n {
                    slot.buffers.input_frame_mut(j, w, h)?.fill(128);
                }
                slot.buffers.frames_binding(n, w, h)
            })();
            match staged {
                Ok(k) => slot.run = Some(k),
                Err(e) => {
                    self.free.push(slot);
                    return Err(e);
                }
            }
            slot = self.run_now(slot)?;
            if let Err(e) = std::mem::replace(&mut slot.result, Ok(())) {
                self.free.push(slot);
                return Err(e);
            }
        }
        if self.prepared.is_full() {
            self.prepared.remove(0);
        }
        let _ = self.prepared.push(size);
        log::info!(
            "detector: ran its {} batch shapes at {}x{} frames in {:.1} s (first frames of that size)",
            self.shapes.len(),
            size.0,
            size.1,
            t0.elapsed().as_secs_f64()
        );
        Ok(slot)
    }

    /// Starts the slot's run: now (inline) or on the model's thread.
    fn launch(&mut self, mut slot: Box<Slot>) -> Result<(), DetectError> {
        match &mut self.engine {
            Engine::Inline(runner) => {
                slot.run_on(runner);
                self.finished.push_back(slot);
                Ok(())
            }
            Engine::Thread { jobs, away, .. } => match jobs.as_mut().map(|j| j.send(slot)) {
                Some(Ok(())) => {
                    *away += 1;
                    Ok(())
                }
                _ => Err(DetectError::inference("the detector's model thread has stopped")),
            },
        }
    }

    /// The oldest started batch, once its run is over.
    fn next_finished(&mut self) -> Result<Box<Slot>, DetectError> {
        if let Some(slot) = self.finished.pop_front() {
            return Ok(slot);
        }
        match &mut self.engine {
            Engine::Thread { done, away, .. } if *away > 0 => {
                let slot =
                    done.recv().ok_or_else(|| DetectError::inference("the detector's model thread has stopped"))?;
                *away -= 1;
                Ok(slot)
            }
            _ => Err(DetectError::inference("finish without a started batch")),
        }
    }

    /// A batch of raw frames of several sizes: one run per size, each
    /// waited for and decoded before the next size is copied into the
    /// same buffer. Batches started before it finish first, as always.
    fn run_by_size(&mut self, mut slot: Box<Slot>, frames: &[I420<'_>]) -> Result<(), DetectError> {
        if let Err(e) = self.bring_back_away() {
            self.free.push(slot);
            return Err(e);
        }
        let mut group: heapless::Vec<usize, { crate::limits::MAX_BATCH }> = heapless::Vec::new();
        let mut outcome = Ok(());
        for (w, h) in even_sizes(frames) {
            group.clear();
            for (i, f) in frames.iter().enumerate() {
                if (f.width & !1, f.height & !1) == (w, h) {
                    let _ = group.push(i);
                }
            }
            let staged = (|| {
                for (j, &i) in group.iter().enumerate() {
                    copy_even(&frames[i], slot.buffers.input_frame_mut(j, w as usize, h as usize)?);
                    slot.letterboxes[j] = Letterbox::new(w, h, self.in_w, self.in_h);
                }
                let shape = run_shape(group.len(), self.max_batch, self.pad_batches);
                slot.buffers.frames_binding(shape, w as usize, h as usize)
            })();
            let k = match staged {
                Ok(k) => k,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            slot.run = Some(k);
            // On an error here the model's thread has stopped, and the slot with it.
            slot = self.run_now(slot)?;
            if let Err(e) = std::mem::replace(&mut slot.result, Ok(())) {
                outcome = Err(e);
                break;
            }
            let m = group.len();
            for (j, &i) in group.iter().enumerate() {
                let mut dets = std::mem::take(&mut slot.dets[i]);
                let r = self.decode_item(&slot, m, j, &mut dets);
                slot.dets[i] = dets;
                if let Err(e) = r {
                    outcome = Err(e);
                    break;
                }
            }
        }
        slot.decoded = true;
        slot.result = outcome;
        self.finished.push_back(slot);
        Ok(())
    }

    /// Waits for every slot away on the model's thread and queues it in
    /// `finished`, so a batch run now keeps the order of results.
    fn bring_back_away(&mut self) -> Result<(), DetectError> {
        while matches!(self.engine, Engine::Thread { away: 1.., .. }) {
            let s = self.next_finished_away()?;
            self.finished.push_back(s);
        }
        Ok(())
    }

    /// Runs the slot and waits for it (nothing else may be away).
    fn run_now(&mut self, mut slot: Box<Slot>) -> Result<Box<Slot>, DetectError> {
        match &mut self.engine {
            Engine::Inline(runner) => {
                slot.run_on(runner);
                Ok(slot)
            }
            Engine::Thread { .. } => {
                self.launch(slot)?;
                self.next_finished_away()
            }
        }
    }

    /// The next slot back from the model's thread (waits).
    fn next_finished_away(&mut self) -> Result<Box<Slot>, DetectError> {
        let Engine::Thread { done, away, .. } = &mut self.engine else {
            unreachable!("only an overlapping detector sends slots away")
        };
        let slot = done.recv().ok_or_else(|| DetectError::inference("the detector's model thread has stopped"))?;
        *away -= 1;
        Ok(slot)
    }

    /// Decodes item `b` of a run over `n` items into `dets`, in frame
    /// pixels through that item's letterbox.
    fn decode_item(&self, slot: &Slot, n: usize, b: usize, dets: &mut Detections) -> Result<(), DetectError> {
        dets.clear();
        self.head.decode(&slot.buffers, n, b, dets)?;
        nms(dets, self.nms_iou);
        let lb = &slot.letterboxes[b];
        for d in dets.iter_mut() {
            d.bbox = lb.to_frame(&d.bbox);
            for k in d.keypoints.iter_mut() {
                *k = lb.point_to_frame(*k);
            }
        }
        Ok(())
    }
}

impl<H: Head> Drop for ModelDetector<H> {
    fn drop(&mut self) {
        if let Engine::Thread { jobs, thread, .. } = &mut self.engine {
            jobs.take(); // the thread's loop ends when the channel closes
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// The distinct even sizes of `frames`, in order of first appearance (odd
/// sizes lose their last column or row: I420 in the model needs even planes).
fn even_sizes(frames: &[I420<'_>]) -> heapless::Vec<(u32, u32), { crate::limits::MAX_BATCH }> {
    let mut sizes = heapless::Vec::new();
    for f in frames {
        let size = (f.width & !1, f.height & !1);
        if !sizes.contains(&size) {
            let _ = sizes.push(size);
        }
    }
    sizes
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
pub(crate) fn push_best(out: &mut Detections, det: Detection) {
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
