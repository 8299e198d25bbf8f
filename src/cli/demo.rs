//! `faceflow demo`: the built-in demo video as one camera, its events
//! printed and checked against the ground truth saved beside it (exit 1 if
//! they do not match: one event per person, nothing else).

use std::path::PathBuf;
use std::process::ExitCode;

use faceflow::{config::Config, pipeline};

use super::run::print_summary;
use super::truth::{self, DEMO_DIR};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where events and their JPEGs go.
    #[arg(long, value_name = "dir", default_value = "outbox/demo")]
    outbox: String,
    /// Read the video at its frame rate (25 fps), as a camera would send it.
    #[arg(long)]
    realtime: bool,
    /// Serve the panel and stats on this address while the demo runs.
    #[arg(long, value_name = "host:port", default_value = "")]
    monitor: String,
}

/// The demo's config: the demo video as one camera, read at full speed (or
/// paced at 25 fps with `realtime`), with the monitor on `monitor` ("" = off).
pub fn config_toml(outbox: &str, realtime: bool, monitor: &str) -> String {
    format!(
        r#"
[outbox]
dir = "{outbox}"

[monitor]
bind = "{monitor}"

[[cameras]]
name = "demo"
url = "file:{DEMO_DIR}/demo.h264"
fps = 25
realtime = {realtime}
"#
    )
}

pub fn main(args: DemoArgs) -> ExitCode {
    run_demo(args.outbox, args.realtime, args.monitor)
}

/// How long `demo --monitor` keeps the panel up after the video.
const DEMO_PANEL_LINGER: std::time::Duration = std::time::Duration::from_secs(600);

fn run_demo(outbox: String, realtime: bool, monitor: String) -> ExitCode {
    let video = PathBuf::from(DEMO_DIR).join("demo.h264");
    if !video.exists() {
        log::error!("demo video {} is missing: run scripts/setup.sh first (or scripts/demo.sh)", video.display());
        return ExitCode::from(2);
    }
    let cfg = match Config::from_toml(&config_toml(&outbox, realtime, &monitor), "built-in demo config") {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let stop = faceflow::shutdown::install();
    let report = match pipeline::run(&cfg, stop.clone()) {
        Ok(r) => r,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    println!();
    for e in &report.events {
        println!(
            "EVENT {}  track {:>3}  frames {:>3}..{:<3} best frame {:>3}  bbox [{:>4.0} {:>4.0} {:>4.0} {:>4.0}]  quality {:.3} (frontality {:.2}, size {:.2}, confidence {:.2}, sharpness {:.2}, aspect {:.2})",
            e.id,
            e.track_id,
            e.first_frame,
            e.last_frame,
            e.best_frame,
            e.bbox[0],
            e.bbox[1],
            e.bbox[2],
            e.bbox[3],
            e.quality,
            e.quality_parts.frontality,
            e.quality_parts.size,
            e.quality_parts.confidence,
            e.quality_parts.sharpness,
            e.quality_parts.aspect
        );
    }
    print_summary(&report);
    println!("events and JPEGs written to {outbox}/demo/");
    let truth_path = PathBuf::from(DEMO_DIR).join("truth.json");
    let truth = match truth::load_truth(&truth_path) {
        Ok(t) => t,
        Err(e) => {
            log::warn!("no ground truth to check against: {e}");
            return ExitCode::SUCCESS;
        }
    };
    let ev = truth::evaluate(&report.events, &truth);
    for (p, matches) in truth.persons.iter().zip(&ev.per_person) {
        let ious: Vec<String> = matches.iter().map(|(id, iou)| format!("{id} (IoU {iou:.2})")).collect();
        println!("person {} ({}): {} event(s) {}", p.id, p.source, matches.len(), ious.join(", "));
    }
    if !ev.unmatched.is_empty() {
        println!("events matching no person: {}", ev.unmatched.join(", "));
    }
    println!(
        "demo: {} events for {} people in the ground truth: {}",
        report.events.len(),
        truth.persons.len(),
        if ev.passed() { "PASS" } else { "FAIL" }
    );
    // The last faces arrive as the video ends: the panel stays up so they
    // can be looked at.
    if let Some(m) = &report.monitor {
        println!("the panel stays up at http://{}/ for {} s; Ctrl-C ends it", m.addr, DEMO_PANEL_LINGER.as_secs());
        let until = std::time::Instant::now() + DEMO_PANEL_LINGER;
        while std::time::Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    if ev.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
