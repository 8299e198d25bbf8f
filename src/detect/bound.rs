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

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use ort::memory::MemoryInfo;
use ort::session::Session;
use ort::sys::OrtValue;
use ort::value::{Shape, TensorRef, TensorRefMut};
use ort::AsPointer;

use super::DetectError;

/// Most outputs a bound model may have (CenterFace has four).
pub const MAX_OUTPUTS: usize = 8;

/// ORT values over the first `n` items of the buffers.
struct BoundValues {
    input: TensorRefMut<'static, f32>,
    outputs: Vec<TensorRefMut<'static, f32>>,
}

pub struct BoundSession {
    // Declared first so it drops first: these values point into `input`
    // and `outputs` below.
    bound: Vec<Option<BoundValues>>,
    session: Session,
    input_name: CString,
    output_names: Vec<CString>,
    input: Vec<f32>,
    input_item: usize,
    outputs: Vec<Vec<f32>>,
    output_items: Vec<usize>,
}

impl BoundSession {
    /// Binds `session` (one f32 input of shape N x `item_dims`, f32 outputs
    /// whose first dimension is N) for the batch sizes in `batch_sizes`, none
    /// above `max_batch`. Runs each size once: that learns the output shapes
    /// and lets ONNX Runtime plan its memory before the first frame.
    pub fn new(
        mut session: Session,
        item_dims: [usize; 3],
        max_batch: usize,
        batch_sizes: &[usize],
    ) -> Result<Self, DetectError> {
        let load = |what: &str, e: &dyn std::fmt::Display| DetectError::Load(format!("{what}: {e}"));
        if session.inputs().len() != 1 || session.outputs().is_empty() || session.outputs().len() > MAX_OUTPUTS {
            return Err(DetectError::Load(format!(
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
        let input_item = item_dims.iter().product::<usize>();
        let mut input = vec![0.0f32; max_batch * input_item];

        // One run at batch 1 through ort's allocating path gives each
        // output's per-item shape.
        let mut item_shapes = Vec::new();
        {
            let dims = [1, item_dims[0], item_dims[1], item_dims[2]];
            let view = TensorRef::from_array_view((dims, &input[..input_item])).map_err(|e| load("input", &e))?;
            let out = session.run(ort::inputs![view]).map_err(|e| load("first run", &e))?;
            for (_, v) in out.iter() {
                let (shape, _) = v.try_extract_tensor::<f32>().map_err(|e| load("output", &e))?;
                if shape.first() != Some(&1) {
                    return Err(DetectError::Load(format!("output shape {shape:?} does not start with the batch")));
                }
                item_shapes.push(shape[1..].to_vec());
            }
        }
        let output_items: Vec<usize> = item_shapes.iter().map(|s| s.iter().product::<i64>() as usize).collect();
        let mut outputs: Vec<Vec<f32>> = output_items.iter().map(|&len| vec![0.0f32; max_batch * len]).collect();

        let mut bound: Vec<Option<BoundValues>> = (0..max_batch).map(|_| None).collect();
        for &n in batch_sizes {
            assert!((1..=max_batch).contains(&n), "batch size {n} outside 1..={max_batch}");
            let shape = |item: &[i64]| Shape::new(std::iter::once(n as i64).chain(item.iter().copied()));
            let in_shape = shape(&item_dims.map(|d| d as i64));
            // SAFETY: the buffers are allocated above, never resized, and
            // owned by the struct that also owns these values, which are
            // dropped first (field order). Moving the struct does not move
            // a Vec's heap buffer.
            let input_value =
                unsafe { TensorRefMut::from_raw(MemoryInfo::default(), input.as_mut_ptr().cast(), in_shape) }
                    .map_err(|e| load("input tensor", &e))?;
            let mut output_values = Vec::with_capacity(outputs.len());
            for (buf, item) in outputs.iter_mut().zip(&item_shapes) {
                // SAFETY: as above.
                let v = unsafe { TensorRefMut::from_raw(MemoryInfo::default(), buf.as_mut_ptr().cast(), shape(item)) }
                    .map_err(|e| load("output tensor", &e))?;
                output_values.push(v);
            }
            bound[n - 1] = Some(BoundValues { input: input_value, outputs: output_values });
        }
        let mut s = BoundSession { bound, session, input_name, output_names, input, input_item, outputs, output_items };
        for &n in batch_sizes {
            s.run(n).map_err(|e| DetectError::Load(format!("warm-up at batch {n}: {e}")))?;
        }
        Ok(s)
    }

    pub fn max_batch(&self) -> usize {
        self.bound.len()
    }

    /// Batch item `i` of the input buffer, to be filled before a run.
    pub fn input_item_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.input[i * self.input_item..(i + 1) * self.input_item]
    }

    /// Values per batch item of each output, in output order.
    pub fn output_item_lens(&self) -> &[usize] {
        &self.output_items
    }

    /// Output `k` for the first `n` batch items of the last run.
    pub fn output(&self, k: usize, n: usize) -> &[f32] {
        &self.outputs[k][..n * self.output_items[k]]
    }

    /// One inference over the first `n` items of the input buffer, results
    /// into the output buffers. `n` must be one of the bound batch sizes.
    pub fn run(&mut self, n: usize) -> Result<(), DetectError> {
        let Some(values) = self.bound.get(n.wrapping_sub(1)).and_then(Option::as_ref) else {
            return Err(DetectError::Inference(format!("batch size {n} was not bound at load")));
        };
        let count = values.outputs.len();
        let input_names = [self.input_name.as_ptr()];
        let inputs = [values.input.ptr()];
        let mut output_names: [*const c_char; MAX_OUTPUTS] = [ptr::null(); MAX_OUTPUTS];
        let mut outputs: [*mut OrtValue; MAX_OUTPUTS] = [ptr::null_mut(); MAX_OUTPUTS];
        for (k, v) in values.outputs.iter().enumerate() {
            output_names[k] = self.output_names[k].as_ptr();
            outputs[k] = v.ptr().cast_mut();
        }
        // SAFETY: every pointer is valid for the call: names are owned
        // CStrings, values are live ORT values over live buffers, and the
        // `&mut self` borrow keeps the session to this thread (ORT's Run is
        // not thread-safe). Non-null outputs are filled in place.
        let status = unsafe {
            (ort::api().Run)(
                self.session.ptr().cast_mut(),
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
        Err(DetectError::Inference(message))
    }
}
