//! 4K cameras with small faces: the default board takes 3840x2160 frames;
//! a detection region (`detect_roi`) finds faces of ~90 pixels that a
//! letterbox of the whole frame shrinks below what the detector finds, and
//! reports them in full-frame coordinates, and so do tiles over the whole
//! frame (`detect_tiles`); `min_face_px` drops faces
//! before tracking; a frame bigger than the board takes is refused at
//! check-config with the figure. Real pipeline, real x264 4K video.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use faceflow::config::Config;
use faceflow::geom::BBox;
use faceflow::pipeline::{self, RunReport};

/// Where scripts/setup.sh placed the demo's 640x480 picture in the 4K frame.
const OFFSET: (f32, f32) = (2400.0, 1200.0);
const VIDEO: &str = "models/demo/uhd-region.mp4";

fn run(camera_extra: &str) -> RunReport {
    run_with(camera_extra, None)
}

/// With `detections`, the faces the tracker was given go there (MOT lines).
fn run_with(camera_extra: &str, detections: Option<&std::path::Path>) -> RunReport {
    let out = common::temp_dir("uhd-out");
    let toml = format!(
        "[monitor]\nbind = \"\"\n[outbox]\ndir = \"{}\"\n[[cameras]]\nname = \"wide\"\nurl = \"{VIDEO}\"\n{camera_extra}\n",
        out.display()
    );
    let mut cfg = Config::from_toml(&toml, "test").unwrap();
    cfg.detections_out = detections.map(|p| p.to_path_buf());
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).unwrap();
    assert!(report.camera_errors.is_empty(), "{:?}", report.camera_errors);
    let _ = std::fs::remove_dir_all(&out);
    report
}

