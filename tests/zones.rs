//! Zones and attention on the demo video: every person crossing a presence
//! zone enters and leaves exactly once, include/exclude zones filter best
//! faces, and face events carry head pose and attention.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::truth as demo;
use faceflow::config::Config;
use faceflow::pipeline;

#[test]
fn presence_zone_counts_each_crossing_once_and_filters_apply() {
    common::require_assets();
    let out = common::temp_dir("zones");
    // The demo is 640x480. A presence zone over the middle third, which every
    // horizontal walker crosses, and an exclude zone over the top-right corner.
    let toml = format!(
        r#"
[outbox]
dir = "{}"
[monitor]
bind = ""
[[cameras]]
name = "demo"
url = "file:models/demo/demo.h264"
zone_anchor = "center"
[[cameras.zones]]
name = "middle"
kind = "presence"
points = [[213, 0], [426, 0], [426, 480], [213, 480]]
[[cameras.zones]]
name = "corner"
kind = "exclude"
points = [[500, 0], [640, 0], [640, 160], [500, 160]]
"#,
        out.display()
    );
    let cfg = Config::from_toml(&toml, "test").unwrap();
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).unwrap();
    let truth = demo::load_truth(&common::root().join("models/demo/truth.json")).unwrap();

    let faces: Vec<_> = report.events.iter().filter(|e| e.kind == "face").collect();
    let enters: Vec<_> = report.events.iter().filter(|e| e.kind == "zone_enter").collect();
    let exits: Vec<_> = report.events.iter().filter(|e| e.kind == "zone_exit").collect();
    // People whose face centre gets deeper than the hysteresis (8 px) into the band.
    let entering_people = truth
        .persons
        .iter()
        .filter(|p| p.boxes.iter().any(|b| (b[1] + b[3]) / 2.0 > 213.0 + 8.0 && (b[1] + b[3]) / 2.0 < 426.0 - 8.0))
        .count();
    assert!(entering_people >= 4, "the demo has walkers crossing the zone");
    assert_eq!(enters.len(), entering_people, "one enter per person entering: {enters:?}");
    assert_eq!(exits.len(), entering_people, "one exit per enter (leaving, or the track ending): {exits:?}");
    let mut ids: Vec<u32> = enters.iter().map(|e| e.track_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), enters.len(), "no track entered twice");
    for x in &exits {
        assert!(x.dwell_ms.unwrap() > 1000, "a walk across a third of the frame takes over a second: {x:?}");
        assert!(enters.iter().any(|e| e.track_id == x.track_id), "exit {x:?} has its enter");
    }
    // Best faces inside the exclude zone are not sent; every sent face is outside it.
    for f in &faces {
        let (cx, cy) = ((f.bbox[0] + f.bbox[2]) / 2.0, (f.bbox[1] + f.bbox[3]) / 2.0);
        assert!(!(cx > 500.0 && cy < 160.0), "face in the exclude zone was sent: {f:?}");
    }
    let filtered = faceflow::metrics::get(&report.stats.cameras[0].zone_filtered);
    assert_eq!(
        faces.len() as u64 + filtered,
        truth.persons.len() as u64,
        "every person either sent or filtered (counted)"
    );
    // Face events carry head pose and attention: where the irises were read,
    // attention is where the eyes look (gaze); else where the head points.
    for f in &faces {
        assert!(f.yaw_deg.is_some() && f.attentive.is_some(), "{f:?}");
        let gaze = f.mesh.as_ref().and_then(|m| m.gaze_yaw_deg.zip(m.gaze_pitch_deg));
        let (yaw, pitch) = gaze.unwrap_or((f.yaw_deg.unwrap(), f.pitch_deg.unwrap()));
        assert_eq!(f.attentive.unwrap(), yaw.abs() <= 25.0 && pitch.abs() <= 20.0, "{f:?}");
    }
    // Zone records reach the outbox too.
    let records = common::files_with_suffix(&out.join("demo"), ".json");
    assert_eq!(records.len(), report.events.len());
    let _ = std::fs::remove_dir_all(&out);
}
