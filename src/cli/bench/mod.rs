//! `faceflow bench`: the same multi-camera input at several batch sizes,
//! pipeline against the bare decoder and the bare detector, printed side by
//! side. Ratios (batched / batch 1, pipeline / bare detector, frames per
//! CPU-second) are what carries across machines; absolute figures are this
//! machine's.

pub mod capacity;
pub mod decoders;
pub mod window;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::truth::DEMO_DIR;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faceflow::clock::RealClocks;
use faceflow::config::Config;
use faceflow::detect::Detections;
use faceflow::metrics::get;
use faceflow::monitor::process;
use faceflow::pool::I420;

/// What a bench fails with: the failing step's own error, or a message.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// `faceflow bench`: without a mode flag, the demo on `--cameras` cameras at
/// each of `--batches`: pipeline against the bare detector.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Bare decoders: the demo (640x480) next to its 1080p encode, or these files.
    #[arg(long, num_args = 0.., value_name = "files")]
    decoders: Option<Vec<PathBuf>>,
    /// With --decoders: the board's hardware decoder (NVDEC on x86-cuda)
    /// where it has one, as cameras get it, instead of software.
    #[arg(long)]
    hardware: bool,
    /// With --decoders: this many streams of each file at once, one thread each.
    #[arg(long, value_name = "n", default_value_t = 1)]
    streams: usize,
    /// One crowd video folder (scripts/bench-crowd.sh runs 1, 10 and 40 faces).
    #[arg(long, value_name = "dir")]
    crowd: Option<PathBuf>,
    /// Landmark cost per face per batch size, and its share of pipeline time.
    #[arg(long)]
    landmarks: bool,
    /// Real-time 1080p25 cameras this box serves (<= 1% frames lost, >= 95% people).
    #[arg(long)]
    capacity: bool,
    /// Realtime-mode events on the demo at 25 fps: first-post latency, posts per person.
    #[arg(long)]
    events: bool,
    /// Cameras fed the demo video.
    #[arg(long, default_value_t = 4)]
    cameras: usize,
    /// Batch sizes, comma-separated (default 1,4,8; with --landmarks 1,4,8,16).
    #[arg(long, value_delimiter = ',')]
    batches: Option<Vec<usize>>,
    /// Pace the cameras at 25 fps for this many seconds instead of full speed.
    #[arg(long, value_name = "seconds")]
    realtime: Option<u64>,
    /// Time this many seconds after --warmup, the cameras looping (at full
    /// speed, or paced with --realtime): figures cover that window only.
    #[arg(long, value_name = "seconds")]
    seconds: Option<u64>,
    /// With --seconds: seconds of warm-up before the window (default 5),
    /// counted from the first detected frame.
    #[arg(long, value_name = "seconds", default_value_t = 5)]
    warmup: u64,
    /// Runs per batch size; with several, min/median/max are printed.
    #[arg(long, value_name = "n", default_value_t = 1)]
    repeat: usize,
    /// `detector.kind`: centerface or blazeface.
    #[arg(long)]
    detector: Option<String>,
    /// `detector.model`: an ONNX file.
    #[arg(long, value_name = "onnx")]
    model: Option<String>,
    /// `detector.preprocess`: cpu or model.
    #[arg(long)]
    preprocess: Option<String>,
    /// `detector.overlap`: on or off (default: the board's).
    #[arg(long, value_parser = on_off)]
    overlap: Option<bool>,
    /// `detector.pinned_buffers`: on or off (default on).
    #[arg(long, value_parser = on_off)]
    pinned: Option<bool>,
    /// `detector.cuda_conv_search`: exhaustive or heuristic (default: the board's).
    #[arg(long, value_name = "exhaustive|heuristic")]
    conv_search: Option<String>,
    /// `landmarks.execution_providers`, e.g. cuda,cpu (default: the board's);
    /// also for --landmarks.
    #[arg(long, value_delimiter = ',', value_name = "providers")]
    landmark_providers: Option<Vec<String>>,
    /// The cameras' `hardware_decode`: on or off (default on: the board's
    /// hardware decoder where it names one).
    #[arg(long, value_parser = on_off)]
    hardware_decode: Option<bool>,
    /// With --capacity: policies to try in turn (baseline,gating,int8,default,overlap).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "baseline,gating,default")]
    policies: Vec<capacity::Policy>,
    /// With --capacity: the most cameras to try (default: the board's maximum).
    #[arg(long, value_name = "n")]
    max_cameras: Option<usize>,
    /// With --capacity: the capacity videos' folder.
    #[arg(long, value_name = "dir")]
    videos: Option<PathBuf>,
    /// Also write the figures as JSON here.
    #[arg(long, value_name = "file")]
    json: Option<PathBuf>,
}

