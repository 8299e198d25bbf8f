//! `detect::bound::BoundSession` against the ort crate's own `Session::run`
//! on the real CenterFace model: the same input must give the same outputs
//! (the preallocated output buffers really receive the results, item by
//! item, at every bound batch size), and a batch size that was not bound is
//! refused with its number rather than run. Both host memories: the heap,
//! and page-locked where the provider offers it (on the CPU provider it
//! does not, and the buffers must fall back to the heap and still work).
//! On x86-cpu, then, the "pinned" test proves only the fallback: page-locked
//! buffers run where a CUDA provider exists (scripts/gpu-bench.sh), not in
//! the test command. A runner that keeps a session per batch shape (as on
//! the CUDA provider, forced here on the CPU's) must give the same outputs
//! as one session, whatever order the shapes run in.

mod common;

use std::path::Path;

use faceflow::detect::bound::{BoundSession, HostBuffers, InputLayout};
use faceflow::detect::runtime;

const W: usize = 160;
const H: usize = 128;

fn input_item(seed: usize) -> Vec<f32> {
    (0..3 * W * H).map(|i| ((i * 31 + seed * 97) % 256) as f32).collect()
}

#[test]
fn bound_outputs_equal_session_run_outputs() {
    bound_outputs_equal_session_run_outputs_in(HostBuffers::Heap);
}

#[test]
fn buffers_that_ask_for_pinned_memory_work_where_none_is_offered() {
    bound_outputs_equal_session_run_outputs_in(HostBuffers::PinnedIfOffered);
}

fn bound_outputs_equal_session_run_outputs_in(host: HostBuffers) {
    common::require_assets();
    let env = runtime::environment(Path::new("")).unwrap();
    let model = Path::new("models/centerface.onnx");
    let mut reference = runtime::session(env, model, faceflow::config::ConvSearch::Board).unwrap();
    let session = runtime::session(env, model, faceflow::config::ConvSearch::Board).unwrap();
    let layout = InputLayout::F32 { item: [3, H, W] };
    let mut bound = BoundSession::with_layout(session, None, layout, (0, 0), 3, &[1, 3], host).unwrap();
    if faceflow::board::EXECUTION_PROVIDERS == ["cpu"] {
        // The CPU provider has no pinned allocator: the heap, whatever was asked.
        assert!(!bound.buffers.pinned());
    }

    let items: Vec<Vec<f32>> = (0..3).map(input_item).collect();
    for (i, item) in items.iter().enumerate() {
        bound.input_item_mut(i).copy_from_slice(item);
    }
    bound.run(3).unwrap();

    // The ort crate's path, one item at a time.
    for (i, item) in items.iter().enumerate() {
        let view = ort::value::TensorRef::from_array_view(([1usize, 3, H, W], item.as_slice())).unwrap();
        let out = reference.run(ort::inputs![view]).unwrap();
        for k in 0..4 {
            let (_, want) = out[k].try_extract_tensor::<f32>().unwrap();
            let got = &bound.output(k, 3)[i * want.len()..(i + 1) * want.len()];
            let worst = want.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "output {k}, item {i}: differs by {worst}");
        }
    }
    // The heatmap is not all zeros: the buffers were written, not left as allocated.
    assert!(bound.output(0, 1).iter().any(|&v| v > 0.0));

    // Batch 2 was not bound: refused, not run at a wrong shape.
    let e = bound.run(2).unwrap_err().to_string();
    assert!(e.contains("batch size 2"), "{e}");
}

/// BlazeFace as scripts/prepare_blazeface.py leaves it: any batch size, and
/// a batch of three gives what three single runs give (the rewritten pads
/// and reshapes keep items apart).
#[test]
fn blazeface_batches_like_single_runs() {
    common::require_assets();
    const S: usize = 256;
    let env = runtime::environment(Path::new("")).unwrap();
    let model = Path::new("models/blazeface.onnx");
    let mut single = BoundSession::new(
        runtime::session(env, model, faceflow::config::ConvSearch::Board).unwrap(),
        None,
        [3, S, S],
        1,
        &[1],
    )
    .unwrap();
    let mut batched = BoundSession::new(
        runtime::session(env, model, faceflow::config::ConvSearch::Board).unwrap(),
        None,
        [3, S, S],
        3,
        &[3],
    )
    .unwrap();
    let items: Vec<Vec<f32>> =
        (0..3).map(|seed| (0..3 * S * S).map(|i| ((i * 7 + seed * 131) % 256) as f32).collect()).collect();
    for (i, item) in items.iter().enumerate() {
        batched.input_item_mut(i).copy_from_slice(item);
    }
    batched.run(3).unwrap();
    for (i, item) in items.iter().enumerate() {
        single.input_item_mut(0).copy_from_slice(item);
        single.run(1).unwrap();
        for k in 0..4 {
            let want = single.output(k, 1);
            let got = &batched.output(k, 3)[i * want.len()..(i + 1) * want.len()];
            let worst = want.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "output {k}, item {i}: differs by {worst}");
        }
    }
}

/// A session per shape (the CUDA provider's way, here on the CPU provider
/// through `Reopen` directly): each shape opens its own session once, the
/// same inputs give the same outputs as one session running every shape,
/// and going back to a shape already run opens nothing new.
#[test]
fn a_session_per_shape_gives_what_one_session_gives() {
    common::require_assets();
    let env = runtime::environment(Path::new("")).unwrap();
    let model = Path::new("models/centerface.onnx");
    let layout = InputLayout::F32 { item: [3, H, W] };
    let (session, reopen) = runtime::open(env, model, &["cpu"], faceflow::config::ConvSearch::Board).unwrap();
    assert_eq!(reopen.provider(), "cpu");
    let mut per_shape =
        BoundSession::with_layout(session, Some(reopen), layout, (0, 0), 4, &[1, 2, 4], HostBuffers::Heap).unwrap();
    assert_eq!(per_shape.runner.sessions(), 3, "one session per bound shape, opened at load");
    let one = runtime::session(env, model, faceflow::config::ConvSearch::Board).unwrap();
    let mut single = BoundSession::with_layout(one, None, layout, (0, 0), 4, &[1, 2, 4], HostBuffers::Heap).unwrap();
    assert_eq!(single.runner.sessions(), 1);

    let items: Vec<Vec<f32>> = (0..4).map(input_item).collect();
    // Shapes out of order and back again: 2, 1, 4, 2.
    for n in [2, 1, 4, 2] {
        for (i, item) in items.iter().take(n).enumerate() {
            per_shape.input_item_mut(i).copy_from_slice(item);
            single.input_item_mut(i).copy_from_slice(item);
        }
        per_shape.run(n).unwrap();
        single.run(n).unwrap();
        for k in 0..4 {
            let (want, got) = (single.output(k, n), per_shape.output(k, n));
            let worst = want.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "batch {n}, output {k}: differs by {worst}");
        }
        assert!(per_shape.output(0, n).iter().any(|&v| v > 0.0), "batch {n}: heatmap left at zero");
    }
    assert_eq!(per_shape.runner.sessions(), 3, "a shape run before opened no new session");
}
