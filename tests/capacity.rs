//! `faceflow bench --capacity`'s accounting on the real capacity videos
//! (1080p25, x264 defaults, people in view a third of the time, three
//! phases), read at full speed so the figures do not depend on this
//! machine's speed: every person of every camera is found in the demo's
//! truth mapped into the 1080p frame, no frame is lost, and the default
//! policy (motion gating) spares the detector most of the empty frames.
//! The real-time search itself is `faceflow bench --capacity`
//! (PERFORMANCE.md).

mod common;

use faceflow::bench::capacity::{self, Policy};

#[test]
fn three_phased_cameras_capture_every_person_and_gate_the_empty_stretches() {
    common::require_assets();
    let dir = common::root().join("models/demo/capacity");
    assert!(dir.join("layout.json").exists(), "run scripts/setup.sh");
    let (t, detector) = capacity::trial(&dir, Policy::Default, 3, false).expect("trial runs");
    eprintln!("capacity trial at full speed ({detector}): {t:?}");
    assert_eq!(t.frames, 3 * 1050);
    assert_eq!(t.lost, 0, "files at full speed lose nothing");
    assert_eq!(t.people, 15, "five people on each of three cameras");
    assert_eq!(t.captured, 15, "every person captured: {t:?}");
    assert_eq!(t.extra_events, 0, "one event per person");
    // Two thirds of each video are empty; the gate holds 50 detected
    // frames after the last face, so well over half the frames are gated.
    assert!(t.gated as f64 >= 0.5 * t.frames as f64, "{} of {} frames gated", t.gated, t.frames);
    assert_eq!(t.detected + t.gated, t.frames);
    assert!(t.passed);
}