fn on_off(v: &str) -> Result<bool, BenchError> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        o => Err(format!("{o:?}: expected on or off").into()),
    }
}

pub fn main(a: BenchArgs) -> ExitCode {
    if let Some(files) = &a.decoders {
        let how = decoders::DecoderRun { hardware: a.hardware, streams: a.streams.max(1) };
        return report(decoders::decoders(files, how), |r| decoders::print(r), a.json.as_deref());
    }
    if a.landmarks {
        let providers = a.landmark_providers.unwrap_or_default();
        return report(landmarks(a.batches.as_deref().unwrap_or(&[1, 4, 8, 16]), &providers), print_landmarks, None);
    }
    if a.events {
        return report(events(), print_events, None);
    }
    if a.capacity {
        let max = match a.max_cameras {
            None => faceflow::board::MAX_CAMERAS,
            Some(m) if m > 0 => m,
            Some(_) => {
                log::error!("bench: --max-cameras must be a positive number");
                return ExitCode::from(2);
            }
        };
        let dir = a.videos.unwrap_or_else(|| PathBuf::from(format!("{DEMO_DIR}/capacity")));
        return report(capacity::run(&dir, &a.policies, max), capacity::print, a.json.as_deref());
    }
    if let Some(dir) = &a.crowd {
        return report(crowd(dir), print_crowd, None);
    }
    let settings = BenchSettings {
        kind: a.detector.as_deref(),
        model: a.model.as_deref(),
        preprocess: a.preprocess.as_deref(),
        overlap: a.overlap,
        pinned_buffers: a.pinned,
        conv_search: a.conv_search.as_deref(),
        landmark_providers: a.landmark_providers.as_deref(),
        hardware_decode: a.hardware_decode,
    };
    let batches = a.batches.unwrap_or_else(|| vec![1, 4, 8]);
    let timing = Timing {
        realtime: a.realtime,
        window: a
            .seconds
            .map(|s| window::Window { warmup: Duration::from_secs(a.warmup), seconds: Duration::from_secs(s.max(1)) }),
        repeat: a.repeat.max(1),
    };
    report(run(a.cameras, &batches, timing, settings), |rows| print(rows), a.json.as_deref())
}

