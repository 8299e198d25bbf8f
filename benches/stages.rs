//! criterion micro-benchmarks of the per-frame stages, on a real demo frame
//! where pixels matter (run scripts/setup.sh first): preprocessing
//! (letterbox), NMS, tracker update, quality score, ring push/pop and JPEG.
//! `faceflow bench` measures the whole pipeline; these find regressions in
//! one stage.

mod common;

use std::hint::black_box;

use common::face;
use criterion::{criterion_group, criterion_main, Criterion};
use faceflow::config::{QualityConfig, TrackerConfig};
use faceflow::detect::letterbox::Resampler;
use faceflow::detect::nms::nms;
use faceflow::detect::{Detection, Detections};
use faceflow::geom::BBox;
use faceflow::pool::I420;
use faceflow::track::ByteTracker;

/// First demo frame as I420 (640x480), or a gradient when assets are missing.
fn demo_frame() -> (Vec<u8>, u32, u32) {
    let path = std::path::Path::new("models/demo").join("demo.h264");
    let mut first = None;
    let _ = faceflow::ingest::decode_file(&path, 1, |pic| {
        let mut buf = vec![0u8; faceflow::pool::i420_len(pic.width, pic.height)];
        pic.copy_to(&mut buf);
        first = Some((buf, pic.width, pic.height));
    });
    if let Some(f) = first {
        return f;
    }
    let (w, h) = (640u32, 480u32);
    let buf = (0..faceflow::pool::i420_len(w, h)).map(|i| (i % 253) as u8).collect();
    (buf, w, h)
}

fn stages(c: &mut Criterion) {
    let (buf, w, h) = demo_frame();
    let pic = I420::new(&buf, w, h);
    let (dw, dh) = (faceflow::board::DETECTOR_WIDTH, faceflow::board::DETECTOR_HEIGHT);

    let mut resampler = Resampler::new(dw, dh);
    let mut plane = vec![0f32; 3 * (dw * dh) as usize];
    c.bench_function(&format!("letterbox {w}x{h} -> {dw}x{dh} RGB f32"), |b| {
        b.iter(|| black_box(resampler.fill(&pic, dw, dh, &mut plane)))
    });

    // 40 candidates: 10 faces, each seen 4 times with small shifts (what a
    // heatmap decoder hands NMS).
    let mut cands = Detections::new();
    for f in 0..10 {
        for k in 0..4 {
            let _ = cands.push(face(f as f32 * 60.0 + k as f32 * 2.0, 100.0 + k as f32, 50.0, 0.5 + 0.1 * k as f32));
        }
    }
    c.bench_function("nms 40 candidates -> 10", |b| {
        b.iter(|| {
            let mut d = cands.clone();
            nms(&mut d, 0.3);
            black_box(d.len())
        })
    });

    let mut tracker = ByteTracker::new(TrackerConfig::default(), 0.3);
    let mut t = 0f32;
    c.bench_function("bytetrack update, 10 moving faces", |b| {
        b.iter(|| {
            t += 1.0;
            let dets: heapless::Vec<Detection, 10> =
                (0..10).map(|f| face(f as f32 * 60.0 + (t % 50.0), 100.0, 50.0, 0.8)).collect();
            black_box(tracker.update(&dets).matched.len())
        })
    });

    let qcfg = QualityConfig::default();
    let det = face(250.0, 150.0, 120.0, 0.9);
    c.bench_function("quality score (incl. sharpness) 120px face", |b| {
        b.iter(|| black_box(faceflow::face::quality::score(&qcfg, &det, &pic).total()))
    });

    let (mut tx, mut rx) = faceflow::ring::channel::<u64>(64);
    c.bench_function("ring push + pop", |b| {
        b.iter(|| {
            let _ = tx.try_push(black_box(7));
            black_box(rx.try_pop())
        })
    });

    let mut enc = faceflow::jpeg::JpegEncoder::new().expect("libturbojpeg");
    let mut out = Vec::new();
    let full = BBox::new(0.0, 0.0, w as f32, h as f32);
    c.bench_function(&format!("jpeg {w}x{h} frame from I420, q90"), |b| {
        b.iter(|| enc.encode_i420(&pic, &full, 90, &mut out).map(|_| out.len()))
    });
    let crop = faceflow::jpeg::face_crop_region(&det.bbox, 0.25);
    c.bench_function("jpeg face crop from I420, q90", |b| {
        b.iter(|| enc.encode_i420(&pic, &crop, 90, &mut out).map(|_| out.len()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = stages
}
criterion_main!(benches);
