//! `faceflow bench --capacity`: how many real-time 1080p25 cameras this box
//! serves while still catching every person.
//!
//! A trial runs N cameras at once, each reading one of the capacity videos
//! (`scripts/setup.sh`: 42 s of 1080p25 with people in view for 14 s, in
//! three phases so cameras are busy at different times; the demo scaled 3x
//! and cropped to 1080 rows, so its truth maps by `layout.json`) at its real pace,
//! through the whole pipeline. It passes when at most 1% of the frames
//! never reached the tracker (dropped as stale, superseded by a newer
//! frame, or for want of a pool slot or ring room) and at least 95% of the
//! people were captured (an event whose best face matches the person's
//! ground-truth box, IoU > 0.5). The capacity of a policy is the largest N
//! that passes, found by doubling and then bisecting (a trial at N is
//! assumed to pass when N+1 does).
//!
//! Policies differ only in the levers under test: the peer baseline
//! detects every frame with the FP32 model, as the seeds did; `gating`
//! adds motion gating; `default` is faceflow's defaults (on x86-cpu:
//! gating and the INT8 model). Everything else (decoder, tracker,
//! landmarks, sinks) is the same binary and config, so each row's
//! difference is its lever's share. The decoder's share needs a second
//! build (`scripts/bench-capacity.sh --decoder`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use super::BenchError;
use crate::cli::truth::{Person, Truth, DEMO_DIR};
use faceflow::clock::RealClocks;
use faceflow::config::Config;
use faceflow::metrics::get;
use faceflow::monitor::process;

/// Share of frames a passing trial may lose.
pub const MAX_LOST_SHARE: f64 = 0.01;
/// Share of people a passing trial must capture.
pub const MIN_CAPTURED_SHARE: f64 = 0.95;

/// How the capacity videos were made from the demo (`layout.json`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Layout {
    pub phases: usize,
    pub segment_frames: u64,
    pub scale: f32,
    pub dx: f32,
    pub dy: f32,
    pub frames: u64,
}

/// One policy: what it sets in every camera's and the detector's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    /// Every frame detected, FP32, no overlap: the seeds' pipelines.
    Baseline,
    /// Motion gating, FP32, no overlap.
    Gating,
    /// Motion gating and INT8, no overlap (x86-cpu's default before the
    /// overlap).
    Int8,
    /// faceflow's defaults, nothing set (the board's precision).
    Default,
    /// The defaults with the detector's model on a thread of its own
    /// (`detector.overlap = true`): the next frame's letterbox overlaps the
    /// current inference.
    Overlap,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Baseline => "baseline",
            Policy::Gating => "gating",
            Policy::Int8 => "int8",
            Policy::Default => "default",
            Policy::Overlap => "overlap",
        }
    }

    /// What the policy adds to the detector's and each camera's table.
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            // The levers come on one at a time: the baseline, gating and
            // int8 rows run without the overlap, whatever the board's default.
            Policy::Baseline => ("precision = \"fp32\"\noverlap = false\n", "detection = \"always\"\n"),
            Policy::Gating => ("precision = \"fp32\"\noverlap = false\n", "detection = \"motion\"\n"),
            Policy::Int8 => ("precision = \"int8\"\noverlap = false\n", "detection = \"motion\"\n"),
            Policy::Default => ("", ""),
            Policy::Overlap => ("overlap = true\n", ""),
        }
    }
}

/// One trial: N cameras at real pace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Trial {
    pub cameras: usize,
    pub frames: u64,
    /// Frames that never reached the tracker, and of them those dropped as stale.
    pub lost: u64,
    pub stale: u64,
    pub lost_share: f64,
    /// Frames the detector ran on, and those motion gating spared it.
    pub detected: u64,
    pub gated: u64,
    pub people: usize,
    pub captured: usize,
    pub captured_share: f64,
    /// Events matching nobody, or a person already matched.
    pub extra_events: usize,
    /// Mean best-face quality of the captured people (each person's best
    /// matching event): what overload costs the faces kept.
    pub mean_quality: f64,
    /// That mean over the one-camera trial's (filled in by `capacity`):
    /// 1.0 means the faces are as good as with the box to one camera.
    pub quality_vs_one_camera: Option<f64>,
    /// Frames detected per second per camera: against the camera's 25,
    /// how far the detect rate fell (motion gating lowers it by design).
    pub detect_fps_per_camera: f64,
    /// Process CPU over the trial's wall time, in cores.
    pub cpu_cores: f64,
    pub wall_s: f64,
    pub passed: bool,
}

