//! Bad input at the edges: a missing or broken ONNX Runtime library, a
//! camera sending frames larger than the board's pool accepts, and a
//! corrupted and truncated H.264 stream. Clear errors, no crash, and the
//! other cameras keep going.

mod common;

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use faceflow::config::Config;
use faceflow::{metrics, pipeline};

/// Runs the binary (ONNX Runtime is loaded once per process, so this needs its own).
fn run_binary(runtime: &str) -> (i32, String) {
    let dir = common::temp_dir(&format!("rt-{}", runtime.len()));
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!("[detector]\nruntime = \"{runtime}\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"a\"\nurl = \"models/demo/demo.h264\"\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faceflow"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .current_dir(common::root())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn missing_or_broken_onnx_runtime_is_named_with_the_fix() {
    common::require_assets();
    let (rc, err) = run_binary("/nonexistent/libonnxruntime.so");
    assert_eq!(rc, 1);
    assert!(
        err.contains("/nonexistent/libonnxruntime.so") && err.contains("does not exist") && err.contains("setup.sh"),
        "{err}"
    );
    let bogus = common::temp_dir("bogus-lib").join("libonnxruntime.so");
    std::fs::write(&bogus, b"not a shared library").unwrap();
    let (rc, err) = run_binary(bogus.to_str().unwrap());
    assert_eq!(rc, 1);
    assert!(err.contains("cannot load ONNX Runtime") && err.contains(bogus.to_str().unwrap()), "{err}");
}

fn two_cameras(bad: &std::path::Path) -> pipeline::RunReport {
    let toml = format!(
        "[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"bad\"\nurl = \"{}\"\n[[cameras]]\nname = \"good\"\nurl = \"models/demo/demo.h264\"\n",
        bad.display()
    );
    pipeline::run(&Config::from_toml(&toml, "test").unwrap(), Arc::new(AtomicBool::new(false))).unwrap()
}

#[test]
fn frames_larger_than_the_pool_are_refused_and_the_other_camera_runs() {
    common::require_assets();
    let dir = common::temp_dir("4k");
    let big = dir.join("4k.h264");
    // Real x264 at twice the board's largest frame on each side (7680x4320
    // on the x86 boards, which take 4K).
    let (w, h) = (faceflow::board::MAX_FRAME_WIDTH * 2, faceflow::board::MAX_FRAME_HEIGHT * 2);
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc=size={w}x{h}:rate=5")])
        .args(["-frames:v", "3"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "h264"])
        .arg(&big)
        .status()
        .expect("ffmpeg runs");
    assert!(st.success());
    let r = two_cameras(&big);
    assert_eq!(r.camera_errors.len(), 1, "{:?}", r.camera_errors);
    let e = &r.camera_errors[0];
    assert!(e.contains("camera bad") && e.contains(&format!("{w}x{h}")) && e.contains("more than"), "{e}");
    assert_eq!(r.stats.cameras[1].state(), metrics::CameraState::Ended);
    assert!(r.events.len() >= 5, "the good camera produced its events");
}

#[test]
fn corrupted_and_truncated_h264_degrades_without_crashing() {
    common::require_assets();
    let dir = common::temp_dir("corrupt-h264");
    let mut data = std::fs::read(common::root().join("models/demo/demo.h264")).unwrap();
    // Stomp on 20 kB in the middle (slices of several frames), then cut the
    // file at 70%, mid-NAL unit.
    let mid = data.len() / 3;
    for b in &mut data[mid..mid + 20_000] {
        *b = 0x5A;
    }
    data.truncate(data.len() * 7 / 10);
    let bad = dir.join("damaged.h264");
    std::fs::write(&bad, &data).unwrap();
    let r = two_cameras(&bad);
    assert!(r.camera_errors.is_empty(), "damage is not a camera failure: {:?}", r.camera_errors);
    let cam = &r.stats.cameras[0];
    let decoded = metrics::get(&cam.decoded);
    assert!(decoded > 100 && decoded < 350, "decoding went on past the damage and stopped at the cut: {decoded}");
    assert!(r.events.iter().any(|e| e.camera == "bad"), "faces before the damage still became events");
    assert!(r.events.iter().filter(|e| e.camera == "good").count() >= 5);
    // The damage was counted and the cut said: partial, with the reason.
    assert!(metrics::get(&cam.decode_errors) > 0, "the stomped bytes were counted as decode errors");
    assert!(cam.partial.load(std::sync::atomic::Ordering::Relaxed), "the cut file is partial");
    assert!(cam.reason().contains("truncated"), "{}", cam.reason());
    assert!(!r.stats.cameras[1].partial.load(std::sync::atomic::Ordering::Relaxed), "the whole file is not");
}

/// The spool's disk fills up (a 160 KiB tmpfs; needs root, as CI runs):
/// the pipeline neither stops nor crashes, the newest events stay spooled
/// for the remote sink, the oldest are dropped and counted (the spool cap's
/// policy), and the outbox on another disk still gets every event.
#[test]
fn a_full_spool_disk_drops_the_oldest_counted_and_the_pipeline_goes_on() {
    common::require_assets();
    let dir = common::temp_dir("diskfull");
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=160k", "tmpfs", spool.to_str().unwrap()])
        .status()
        .expect("mount");
    assert!(mounted.success(), "mounting a small tmpfs needs root (CI runs as root)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(spool.clone());
    // The webhook is down (connection refused), so every event stays in the spool.
    let toml = format!(
        "[outbox]\ndir = \"{}\"\n[monitor]\nbind = \"\"\n[sender]\nspool_dir = \"{}\"\ndrain_timeout_s = 1\nretry_initial_ms = 5000\n[webhook]\nurl = \"http://127.0.0.1:9/hook\"\n[[cameras]]\nname = \"cam\"\nurl = \"models/demo/demo.h264\"\n",
        dir.join("out").display(),
        spool.display()
    );
    let report = pipeline::run(&Config::from_toml(&toml, "test").unwrap(), Arc::new(AtomicBool::new(false)))
        .expect("a full spool disk does not stop the pipeline");
    assert_eq!(report.events.len(), 5, "all five people became events");
    assert_eq!(common::files_with_suffix(&dir.join("out/cam"), ".json").len(), 5, "the outbox has every event");
    let spools = report.feeds.spools.lock().unwrap();
    let (_, sp) = spools.first().expect("the webhook's spool");
    let c = &sp.counters;
    let (written, dropped, errors) = (
        c.written.load(std::sync::atomic::Ordering::Relaxed),
        c.dropped_full.load(std::sync::atomic::Ordering::Relaxed),
        c.write_errors.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert!(errors >= 1, "the disk did fill up (write errors {errors})");
    assert!(dropped >= 1, "the oldest were dropped to make room: {dropped}");
    assert_eq!(written, 5, "every event was finally written, evicting older ones");
    assert_eq!(report.undelivered as u64, written - dropped, "what stays queued is what was not dropped");
    drop(spools);
}

/// A truncated MP4 gives every intact frame, then says it was cut short:
/// WARN, camera state `ended` with a `partial:` reason, exit status 3. One
/// cut before its index (moov at the end) is refused saying so.
#[test]
fn truncated_mp4_yields_its_intact_frames_and_says_partial() {
    common::require_assets();
    let dir = common::temp_dir("truncated-mp4");
    let fast = dir.join("fast.mp4");
    let st = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i", "models/demo/demo.mp4", "-c", "copy", "-movflags", "+faststart"])
        .arg(&fast)
        .status()
        .unwrap();
    assert!(st.success());
    let data = std::fs::read(&fast).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &data[..data.len() * 6 / 10]).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"cut\"\nurl = \"file:{}\"\n",
            cut.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faceflow"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "exit status 3 = partial\n{so}\n{se}");
    assert!(se.contains("the file is truncated: its index lists 350 frames, the data ends after"), "{se}");
    let decoded: u64 = so
        .split("camera cut: ")
        .nth(1)
        .and_then(|s| s.split(" frames decoded").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(decoded > 150 && decoded < 350, "the intact frames before the cut: {decoded}\n{so}");
    // moov at the end, cut in the middle of the data: no index at all.
    let orig = std::fs::read("models/demo/demo.mp4").unwrap();
    let cut2 = dir.join("cut2.mp4");
    std::fs::write(&cut2, &orig[..orig.len() / 2]).unwrap();
    let e = faceflow::ingest::open_file(&cut2).err().expect("refused").to_string();
    assert!(e.contains("cut2.mp4") && e.contains("the file is truncated") && e.contains("moov"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
