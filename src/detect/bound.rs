//! An ONNX Runtime session whose input and outputs live in buffers bound
//! once, so an inference allocates nothing on the Rust heap.
//!
//! The ort crate's `Session::run` builds an input list, output names and an
//! output map on every call (about nine allocations) and lets ONNX Runtime
//! allocate fresh output tensors. Here one input buffer and one buffer per
//! output are sized for the largest batch at load; for every batch size
//! that will run, ORT tensor values are created over the first `n` items of
//! those buffers. A run hands ONNX Runtime the prebuilt values as
//! preallocated outputs through the C API's `Run`, and the caller reads the
//! results straight from the buffers. ONNX Runtime's own C++ allocations
//! (its arena, planned per shape during warm-up) are not the Rust heap and
//! are not counted here.
//!
//! Two input layouts: f32 items of a fixed shape (a letterboxed RGB
//! tensor, a landmark crop), or raw I420 frames (u8, N x H*3/2 x W) for a
//! detector that letterboxes inside the model. Frame sizes are not known
//! at load, so I420 values are bound the first time a (batch, size) pair
//! runs: once per camera resolution, then never again.
//!
//! The buffers and their values ([`Buffers`]) are apart from the model
//! ([`Runner`]), so a detector can keep two sets and fill one while the
//! model runs over the other on a thread of its own; [`BoundSession`] is
//! the two together, for callers that run one batch at a time.
//!
//! On the CUDA provider a runner keeps a session per input shape
//! ([`Runner`]): ONNX Runtime's CUDA convolutions rebuild their cuDNN plans
//! whenever a node's input shape changes, seconds a change, so one session
//! that alternates between batch sizes or frame sizes would pay that on
//! every batch.
//!
//! On a GPU provider the buffers can live in page-locked memory from the
//! session's CUDA pinned allocator ([`HostMemory`]): the copies to and from
//! the GPU are then DMA, where heap memory is first staged by the driver
//! through a page-locked buffer of its own (a CPU memcpy per batch, in and
//! out, competing with the decoders for the cores).

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::Arc;

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::sys::OrtValue;
use ort::value::{Shape, TensorElementType, TensorRef, TensorRefMut, ValueType};
use ort::AsPointer;

use super::runtime::Reopen;
use super::DetectError;

/// Most outputs a bound model may have (CenterFace has four).
pub(crate) const MAX_OUTPUTS: usize = 8;
/// Most (batch, frame size) bindings an I420 session keeps; past it, the
/// bindings of other frame sizes are dropped (a camera changing resolution
/// over and over costs a re-bind, never unbounded memory).
const MAX_I420_BINDINGS: usize = 32;
/// Most sessions a runner that keeps a session per shape holds (the
/// shapes of a few frame sizes); past it, those of other sizes close.
const MAX_SHAPE_SESSIONS: usize = 32;

/// What the model's one input takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputLayout {
    /// f32 items of shape `item` (N x item[0] x item[1] x item[2]).
    F32 { item: [usize; 3] },
    /// Raw I420 frames, u8 N x H*3/2 x W, W and H even and at most
    /// `max_width` x `max_height`.
    I420 { max_width: usize, max_height: usize },
}

impl InputLayout {
    /// Bytes of one batch item at its largest.
    fn max_item_bytes(&self) -> usize {
        match *self {
            InputLayout::F32 { item } => item.iter().product::<usize>() * 4,
            InputLayout::I420 { max_width, max_height } => i420_bytes(max_width, max_height),
        }
    }

    /// Why frames of `w` x `h` cannot go into this input, if they cannot.
    fn refuse_frames(&self, w: usize, h: usize) -> Option<String> {
        match *self {
            InputLayout::F32 { .. } => Some("an f32 input takes no raw frames".into()),
            InputLayout::I420 { max_width, max_height }
                if w == 0 || h == 0 || !w.is_multiple_of(2) || !h.is_multiple_of(2) || w > max_width || h > max_height =>
            {
                Some(format!(
                    "frame size {w}x{h} is empty, odd or outside the {max_width}x{max_height} the input was sized for (the board's max_frame_width/height)"
                ))
            }
            InputLayout::I420 { .. } => None,
        }
    }
}

