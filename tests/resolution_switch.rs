//! A camera reconfigured from 720p to 1080p while people are in view: the
//! stream's frames change size at frame 150, where two people are walking
//! through the picture. Every frame decodes, the tracks carry over into the
//! new picture's pixels, and each person is still one event, on the ground
//! truth's face.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::truth as demo;
use faceflow::config::Config;
use faceflow::pipeline;

/// The switch: frames before it at 1280x720, from it on at 1920x1080 (the
/// demo's 4:3 picture stretched to 16:9).
const SWITCH: u32 = 150;

fn encode(dir: &Path, name: &str, select: &str, height: u32) -> std::path::PathBuf {
    let out = dir.join(name);
    let vf = format!("select='{select}',setpts=N/25/TB,scale={}:{height}", height * 16 / 9);
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i", "models/demo/demo.mp4", "-vf", &vf, "-c:v", "libx264", "-f", "h264"])
        .arg(&out)
        .current_dir(common::root())
        .status()
        .expect("ffmpeg runs");
    assert!(st.success());
    out
}

#[test]
fn people_walking_through_a_resolution_switch_are_one_event_each() {
    common::require_assets();
    let dir = common::temp_dir("resolution-switch");
    let a = encode(&dir, "a.h264", &format!("lt(n,{SWITCH})"), 720);
    let b = encode(&dir, "b.h264", &format!("gte(n,{SWITCH})"), 1080);
    // One Annex B stream: the camera sends new parameter sets and a key
    // frame at the switch, as a reconfigured camera does.
    let mut stream = std::fs::read(&a).unwrap();
    stream.extend(std::fs::read(&b).unwrap());
    let video = dir.join("switch.h264");
    std::fs::write(&video, stream).unwrap();

    let truth = demo::load_truth(&common::root().join("models/demo/truth.json")).unwrap();
    let in_view = truth
        .persons
        .iter()
        .filter(|p| {
            p.boxes.first().is_some_and(|b| b[0] < SWITCH as f32)
                && p.boxes.last().is_some_and(|b| b[0] > SWITCH as f32)
        })
        .count();
    assert!(in_view >= 2, "people walk through the switch: {in_view}");

    let toml = format!(
        "[outbox]\ndir = \"{}\"\n[[cameras]]\nname = \"cam\"\nurl = \"file:{}\"\n",
        dir.join("out").display(),
        video.display()
    );
    let cfg = Config::from_toml(&toml, "test").unwrap();
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).expect("pipeline runs");
    assert_eq!(faceflow::metrics::get(&report.stats.cameras[0].decoded), truth.frames, "every frame decodes");
    // Boxes back into the demo's 640x480 pixels, from the frame each best
    // face was taken from, to compare with the truth.
    let events: Vec<_> = report
        .events
        .iter()
        .map(|e| {
            let sx = e.frame_width as f32 / truth.width as f32;
            let sy = e.frame_height as f32 / truth.height as f32;
            let mut e = e.clone();
            e.bbox = [e.bbox[0] / sx, e.bbox[1] / sy, e.bbox[2] / sx, e.bbox[3] / sy];
            e
        })
        .collect();
    let ev = demo::evaluate(&events, &truth);
    assert_eq!(events.len(), truth.persons.len(), "one event per person across the switch: {ev:?}");
    assert!(ev.passed(), "every person exactly one event with IoU > 0.5: {ev:?}");
    let sizes: std::collections::BTreeSet<(u32, u32)> =
        events.iter().map(|e| (e.frame_width, e.frame_height)).collect();
    assert!(sizes.contains(&(1920, 1080)), "best faces from the 1080p part too: {sizes:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
