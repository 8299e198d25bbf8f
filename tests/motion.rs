//! Motion gating (`detection = "motion"`): on a video with 6 s empty
//! (with sensor-like noise) before and after the demo's five people, the
//! detector runs only around the people, and every person still makes one
//! event, as with `detection = "always"`.

mod common;

use faceflow::config::Config;
use faceflow::metrics::get;
use faceflow::pipeline;

fn run(mode: &str) -> pipeline::RunReport {
    let toml = format!(
        "[outbox]\ndir = \"\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"corridor\"\nurl = \"file:{}\"\ndetection = \"{mode}\"\n",
        common::root().join("models/demo/empty-stretches.mp4").display()
    );
    pipeline::run(&Config::from_toml(&toml, "test").unwrap(), Default::default()).expect("pipeline runs")
}

#[test]
fn the_detector_runs_only_while_someone_is_there() {
    common::require_assets();
    assert!(common::root().join("models/demo/empty-stretches.mp4").exists(), "run scripts/setup.sh");
    let always = run("always");
    let motion = run("motion");
    let (a, m) = (&always.stats.cameras[0], &motion.stats.cameras[0]);
    assert_eq!(get(&a.decoded), 650);
    assert_eq!(get(&m.decoded), 650);
    assert_eq!(get(&a.detected_frames), 650);
    let (detected, gated) = (get(&m.detected_frames), get(&m.motion_gated));
    eprintln!("motion gating: {detected} of 650 frames detected, {gated} gated (the people are in frames ~160..485)");
    assert_eq!(detected + gated, 650, "every frame is either detected or counted as gated");
    // 300 frames are empty: most of them must be gated (the first frame
    // has no background yet; the gate holds 50 detected frames after the
    // last face).
    assert!(gated >= 220, "{gated} frames gated of 300 empty ones");
    assert!(detected >= 325, "{detected}: the people's frames must all be detected");
    let faces = |r: &pipeline::RunReport| r.events.iter().filter(|e| e.kind == "face").count();
    assert_eq!(faces(&always), 5, "five people");
    assert_eq!(faces(&motion), 5, "five people with motion gating too");
    assert_eq!(get(&a.faces), get(&m.faces), "the gate never hid a face from the detector");
}