/// Bytes of an I420 frame of `w` x `h` (`pool::i420_len`, in this module's units).
fn i420_bytes(w: usize, h: usize) -> usize {
    crate::pool::i420_len(w as u32, h as u32)
}

/// Whether the session's one input is u8 of rank 3 (raw I420 frames).
pub(crate) fn takes_i420(session: &Session) -> bool {
    matches!(
        session.inputs().first().map(|i| i.dtype()),
        Some(ValueType::Tensor { ty: TensorElementType::Uint8, shape, .. }) if shape.len() == 3
    )
}

enum InputValue {
    F32(TensorRefMut<'static, f32>),
    U8(TensorRefMut<'static, u8>),
}

impl InputValue {
    fn ptr(&self) -> *const OrtValue {
        match self {
            InputValue::F32(v) => v.ptr(),
            InputValue::U8(v) => v.ptr(),
        }
    }
}

/// ORT values over the first `n` items of the buffers, for items of
/// `size` (the frame size for I420; unused for f32 items).
struct BoundValues {
    n: usize,
    size: (usize, usize),
    input: InputValue,
    outputs: Vec<TensorRefMut<'static, f32>>,
}

/// What binding buffers needs to know about the model.
#[derive(Clone)]
struct Shapes {
    layout: InputLayout,
    max_batch: usize,
    /// Each output's shape past the batch dimension.
    item_shapes: Vec<Vec<i64>>,
    /// Values per batch item of each output.
    output_items: Vec<usize>,
}

/// Where a set of buffers asks to live on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostBuffers {
    /// The process heap.
    Heap,
    /// Page-locked memory when the session's provider offers a CUDA pinned
    /// allocator (the CUDA provider), the heap otherwise.
    PinnedIfOffered,
}

/// The memory behind a set of buffers: the input's block, then each
/// output's.
enum HostMemory {
    Heap(Vec<Vec<f32>>),
    Pinned(PinnedBlocks),
}

/// Blocks from the session's CUDA pinned allocator, freed on drop. ONNX
/// Runtime's allocator for a session is valid only while the session is,
/// so the blocks keep it alive.
struct PinnedBlocks {
    /// Each block and its length in f32s.
    blocks: Vec<(*mut c_void, usize)>,
    // Field order: the allocator is released before the session.
    allocator: Allocator,
    session: Arc<Session>,
}

// SAFETY: the blocks are this struct's alone (nothing else frees or keeps
// them), so it may move to another thread with the buffers that use it
// (the model's thread and back); the allocator and session are Send.
unsafe impl Send for PinnedBlocks {}

impl Drop for PinnedBlocks {
    fn drop(&mut self) {
        for (b, _) in self.blocks.drain(..) {
            // SAFETY: each block came from this allocator's `alloc` and is
            // freed once; the values over it were dropped before (field
            // order in `Buffers`).
            unsafe { self.allocator.free(b) };
        }
    }
}

crate::error::context_error!(
    /// Buffers or ORT values that could not be made for a batch shape.
    BindError,
    ""
);

impl PinnedBlocks {
    fn new(lens: &[usize], session: &Arc<Session>) -> Result<PinnedBlocks, BindError> {
        let info = MemoryInfo::new(AllocationDevice::CUDA_PINNED, 0, AllocatorType::Device, MemoryType::CPUInput)
            .map_err(|e| BindError::caused("pinned memory info", e))?;
        let allocator = Allocator::new(session, info).map_err(|e| BindError::caused("pinned allocator", e))?;
        let mut pinned = PinnedBlocks { blocks: Vec::with_capacity(lens.len()), allocator, session: session.clone() };
        for &len in lens {
            let block = pinned
                .allocator
                .alloc::<f32>(len)
                .map_err(|e| BindError::caused(format!("{} bytes", len * 4), e))?
                .into_raw();
            // SAFETY: a fresh block of `len` f32s; zeroed so that every
            // slice later made over it reads initialised memory.
            unsafe { ptr::write_bytes(block.cast::<f32>(), 0, len) };
            pinned.blocks.push((block, len));
        }
        Ok(pinned)
    }
}

impl HostMemory {
    /// Zeroed blocks of `lens` f32s each: page-locked when `pin` names a
    /// session whose provider offers a CUDA pinned allocator, on the heap
    /// otherwise (and then the reason, for the log).
    fn new(lens: &[usize], pin: Option<&Arc<Session>>) -> (HostMemory, Option<String>) {
        let heap = || HostMemory::Heap(lens.iter().map(|&len| vec![0.0f32; len]).collect());
        let Some(session) = pin else { return (heap(), None) };
        match PinnedBlocks::new(lens, session) {
            Ok(p) => (HostMemory::Pinned(p), None),
            Err(why) => (heap(), Some(why.to_string())),
        }
    }

