//! faceflow command line: `run`, `demo`, `check-config`.

use std::path::PathBuf;
use std::process::ExitCode;

use faceflow::{board, config::Config, demo, monitor, pipeline};

// Counts allocations so `bench` can report them per frame; one relaxed
// atomic add per allocation, and the hot path makes none.
#[global_allocator]
static ALLOCATOR: faceflow::alloc_count::CountingAllocator = faceflow::alloc_count::CountingAllocator;

const USAGE: &str = "usage:
  faceflow run --config <file.toml> [--tracks FILE] [--detections FILE]
                                        run the pipeline; --tracks writes every frame's tracks,
                                        --detections what the tracker was given (MOTChallenge lines)
  faceflow demo [--outbox <dir>] [--realtime] [--monitor <host:port>]
                                        run on the built-in demo video and check it against its ground truth
  faceflow drain --config <file.toml> [--timeout <s>]
                                        deliver what the spools hold, then exit
  faceflow bench [--cameras <n>] [--batches 1,4,8] [--realtime <seconds>] [--detector centerface|blazeface] [--model <onnx>] [--preprocess cpu|model] [--overlap on|off] [--pinned on|off] [--json <file>]
  faceflow bench --decoders [files]   bare decoder: the demo (640x480) next to its 1080p encode, or the files
  faceflow bench --crowd <dir>        one crowd video (scripts/bench-crowd.sh runs 1, 10 and 40 faces)
  faceflow bench --landmarks [--batches 1,4,8,16]  landmark cost per face per batch size, share of pipeline time (demo, crowd)
  faceflow bench --capacity [--policies baseline,gating,int8,default,overlap] [--max-cameras <n>] [--videos <dir>] [--json <file>]
                                      real-time 1080p25 cameras this box serves (<= 1% frames lost, >= 95% people)
  faceflow bench --events             realtime-mode events on the demo at 25 fps: first-post latency, posts per person
                                        the demo on n cameras at each batch size: pipeline vs bare detector
  faceflow check-config <file.toml>     validate a config and exit
  faceflow --version";

