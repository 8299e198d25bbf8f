//! End to end on real parts: the demo video (real faces, x264) through the
//! real decoder, the real CenterFace (and BlazeFace) model on ONNX Runtime,
//! ByteTrack and best-face selection, checked against the video's ground truth.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::truth as demo;
use faceflow::config::Config;
use faceflow::pipeline;

fn run_on(url: &str, outbox: &std::path::Path) -> pipeline::RunReport {
    let toml = format!("[outbox]\ndir = \"{}\"\n[[cameras]]\nname = \"cam\"\nurl = \"{url}\"\n", outbox.display());
    let cfg = Config::from_toml(&toml, "test").unwrap();
    pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).expect("pipeline runs")
}

#[test]
fn demo_video_gives_one_event_per_person_matching_ground_truth() {
    common::require_assets();
    let out = common::temp_dir("e2e-h264");
    let report = run_on("file:models/demo/demo.h264", &out);
    let truth = demo::load_truth(&common::root().join("models/demo/truth.json")).unwrap();
    let ev = demo::evaluate(&report.events, &truth);
    assert_eq!(report.events.len(), truth.persons.len(), "one event per person: {ev:?}");
    assert!(ev.passed(), "every person exactly one event with IoU > 0.5: {ev:?}");
    for matches in &ev.per_person {
        assert!(matches[0].1 > 0.5);
    }
    // Nothing was dropped on a file read at full speed.
    let cam = &report.stats.cameras[0];
    assert_eq!(faceflow::metrics::get(&cam.decoded), truth.frames);
    assert_eq!(faceflow::metrics::get(&cam.detected_frames), truth.frames);
    // The outbox holds a record and two real JPEGs per event.
    let dir = out.join("cam");
    let records = common::files_with_suffix(&dir, ".json");
    assert_eq!(records.len(), report.events.len());
    for r in records {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&r).unwrap()).unwrap();
        let id = v["id"].as_str().unwrap();
        for suffix in ["_face.jpg", "_frame.jpg"] {
            let jpg = std::fs::read(dir.join(format!("{id}{suffix}"))).unwrap();
            assert_eq!(&jpg[..3], &[0xFF, 0xD8, 0xFF], "{id}{suffix} is a JPEG");
        }
        assert_eq!(v["bbox"].as_array().unwrap().len(), 4);
        assert_eq!(v["keypoints"].as_array().unwrap().len(), 5);
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn mp4_and_annexb_inputs_give_the_same_events() {
    common::require_assets();
    let (a, b) = (common::temp_dir("e2e-a"), common::temp_dir("e2e-b"));
    let r1 = run_on("file:models/demo/demo.h264", &a);
    let r2 = run_on("models/demo/demo.mp4", &b);
    let key = |r: &pipeline::RunReport| {
        let mut v: Vec<(u64, u64, [i32; 4])> =
            r.events.iter().map(|e| (e.first_frame, e.best_frame, e.bbox.map(|x| x.round() as i32))).collect();
        v.sort();
        v
    };
    assert_eq!(key(&r1), key(&r2), "same frames decoded, same faces found");
    let _ = (std::fs::remove_dir_all(&a), std::fs::remove_dir_all(&b));
}

/// The FP16 model setup.sh makes for GPU profiles must find the same people
/// (run here on the CPU provider, which executes it through casts).
#[test]
fn fp16_model_passes_the_demo_ground_truth() {
    common::require_assets();
    let out = common::temp_dir("e2e-fp16");
    let toml = format!(
        "[outbox]\ndir = \"{}\"\n[detector]\nmodel = \"models/centerface-fp16.onnx\"\n[[cameras]]\nname = \"cam\"\nurl = \"file:models/demo/demo.h264\"\n",
        out.display()
    );
    let cfg = Config::from_toml(&toml, "test").unwrap();
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).expect("pipeline runs on the FP16 model");
    let truth = demo::load_truth(&common::root().join("models/demo/truth.json")).unwrap();
    let ev = demo::evaluate(&report.events, &truth);
    assert!(ev.passed(), "FP16: every person exactly one event with IoU > 0.5: {ev:?}");
    let _ = std::fs::remove_dir_all(&out);
}

/// The lighter detector (`detector.kind = "blazeface"`) must find the same
/// people, one event each, with boxes on the truth's faces.
#[test]
fn blazeface_passes_the_demo_ground_truth() {
    common::require_assets();
    let out = common::temp_dir("e2e-blazeface");
    let toml = format!(
        "[outbox]\ndir = \"{}\"\n[detector]\nkind = \"blazeface\"\n[[cameras]]\nname = \"cam\"\nurl = \"file:models/demo/demo.h264\"\n",
        out.display()
    );
    let cfg = Config::from_toml(&toml, "test").unwrap();
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).expect("pipeline runs on BlazeFace");
    let truth = demo::load_truth(&common::root().join("models/demo/truth.json")).unwrap();
    let ev = demo::evaluate(&report.events, &truth);
    assert_eq!(report.events.len(), truth.persons.len(), "one event per person: {ev:?}");
    assert!(ev.passed(), "BlazeFace: every person exactly one event with IoU > 0.5: {ev:?}");
    // Its keypoints are usable by the quality score: the best faces are frontal.
    for e in &report.events {
        let [le, re, nose, ..] = e.keypoints;
        assert!(le[0] < nose[0] && nose[0] < re[0], "nose between the eyes: {:?}", e.keypoints);
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// File events carry stream time from the camera's `start_time`, not the
/// moment faceflow processed them (a full-speed run would squeeze them).
#[test]
fn file_timestamps_follow_stream_time_from_start_time() {
    common::require_assets();
    let toml = "[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"cam\"\nurl = \"file:models/demo/demo.h264\"\nfps = 25\nstart_time = \"2026-11-30T08:15:00Z\"\n";
    let cfg = Config::from_toml(toml, "test").unwrap();
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).unwrap();
    let start = 1_796_026_500_000u64;
    assert!(!report.events.is_empty());
    for e in &report.events {
        assert_eq!(e.first_unix_ms, start + e.first_frame * 40, "{}", e.id);
        assert_eq!(e.best_unix_ms, start + e.best_frame * 40, "{}", e.id);
    }
}
