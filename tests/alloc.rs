//! Heap allocations per frame once warm, counted by a global allocator
//! around the real pipeline: the demo once (350 frames) and twice over
//! (700 frames, the same Annex B stream concatenated); everything paid once
//! per run (threads, rings, pool, model session) cancels in the difference,
//! which leaves what 350 more frames cost.
//!
//! Only Rust-side allocations are seen: ONNX Runtime allocates through its
//! own C++ allocator (arena-backed once warm), outside this count.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

// The binary's counting allocator (not part of the library's API),
// included by path.
#[allow(dead_code)]
#[path = "../src/cli/alloc_count.rs"]
mod alloc_count;
use alloc_count::{allocations, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations one EVENT may cost (its record, id and face JPEG): events
/// are per track, not per frame. Steady-state frames (decode, detect at
/// batch 1, the x86-cpu default where every frame is one inference, track,
/// quality) may cost none. History: 9.1 per frame before the detector ran
/// on preallocated ORT values (`detect::bound`), 0 since (7 per event).
const BUDGET_PER_EVENT: u64 = 8;
/// Allocations a run may differ by whatever its frame count: with the
/// model on a thread of its own, the longer run was seen to cost 2 more
/// than its events in one of three runs (threads' timing; not per frame,
/// not yet traced). One allocation per frame would add 350.
const SLACK_PER_RUN: u64 = 4;

fn allocations_for(kind: &str, preprocess: &str, overlap: bool, file: &std::path::Path) -> (u64, usize) {
    let toml = format!(
        "[detector]\nkind = \"{kind}\"\npreprocess = \"{preprocess}\"\noverlap = {overlap}\nbatch_size = 1\n[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"cam\"\nurl = \"file:{}\"\n",
        file.display()
    );
    let cfg = faceflow::config::Config::from_toml(&toml, "alloc").unwrap();
    let before = allocations();
    let report = faceflow::pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).unwrap();
    let n = allocations() - before;
    (n, report.events.len())
}

/// Both detectors, CenterFace with the letterbox inside the model (raw
/// frames bound per size on first sight), and both letterboxes with the
/// model on a thread of its own (buffers passed back and forth through
/// channels), one after the other (the counter is process-wide, so they
/// must not run as parallel tests).
#[test]
fn steady_state_frames_allocate_nothing() {
    common::require_assets();
    // ONNX Runtime's environment is made once per process: do it first.
    faceflow::detect::runtime::environment(std::path::Path::new("")).unwrap();
    let once = common::root().join("models/demo/demo.h264");
    let dir = common::temp_dir("alloc");
    let twice = dir.join("twice.h264");
    let bytes = std::fs::read(&once).unwrap();
    std::fs::write(&twice, [bytes.as_slice(), bytes.as_slice()].concat()).unwrap();
    for (kind, preprocess, overlap) in [
        ("centerface", "cpu", false),
        ("centerface", "model", false),
        ("blazeface", "cpu", false),
        ("centerface", "cpu", true),
        ("centerface", "model", true),
    ] {
        let (a1, e1) = allocations_for(kind, preprocess, overlap, &once);
        let (a2, e2) = allocations_for(kind, preprocess, overlap, &twice);
        let kind = format!("{kind} (letterbox: {preprocess}, overlap: {overlap})");
        let (extra_allocs, extra_events) = (a2.saturating_sub(a1), (e2 - e1) as u64);
        println!(
            "{kind}: allocations: 350 frames {a1} ({e1} events), 700 frames {a2} ({e2} events): \
             {extra_allocs} for 350 more frames and {extra_events} more events"
        );
        assert!(extra_events > 0, "{kind}: the second pass made no events, so the run did not see its frames");
        // One allocation per frame would add 350: far above the events' share.
        assert!(
            extra_allocs <= extra_events * BUDGET_PER_EVENT + SLACK_PER_RUN,
            "{kind}: 350 steady-state frames cost {extra_allocs} allocations; their {extra_events} events may cost {} (+{SLACK_PER_RUN})",
            extra_events * BUDGET_PER_EVENT
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