/// A bench's figures printed under the machine they came from (and
/// written as JSON where asked, the machine in it), or its error logged
/// (exit 1).
fn report<T: serde::Serialize>(
    result: Result<T, BenchError>,
    print: impl FnOnce(&T),
    json: Option<&std::path::Path>,
) -> ExitCode {
    let machine = super::machine::Machine::here();
    match result {
        Ok(r) => {
            println!("machine: {machine}");
            print(&r);
            if let Some(path) = json {
                match serde_json::to_value(&r) {
                    Ok(v) => super::write_json(path, &super::machine::stamped(v, &machine)),
                    Err(e) => log::error!("{}: {e}", path.display()),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("bench: {e}");
            ExitCode::from(1)
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    /// `detector.kind` and the model file.
    pub detector: String,
    pub batch: usize,
    pub cameras: usize,
    pub realtime: bool,
    pub frames_detected: u64,
    pub wall_s: f64,
    pub fps: f64,
    pub fps_per_cpu_s: f64,
    pub mean_batch: f64,
    /// The detector alone on 64 decoded frames at this batch: the mean of a
    /// measurement before and one after the pipeline run (drift cancels).
    pub bare_detector_fps: f64,
    /// CPU time (all threads) per frame of that bare detector run, in ms.
    pub bare_detector_cpu_ms: f64,
    /// CPU time (all threads) per frame of the pipeline run, in ms; minus
    /// `bare_detector_cpu_ms` it is what faceflow spends outside inference.
    pub cpu_ms_per_frame: f64,
    /// The decoder alone on the demo stream (board threading).
    pub bare_decoder_fps: f64,
    /// Pipeline fps / bare detector fps at the same batch.
    pub efficiency: f64,
    /// Whether the model ran on a thread of its own (`detector.overlap`).
    pub overlap: bool,
    /// Whether page-locked buffers were asked for (`detector.pinned_buffers`;
    /// the log says whether the provider gave them).
    pub pinned_buffers: bool,
    /// How cuDNN's convolution algorithms were picked on CUDA
    /// (`detector.cuda_conv_search`, resolved).
    pub cuda_conv_search: String,
    /// The cameras' `hardware_decode` (the log says per camera whether the
    /// board's hardware decoder took the stream or it fell back).
    pub hardware_decode: bool,
    /// Share of the wall time the model was running (where the detector
    /// times its runs): how busy the accelerator was kept.
    pub model_busy: Option<f64>,
    /// Share of the wall time the detect thread spent in the detector
    /// (copying in, waiting for runs, decoding); the rest it gathered
    /// frames or waited for them, or for room towards the tracker.
    pub detect_thread_in_detector: f64,
    /// Peak resident memory of the process so far (VmHWM).
    pub peak_rss_mb: f64,
    /// Rust heap allocations during the run / frames detected: start-up
    /// (threads, rings, pool) and events included, so an upper bound on the
    /// steady-state figure (which `tests/alloc.rs` proves is 0). None when
    /// the counting allocator is not installed.
    pub allocations_per_frame: Option<f64>,
    /// Capture-to-detection percentiles over the whole run (warm-up too).
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub dropped: u64,
    /// The timed window's warm-up and length (None: the whole run).
    pub warmup_s: Option<f64>,
    /// Which run of this batch size (0-based; `--repeat`).
    pub run: usize,
}

/// How long a bench runs and how often (see `window`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Timing {
    /// Cameras paced at 25 fps for this many seconds (None: full speed).
    pub realtime: Option<u64>,
    /// A timed window inside the run, the cameras looping.
    pub window: Option<window::Window>,
    /// Runs per batch size.
    pub repeat: usize,
}

/// The config a bench row runs: the detector's `kind`, `model` and
/// `preprocess`, its execution settings, the landmark models' providers
/// and the cameras' hardware decode (None = the config's defaults).
#[derive(Clone, Copy, Debug, Default)]
pub struct BenchSettings<'a> {
    pub kind: Option<&'a str>,
    pub model: Option<&'a str>,
    pub preprocess: Option<&'a str>,
    /// `detector.overlap` (None = the board's).
    pub overlap: Option<bool>,
    /// `detector.pinned_buffers` (None = the default, on).
    pub pinned_buffers: Option<bool>,
    /// `detector.cuda_conv_search` (None = the board's).
    pub conv_search: Option<&'a str>,
    /// `landmarks.execution_providers` (None = the board's).
    pub landmark_providers: Option<&'a [String]>,
    /// The cameras' `hardware_decode` (None = the default, on).
    pub hardware_decode: Option<bool>,
}

fn config(
    cameras: usize,
    batch: usize,
    realtime: bool,
    looped: bool,
    settings: BenchSettings<'_>,
) -> Result<Config, BenchError> {
    let mut t = format!("[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[detector]\nbatch_size = {batch}\n");
    if let Some(k) = settings.kind {
        t.push_str(&format!("kind = {k:?}\n"));
    }
    if let Some(m) = settings.model {
        t.push_str(&format!("model = {m:?}\n"));
    }
    if let Some(p) = settings.preprocess {
        t.push_str(&format!("preprocess = {p:?}\n"));
    }
    if let Some(o) = settings.overlap {
        t.push_str(&format!("overlap = {o}\n"));
    }
    if let Some(p) = settings.pinned_buffers {
        t.push_str(&format!("pinned_buffers = {p}\n"));
    }
    if let Some(s) = settings.conv_search {
        t.push_str(&format!("cuda_conv_search = {s:?}\n"));
    }
    if let Some(p) = settings.landmark_providers {
        t.push_str(&format!("[landmarks]\nexecution_providers = {p:?}\n"));
    }
    for i in 0..cameras {
        t.push_str(&format!(
            "[[cameras]]\nname = \"cam{i}\"\nurl = \"file:{}/demo.h264\"\nrealtime = {realtime}\nloop = {looped}\nhardware_decode = {}\n",
            DEMO_DIR,
            settings.hardware_decode.unwrap_or(true)
        ));
    }
    Config::from_toml(&t, "bench").map_err(BenchError::from)
}

fn demo_path() -> std::path::PathBuf {
    std::path::Path::new(DEMO_DIR).join("demo.h264")
}

/// Decodes the first `n` demo frames into memory, for the bare detector.
fn frames(n: usize) -> Result<Vec<(Vec<u8>, u32, u32)>, BenchError> {
    let mut out = Vec::new();
    faceflow::ingest::decode_file(&demo_path(), n, |pic| {
        let mut buf = vec![0u8; faceflow::pool::i420_len(pic.width, pic.height)];
        pic.copy_to(&mut buf);
        out.push((buf, pic.width, pic.height));
    })?;
    Ok(out)
}

/// Frames per second of the bare decoder over the whole demo stream.
fn bare_decoder_fps() -> Result<f64, BenchError> {
    Ok(decoders::bare_decoder(&demo_path())?.fps)
}

/// The detector alone on `pics` at `batch`: (frames per second, CPU ms per frame).
fn bare_detector(cfg: &Config, batch: usize, pics: &[(Vec<u8>, u32, u32)]) -> Result<(f64, f64), BenchError> {
    let frame = pics.first().map(|(_, w, h)| (*w, *h));
    let mut det = faceflow::pipeline::load_detector_for(cfg, frame).map_err(BenchError::from)?;
    if let Some((_, w, h)) = pics.first() {
        det.prepare(*w, *h).map_err(BenchError::from)?;
    }
    let mut out: Vec<Detections> = (0..batch).map(|_| Detections::new()).collect();
    let views: Vec<I420<'_>> = pics.iter().map(|(b, w, h)| I420::new(b, *w, *h)).collect();
    let cpu0 = process::sample().cpu_seconds;
    let t0 = Instant::now();
    let mut n = 0usize;
    // An overlapping detector is driven as the detect thread drives it
    // (the next batch started before the last is finished), so this is the
    // most it can do either way.
    let overlapped = det.depth() > 1;
    let mut started: Option<usize> = None;
    // At least one pass and one second: a fast accelerator does the 64
    // frames in two batches of 32, too few to time.
    while n == 0 || t0.elapsed() < Duration::from_secs(1) {
        for chunk in views.chunks(batch) {
            if overlapped {
                det.start(chunk).map_err(BenchError::from)?;
                if let Some(m) = started.replace(chunk.len()) {
                    det.finish(&mut out[..m]).map_err(BenchError::from)?;
                    n += m;
                }
            } else {
                det.detect_batch(chunk, &mut out[..chunk.len()]).map_err(BenchError::from)?;
                n += chunk.len();
            }
        }
    }
    if let Some(m) = started {
        det.finish(&mut out[..m]).map_err(BenchError::from)?;
        n += m;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), process::sample().cpu_seconds - cpu0);
    Ok((n as f64 / wall, cpu * 1e3 / n.max(1) as f64))
}

fn merged_quantile(stats: &faceflow::metrics::Stats, q: f64) -> f64 {
    let hists: Vec<&faceflow::metrics::Histogram> = stats.cameras.iter().map(|c| &c.capture_to_detect).collect();
    faceflow::metrics::quantile_of(&hists, q) as f64 / 1000.0
}

/// Runs every batch size `timing.repeat` times.
pub fn run(
    cameras: usize,
    batches: &[usize],
    timing: Timing,
    settings: BenchSettings<'_>,
) -> Result<Vec<BenchRow>, BenchError> {
    let pics = frames(64)?;
    let decoder_fps = bare_decoder_fps()?;
    let mut rows = Vec::new();
    for &b in batches {
        let realtime = timing.realtime.is_some();
        let cfg = config(cameras, b, realtime, realtime || timing.window.is_some(), settings)?;
        // The bare detector before the first run and after the last, the
        // mean for every run (drift cancels; a CUDA session's load and
        // warm-up take seconds, once per measurement).
        // Each figure is logged as it is made: a run cut short (a borrowed
        // GPU taken back, a call's time limit) still leaves those before.
        let bare_before = bare_detector(&cfg, b, &pics)?;
        log::info!("bench: batch {b}: bare detector {:.1} fps before the runs", bare_before.0);
        let mut runs = Vec::new();
        let n = timing.repeat.max(1);
        for run in 0..n {
            let r = one_run(&cfg, b, run, timing, &pics, decoder_fps)?;
            log::info!(
                "bench: batch {b}, run {}/{n}: {:.1} fps over {:.1} s, {:.2} ms CPU a frame, mean batch {:.1}",
                run + 1,
                r.fps,
                r.wall_s,
                r.cpu_ms_per_frame,
                r.mean_batch
            );
            runs.push(r);
        }
        let bare_after = bare_detector(&cfg, b, &pics)?;
        log::info!("bench: batch {b}: bare detector {:.1} fps after the runs", bare_after.0);
        for mut r in runs {
            r.bare_detector_fps = (bare_before.0 + bare_after.0) / 2.0;
            r.bare_detector_cpu_ms = (bare_before.1 + bare_after.1) / 2.0;
            r.efficiency = r.fps / r.bare_detector_fps.max(1e-9);
            rows.push(r);
        }
    }
    Ok(rows)
}

/// One pipeline run at batch `b` (the bare detector's figures are filled
/// in by `run`).
fn one_run(
    cfg: &Config,
    b: usize,
    run: usize,
    timing: Timing,
    pics: &[(Vec<u8>, u32, u32)],
    decoder_fps: f64,
) -> Result<BenchRow, BenchError> {
    let stop = Arc::new(AtomicBool::new(false));
    // Loading and warming the model (seconds per shape on CUDA) happens
    // before the clock starts: the figure is steady-state throughput.
    // Warmed at the demo's frame size: on CUDA each batch shape's first
    // run at a new size takes seconds, which is start-up, not throughput
    // (`prepare` is then a no-op, kept for models that take RGB).
    let mut detector =
        faceflow::pipeline::load_detector_for(cfg, Some((pics[0].1, pics[0].2))).map_err(BenchError::from)?;
    detector.prepare(pics[0].1, pics[0].2).map_err(BenchError::from)?;
    // The paced run's seconds count from here: loading the model (seconds
    // per shape on CUDA) must not eat them, nor a timed window's.
    if let Some(secs) = timing.realtime {
        let s2 = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            s2.store(true, Ordering::SeqCst);
        });
    }
    let stats = faceflow::pipeline::stats_for(cfg);
    let watcher = timing.window.map(|w| window::watch(stats.clone(), w, stop.clone()));
    let start = window::Reading::take(&stats);
    let report = faceflow::pipeline::run_observed(cfg, detector, Arc::new(RealClocks::default()), stop.clone(), stats)
        .map_err(BenchError::from)?;
    let whole = window::Span::between(&start, &window::Reading::take(&report.stats));
    let span = match watcher {
        None => whole,
        Some(h) => h.join().ok().flatten().ok_or_else(|| {
            format!("bench: the run ended before its timed window did ({:.1} s in all)", whole.wall_s)
        })?,
    };
    let s = &report.stats;
    let (wall, detected) = (span.wall_s.max(1e-9), span.detected);
    let fps = detected as f64 / wall;
    Ok(BenchRow {
        detector: format!("{} ({})", cfg.detector.kind.name(), cfg.detector.model_path().display()),
        batch: b,
        cameras: cfg.cameras.len(),
        realtime: timing.realtime.is_some(),
        frames_detected: detected,
        wall_s: wall,
        fps,
        fps_per_cpu_s: detected as f64 / span.cpu_s.max(1e-9),
        mean_batch: span.batched_frames as f64 / span.batches.max(1) as f64,
        bare_detector_fps: 0.0,
        bare_detector_cpu_ms: 0.0,
        cpu_ms_per_frame: span.cpu_s * 1e3 / detected.max(1) as f64,
        bare_decoder_fps: decoder_fps,
        efficiency: 0.0,
        overlap: cfg.detector.overlap(),
        pinned_buffers: cfg.detector.pinned_buffers,
        cuda_conv_search: cfg.detector.cuda_conv_search.resolved().name().into(),
        hardware_decode: cfg.cameras.iter().all(|c| c.hardware_decode),
        model_busy: (s.stages.inference.count() > 0).then(|| span.inference_s / wall),
        detect_thread_in_detector: span.detector_s / wall,
        peak_rss_mb: process::peak_rss_bytes() as f64 / 1048576.0,
        allocations_per_frame: crate::cli::alloc_count::installed()
            .then(|| span.allocations as f64 / detected.max(1) as f64),
        latency_p50_ms: merged_quantile(s, 0.5),
        latency_p99_ms: merged_quantile(s, 0.99),
        dropped: span.dropped,
        warmup_s: timing.window.map(|w| w.warmup.as_secs_f64()),
        run,
    })
}