    /// Block `i`: 0 is the input's, 1.. the outputs'.
    fn block(&self, i: usize) -> &[f32] {
        match self {
            HostMemory::Heap(v) => &v[i],
            HostMemory::Pinned(p) => {
                let (b, len) = p.blocks[i];
                // SAFETY: a zeroed block of `len` f32s owned by `p`, alive as
                // long as `self`; `&self` keeps a run (which takes `&mut`
                // buffers) from writing it meanwhile.
                unsafe { std::slice::from_raw_parts(b.cast::<f32>().cast_const(), len) }
            }
        }
    }

    fn block_mut(&mut self, i: usize) -> &mut [f32] {
        match self {
            HostMemory::Heap(v) => &mut v[i],
            HostMemory::Pinned(p) => {
                let (b, len) = p.blocks[i];
                // SAFETY: as `block`; `&mut self` makes this the only view.
                unsafe { std::slice::from_raw_parts_mut(b.cast::<f32>(), len) }
            }
        }
    }

    /// The session to pin a spare set of buffers with, if these are pinned.
    fn pinned_session(&self) -> Option<&Arc<Session>> {
        match self {
            HostMemory::Heap(_) => None,
            HostMemory::Pinned(p) => Some(&p.session),
        }
    }
}

/// One set of input and output buffers and the ORT values over them. A
/// detector that overlaps batches keeps two and hands one to the thread
/// that runs the model while it fills the other (`detect::model`).
pub struct Buffers {
    // Declared first so it drops first: these values point into `memory`.
    bound: Vec<BoundValues>,
    shapes: Shapes,
    /// The input buffer (block 0; f32 so that an f32 view is aligned, I420
    /// frames use it as bytes), then one buffer per output.
    memory: HostMemory,
}

impl Buffers {
    fn new(shapes: Shapes, pin: Option<&Arc<Session>>) -> (Self, Option<String>) {
        let mut lens = vec![(shapes.max_batch * shapes.layout.max_item_bytes()).div_ceil(4)];
        lens.extend(shapes.output_items.iter().map(|&len| shapes.max_batch * len));
        let (memory, refused) = HostMemory::new(&lens, pin);
        (Buffers { bound: Vec::new(), shapes, memory }, refused)
    }

    /// Whether these buffers are page-locked.
    pub fn pinned(&self) -> bool {
        matches!(self.memory, HostMemory::Pinned(_))
    }

    /// Another set of buffers for the same model, bound for the same
    /// batch shapes as these.
    pub(crate) fn spare(&self) -> Result<Buffers, DetectError> {
        let (mut b, refused) = Buffers::new(self.shapes.clone(), self.memory.pinned_session());
        if let Some(why) = refused {
            log::warn!("a second set of buffers is on the heap, the first is page-locked: {why}");
        }
        for v in &self.bound {
            b.bind(v.n, v.size).map_err(|e| DetectError::load(e.to_string()))?;
        }
        Ok(b)
    }