/// A policy's capacity and the trials that found it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyRow {
    pub policy: String,
    pub detector: String,
    pub decoder: String,
    /// The largest N that passed (0: not even one camera).
    pub capacity: usize,
    /// True when `capacity` is the most cameras tried (the board's limit).
    pub at_limit: bool,
    pub trials: Vec<Trial>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CapacityReport {
    pub videos: String,
    pub cores: usize,
    pub rows: Vec<PolicyRow>,
}

impl CapacityReport {
    /// Default capacity over baseline capacity, when both were run.
    pub fn ratio(&self) -> Option<f64> {
        let cap = |p: &str| self.rows.iter().find(|r| r.policy == p).map(|r| r.capacity);
        match (cap("default"), cap("baseline")) {
            (Some(d), Some(b)) if b > 0 => Some(d as f64 / b as f64),
            _ => None,
        }
    }
}

pub fn load_layout(dir: &Path) -> Result<Layout, BenchError> {
    let p = dir.join("layout.json");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e} (run scripts/setup.sh)", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()).into())
}

/// The demo's truth as it appears in phase `phase` of the capacity videos.
pub fn phase_truth(demo: &Truth, layout: &Layout, phase: usize) -> Truth {
    let offset = layout.segment_frames as f32 * phase as f32;
    let (s, dx, dy) = (layout.scale, layout.dx, layout.dy);
    Truth {
        fps: demo.fps,
        width: (demo.width as f32 * s + 2.0 * dx) as u32,
        height: (demo.height as f32 * s + 2.0 * dy) as u32,
        frames: layout.frames,
        persons: demo
            .persons
            .iter()
            .map(|p| Person {
                id: p.id,
                source: p.source.clone(),
                boxes: p
                    .boxes
                    .iter()
                    .map(|b| [b[0] + offset, b[1] * s + dx, b[2] * s + dy, b[3] * s + dx, b[4] * s + dy])
                    .collect(),
            })
            .collect(),
    }
}

fn video(dir: &Path, phase: usize) -> PathBuf {
    dir.join(format!("phase{phase}.mp4"))
}

fn trial_config(
    dir: &Path,
    layout: &Layout,
    policy: Policy,
    cameras: usize,
    realtime: bool,
) -> Result<Config, BenchError> {
    let (det, cam) = policy.keys();
    let mut t = format!("[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[detector]\n{det}");
    for i in 0..cameras {
        t.push_str(&format!(
            "[[cameras]]\nname = \"cam{i}\"\nurl = \"file:{}\"\nrealtime = {realtime}\n{cam}",
            video(dir, i % layout.phases).display()
        ));
    }
    Config::from_toml(&t, "bench --capacity").map_err(BenchError::from)
}

