//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The demo's ground truth and the scoring of events against it: the
/// binary's module (not part of the library's API), included by path.
#[path = "../src/cli/truth.rs"]
pub mod truth;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo assets and model that scripts/setup.sh provides. Tests that need
/// them fail loudly (not skip) when they are missing: CI runs setup first.
pub fn require_assets() {
    for p in [
        "models/centerface.onnx",
        "models/centerface-int8.onnx",
        "models/blazeface.onnx",
        "models/demo/demo.h264",
        "models/demo/demo.mp4",
        "models/demo/truth.json",
    ] {
        assert!(root().join(p).exists(), "{p} is missing: run scripts/setup.sh");
    }
    std::env::set_current_dir(root()).unwrap();
}

/// The CPU a figure was measured on, printed beside it.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().into())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faceflow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.to_string_lossy().ends_with(suffix)).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The first `n` frames of a video file, decoded into owned I420 buffers
/// (buffer, width, height).
pub fn decoded_frames(file: &str, n: usize) -> Vec<(Vec<u8>, u32, u32)> {
    let mut out = Vec::new();
    faceflow::ingest::decode_file(&root().join(file), n, |pic| {
        let mut buf = vec![0u8; faceflow::pool::i420_len(pic.width, pic.height)];
        pic.copy_to(&mut buf);
        out.push((buf, pic.width, pic.height));
    })
    .unwrap();
    out
}