#[test]
fn a_4k_camera_with_a_detection_region_captures_every_person_in_frame_coordinates() {
    common::require_assets();
    assert!(common::root().join(VIDEO).exists(), "{VIDEO} is missing: run scripts/setup.sh");
    let truth = common::truth::load_truth(&common::root().join("models/demo/truth.json")).unwrap();

    let with_region = run("detect_roi = [2400, 1200, 640, 480]");
    assert_eq!(with_region.stats.cameras[0].decoded.load(Ordering::Relaxed), 350, "every 4K frame decoded");
    // One event per person, on that person's face: the boxes are in 4K
    // frame pixels, so moved back by the offset they match the demo's truth.
    let shifted: Vec<_> = with_region
        .events
        .iter()
        .cloned()
        .map(|mut e| {
            let [x1, y1, x2, y2] = e.bbox;
            e.bbox = [x1 - OFFSET.0, y1 - OFFSET.1, x2 - OFFSET.0, y2 - OFFSET.1];
            e
        })
        .collect();
    let boxes: Vec<_> = with_region.events.iter().map(|e| (e.best_frame, e.bbox)).collect();
    let ev = common::truth::evaluate(&shifted, &truth);
    assert_eq!(with_region.events.len(), truth.persons.len(), "one event per person: {boxes:?}");
    assert!(ev.passed(), "every person one event with IoU > 0.5 in frame coordinates: {ev:?} {boxes:?}");
    for e in &with_region.events {
        assert_eq!((e.frame_width, e.frame_height), (3840, 2160));
    }

    // The whole frame letterboxed: a 90-pixel face becomes ~10 pixels at
    // the detector's input, and the people are missed.
    let whole = run("");
    assert!(whole.events.len() < truth.persons.len(), "the region should be what finds them: {}", whole.events.len());

    // Tiles over the whole frame and no region (every other frame
    // detected: 12 tiles a frame): every person is found on the frames
    // detected, in 4K coordinates.
    let dets = common::temp_dir("uhd-tiles").join("detections.txt");
    let tiled = run_with("detect_tiles = [4, 3]\ndetection_skip_frames = 1", Some(&dets));
    let mut by_frame: std::collections::HashMap<u64, Vec<BBox>> = std::collections::HashMap::new();
    for line in std::fs::read_to_string(&dets).unwrap().lines() {
        let v: Vec<f32> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let (x, y) = (v[2] - OFFSET.0, v[3] - OFFSET.1);
        by_frame.entry(v[0] as u64 - 1).or_default().push(BBox::new(x, y, x + v[4], y + v[5]));
    }
    for p in &truth.persons {
        let seen: Vec<bool> = p
            .boxes
            .iter()
            .filter(|b| by_frame.contains_key(&(b[0] as u64)) || (b[0] as u64).is_multiple_of(2))
            .map(|b| {
                let t = BBox::new(b[1], b[2], b[3], b[4]);
                by_frame.get(&(b[0] as u64)).is_some_and(|d| d.iter().any(|d| d.iou(&t) > 0.5))
            })
            .collect();
        let recall = seen.iter().filter(|s| **s).count() as f32 / seen.len() as f32;
        println!("tiles: person {} found on {recall:.2} of the frames detected", p.id);
        assert!(recall >= 0.95, "tiles: person {} found on {recall:.2} of the frames detected", p.id);
    }
    // Their events are on truth faces, one per person at most. Two people
    // leave and enter the picture at the same spot 24 frames apart; tiles
    // see the whole face there (a region or the demo's own frame edge cuts
    // it), and the tracker may join the two into one track: one person may
    // go without an event of their own.
    let boxes: Vec<_> = tiled.events.iter().map(|e| (e.best_frame, e.bbox)).collect();
    let shifted: Vec<_> = tiled
        .events
        .iter()
        .cloned()
        .map(|mut e| {
            let [x1, y1, x2, y2] = e.bbox;
            e.bbox = [x1 - OFFSET.0, y1 - OFFSET.1, x2 - OFFSET.0, y2 - OFFSET.1];
            e
        })
        .collect();
    let ev = common::truth::evaluate(&shifted, &truth);
    assert!(ev.unmatched.is_empty() && ev.per_person.iter().all(|e| e.len() <= 1), "tiles: {ev:?} {boxes:?}");
    assert!(tiled.events.len() + 1 >= truth.persons.len(), "tiles: {ev:?} {boxes:?}");

    // min_face_px drops faces before tracking, counted.
    let too_small = run("detect_roi = [2400, 1200, 640, 480]\nmin_face_px = 200");
    assert!(too_small.events.is_empty());
    assert!(too_small.stats.cameras[0].faces_out_of_size.load(Ordering::Relaxed) > 100);

    let ms = |r: &RunReport| r.stats.stages.preprocess_infer.mean_us() / 1000.0;
    let decode_ms = with_region.stats.stages.decode.mean_us() / 1000.0;
    println!(
        "4K frame ({}): decode {decode_ms:.1} ms; detection with the 640x480 region {:.1} ms and {} events, \
         12 tiles {:.1} ms and {} events, the whole frame {:.1} ms and {} events",
        common::cpu_model(),
        ms(&with_region),
        with_region.events.len(),
        ms(&tiled),
        tiled.events.len(),
        ms(&whole),
        whole.events.len()
    );
}

#[test]
fn a_frame_bigger_than_the_board_takes_is_refused_at_check_config_with_the_figure() {
    common::require_assets();
    let dir = common::temp_dir("uhd-8k");
    let video = dir.join("8k.mp4");
    let st = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=7680x4320:rate=25", "-frames:v", "2"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&video)
        .status()
        .unwrap();
    assert!(st.success());
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, format!("[[cameras]]\nname = \"huge\"\nurl = \"{}\"\n", video.display())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faceflow"))
        .args(["check-config", cfg.to_str().unwrap()])
        .current_dir(common::root())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    let (w, h) = (faceflow::board::MAX_FRAME_WIDTH, faceflow::board::MAX_FRAME_HEIGHT);
    assert!(
        text.contains("cameras[0].url") && text.contains("7680x4320") && text.contains(&format!("{w}x{h}")),
        "{text}"
    );
    assert!(text.contains("MB"), "the memory figure: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}
