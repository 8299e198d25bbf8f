//! Once-a-second samples of the headline numbers, last 60 kept, for the
//! panel's sparklines and `/api/stats`. Also derives rates (fps, inferences
//! per second, CPU %) from counter deltas.

use std::collections::VecDeque;
use std::time::Instant;

use super::process::{self, ProcessSample};
use crate::metrics::{get, Stats};

pub(crate) const SAMPLES: usize = 60;

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Point {
    pub t: f64,
    /// Per camera: frames captured (decoded) per second, frames that
    /// reached the detector per second, events per minute.
    pub fps: Vec<f64>,
    pub camera_detect_fps: Vec<f64>,
    pub events_per_min: Vec<f64>,
    pub detect_fps: f64,
    pub inferences_per_s: f64,
    pub infer_ms: f64,
    pub cpu_percent: f64,
    pub rss_mb: f64,
}

pub struct History {
    pub points: VecDeque<Point>,
    last_at: Option<Instant>,
    last_decoded: Vec<u64>,
    last_cam_detected: Vec<u64>,
    last_events: Vec<u64>,
    last_detected: u64,
    last_batches: u64,
    last_infer_sum_us: u64,
    last_proc: ProcessSample,
}

impl History {
    pub fn new(cameras: usize) -> Self {
        History {
            points: VecDeque::with_capacity(SAMPLES),
            last_at: None,
            last_decoded: vec![0; cameras],
            last_cam_detected: vec![0; cameras],
            last_events: vec![0; cameras],
            last_detected: 0,
            last_batches: 0,
            last_infer_sum_us: 0,
            last_proc: ProcessSample::default(),
        }
    }

    pub fn latest(&self) -> Option<&Point> {
        self.points.back()
    }

    pub fn sample(&mut self, stats: &Stats) {
        let now = Instant::now();
        let proc_now = process::sample();
        let decoded: Vec<u64> = stats.cameras.iter().map(|c| get(&c.decoded)).collect();
        let cam_detected: Vec<u64> = stats.cameras.iter().map(|c| get(&c.detected_frames)).collect();
        let events: Vec<u64> = stats.cameras.iter().map(|c| get(&c.events)).collect();
        let detected: u64 = stats.cameras.iter().map(|c| get(&c.detected_frames)).sum();
        let batches = get(&stats.stages.batches);
        let infer_sum = stats.stages.preprocess_infer.sum_us();
        if let Some(prev) = self.last_at {
            let dt = now.duration_since(prev).as_secs_f64().max(1e-3);
            let db = batches.saturating_sub(self.last_batches);
            let p = Point {
                t: stats.started.elapsed().as_secs_f64(),
                fps: decoded.iter().zip(&self.last_decoded).map(|(a, b)| a.saturating_sub(*b) as f64 / dt).collect(),
                camera_detect_fps: cam_detected
                    .iter()
                    .zip(&self.last_cam_detected)
                    .map(|(a, b)| a.saturating_sub(*b) as f64 / dt)
                    .collect(),
                events_per_min: events
                    .iter()
                    .zip(&self.last_events)
                    .map(|(a, b)| a.saturating_sub(*b) as f64 / dt * 60.0)
                    .collect(),
                detect_fps: detected.saturating_sub(self.last_detected) as f64 / dt,
                inferences_per_s: db as f64 / dt,
                infer_ms: if db > 0 {
                    infer_sum.saturating_sub(self.last_infer_sum_us) as f64 / db as f64 / 1000.0
                } else {
                    0.0
                },
                cpu_percent: (proc_now.cpu_seconds - self.last_proc.cpu_seconds) / dt / process::cores() as f64 * 100.0,
                rss_mb: proc_now.rss_bytes as f64 / (1024.0 * 1024.0),
            };
            if self.points.len() == SAMPLES {
                self.points.pop_front();
            }
            self.points.push_back(p);
        }
        self.last_at = Some(now);
        self.last_decoded = decoded;
        self.last_cam_detected = cam_detected;
        self.last_events = events;
        self.last_detected = detected;
        self.last_batches = batches;
        self.last_infer_sum_us = infer_sum;
        self.last_proc = proc_now;
    }
}
