//! `detector.overlap`: the model runs on a thread of its own over two sets
//! of buffers while the caller copies the next batch in. It must find
//! exactly what the detector that runs inside `start` finds, with two
//! batches started at once, for both letterboxes (the CPU's into an f32
//! input, the model's from raw frames) and for batches that mix frame
//! sizes (which run size by size).

mod common;

use faceflow::config::Config;
use faceflow::detect::{Detections, Detector};
use faceflow::pool::I420;

const BATCH: usize = 4;

fn detector(preprocess: &str, overlap: bool) -> Box<dyn Detector> {
    let toml = format!(
        "[detector]\nbatch_size = {BATCH}\npreprocess = \"{preprocess}\"\noverlap = {overlap}\n[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"unused\"\nurl = \"file:unused.h264\"\n"
    );
    let cfg = Config::from_toml(&toml, "test").unwrap();
    faceflow::pipeline::load_detector(&cfg).unwrap_or_else(|e| panic!("{preprocess} overlap={overlap}: {e}"))
}

/// Every batch started before the previous one is finished, as the
/// detect thread drives an overlapping detector.
fn detect_overlapped(det: &mut dyn Detector, batches: &[Vec<I420<'_>>]) -> Vec<Detections> {
    assert_eq!(det.depth(), 2, "an overlapping detector takes two batches");
    let mut all = Vec::new();
    let mut out: Vec<Detections> = (0..BATCH).map(|_| Detections::new()).collect();
    let mut started: Option<usize> = None;
    for b in batches {
        det.start(b).unwrap();
        if let Some(n) = started {
            det.finish(&mut out[..n]).unwrap();
            all.extend(out[..n].iter().cloned());
        }
        started = Some(b.len());
    }
    let n = started.unwrap();
    det.finish(&mut out[..n]).unwrap();
    all.extend(out[..n].iter().cloned());
    assert!(det.last_inference().is_some(), "an overlapping detector times its model's runs");
    all
}

fn view((b, w, h): &(Vec<u8>, u32, u32)) -> I420<'_> {
    I420::new(b, *w, *h)
}

fn detect_inline(det: &mut dyn Detector, batches: &[Vec<I420<'_>>]) -> Vec<Detections> {
    assert_eq!(det.depth(), 1);
    let mut all = Vec::new();
    let mut out: Vec<Detections> = (0..BATCH).map(|_| Detections::new()).collect();
    for b in batches {
        det.detect_batch(b, &mut out[..b.len()]).unwrap();
        all.extend(out[..b.len()].iter().cloned());
    }
    all
}

#[test]
fn an_overlapping_detector_finds_what_the_inline_one_finds() {
    common::require_assets();
    let small = common::decoded_frames("models/demo/demo.mp4", 40);
    let large = common::decoded_frames("models/demo/enc/1080p.h264", 8);
    // Single-size batches, then batches that mix the demo with 1080p, then
    // single-size again: a mixed batch started behind a running one.
    let mut batches: Vec<Vec<I420<'_>>> = small[..24].chunks(BATCH).map(|c| c.iter().map(view).collect()).collect();
    for (i, l) in large.iter().enumerate() {
        let mut b = vec![view(&small[24 + 2 * i]), view(l)];
        if i % 2 == 0 {
            b.push(view(&small[25 + 2 * i]));
        }
        batches.push(b);
    }
    batches.push(vec![view(&small[39])]);
    for preprocess in ["cpu", "model"] {
        let inline = detect_inline(detector(preprocess, false).as_mut(), &batches);
        let overlapped = detect_overlapped(detector(preprocess, true).as_mut(), &batches);
        assert_eq!(inline.len(), overlapped.len());
        let faces: usize = inline.iter().map(|d| d.len()).sum();
        assert!(
            faces >= 20,
            "{preprocess}: {faces} faces in {} frames: the demo has faces in most of them",
            inline.len()
        );
        for (i, (a, b)) in inline.iter().zip(&overlapped).enumerate() {
            assert_eq!(a.len(), b.len(), "{preprocess}: frame {i}: {} faces inline, {} overlapped", a.len(), b.len());
            for (x, y) in a.iter().zip(b.iter()) {
                let d = [x.bbox.x1 - y.bbox.x1, x.bbox.y1 - y.bbox.y1, x.bbox.x2 - y.bbox.x2, x.bbox.y2 - y.bbox.y2];
                assert!(d.iter().all(|v| v.abs() < 1e-3), "{preprocess}: frame {i}: {:?} vs {:?}", x.bbox, y.bbox);
                assert!((x.score - y.score).abs() < 1e-5, "{preprocess}: frame {i}: score {} vs {}", x.score, y.score);
            }
        }
        eprintln!("{preprocess}: {faces} faces in {} frames, the same overlapped", inline.len());
    }
}