fn main() -> ExitCode {
    faceflow::logging::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    match args.first().map(String::as_str) {
        Some("run") => {
            let Some(path) = arg("--config") else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            match Config::from_file(&PathBuf::from(path)) {
                Ok(mut cfg) => {
                    cfg.tracks_out = arg("--tracks").map(PathBuf::from);
                    cfg.detections_out = arg("--detections").map(PathBuf::from);
                    run(&cfg)
                }
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Some("bench") => {
            if args.iter().any(|a| a == "--decoders") {
                let files: Vec<PathBuf> = args
                    .iter()
                    .skip_while(|a| *a != "--decoders")
                    .skip(1)
                    .take_while(|a| !a.starts_with("--"))
                    .map(PathBuf::from)
                    .collect();
                return bench_report(faceflow::bench::decoders(&files), |r| faceflow::bench::print_decoders(r));
            }
            if args.iter().any(|a| a == "--landmarks") {
                let batches: Vec<usize> = arg("--batches")
                    .unwrap_or_else(|| "1,4,8,16".into())
                    .split(',')
                    .filter_map(|b| b.trim().parse().ok())
                    .collect();
                return bench_report(faceflow::bench::landmarks(&batches), faceflow::bench::print_landmarks);
            }
            if args.iter().any(|a| a == "--events") {
                return bench_report(faceflow::bench::events(), faceflow::bench::print_events);
            }
            if args.iter().any(|a| a == "--capacity") {
                return bench_capacity(arg("--policies"), arg("--max-cameras"), arg("--videos"), arg("--json"));
            }
            if let Some(dir) = arg("--crowd") {
                return bench_report(faceflow::bench::crowd(std::path::Path::new(&dir)), faceflow::bench::print_crowd);
            }
            let cameras = arg("--cameras").and_then(|v| v.parse().ok()).unwrap_or(4);
            let batches: Vec<usize> = arg("--batches")
                .unwrap_or_else(|| "1,4,8".into())
                .split(',')
                .filter_map(|b| b.trim().parse().ok())
                .collect();
            let realtime = arg("--realtime").and_then(|v| v.parse().ok());
            let (kind, model, preprocess) = (arg("--detector"), arg("--model"), arg("--preprocess"));
            let on_off = |flag: &str| match arg(flag).as_deref() {
                None => Ok(None),
                Some("on") => Ok(Some(true)),
                Some("off") => Ok(Some(false)),
                Some(o) => Err(format!("bench: {flag} {o:?}: expected on or off")),
            };
            let (overlap, pinned_buffers) = match (on_off("--overlap"), on_off("--pinned")) {
                (Ok(o), Ok(p)) => (o, p),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let detector = faceflow::bench::BenchDetector {
                kind: kind.as_deref(),
                model: model.as_deref(),
                preprocess: preprocess.as_deref(),
                overlap,
                pinned_buffers,
            };
            match faceflow::bench::run(cameras, &batches, realtime, detector) {
                Ok(rows) => {
                    faceflow::bench::print(&rows);
                    if let Some(path) = arg("--json") {
                        write_json(&path, &rows);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    log::error!("bench: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some("drain") => {
            let Some(path) = arg("--config") else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            let timeout = arg("--timeout").and_then(|t| t.parse::<u64>().ok()).unwrap_or(60);
            match Config::from_file(&PathBuf::from(path)).map_err(|e| e.to_string()).and_then(|cfg| {
                pipeline::drain(&cfg, std::time::Duration::from_secs(timeout)).map_err(|e| e.to_string())
            }) {
                Ok(0) => {
                    println!("drain: every spooled event delivered");
                    ExitCode::SUCCESS
                }
                Ok(n) => {
                    println!("drain: {n} event(s) still undelivered");
                    ExitCode::from(1)
                }
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Some("demo") => run_demo(
            arg("--outbox").unwrap_or_else(|| "outbox/demo".into()),
            args.iter().any(|a| a == "--realtime"),
            arg("--monitor").unwrap_or_default(),
        ),
        Some("check-config") if matches!(args.get(1).map(String::as_str), Some("--help" | "-h")) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("check-config") => match args.get(1).map(|p| Config::from_file(&PathBuf::from(p))) {
            Some(Ok(cfg)) => {
                let problems = cfg.check_files();
                if problems.is_empty() {
                    println!("config ok: {} camera(s), board {}", cfg.cameras.len(), board::NAME);
                    return ExitCode::SUCCESS;
                }
                for p in &problems {
                    eprintln!("{p}");
                }
                eprintln!("config has {} problem(s)", problems.len());
                ExitCode::from(2)
            }
            Some(Err(e)) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("--version") => {
            println!("faceflow {} (board {}: {})", env!("CARGO_PKG_VERSION"), board::NAME, board::DESCRIPTION);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `bench --capacity`: policies, camera limit and video folder from the
/// command line; the report printed and, with `--json`, written.
fn bench_capacity(
    policies: Option<String>,
    max_cameras: Option<String>,
    videos: Option<String>,
    json: Option<String>,
) -> ExitCode {
    use faceflow::bench::capacity;
    let policies: Result<Vec<_>, String> = policies
        .as_deref()
        .unwrap_or("baseline,gating,default")
        .split(',')
        .map(|p| capacity::Policy::parse(p.trim()))
        .collect();
    let max = match max_cameras.map(|m| m.parse::<usize>()) {
        None => faceflow::board::MAX_CAMERAS,
        Some(Ok(m)) if m > 0 => m,
        Some(_) => {
            log::error!("bench: --max-cameras must be a positive number");
            return ExitCode::from(2);
        }
    };
    let dir = PathBuf::from(videos.unwrap_or_else(|| format!("{}/capacity", faceflow::demo::DEMO_DIR)));
    let result = policies.and_then(|p| capacity::run(&dir, &p, max));
    if let (Ok(r), Some(path)) = (&result, json) {
        write_json(&path, r);
    }
    bench_report(result, capacity::print)
}

/// A bench's figures as JSON at `--json`'s path; a failure is logged.
fn write_json(path: &str, value: &impl serde::Serialize) {
    let written = serde_json::to_vec_pretty(value)
        .map_err(|e| e.to_string())
        .and_then(|bytes| std::fs::write(path, bytes).map_err(|e| e.to_string()));
    if let Err(e) = written {
        log::error!("bench: {path}: {e}");
    }
}

/// A bench's figures printed, or its error logged (exit 1).
fn bench_report<T>(result: Result<T, String>, print: impl FnOnce(&T)) -> ExitCode {
    match result {
        Ok(r) => {
            print(&r);
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("bench: {e}");
            ExitCode::from(1)
        }
    }
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

fn print_summary(r: &pipeline::RunReport) {
    let s = &r.stats;
    for (i, name) in r.camera_names.iter().enumerate() {
        let c = &s.cameras[i];
        println!(
            "camera {name}: {} frames decoded, {} decode errors, {} detected, {} skipped, {} motion-gated, {} faces, {} events; dropped: pool {} ring {} superseded {} stale {}; capture->detect p50 {} us p99 {} us",
            monitor::get(&c.decoded),
            monitor::get(&c.decode_errors),
            monitor::get(&c.detected_frames),
            monitor::get(&c.skipped_frames),
            monitor::get(&c.motion_gated),
            monitor::get(&c.faces),
            monitor::get(&c.events),
            monitor::get(&c.dropped_pool_empty),
            monitor::get(&c.dropped_ring_full),
            monitor::get(&c.dropped_superseded),
            monitor::get(&c.dropped_stale),
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
    let batches = monitor::get(&st.batches).max(1);
    println!(
        "detect: {} batches, mean batch {:.2}, inference mean {:.1} ms (p50 {} us, p99 {} us); decode mean {:.2} ms; {} tracks rejected by validation; wall {:.2} s",
        monitor::get(&st.batches),
        monitor::get(&st.batched_frames) as f64 / batches as f64,
        st.preprocess_infer.mean_us() / 1000.0,
        st.preprocess_infer.quantile_us(0.5),
        st.preprocess_infer.quantile_us(0.99),
        st.decode.mean_us() / 1000.0,
        monitor::get(&st.rejected),
        r.wall.as_secs_f64()
    );
    let lm = &st.landmark;
    if lm.enabled.load(std::sync::atomic::Ordering::Relaxed) {
        let b = monitor::get(&lm.batches);
        println!(
            "landmarks: {} faces in {b} batches, mean batch {:.2}, mean {:.1} ms per batch (p99 {} us); {} scored from detector keypoints (stage full), {} late, {} not faces",
            monitor::get(&lm.faces),
            monitor::get(&lm.faces) as f64 / b.max(1) as f64,
            st.landmarks.mean_us() / 1000.0,
            st.landmarks.quantile_us(0.99),
            monitor::get(&lm.fallback),
            monitor::get(&lm.late),
            monitor::get(&lm.not_face),
        );
    }
}

/// How long `demo --monitor` keeps the panel up after the video.
const DEMO_PANEL_LINGER: std::time::Duration = std::time::Duration::from_secs(600);

fn run_demo(outbox: String, realtime: bool, monitor: String) -> ExitCode {
    let video = PathBuf::from(demo::DEMO_DIR).join("demo.h264");
    if !video.exists() {
        log::error!("demo video {} is missing: run scripts/setup.sh first (or scripts/demo.sh)", video.display());
        return ExitCode::from(2);
    }
    let cfg = match Config::from_toml(&demo::config_toml(&outbox, realtime, &monitor), "built-in demo config") {
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
    let truth_path = PathBuf::from(demo::DEMO_DIR).join("truth.json");
    let truth = match demo::load_truth(&truth_path) {
        Ok(t) => t,
        Err(e) => {
            log::warn!("no ground truth to check against: {e}");
            return ExitCode::SUCCESS;
        }
    };
    let ev = demo::evaluate(&report.events, &truth);
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
