//! A fixed, deterministic workload per stage for instruction counting:
//! `scripts/instructions.py` runs `instructions <stage> <iterations>` under
//! valgrind (cachegrind, no cache simulation), subtracts the `none` run
//! (the same set-up without the loop) and compares instructions per
//! iteration with `benches/instructions.txt`. Instruction counts do not
//! depend on the machine's speed or load, so CI can guard them with a tight
//! band where wall-clock thresholds would be flaky.
//!
//! Synthetic inputs (a gradient frame, a heatmap with ten peaks, BlazeFace
//! anchors with ten faces) keep it
//! free of assets and of decoder start-up. Without arguments (as
//! `cargo test --all-targets` runs it) every stage runs once.

mod common;

use std::hint::black_box;

use common::face;
use faceflow::config::{QualityConfig, TrackerConfig};
use faceflow::detect::blazeface::{decode_layer, Anchors};
use faceflow::detect::centerface::{decode, Grid};
use faceflow::detect::letterbox::Resampler;
use faceflow::detect::nms::nms;
use faceflow::detect::{Detection, Detections};
use faceflow::pool::I420;
use faceflow::track::ByteTracker;

pub const STAGES: [&str; 6] = ["letterbox", "heatmap", "anchors", "track", "quality", "ring"];

struct Workload {
    frame: Vec<u8>,
    resampler: Resampler,
    plane: Vec<f32>,
    heat: Vec<f32>,
    scale: Vec<f32>,
    offset: Vec<f32>,
    lms: Vec<f32>,
    anchor_scores: Vec<f32>,
    anchor_boxes: Vec<f32>,
    tracker: ByteTracker,
    quality: QualityConfig,
    tx: faceflow::ring::Producer<u64>,
    rx: faceflow::ring::Consumer<u64>,
    step: u32,
}

const W: u32 = 640;
const H: u32 = 480;
const DW: u32 = faceflow::board::DETECTOR_WIDTH;
const DH: u32 = faceflow::board::DETECTOR_HEIGHT;

impl Workload {
    fn new() -> Self {
        let frame = (0..faceflow::pool::i420_len(W, H)).map(|i| ((i * 7 + i / 640) % 251) as u8).collect();
        let (gw, gh) = ((DW / 4) as usize, (DH / 4) as usize);
        let hw = gw * gh;
        let mut heat = vec![0.01f32; hw];
        let mut scale = vec![0.0f32; 2 * hw];
        for f in 0..10 {
            // Ten faces, each a 3x3 blob, as CenterFace's heatmap shows them.
            let (x, y) = (5 + f * 9 % (gw - 10), 5 + f * 5 % (gh - 10));
            for dy in 0..3 {
                for dx in 0..3 {
                    heat[(y + dy) * gw + x + dx] = 0.6 + 0.01 * (dx + dy) as f32;
                }
            }
            scale[(y + 2) * gw + x + 2] = 2.5;
            scale[hw + (y + 2) * gw + x + 2] = 2.3;
        }
        // BlazeFace's stride-16 layer (16x16 cells x 2 anchors): ten faces,
        // each firing its cell's two anchors, the rest far below threshold.
        let mut anchor_scores = vec![-8.0f32; 512];
        let mut anchor_boxes = vec![0.0f32; 512 * 16];
        for f in 0..10 {
            for a in 0..2 {
                let i = (f * 37 % 256) * 2 + a;
                anchor_scores[i] = 1.5 + 0.1 * a as f32;
                anchor_boxes[i * 16..i * 16 + 4].copy_from_slice(&[1.0, -1.0, 30.0, 30.0]);
            }
        }
        let (tx, rx) = faceflow::ring::channel::<u64>(64);
        Workload {
            frame,
            resampler: Resampler::new(DW, DH),
            plane: vec![0f32; 3 * (DW * DH) as usize],
            heat,
            scale,
            offset: vec![0.1f32; 2 * hw],
            lms: vec![0.5f32; 10 * hw],
            anchor_scores,
            anchor_boxes,
            tracker: ByteTracker::new(TrackerConfig::default(), 0.3),
            quality: QualityConfig::default(),
            tx,
            rx,
            step: 0,
        }
    }

    fn run(&mut self, stage: &str) {
        let pic = I420::new(&self.frame, W, H);
        match stage {
            "letterbox" => {
                black_box(self.resampler.fill(&pic, DW, DH, &mut self.plane));
            }
            "heatmap" => {
                let (gw, gh) = ((DW / 4) as usize, (DH / 4) as usize);
                let g =
                    Grid { heat: &self.heat, scale: &self.scale, offset: &self.offset, lms: &self.lms, w: gw, h: gh };
                let mut dets = Detections::new();
                decode(&g, 0.5, (DW as f32, DH as f32), &mut dets);
                nms(&mut dets, 0.3);
                black_box(dets.len());
            }
            "anchors" => {
                let mut dets = Detections::new();
                let a = Anchors { cells: 16, per_cell: 2, stride: 16 };
                decode_layer(&self.anchor_scores, &self.anchor_boxes, a, 0.0, &mut dets);
                nms(&mut dets, 0.3);
                black_box(dets.len());
            }
            "track" => {
                self.step += 1;
                let t = (self.step % 50) as f32;
                let dets: heapless::Vec<Detection, 10> =
                    (0..10).map(|f| face(f as f32 * 60.0 + t, 100.0 + (f % 3) as f32 * 90.0, 50.0, 0.8)).collect();
                black_box(self.tracker.update(&dets).matched.len());
            }
            "quality" => {
                let det = face(250.0, 150.0, 120.0, 0.9);
                black_box(faceflow::face::quality::score(&self.quality, &det, &pic).total());
            }
            "ring" => {
                for i in 0..64u64 {
                    let _ = self.tx.try_push(black_box(i));
                }
                while let Some(v) = self.rx.try_pop() {
                    black_box(v);
                }
            }
            "none" => {}
            other => panic!("unknown stage {other:?}; stages: none {}", STAGES.join(" ")),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let mut w = Workload::new();
    match args.as_slice() {
        [stage, iterations] => {
            let n: u32 = iterations.parse().expect("iterations");
            for _ in 0..n {
                w.run(stage);
            }
        }
        _ => {
            for stage in STAGES {
                w.run(stage);
            }
        }
    }
}