pub fn print(rows: &[BenchRow]) {
    if let Some(r) = rows.first() {
        println!("detector: {}", r.detector);
    }
    let base = rows.iter().find(|r| r.batch == 1).map(|r| r.fps);
    println!(
        "{:>5} {:>4} {:>8} {:>9} {:>8} {:>9} {:>10} {:>10} {:>11} {:>10} {:>10} {:>8} {:>9} {:>11}",
        "batch",
        "cams",
        "frames",
        "fps",
        "vs b=1",
        "fps/cpu-s",
        "mean batch",
        "bare fps",
        "efficiency",
        "p50 ms",
        "p99 ms",
        "dropped",
        "peak MB",
        "allocs/frm"
    );
    for r in rows {
        println!(
            "{:>5} {:>4} {:>8} {:>9.1} {:>8} {:>9.1} {:>10.2} {:>10.1} {:>11.2} {:>10.0} {:>10.0} {:>8} {:>9.1} {:>11}",
            r.batch,
            r.cameras,
            r.frames_detected,
            r.fps,
            base.map(|b| format!("{:.2}x", r.fps / b)).unwrap_or_else(|| "-".into()),
            r.fps_per_cpu_s,
            r.mean_batch,
            r.bare_detector_fps,
            r.efficiency,
            r.latency_p50_ms,
            r.latency_p99_ms,
            r.dropped,
            r.peak_rss_mb,
            r.allocations_per_frame.map_or_else(|| "-".into(), |a| format!("{a:.2}"))
        );
    }
    if let Some(r) = rows.first() {
        println!(
            "bare decoder ({}, one stream): {:.1} fps = {:.1}x real time for one 25 fps camera",
            decoders::decoder_name(),
            r.bare_decoder_fps,
            r.bare_decoder_fps / 25.0
        );
    }
    // Settings that act only where the board has CUDA (page-locked
    // buffers, cuDNN's search) or a hardware decoder are named only there
    // (the JSON keeps them all).
    let cuda = faceflow::board::EXECUTION_PROVIDERS.contains(&"cuda");
    let hw_decoder = !faceflow::board::HW_DECODER_H264.is_empty();
    for r in rows {
        let gpu = if cuda {
            format!(
                ", pinned buffers {}, cuDNN search {}",
                if r.pinned_buffers { "on" } else { "off" },
                r.cuda_conv_search
            )
        } else {
            String::new()
        };
        let decode = match (hw_decoder, r.hardware_decode) {
            (false, _) => "",
            (true, true) => ", hardware decode on",
            (true, false) => ", hardware decode off",
        };
        println!(
            "batch {}: overlap {}{gpu}{decode}; the model ran {} of the wall time; the detect thread spent {:.0}% in the detector",
            r.batch,
            if r.overlap { "on" } else { "off" },
            r.model_busy.map_or_else(|| "(not timed)".into(), |b| format!("{:.0}%", 100.0 * b)),
            100.0 * r.detect_thread_in_detector
        );
        println!(
            "batch {}: CPU per frame {:.1} ms in the pipeline, {:.1} ms in the bare detector: {:.1} ms outside inference",
            r.batch,
            r.cpu_ms_per_frame,
            r.bare_detector_cpu_ms,
            r.cpu_ms_per_frame - r.bare_detector_cpu_ms
        );
    }
    window::print_spread(rows);
    println!("(latency = capture to detection; percentiles from log-linear buckets, within a few percent; efficiency = pipeline fps / bare detector fps at the same batch;\n allocs/frm = over the measured span (untimed: the whole run, start-up and events included), an upper bound: steady-state frames allocate 0, see tests/alloc.rs)");
}