    /// The index of the values for `n` items of `size`, created (once) if new.
    fn bind(&mut self, n: usize, size: (usize, usize)) -> Result<usize, BindError> {
        if let Some(k) = self.bound.iter().position(|b| b.n == n && b.size == size) {
            return Ok(k);
        }
        let max_batch = self.shapes.max_batch;
        if n == 0 || n > max_batch {
            return Err(BindError::new(format!("batch size {n} outside 1..={max_batch}")));
        }
        if self.bound.len() >= MAX_I420_BINDINGS {
            self.bound.retain(|b| b.size == size);
        }
        let shape = |item: &[i64]| Shape::new(std::iter::once(n as i64).chain(item.iter().copied()));
        let input_ptr = self.memory.block_mut(0).as_mut_ptr().cast();
        let input = match self.shapes.layout {
            InputLayout::F32 { item } => {
                let in_shape = shape(&item.map(|d| d as i64));
                // Page-locked blocks are tagged as CPU memory too: to ONNX
                // Runtime they are host memory like any other, and the CUDA
                // driver sees that they are pinned and copies by DMA.
                // The buffers are allocated at creation, never resized, and
                // owned by the struct that owns these values, which drop first.
                // SAFETY: so the pointer outlives the value; moving the struct
                // (to another thread too) does not move the blocks.
                let v = unsafe { TensorRefMut::from_raw(MemoryInfo::default(), input_ptr, in_shape) };
                InputValue::F32(v.map_err(|e| BindError::caused("input tensor", e))?)
            }
            InputLayout::I420 { .. } => {
                let (w, h) = size;
                if let Some(why) = self.shapes.layout.refuse_frames(w, h) {
                    return Err(BindError::new(why));
                }
                let in_shape = shape(&[(h * 3 / 2) as i64, w as i64]);
                // SAFETY: as above; n frames of this size fit the buffer
                // (sized for max_batch frames of the largest size).
                let v = unsafe { TensorRefMut::from_raw(MemoryInfo::default(), input_ptr, in_shape) };
                InputValue::U8(v.map_err(|e| BindError::caused("input tensor", e))?)
            }
        };
        let mut outputs = Vec::with_capacity(self.shapes.item_shapes.len());
        for (k, item) in self.shapes.item_shapes.iter().enumerate() {
            let ptr = self.memory.block_mut(k + 1).as_mut_ptr().cast();
            // SAFETY: as above.
            let v = unsafe { TensorRefMut::from_raw(MemoryInfo::default(), ptr, shape(item)) }
                .map_err(|e| BindError::caused("output tensor", e))?;
            outputs.push(v);
        }
        self.bound.push(BoundValues { n, size, input, outputs });
        Ok(self.bound.len() - 1)
    }

    /// The values for the first `n` items of an f32 input buffer; `n` must
    /// be one of the batch sizes bound at load.
    pub(crate) fn binding(&self, n: usize) -> Result<usize, DetectError> {
        self.bound
            .iter()
            .position(|b| b.n == n)
            .ok_or_else(|| DetectError::inference(format!("batch size {n} was not bound at load")))
    }

    /// The values for the first `n` frames (`w` x `h`) of an I420 input
    /// buffer; the first use of a new (n, size) pair binds them (allocates once).
    pub(crate) fn frames_binding(&mut self, n: usize, w: usize, h: usize) -> Result<usize, DetectError> {
        self.bind(n, (w, h)).map_err(|e| DetectError::inference(e.to_string()))
    }

    pub fn max_batch(&self) -> usize {
        self.shapes.max_batch
    }

    pub fn layout(&self) -> InputLayout {
        self.shapes.layout
    }

    fn input_bytes_mut(&mut self) -> &mut [u8] {
        let input = self.memory.block_mut(0);
        let len = input.len() * 4;
        // SAFETY: any f32 buffer is a valid byte buffer of four times its length.
        unsafe { std::slice::from_raw_parts_mut(input.as_mut_ptr().cast::<u8>(), len) }
    }

    /// Batch item `i` of an f32 input buffer, to be filled before a run.
    pub fn input_item_mut(&mut self, i: usize) -> &mut [f32] {
        let InputLayout::F32 { item } = self.shapes.layout else { panic!("input_item_mut on an I420 session") };
        let len = item.iter().product::<usize>();
        &mut self.memory.block_mut(0)[i * len..(i + 1) * len]
    }

    /// Frame `i` of a batch of I420 frames of even size `w` x `h`, to be
    /// filled before a run of the same size; an error for a size the
    /// input cannot take.
    pub(crate) fn input_frame_mut(&mut self, i: usize, w: usize, h: usize) -> Result<&mut [u8], DetectError> {
        if let Some(why) = self.shapes.layout.refuse_frames(w, h) {
            return Err(DetectError::inference(why));
        }
        let len = i420_bytes(w, h);
        Ok(&mut self.input_bytes_mut()[i * len..(i + 1) * len])
    }

    /// Values per batch item of each output, in output order.
    pub(crate) fn output_item_lens(&self) -> &[usize] {
        &self.shapes.output_items
    }

