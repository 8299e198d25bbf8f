//! Recordings as NVRs, phones and tools export them: every container and
//! codec libavformat/libavcodec read (AVI with MPEG-4 Part 2 or MJPEG, MKV,
//! MPEG-TS, FLV, MOV with H.265, WebM with VP9, MKV with AV1), each made
//! here by ffmpeg from the demo and counted against `ffprobe -count_frames`;
//! a file with no video, or one FFmpeg cannot read, is refused by name; and
//! an AVI recording run through `faceflow run` gives one event per person.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Frames ffprobe decodes from `path`.
fn ffprobe_frames(path: &Path) -> usize {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (apt-get install ffmpeg)");
    let text = String::from_utf8_lossy(&out.stdout);
    // MPEG-TS repeats the stream under its program: the first line counts.
    let first = text.lines().map(|l| l.trim().trim_end_matches(',')).find(|l| !l.is_empty()).unwrap_or("");
    first.parse().unwrap_or_else(|_| panic!("ffprobe on {}: {text:?}", path.display()))
}

/// `frames` of the demo re-encoded by ffmpeg with `args` into `dir/name`.
fn encode(dir: &Path, name: &str, frames: u32, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i", "models/demo/demo.mp4", "-frames:v", &frames.to_string()])
        .args(args)
        .arg(&out)
        .current_dir(common::root())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("ffmpeg runs");
    assert!(st.success(), "ffmpeg made {name}");
    out
}

/// (file, ffmpeg's encoder arguments): one per container and codec.
const CLIPS: &[(&str, &[&str])] = &[
    ("mpeg4-bframes.avi", &["-c:v", "mpeg4", "-q:v", "5", "-bf", "2"]),
    ("mjpeg.avi", &["-c:v", "mjpeg", "-q:v", "5"]),
    ("x264-default.mkv", &["-c:v", "libx264"]),
    ("x264-default.ts", &["-c:v", "libx264"]),
    ("x264-default.flv", &["-c:v", "libx264"]),
    ("x265-default.mov", &["-c:v", "libx265", "-x265-params", "log-level=error"]),
    ("vp9.webm", &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "800k"]),
    ("av1.mkv", &["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "lp=1"]),
];

#[test]
fn every_container_and_codec_decodes_every_frame_ffprobe_counts() {
    common::require_assets();
    let dir = common::temp_dir("containers");
    let mut failures = Vec::new();
    for (name, args) in CLIPS {
        let path = encode(&dir, name, 100, args);
        let want = ffprobe_frames(&path);
        let (mut sizes, mut lit) = (std::collections::BTreeSet::new(), 0u64);
        let got = faceflow::ingest::decode_file(&path, usize::MAX, |p| {
            sizes.insert((p.width, p.height));
            lit += p.y[(p.height as usize / 2) * p.strides.0 + p.width as usize / 2] as u64;
        });
        match got {
            Ok(n) if n == want && n >= 99 && sizes.len() == 1 && sizes.contains(&(640, 480)) && lit / n as u64 > 16 => {
                eprintln!("{name}: {n} frames, as ffprobe counts");
            }
            Ok(n) => failures.push(format!(
                "{name}: {n} frames (ffprobe: {want}), sizes {sizes:?}, mean mid luma {}",
                lit / n.max(1) as u64
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_without_video_or_not_a_video_is_refused_by_name() {
    common::require_assets();
    let dir = common::temp_dir("containers-refused");
    let audio = dir.join("voice.m4a");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac"])
        .arg(&audio)
        .status()
        .unwrap();
    assert!(st.success());
    let e = faceflow::ingest::open_file(&audio).err().expect("refused").to_string();
    assert!(e.contains("voice.m4a") && e.contains("no video stream") && e.contains("audio/aac"), "{e}");
    let text = dir.join("notes.avi");
    std::fs::write(&text, "not a recording at all\n".repeat(50)).unwrap();
    let e = faceflow::ingest::open_file(&text).err().expect("refused").to_string();
    assert!(e.contains("notes.avi") && e.contains("not a video file FFmpeg can read"), "{e}");
    // `faceflow run` on it: a non-zero exit that names the file.
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"voice\"\nurl = \"file:{}\"\n",
            audio.display()
        ),
    )
    .unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_faceflow")).args(["run", "--config", cfg.to_str().unwrap()]).output().unwrap();
    let se = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{se}");
    assert!(se.contains("voice.m4a") && se.contains("no video stream"), "{se}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_on(url: &str, outbox: &Path) -> faceflow::pipeline::RunReport {
    let toml = format!("[outbox]\ndir = \"{}\"\n[[cameras]]\nname = \"cam\"\nurl = \"{url}\"\n", outbox.display());
    let cfg = faceflow::config::Config::from_toml(&toml, "test").unwrap();
    faceflow::pipeline::run(&cfg, std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)))
        .expect("pipeline runs")
}

/// The demo as an NVR exports it (AVI, MPEG-4 Part 2 with B-frames), as a
/// recorder writes it (MPEG-TS, H.265) and as tools remux it (MKV): each
/// gives one event per person, on the ground truth's faces.
#[test]
fn avi_ts_and_mkv_recordings_give_one_event_per_person() {
    common::require_assets();
    let dir = common::temp_dir("containers-events");
    let truth = common::truth::load_truth(&common::root().join("models/demo/truth.json")).unwrap();
    let recordings: [(&str, &[&str]); 3] = [
        ("nvr-export.avi", &["-c:v", "mpeg4", "-q:v", "4", "-bf", "2"]),
        ("recorder.ts", &["-c:v", "libx265", "-x265-params", "log-level=error"]),
        ("remux.mkv", &["-c:v", "copy"]),
    ];
    for (name, args) in recordings {
        let path = encode(&dir, name, truth.frames as u32, args);
        let out = dir.join(format!("out-{name}"));
        let report = run_on(&format!("file:{}", path.display()), &out);
        let ev = common::truth::evaluate(&report.events, &truth);
        assert_eq!(report.events.len(), truth.persons.len(), "{name}: one event per person: {ev:?}");
        assert!(ev.passed(), "{name}: every person exactly one event with IoU > 0.5: {ev:?}");
        assert_eq!(faceflow::metrics::get(&report.stats.cameras[0].decoded), truth.frames, "{name}: every frame");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `loop = true` on every kind of file: an MP4 seeks back to its start; a
/// raw H.264/H.265 stream has no index to seek in (libavformat refuses
/// with EPERM), so it is opened again. Three passes of each, timestamps
/// rising across the loops.
#[test]
fn looping_files_play_again_raw_streams_included() {
    common::require_assets();
    for file in ["models/demo/demo.h264", "models/demo/demo.h265", "models/demo/demo.mp4"] {
        let path = common::root().join(file);
        let mut src = faceflow::ingest::open_file(&path).unwrap();
        assert!(src.set_looping(true), "{file}: a file loops");
        let (mut n, mut last) = (0, None::<u64>);
        while n < 3 * 350 {
            let p = src
                .next_packet()
                .unwrap_or_else(|e| panic!("{file}: packet {n}: {e}"))
                .expect("a looping file never ends");
            if let (Some(l), Some(t)) = (last, p.pts_ms) {
                assert!(n % 350 != 0 || t > l, "{file}: pass {} starts at {t} ms, after {l} ms", n / 350);
            }
            last = p.pts_ms.or(last);
            n += 1;
        }
    }
}