/// One trial of `cameras` cameras under `policy`. `realtime = false` reads
/// the files at full speed (nothing is dropped): tests use it to check the
/// accounting without depending on this machine's speed.
pub fn trial(dir: &Path, policy: Policy, cameras: usize, realtime: bool) -> Result<(Trial, String), BenchError> {
    let layout = load_layout(dir)?;
    let demo = crate::cli::truth::load_truth(&Path::new(DEMO_DIR).join("truth.json"))?;
    let cfg = trial_config(dir, &layout, policy, cameras, realtime)?;
    let detector = faceflow::pipeline::load_detector(&cfg).map_err(BenchError::from)?;
    let detector_name = format!("{} ({})", cfg.detector.kind.name(), cfg.detector.model_path().display());
    let cpu0 = process::sample().cpu_seconds;
    let t0 = Instant::now();
    let report = faceflow::pipeline::run_with_detector(
        &cfg,
        detector,
        Arc::new(RealClocks::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .map_err(BenchError::from)?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = process::sample().cpu_seconds - cpu0;
    if !report.camera_errors.is_empty() {
        return Err(format!("capacity trial: {}", report.camera_errors.join("; ")).into());
    }
    let frames = layout.frames * cameras as u64;
    let (mut delivered, mut stale, mut detected, mut gated) = (0, 0, 0, 0);
    for c in report.stats.cameras.iter().take(cameras) {
        delivered += get(&c.detected_frames) + get(&c.skipped_frames) + get(&c.motion_gated);
        stale += get(&c.dropped_stale);
        detected += get(&c.detected_frames);
        gated += get(&c.motion_gated);
    }
    let (mut people, mut captured, mut extra) = (0, 0, 0);
    let (mut quality_sum, mut quality_n) = (0.0f64, 0usize);
    for cam in 0..cameras {
        let truth = phase_truth(&demo, &layout, cam % layout.phases);
        let name = format!("cam{cam}");
        let events: Vec<_> = report
            .events
            .iter()
            .filter(|e| e.kind == "face" && e.camera == name && e.repeat_of.is_none())
            .cloned()
            .collect();
        let ev = crate::cli::truth::evaluate(&events, &truth);
        people += truth.persons.len();
        captured += ev.per_person.iter().filter(|v| !v.is_empty()).count();
        for matched in &ev.per_person {
            let best = matched
                .iter()
                .filter_map(|(id, _)| events.iter().find(|e| &e.id == id))
                .map(|e| e.quality as f64)
                .fold(None, |a: Option<f64>, q| Some(a.map_or(q, |a| a.max(q))));
            if let Some(q) = best {
                quality_sum += q;
                quality_n += 1;
            }
        }
        extra += ev.unmatched.len() + ev.per_person.iter().map(|v| v.len().saturating_sub(1)).sum::<usize>();
    }
    let lost = frames.saturating_sub(delivered);
    let lost_share = lost as f64 / frames.max(1) as f64;
    let captured_share = captured as f64 / people.max(1) as f64;
    let t = Trial {
        cameras,
        frames,
        lost,
        stale,
        lost_share,
        detected,
        gated,
        people,
        captured,
        captured_share,
        extra_events: extra,
        mean_quality: quality_sum / quality_n.max(1) as f64,
        quality_vs_one_camera: None,
        detect_fps_per_camera: detected as f64 / wall.max(1e-9) / cameras.max(1) as f64,
        cpu_cores: cpu / wall.max(1e-9),
        wall_s: wall,
        passed: lost_share <= MAX_LOST_SHARE && captured_share >= MIN_CAPTURED_SHARE,
    };
    Ok((t, detector_name))
}

/// The largest number of cameras `policy` serves, at most `max_cameras`.
pub fn capacity(
    dir: &Path,
    policy: Policy,
    max_cameras: usize,
    mut log: impl FnMut(&Trial),
) -> Result<PolicyRow, BenchError> {
    let mut trials = Vec::new();
    let mut detector = String::new();
    let mut one_camera_quality = None::<f64>;
    let mut run = |n: usize, trials: &mut Vec<Trial>| -> Result<bool, BenchError> {
        let (mut t, d) = trial(dir, policy, n, true)?;
        detector = d;
        // The search starts at one camera: later trials compare with it.
        let q1 = *one_camera_quality.get_or_insert(t.mean_quality);
        t.quality_vs_one_camera = (q1 > 0.0).then(|| t.mean_quality / q1);
        log(&t);
        let ok = t.passed;
        trials.push(t);
        Ok(ok)
    };
    // Doubling finds a failing N (or the limit), bisection the edge.
    let (mut pass, mut fail) = (0usize, None::<usize>);
    let mut n = 1usize;
    while n <= max_cameras {
        if run(n, &mut trials)? {
            pass = n;
            if n == max_cameras {
                break;
            }
            n = (n * 2).min(max_cameras);
        } else {
            fail = Some(n);
            break;
        }
    }
    if let Some(mut hi) = fail {
        while hi - pass > 1 {
            let mid = (pass + hi) / 2;
            if run(mid, &mut trials)? {
                pass = mid;
            } else {
                hi = mid;
            }
        }
    }
    Ok(PolicyRow {
        policy: policy.name().into(),
        detector,
        decoder: super::decoders::decoder_name().into(),
        capacity: pass,
        at_limit: pass == max_cameras,
        trials,
    })
}

pub fn run(dir: &Path, policies: &[Policy], max_cameras: usize) -> Result<CapacityReport, BenchError> {
    let max = max_cameras.clamp(1, faceflow::board::MAX_CAMERAS);
    let mut rows = Vec::new();
    for &p in policies {
        rows.push(capacity(dir, p, max, |t| {
            log::info!("capacity {}: {}", p.name(), trial_line(t));
        })?);
    }
    Ok(CapacityReport {
        videos: dir.display().to_string(),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        rows,
    })
}

fn trial_line(t: &Trial) -> String {
    format!(
        "{} camera(s): {} lost of {} frames ({:.2}%, {} stale), {}/{} people ({:.0}%), best-face quality {:.3} ({}), {} extra events, detector on {:.0}% of frames ({} gated, {:.1} fps per camera), {:.2} cores, {}",
        t.cameras,
        t.lost,
        t.frames,
        100.0 * t.lost_share,
        t.stale,
        t.captured,
        t.people,
        100.0 * t.captured_share,
        t.mean_quality,
        t.quality_vs_one_camera.map_or("one camera".to_string(), |r| format!("{r:.2}x one camera's")),
        t.extra_events,
        100.0 * t.detected as f64 / t.frames.max(1) as f64,
        t.gated,
        t.detect_fps_per_camera,
        t.cpu_cores,
        if t.passed { "pass" } else { "FAIL" }
    )
}

pub fn print(r: &CapacityReport) {
    println!(
        "capacity: real-time 1080p25 cameras ({}), <= {:.0}% frames lost, >= {:.0}% people captured, {} cores",
        r.videos,
        100.0 * MAX_LOST_SHARE,
        100.0 * MIN_CAPTURED_SHARE,
        r.cores
    );
    for row in &r.rows {
        println!(
            "  {:<9} {}{} cameras  ({}, decoder {})",
            row.policy,
            row.capacity,
            if row.at_limit { "+ (board limit)" } else { "" },
            row.detector,
            row.decoder
        );
        for t in &row.trials {
            println!("      {}", trial_line(t));
        }
    }
    match r.ratio() {
        Some(x) => println!("  default / baseline: {x:.2}x the cameras (goal >= 3x)"),
        None => println!("  default / baseline: n/a (a policy was not run or served no camera)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_truth_shifts_frames_and_scales_boxes() {
        let demo = Truth {
            fps: 25.0,
            width: 640,
            height: 480,
            frames: 350,
            persons: vec![Person { id: 0, source: "a".into(), boxes: vec![[10.0, 100.0, 50.0, 200.0, 170.0]] }],
        };
        let layout = Layout { phases: 3, segment_frames: 350, scale: 3.0, dx: 0.0, dy: -180.0, frames: 1050 };
        let t = phase_truth(&demo, &layout, 2);
        assert_eq!((t.width, t.height, t.frames), (1920, 1080, 1050));
        assert_eq!(t.persons[0].boxes[0], [710.0, 300.0, -30.0, 600.0, 330.0]);
    }

    #[test]
    fn policies_parse_and_name_themselves() {
        for p in [Policy::Baseline, Policy::Gating, Policy::Int8, Policy::Default, Policy::Overlap] {
            assert_eq!(<Policy as clap::ValueEnum>::from_str(p.name(), false), Ok(p));
        }
        assert!(<Policy as clap::ValueEnum>::from_str("fast", false).is_err());
    }

    #[test]
    fn the_levers_come_on_one_at_a_time() {
        let layout = Layout { phases: 3, segment_frames: 350, scale: 3.0, dx: 0.0, dy: -180.0, frames: 1050 };
        let cfg = |p| trial_config(Path::new("videos"), &layout, p, 2, true).unwrap();
        let (base, gating, int8, overlap) =
            (cfg(Policy::Baseline), cfg(Policy::Gating), cfg(Policy::Int8), cfg(Policy::Overlap));
        for (name, c) in [("baseline", &base), ("gating", &gating), ("int8", &int8)] {
            assert!(!c.detector.overlap(), "{name} runs without the overlap");
        }
        use faceflow::config::Precision;
        assert_eq!(base.detector.precision, Precision::Fp32);
        assert_eq!(gating.detector.precision, Precision::Fp32);
        assert_eq!(int8.detector.precision, Precision::Int8);
        assert!(overlap.detector.overlap());
        assert_eq!(cfg(Policy::Default).detector.overlap(), faceflow::board::DETECT_OVERLAP);
    }

    /// The accounting on the real capacity videos (1080p25, x264 defaults,
    /// people in view a third of the time, three phases), read at full
    /// speed so the figures do not depend on this machine's speed: every
    /// person of every camera found in the demo's truth mapped into the
    /// 1080p frame, no frame lost, and the default policy (motion gating)
    /// spares the detector most of the empty frames. The real-time search
    /// itself is `faceflow bench --capacity` (PERFORMANCE.md).
    #[test]
    fn three_phased_cameras_capture_every_person_and_gate_the_empty_stretches() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo/capacity");
        assert!(dir.join("layout.json").exists(), "{} is missing: run scripts/setup.sh", dir.display());
        let (t, detector) = trial(&dir, Policy::Default, 3, false).expect("trial runs");
        eprintln!("capacity trial at full speed ({detector}): {t:?}");
        assert_eq!(t.frames, 3 * 1050);
        assert_eq!(t.lost, 0, "files at full speed lose nothing");
        assert_eq!(t.people, 15, "five people on each of three cameras");
        assert_eq!(t.captured, 15, "every person captured: {t:?}");
        assert_eq!(t.extra_events, 0, "one event per person");
        assert!(t.mean_quality > 0.3 && t.mean_quality <= 1.0, "mean best-face quality {}", t.mean_quality);
        assert!(t.detect_fps_per_camera > 0.0);
        // Two thirds of each video are empty; the gate holds 50 detected
        // frames after the last face, so well over half the frames are gated.
        assert!(t.gated as f64 >= 0.5 * t.frames as f64, "{} of {} frames gated", t.gated, t.frames);
        assert_eq!(t.detected + t.gated, t.frames);
        assert!(t.passed);
    }
}