    /// Output `k` for the first `n` batch items of the last run.
    pub fn output(&self, k: usize, n: usize) -> &[f32] {
        &self.memory.block(k + 1)[..n * self.shapes.output_items[k]]
    }
}

/// The model itself: runs it over a set of [`Buffers`]. ONNX Runtime's
/// `Run` may be called from any thread, so this can live on a thread of
/// its own while the buffers travel to it and back.
pub struct Runner {
    /// One session for every shape, or (with `reopen`) one per input
    /// shape, opened the first time that shape runs (at load, or at a
    /// camera's first frames of a new size): see
    /// [`Reopen::wants_a_session_per_shape`]. The first is shared with
    /// page-locked buffers, whose allocator lives as long as it does.
    sessions: Vec<ShapeSession>,
    reopen: Option<Reopen>,
    input_name: CString,
    output_names: Vec<CString>,
}

/// A session and the input shape it keeps to (None: not yet run, or any
/// shape when the runner keeps one session).
struct ShapeSession {
    shape: Option<(usize, (usize, usize))>,
    session: Arc<Session>,
}

/// A model and one set of buffers: what a caller that runs one batch at a
/// time (the landmarks stage, a detector that does not overlap) needs.
pub struct BoundSession {
    pub runner: Runner,
    pub buffers: Buffers,
}

impl BoundSession {
    /// Binds `session` (one f32 input of shape N x `item_dims`, f32 outputs
    /// whose first dimension is N) for the batch sizes in `batch_sizes`, none
    /// above `max_batch`. Runs each size once: that learns the output shapes
    /// and lets ONNX Runtime plan its memory before the first frame.
    /// `reopen`: open a session per batch shape this way (None: `session`
    /// runs them all).
    pub fn new(
        session: Session,
        reopen: Option<Reopen>,
        item_dims: [usize; 3],
        max_batch: usize,
        batch_sizes: &[usize],
    ) -> Result<Self, DetectError> {
        Self::with_layout(
            session,
            reopen,
            InputLayout::F32 { item: item_dims },
            (0, 0),
            max_batch,
            batch_sizes,
            HostBuffers::Heap,
        )
    }

