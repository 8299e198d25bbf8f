//! `faceflow run --config <file.toml>`: the pipeline until the inputs end
//! or a signal stops it, then a summary per camera and stage. Exit status:
//! 0, 1 when a camera failed or the pipeline could not start, 3 when the run
//! finished but input was missing (truncated files, lost streams).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use faceflow::{config::Config, metrics, pipeline};

pub fn main(config: &Path, tracks: Option<PathBuf>, detections: Option<PathBuf>) -> ExitCode {
    let mut cfg = match Config::from_file(config) {
        Ok(cfg) => cfg,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    cfg.tracks_out = tracks;
    cfg.detections_out = detections;
    run(&cfg)
}

fn run(cfg: &Config) -> ExitCode {
    let stop = faceflow::shutdown::install();
    match pipeline::run(cfg, stop) {
        Ok(report) => {
            print_summary(&report);
            let partial: Vec<String> = report
                .camera_names
                .iter()
                .zip(&report.stats.cameras)
                .filter(|(_, c)| c.partial.load(std::sync::atomic::Ordering::Relaxed))
                .map(|(n, c)| format!("camera {n}: {}", c.reason()))
                .collect();
            if !report.camera_errors.is_empty() {
                ExitCode::from(1)
            } else if !partial.is_empty() {
                // Exit status 3: the run finished, but input was missing.
                eprintln!("{}", partial.join("\n"));
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// What a run did, per camera and per stage, on stdout.
pub fn print_summary(r: &pipeline::RunReport) {
    let s = &r.stats;
    for (i, name) in r.camera_names.iter().enumerate() {
        let c = &s.cameras[i];
        println!(
            "camera {name}: {} frames decoded, {} decode errors, {} detected, {} skipped, {} motion-gated, {} faces, {} events; dropped: pool {} ring {} superseded {} stale {}; capture->detect p50 {} us p99 {} us",
            metrics::get(&c.decoded),
            metrics::get(&c.decode_errors),
            metrics::get(&c.detected_frames),
            metrics::get(&c.skipped_frames),
            metrics::get(&c.motion_gated),
            metrics::get(&c.faces),
            metrics::get(&c.events),
            metrics::get(&c.dropped_pool_empty),
            metrics::get(&c.dropped_ring_full),
            metrics::get(&c.dropped_superseded),
            metrics::get(&c.dropped_stale),
            c.capture_to_detect.quantile_us(0.5),
            c.capture_to_detect.quantile_us(0.99),
        );
    }
    for (name, c) in r.camera_names.iter().zip(&s.cameras) {
        let reason = c.reason();
        if !reason.is_empty() {
            println!("camera {name}: {}: {reason}", c.state().as_str());
        }
    }
    for why in s.stalls.reasons() {
        println!("stalled: {why}");
    }
    let st = &s.stages;
    let batches = metrics::get(&st.batches).max(1);
    println!(
        "detect: {} batches, mean batch {:.2}, inference mean {:.1} ms (p50 {} us, p99 {} us); decode mean {:.2} ms; {} tracks rejected by validation; wall {:.2} s",
        metrics::get(&st.batches),
        metrics::get(&st.batched_frames) as f64 / batches as f64,
        st.preprocess_infer.mean_us() / 1000.0,
        st.preprocess_infer.quantile_us(0.5),
        st.preprocess_infer.quantile_us(0.99),
        st.decode.mean_us() / 1000.0,
        metrics::get(&st.rejected),
        r.wall.as_secs_f64()
    );
    let lm = &st.landmark;
    if lm.enabled.load(std::sync::atomic::Ordering::Relaxed) {
        let b = metrics::get(&lm.batches);
        println!(
            "landmarks: {} faces in {b} batches, mean batch {:.2}, mean {:.1} ms per batch (p99 {} us); {} scored from detector keypoints (stage full), {} late, {} not faces",
            metrics::get(&lm.faces),
            metrics::get(&lm.faces) as f64 / b.max(1) as f64,
            st.landmarks.mean_us() / 1000.0,
            st.landmarks.quantile_us(0.99),
            metrics::get(&lm.fallback),
            metrics::get(&lm.late),
            metrics::get(&lm.not_face),
        );
    }
}