/// One crowd video through the pipeline, one camera at full speed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CrowdRow {
    pub video: String,
    /// People in the video's ground truth, and the most in view at once.
    pub persons: usize,
    pub frames: u64,
    pub fps: f64,
    pub fps_per_cpu_s: f64,
    pub events: u64,
    pub peak_rss_mb: f64,
    /// Track stage (tracker, best-face selection, keep store) per frame.
    pub track_us_per_frame: f64,
    pub track_us_per_face: f64,
    pub faces_per_frame: f64,
}

pub fn crowd(dir: &std::path::Path) -> Result<CrowdRow, BenchError> {
    let truth = crate::cli::truth::load_truth(&dir.join("truth.json"))?;
    let video = dir.join("crowd.h264");
    let toml = format!(
        "[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"crowd\"\nurl = \"file:{}\"\nfps = 25\n",
        video.display()
    );
    let cfg = Config::from_toml(&toml, "bench").map_err(BenchError::from)?;
    let detector = faceflow::pipeline::load_detector(&cfg).map_err(BenchError::from)?;
    let cpu0 = process::sample().cpu_seconds;
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let report = faceflow::pipeline::run_with_detector(&cfg, detector, Arc::new(RealClocks::default()), stop)
        .map_err(BenchError::from)?;
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), process::sample().cpu_seconds - cpu0);
    let s = &report.stats;
    let c = &s.cameras[0];
    let frames = get(&c.detected_frames);
    let faces = get(&c.faces);
    let track_us = s.stages.track.mean_us();
    let faces_per_frame = faces as f64 / frames.max(1) as f64;
    Ok(CrowdRow {
        video: video.display().to_string(),
        persons: truth.persons.len(),
        frames,
        fps: frames as f64 / wall,
        fps_per_cpu_s: frames as f64 / cpu.max(1e-9),
        events: report.events_total,
        peak_rss_mb: process::peak_rss_bytes() as f64 / 1048576.0,
        track_us_per_frame: track_us,
        track_us_per_face: track_us / faces_per_frame.max(1.0),
        faces_per_frame,
    })
}