    /// As [`BoundSession::new`] for any layout. An I420 session is warmed
    /// up with frames of `warm_size` (even; the outputs' shapes must not
    /// depend on the frame size, as a model that letterboxes guarantees).
    /// `host` says where the buffers ask to live.
    pub fn with_layout(
        mut session: Session,
        reopen: Option<Reopen>,
        layout: InputLayout,
        warm_size: (usize, usize),
        max_batch: usize,
        batch_sizes: &[usize],
        host: HostBuffers,
    ) -> Result<Self, DetectError> {
        let load = |what: &str, e: &dyn std::fmt::Display| DetectError::load(format!("{what}: {e}"));
        if session.inputs().len() != 1 || session.outputs().is_empty() || session.outputs().len() > MAX_OUTPUTS {
            return Err(DetectError::load(format!(
                "model has {} inputs and {} outputs; one input and 1..={MAX_OUTPUTS} outputs can be bound",
                session.inputs().len(),
                session.outputs().len()
            )));
        }
        let input_name = CString::new(session.inputs()[0].name()).map_err(|e| load("input name", &e))?;
        let output_names = session
            .outputs()
            .iter()
            .map(|o| CString::new(o.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| load("output name", &e))?;
        if let InputLayout::I420 { .. } = layout {
            if let Some(why) = layout.refuse_frames(warm_size.0, warm_size.1) {
                return Err(DetectError::load(format!("I420 warm-up: {why}")));
            }
        }
        // One run at batch 1 through ort's allocating path gives each
        // output's per-item shape.
        let mut item_shapes = Vec::new();
        {
            let out = match layout {
                InputLayout::F32 { item } => {
                    let dims = [1, item[0], item[1], item[2]];
                    let zeros = vec![0.0f32; item.iter().product::<usize>()];
                    let view = TensorRef::from_array_view((dims, &zeros[..])).map_err(|e| load("input", &e))?;
                    session.run(ort::inputs![view]).map_err(|e| load("first run", &e))?
                }
                InputLayout::I420 { .. } => {
                    let (w, h) = warm_size;
                    let frame = vec![128u8; i420_bytes(w, h)];
                    let view =
                        TensorRef::from_array_view(([1, h * 3 / 2, w], &frame[..])).map_err(|e| load("input", &e))?;
                    session.run(ort::inputs![view]).map_err(|e| load("first run", &e))?
                }
            };
            for (_, v) in out.iter() {
                let (shape, _) = v.try_extract_tensor::<f32>().map_err(|e| load("output", &e))?;
                if shape.first() != Some(&1) {
                    return Err(DetectError::load(format!("output shape {shape:?} does not start with the batch")));
                }
                item_shapes.push(shape[1..].to_vec());
            }
        }
        let output_items = item_shapes.iter().map(|sh| sh.iter().product::<i64>() as usize).collect();
        let session = Arc::new(session);
        let pin = (host == HostBuffers::PinnedIfOffered).then_some(&session);
        let (buffers, refused) = Buffers::new(Shapes { layout, max_batch, item_shapes, output_items }, pin);
        match refused {
            // The CPU provider offers no pinned allocator: heap memory is
            // what it reads best anyway.
            Some(why) => log::debug!("buffers on the heap: no page-locked memory from the provider ({why})"),
            None if buffers.pinned() => log::info!("input and output buffers in page-locked (CUDA pinned) memory"),
            None => {}
        }
        let sessions = vec![ShapeSession { shape: None, session }];
        let mut s = BoundSession { runner: Runner { sessions, reopen, input_name, output_names }, buffers };
        let size = match layout {
            InputLayout::F32 { .. } => (0, 0),
            InputLayout::I420 { .. } => warm_size,
        };
        for &n in batch_sizes {
            assert!((1..=max_batch).contains(&n), "batch size {n} outside 1..={max_batch}");
            let k = s.buffers.bind(n, size).map_err(|e| load("bind", &e))?;
            s.runner.run(&mut s.buffers, k).map_err(|e| DetectError::load(format!("warm-up at batch {n}: {e}")))?;
        }
        Ok(s)
    }

    pub fn max_batch(&self) -> usize {
        self.buffers.max_batch()
    }

    pub fn layout(&self) -> InputLayout {
        self.buffers.layout()
    }

    /// Batch item `i` of an f32 input buffer, to be filled before a run.
    pub fn input_item_mut(&mut self, i: usize) -> &mut [f32] {
        self.buffers.input_item_mut(i)
    }

    /// Values per batch item of each output, in output order.
    pub(crate) fn output_item_lens(&self) -> &[usize] {
        self.buffers.output_item_lens()
    }

    /// Output `k` for the first `n` batch items of the last run.
    pub fn output(&self, k: usize, n: usize) -> &[f32] {
        self.buffers.output(k, n)
    }

    /// One inference over the first `n` items of an f32 input buffer,
    /// results into the output buffers. `n` must be one of the bound batch sizes.
    pub fn run(&mut self, n: usize) -> Result<(), DetectError> {
        let k = self.buffers.binding(n)?;
        self.runner.run(&mut self.buffers, k)
    }
}

impl Runner {
    /// The index of the session for batches of `n` items of `size`: the one
    /// session, or that shape's, opened if new. Past [`MAX_SHAPE_SESSIONS`] the
    /// sessions of other frame sizes are closed (as bindings are).
    fn session_for(&mut self, n: usize, size: (usize, usize)) -> Result<usize, DetectError> {
        let Some(reopen) = &self.reopen else { return Ok(0) };
        let shape = Some((n, size));
        let k = match self.sessions.iter().position(|s| s.shape == shape) {
            Some(k) => k,
            None => match self.sessions.iter().position(|s| s.shape.is_none()) {
                Some(k) => {
                    self.sessions[k].shape = shape;
                    k
                }
                None => {
                    if self.sessions.len() >= MAX_SHAPE_SESSIONS {
                        // Page-locked buffers keep the session of their
                        // allocator alive on their own (`PinnedBlocks`).
                        self.sessions.retain(|s| s.shape.is_some_and(|(_, sz)| sz == size));
                    }
                    let session = reopen.open(n, size)?;
                    log::debug!("{}: a session of its own for batch {n} at {size:?}", reopen.provider());
                    self.sessions.push(ShapeSession { shape, session: Arc::new(session) });
                    self.sessions.len() - 1
                }
            },
        };
        Ok(k)
    }

