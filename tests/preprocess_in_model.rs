//! The letterbox inside the model (`detector.preprocess = "model"`, the
//! `-i420-WxH` CenterFace setup.sh makes) must give the detections the CPU
//! letterbox gives: same faces, boxes within 0.01 px, scores within 1e-4
//! (the prepended ops reproduce the CPU letterbox bit for bit, so only the
//! runtime's float order could differ). Batches mix the demo (640x480) with
//! 1080p frames, so one batch runs once per frame size.

mod common;

use faceflow::config::Config;
use faceflow::detect::{Detections, Detector};
use faceflow::pool::I420;

fn detector(preprocess: &str, precision: &str) -> Box<dyn Detector> {
    let toml = format!(
        "[detector]\nbatch_size = 4\npreprocess = \"{preprocess}\"\nprecision = \"{precision}\"\n[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"unused\"\nurl = \"file:unused.h264\"\n"
    );
    let cfg = Config::from_toml(&toml, "test").unwrap();
    faceflow::pipeline::load_detector(&cfg).unwrap_or_else(|e| panic!("{preprocess} {precision}: {e}"))
}

fn detect_all(det: &mut dyn Detector, pics: &[(Vec<u8>, u32, u32)]) -> Vec<Detections> {
    let views: Vec<I420<'_>> = pics.iter().map(|(b, w, h)| I420::new(b, *w, *h)).collect();
    let mut all = Vec::new();
    let mut out: Vec<Detections> = (0..4).map(|_| Detections::new()).collect();
    for chunk in views.chunks(4) {
        det.detect_batch(chunk, &mut out[..chunk.len()]).unwrap();
        all.extend(out[..chunk.len()].iter().cloned());
    }
    all
}

#[test]
fn the_letterbox_in_the_model_finds_what_the_cpu_letterbox_finds() {
    common::require_assets();
    // Demo frames and 1080p frames interleaved: every batch of 4 holds both sizes.
    let (small, large) =
        (common::decoded_frames("models/demo/demo.mp4", 60), common::decoded_frames("models/demo/enc/1080p.h264", 60));
    let pics: Vec<_> = small.into_iter().zip(large).flat_map(|(a, b)| [a, b]).collect();
    for precision in ["fp32", "int8"] {
        let cpu = detect_all(detector("cpu", precision).as_mut(), &pics);
        let model = detect_all(detector("model", precision).as_mut(), &pics);
        let faces: usize = cpu.iter().map(|d| d.len()).sum();
        assert!(faces > 80, "{precision}: {faces} faces in 120 frames: the demo has faces in most frames");
        for (i, (a, b)) in cpu.iter().zip(&model).enumerate() {
            assert_eq!(
                a.len(),
                b.len(),
                "{precision}: frame {i}: {} faces on the CPU letterbox, {} in the model",
                a.len(),
                b.len()
            );
            for (x, y) in a.iter().zip(b.iter()) {
                let d = [x.bbox.x1 - y.bbox.x1, x.bbox.y1 - y.bbox.y1, x.bbox.x2 - y.bbox.x2, x.bbox.y2 - y.bbox.y2];
                assert!(d.iter().all(|v| v.abs() < 0.01), "{precision}: frame {i}: {:?} vs {:?}", x.bbox, y.bbox);
                assert!((x.score - y.score).abs() < 1e-4, "{precision}: frame {i}: score {} vs {}", x.score, y.score);
            }
        }
        eprintln!("{precision}: {faces} faces in {} frames, the same with the letterbox in the model", pics.len());
    }
}

/// Frames of a size the detector has not run at need its warm-up first
/// (the detect thread announces that wait): it says so before, and not
/// after; a detector letterboxing on the CPU never does.
#[test]
fn the_detector_says_which_frame_sizes_need_its_warm_up() {
    common::require_assets();
    let mut det = detector("model", "fp32");
    assert!(!det.is_prepared(1280, 720), "no 1280x720 frame has run yet");
    let gray = vec![128u8; 1280 * 720 * 3 / 2];
    let mut out = [Detections::new()];
    det.detect_batch(&[I420::new(&gray, 1280, 720)], &mut out).unwrap();
    assert!(det.is_prepared(1280, 720), "its first frames ran every shape at that size");
    assert!(det.is_prepared(1281, 721), "odd sizes run as the even size below");
    assert!(detector("cpu", "fp32").is_prepared(1280, 720), "the CPU letterbox runs one shape for every size");
}