pub fn print_crowd(r: &CrowdRow) {
    println!(
        "crowd {}: {} persons, {:.1} faces/frame, {} frames, {:.1} fps, {:.1} fps/cpu-s, {} events, peak RSS {:.1} MB, track {:.0} us/frame = {:.1} us/face",
        r.video,
        r.persons,
        r.faces_per_frame,
        r.frames,
        r.fps,
        r.fps_per_cpu_s,
        r.events,
        r.peak_rss_mb,
        r.track_us_per_frame,
        r.track_us_per_face
    );
}

/// Realtime-mode events on the demo read at its real pace (25 fps): time
/// from a person's first frame to their first post (exact percentiles of
/// the run's records), posts per person, and the share of posts that
/// improved on an earlier one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventsRow {
    pub persons: usize,
    pub posts: usize,
    pub improved: usize,
    pub first_post_p50_ms: u64,
    pub first_post_p99_ms: u64,
    pub first_post_max_ms: u64,
}

pub fn events() -> Result<EventsRow, BenchError> {
    let toml = format!(
        "[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"demo\"\nurl = \"file:{}\"\nfps = 25\nrealtime = true\nmode = \"realtime\"\n",
        demo_path().display()
    );
    let cfg = Config::from_toml(&toml, "bench").map_err(BenchError::from)?;
    let report = faceflow::pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).map_err(BenchError::from)?;
    let faces: Vec<_> = report.events.iter().filter(|e| e.kind == "face").collect();
    let posts: Vec<_> = faces.iter().filter(|e| e.repeat_of.is_none()).collect();
    let mut firsts: Vec<u64> =
        posts.iter().filter(|e| e.sequence == 0).map(|e| e.emitted_unix_ms.saturating_sub(e.first_unix_ms)).collect();
    firsts.sort_unstable();
    let pct = |q: f64| firsts.get(((firsts.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0);
    Ok(EventsRow {
        persons: firsts.len(),
        posts: posts.len(),
        improved: posts.iter().filter(|e| e.sequence > 0).count(),
        first_post_p50_ms: pct(0.5),
        first_post_p99_ms: pct(0.99),
        first_post_max_ms: firsts.last().copied().unwrap_or(0),
    })
}

pub fn print_events(r: &EventsRow) {
    println!(
        "realtime mode on the demo at 25 fps: {} persons, {} posts ({:.2} per person, {:.0}% improvements); first post after p50 {} ms, p99 {} ms, max {} ms (target p99 < interval 1000 + one detection interval 40 + 100 = 1140 ms)",
        r.persons,
        r.posts,
        r.posts as f64 / r.persons.max(1) as f64,
        100.0 * r.improved as f64 / r.posts.max(1) as f64,
        r.first_post_p50_ms,
        r.first_post_p99_ms,
        r.first_post_max_ms
    );
}

/// The landmarks stage's cost: per face at each batch size (mesh + iris,
/// crops included), and its share of the pipeline's stage time on the demo
/// and on a 40-face crowd.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LandmarksRow {
    /// The providers asked for, in order (the board's where the config names none).
    pub providers: Vec<String>,
    /// (batch size, ms per face for the mesh alone, and with the irises).
    pub per_face_ms: Vec<(usize, f64, f64)>,
    /// (video, faces given landmarks, mean batch, landmarks share of the
    /// summed stage time (decode, detect, track, landmarks, sink)).
    pub pipeline: Vec<(String, u64, f64, f64)>,
}