    /// How many sessions the runner holds (one, or one per shape run).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// One inference through the values `k` of `buffers` (from
    /// [`Buffers::binding`] or [`Buffers::frames_binding`]), results into
    /// its output buffers.
    pub fn run(&mut self, buffers: &mut Buffers, k: usize) -> Result<(), DetectError> {
        let values = &buffers.bound[k];
        let which = self.session_for(values.n, values.size)?;
        let session = &self.sessions[which].session;
        let count = values.outputs.len();
        let input_names = [self.input_name.as_ptr()];
        let inputs = [values.input.ptr()];
        let mut output_names: [*const c_char; MAX_OUTPUTS] = [ptr::null(); MAX_OUTPUTS];
        let mut outputs: [*mut OrtValue; MAX_OUTPUTS] = [ptr::null_mut(); MAX_OUTPUTS];
        for (k, v) in values.outputs.iter().enumerate() {
            output_names[k] = self.output_names[k].as_ptr();
            outputs[k] = v.ptr().cast_mut();
        }
        // Run itself may be called from any thread.
        // Names are owned CStrings, values live ORT values over live buffers.
        // SAFETY: every pointer is valid for the call, and the `&mut` borrow
        // of the buffers keeps anyone from reading them while Run fills them.
        let status = unsafe {
            (ort::api().Run)(
                session.ptr().cast_mut(),
                ptr::null(),
                input_names.as_ptr(),
                inputs.as_ptr(),
                1,
                output_names.as_ptr(),
                count,
                outputs.as_mut_ptr(),
            )
        };
        if status.0.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null status is ours to read and release.
        let message = unsafe {
            let m = CStr::from_ptr((ort::api().GetErrorMessage)(status.0)).to_string_lossy().into_owned();
            (ort::api().ReleaseStatus)(status.0);
            m
        };
        Err(DetectError::inference(message))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::ConvSearch;
    use crate::detect::runtime;

    /// A camera that changes resolution over and over must not make a
    /// runner keep a session per size forever: past the cap, only the
    /// current size's sessions stay (and its bindings, past theirs).
    #[test]
    #[cfg_attr(
        target_arch = "aarch64",
        ignore = "ONNX Runtime's CPU probe segfaults inside the test harness under qemu-user (scripts/test.sh's \
                  aarch64 run), reading the host's cache topology; on an Arm board: cargo test -- --ignored"
    )]
    fn sessions_per_shape_stop_at_the_cap_keeping_the_current_size() {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/centerface-i420-640x384.onnx");
        assert!(model.exists(), "{} is missing: run scripts/setup.sh", model.display());
        let env = runtime::environment(Path::new("")).unwrap();
        let (session, reopen) = runtime::open(env, &model, &["cpu"], ConvSearch::Board).unwrap();
        let layout = InputLayout::I420 { max_width: 640, max_height: 384 };
        let mut s =
            BoundSession::with_layout(session, Some(reopen), layout, (64, 48), 2, &[1], HostBuffers::Heap).unwrap();
        assert_eq!(s.runner.sessions(), 1, "the warm-up's shape took the first session");
        let mut run = |n: usize, w: usize, h: usize| {
            for i in 0..n {
                s.buffers.input_frame_mut(i, w, h).unwrap().fill(128);
            }
            let k = s.buffers.frames_binding(n, w, h).unwrap();
            s.runner.run(&mut s.buffers, k).unwrap();
            (s.runner.sessions(), s.buffers.bound.len())
        };
        // Frame sizes 66x48, 68x48, ...: 31 more shapes fill the runner.
        for i in 1..MAX_SHAPE_SESSIONS {
            let (sessions, _) = run(1, 64 + 2 * i, 48);
            assert_eq!(sessions, i + 1, "frame size {}x48: a session of its own", 64 + 2 * i);
        }
        // The same size at batch 2 is a new shape: the others' go.
        let (sessions, bindings) = run(2, 64 + 2 * (MAX_SHAPE_SESSIONS - 1), 48);
        assert_eq!(sessions, 2, "past the cap, the sessions of this size (batch 1, now 2) stay");
        assert_eq!(bindings, 2, "and its bindings");
        // A shape held is run again without a session more.
        assert_eq!(run(1, 64 + 2 * (MAX_SHAPE_SESSIONS - 1), 48).0, 2);
    }
}