/// `providers`: `landmarks.execution_providers` (empty = the board's).
pub fn landmarks(batches: &[usize], providers: &[String]) -> Result<LandmarksRow, BenchError> {
    use faceflow::landmarks::model::LandmarkModel;
    let lc = faceflow::config::LandmarksConfig { execution_providers: providers.to_vec(), ..Default::default() };
    let max = batches.iter().copied().max().unwrap_or(1);
    // As the pipeline does: the decoders' CUDA device before any session
    // (here the landmark models') takes the GPU's primary context.
    faceflow::decode::open_hardware_device();
    let mut m = LandmarkModel::load(
        std::path::Path::new(""),
        &lc.mesh_path(),
        Some(&lc.iris_path()),
        &lc.providers(),
        max,
        false,
    )
    .map_err(BenchError::from)?;
    // A 640x640 picture made from the face crop setup saved, so the crops,
    // the mesh and the eyes are a real face's.
    let crop = std::fs::read("models/landmarks/face_mesh.input.f32").map_err(|e| format!("face crop: {e}"))?;
    let px = |c: usize, x: usize, y: usize| {
        let i = 4 * (c * 192 * 192 + y * 192 + x);
        f32::from_le_bytes([crop[i], crop[i + 1], crop[i + 2], crop[i + 3]]) * 255.0
    };
    let side = 640usize;
    let mut buf = vec![128u8; faceflow::pool::i420_len(side as u32, side as u32)];
    for y in 0..side {
        for x in 0..side {
            let (sx, sy) = (x * 192 / side, y * 192 / side);
            let (r, g, b) = (px(0, sx, sy), px(1, sx, sy), px(2, sx, sy));
            buf[y * side + x] = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b) as u8;
        }
    }
    let frame = faceflow::pool::I420::new(&buf, side as u32, side as u32);
    let s = side as f32 / faceflow::landmarks::align::FACE_SCALE;
    let c = side as f32 / 2.0;
    let det = faceflow::detect::Detection {
        bbox: faceflow::geom::BBox::new(c - s / 2.0, c - s / 2.0, c + s / 2.0, c + s / 2.0),
        score: 0.9,
        keypoints: [
            [c - s * 0.2, c - s * 0.1],
            [c + s * 0.2, c - s * 0.1],
            [c, c],
            [c - s * 0.15, c + s * 0.2],
            [c + s * 0.15, c + s * 0.2],
        ],
    };
    let mut points = vec![[[0.0f32; 3]; faceflow::landmarks::POINTS]; max];
    let mut presence = vec![0.0f32; max];
    let mut per_face_ms = Vec::new();
    for &n in batches {
        let mut ms = [0.0f64; 2];
        for (k, iris) in [false, true].into_iter().enumerate() {
            let mut run = || {
                for i in 0..n {
                    m.set_face(i, &frame, &det);
                }
                let frame_of = |_| faceflow::pool::I420::new(&buf, side as u32, side as u32);
                m.run(n, frame_of, |_| iris, &mut points, &mut presence)
            };
            run().map_err(BenchError::from)?;
            let reps = (64 / n).max(4);
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                run().map_err(BenchError::from)?;
            }
            ms[k] = t0.elapsed().as_secs_f64() * 1000.0 / (reps * n) as f64;
        }
        per_face_ms.push((n, ms[0], ms[1]));
    }
    let mut pipeline = Vec::new();
    for (name, url) in
        [("demo", demo_path()), ("crowd 40 faces 1080p", std::path::PathBuf::from("models/demo/crowd/crowd.h264"))]
    {
        if !url.exists() {
            continue;
        }
        let toml = format!(
            "[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"a\"\nurl = \"file:{}\"\n",
            url.display()
        );
        let mut cfg = Config::from_toml(&toml, "bench").map_err(BenchError::from)?;
        cfg.landmarks.execution_providers = providers.to_vec();
        let r = faceflow::pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).map_err(BenchError::from)?;
        let st = &r.stats.stages;
        let lm = st.landmarks.sum_us() as f64;
        let all =
            (st.decode.sum_us() + st.preprocess_infer.sum_us() + st.track.sum_us() + st.sink.sum_us()) as f64 + lm;
        let faces = faceflow::metrics::get(&st.landmark.faces);
        let mean = faces as f64 / faceflow::metrics::get(&st.landmark.batches).max(1) as f64;
        pipeline.push((name.to_string(), faces, mean, lm / all.max(1.0)));
    }
    let providers = lc.providers().iter().map(|p| p.to_string()).collect();
    Ok(LandmarksRow { providers, per_face_ms, pipeline })
}

pub fn print_landmarks(r: &LandmarksRow) {
    println!(
        "landmarks (Face Mesh + Iris, crops included) on the first of [{}] that registers (the log names it; {} intra-op threads on the CPU):",
        r.providers.join(", "),
        faceflow::board::INTRA_THREADS
    );
    let one = r.per_face_ms.iter().find(|x| x.0 == 1).map(|x| x.1);
    for (n, mesh, iris) in &r.per_face_ms {
        let ratio = one.map(|o| format!("{:.2}x batch 1's cost", mesh / o)).unwrap_or_default();
        println!("  batch {n:>2}: mesh {mesh:.2} ms per face ({ratio}); mesh + iris {iris:.2} ms per face");
    }
    for (name, faces, mean, share) in &r.pipeline {
        println!(
            "  {name}: {faces} faces given landmarks, mean batch {mean:.2}, {:.1}% of the pipeline's stage time",
            100.0 * share
        );
    }
}
