//! `/metrics` in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::metrics::{get, Histogram, Stats};

fn counter(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
}

fn gauge(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// Escapes a label value (backslash, quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let mut cum = 0;
    for (le_us, n) in h.buckets() {
        cum += n;
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{}\"}} {cum}", le_us as f64 / 1e6);
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(out, "{name}_sum{{{}}} {}", labels.trim_end_matches(','), h.sum_us() as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{{}}} {}", labels.trim_end_matches(','), h.count());
}

/// One metric with a sample per camera.
fn per_camera<V: std::fmt::Display>(
    out: &mut String,
    cams: &[(String, &crate::metrics::CameraStats)],
    kind: &str,
    name: &str,
    help: &str,
    value: impl Fn(&crate::metrics::CameraStats) -> V,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (n, c) in cams {
        let _ = writeln!(out, "{name}{{camera=\"{n}\"}} {}", value(c));
    }
}

pub fn render(stats: &Stats, feeds: &super::Feeds) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let cams: Vec<(String, &crate::metrics::CameraStats)> =
        stats.camera_names.iter().map(|n| esc(n)).zip(stats.cameras.iter()).collect();

    camera_frames(&mut o, &cams);
    camera_faces(&mut o, &cams);
    stages(&mut o, stats);
    queues_and_spools(&mut o, stats, feeds);
    outbox_and_process(&mut o, stats);
    o
}

/// Per camera: frames decoded, detected, skipped, gated, dropped; decode errors and packet loss.
fn camera_frames(o: &mut String, cams: &[(String, &crate::metrics::CameraStats)]) {
    per_camera(o, cams, "counter", "faceflow_frames_decoded_total", "Frames decoded per camera.", |c| get(&c.decoded));
    per_camera(
        o,
        cams,
        "counter",
        "faceflow_frames_detected_total",
        "Frames run through the detector per camera.",
        |c| get(&c.detected_frames),
    );
    counter(o, "faceflow_frames_skipped_total", "Frames passed to the tracker undetected (detection_skip_frames).");
    for (n, c) in cams {
        let _ = writeln!(o, "faceflow_frames_skipped_total{{camera=\"{n}\"}} {}", get(&c.skipped_frames));
    }
    counter(
        o,
        "faceflow_frames_motion_gated_total",
        "Frames due for detection passed undetected: nothing moved and no face lately (detection = \"motion\").",
    );
    for (n, c) in cams {
        let _ = writeln!(o, "faceflow_frames_motion_gated_total{{camera=\"{n}\"}} {}", get(&c.motion_gated));
    }
    counter(
        o,
        "faceflow_faces_out_of_size_total",
        "Faces dropped before tracking: narrower than min_face_px or wider than max_face_px.",
    );
    for (n, c) in cams {
        let _ = writeln!(o, "faceflow_faces_out_of_size_total{{camera=\"{n}\"}} {}", get(&c.faces_out_of_size));
    }
    counter(o, "faceflow_frames_dropped_total", "Frames dropped, by camera and reason.");
    for (n, c) in cams {
        for (reason, v) in [
            ("pool_empty", &c.dropped_pool_empty),
            ("ring_full", &c.dropped_ring_full),
            ("superseded", &c.dropped_superseded),
            ("stale", &c.dropped_stale),
        ] {
            let _ = writeln!(o, "faceflow_frames_dropped_total{{camera=\"{n}\",reason=\"{reason}\"}} {}", get(v));
        }
    }
    per_camera(
        o,
        cams,
        "counter",
        "faceflow_decode_errors_total",
        "Packets that failed to decode (or were concealed) per camera.",
        |c| get(&c.decode_errors),
    );
    per_camera(
        o,
        cams,
        "counter",
        "faceflow_packets_lost_total",
        "RTP packets the network lost per live camera (sequence-number gaps).",
        |c| get(&c.packets_lost),
    );
}

/// Per camera: faces, events, zones, reconnects, state, capture-to-detect latency.
fn camera_faces(o: &mut String, cams: &[(String, &crate::metrics::CameraStats)]) {
    per_camera(o, cams, "counter", "faceflow_faces_detected_total", "Faces detected per camera.", |c| get(&c.faces));
    per_camera(
        o,
        cams,
        "counter",
        "faceflow_events_total",
        "Best-face events produced per camera.",
        |c| get(&c.events),
    );
    per_camera(o, cams, "counter", "faceflow_faces_posed_total", "Tracked faces whose head pose was estimated.", |c| {
        get(&c.posed_faces)
    });
    per_camera(
        o,
        cams,
        "counter",
        "faceflow_faces_attentive_total",
        "Tracked faces facing the camera (attention).",
        |c| get(&c.attentive_faces),
    );
    counter(o, "faceflow_zone_crossings_total", "Presence-zone crossings per camera.");
    for (n, c) in cams {
        let _ =
            writeln!(o, "faceflow_zone_crossings_total{{camera=\"{n}\",crossing=\"enter\"}} {}", get(&c.zone_enters));
        let _ = writeln!(o, "faceflow_zone_crossings_total{{camera=\"{n}\",crossing=\"exit\"}} {}", get(&c.zone_exits));
    }
    counter(o, "faceflow_zone_dwell_seconds_total", "Time spent in presence zones, summed over exits.");
    for (n, c) in cams {
        let _ = writeln!(
            o,
            "faceflow_zone_dwell_seconds_total{{camera=\"{n}\"}} {}",
            get(&c.dwell_ms_total) as f64 / 1000.0
        );
    }
    per_camera(
        o,
        cams,
        "counter",
        "faceflow_faces_zone_filtered_total",
        "Best faces not sent because of include/exclude zones.",
        |c| get(&c.zone_filtered),
    );
    per_camera(o, cams, "counter", "faceflow_reconnects_total", "Live camera reconnect attempts.", |c| {
        get(&c.reconnects)
    });
    per_camera(o, cams, "counter", "faceflow_stalls_total", "Live camera stalls (no frame in time).", |c| {
        get(&c.stalls)
    });
    per_camera(
        o,
        cams,
        "counter",
        "faceflow_face_posts_total",
        "Face records with a new face (realtime mode: every post).",
        |c| get(&c.face_posts),
    );
    per_camera(
        o,
        cams,
        "counter",
        "faceflow_keep_refused_total",
        "Best-face improvements not kept because the keep store was full.",
        |c| get(&c.keep_refused),
    );
    per_camera(
        o,
        cams,
        "gauge",
        "faceflow_camera_state",
        "Camera state: 0 connecting, 1 streaming, 2 ended, 3 failed, 4 backoff, 5 degraded (decode errors).",
        |c| c.state() as u8,
    );
    per_camera(
        o,
        cams,
        "gauge",
        "faceflow_camera_overloaded",
        "1 while the camera loses frames because detection cannot keep up (over the last 10 s).",
        |c| u8::from(c.load.overloaded()),
    );
    per_camera(
        o,
        cams,
        "gauge",
        "faceflow_camera_detect_fps",
        "Frames detected per second per camera, over the overload window.",
        |c| c.load.detect_fps(),
    );
    per_camera(
        o,
        cams,
        "gauge",
        "faceflow_camera_wanted_detect_fps",
        "Frames due for detection per second per camera (frame rate over detection_skip_frames + 1).",
        |c| c.load.wanted_fps(),
    );
    let _ = writeln!(o, "# HELP faceflow_capture_to_detect_seconds Capture to detection latency per camera.\n# TYPE faceflow_capture_to_detect_seconds histogram");
    for (n, c) in cams {
        histogram(o, "faceflow_capture_to_detect_seconds", &format!("camera=\"{n}\","), &c.capture_to_detect);
    }
}

/// Per stage: timings, batches, landmark counts, validation and sink errors.
fn stages(o: &mut String, stats: &Stats) {
    let st = &stats.stages;
    counter(o, "faceflow_overload_episodes_total", "Overload episodes: from the first camera overloaded to none.");
    let _ = writeln!(o, "faceflow_overload_episodes_total {}", get(&stats.overload.episodes));
    gauge(
        o,
        "faceflow_overload_cameras_carried",
        "During an overload episode: cameras this box detects at their configured rate (0 outside one).",
    );
    let _ =
        writeln!(o, "faceflow_overload_cameras_carried {}", get(&stats.overload.cameras_carried_milli) as f64 / 1000.0);
    let _ = writeln!(
        o,
        "# HELP faceflow_stage_seconds Time per call of each pipeline stage.\n# TYPE faceflow_stage_seconds histogram"
    );
    for (stage, h) in [
        ("decode", &st.decode),
        ("detect", &st.preprocess_infer),
        // The model's run alone (an accelerator's busy time), where timed.
        ("model", &st.inference),
        ("track", &st.track),
        ("landmarks", &st.landmarks),
        ("sink", &st.sink),
    ] {
        histogram(o, "faceflow_stage_seconds", &format!("stage=\"{stage}\","), h);
    }
    counter(o, "faceflow_detect_batches_total", "Inference calls (one per batch).");
    let _ = writeln!(o, "faceflow_detect_batches_total {}", get(&st.batches));
    counter(o, "faceflow_detect_batched_frames_total", "Frames inferred in batches.");
    let _ = writeln!(o, "faceflow_detect_batched_frames_total {}", get(&st.batched_frames));
    let lm = &st.landmark;
    for (name, help, v) in [
        ("faceflow_landmark_batches_total", "Landmark inference calls (one mesh + one iris per batch).", &lm.batches),
        ("faceflow_landmark_faces_total", "Faces given landmarks.", &lm.faces),
        (
            "faceflow_landmark_fallback_total",
            "Candidate faces scored from the detector's keypoints because the landmarks stage was full.",
            &lm.fallback,
        ),
        ("faceflow_landmark_late_total", "Landmark results that came after their track closed.", &lm.late),
        ("faceflow_landmark_not_face_total", "Faces the mesh model said were not faces.", &lm.not_face),
    ] {
        counter(o, name, help);
        let _ = writeln!(o, "{name} {}", get(v));
    }
    gauge(o, "faceflow_landmark_queue_length", "Faces waiting for the landmarks stage.");
    let _ = writeln!(o, "faceflow_landmark_queue_length {}", get(&lm.queued));
    counter(o, "faceflow_tracks_rejected_total", "Tracks that failed validation (no event).");
    let _ = writeln!(o, "faceflow_tracks_rejected_total {}", get(&st.rejected));
    counter(o, "faceflow_sink_errors_total", "Local sink and spool write errors.");
    let _ = writeln!(o, "faceflow_sink_errors_total {}", get(&st.sink_errors));
}

/// Pipeline queues and the senders' spools.
fn queues_and_spools(o: &mut String, stats: &Stats, feeds: &super::Feeds) {
    gauge(o, "faceflow_queue_length", "Items waiting in each pipeline queue.");
    for (name, r) in crate::sync::lock(&stats.rings).iter() {
        let _ = writeln!(o, "faceflow_queue_length{{queue=\"{}\"}} {}", esc(name), r.len());
    }
    counter(o, "faceflow_queue_dropped_total", "Items dropped because a queue was full.");
    for (name, r) in crate::sync::lock(&stats.rings).iter() {
        let _ = writeln!(
            o,
            "faceflow_queue_dropped_total{{queue=\"{}\"}} {}",
            esc(name),
            r.dropped_full.load(Ordering::Relaxed)
        );
    }

    let spools = crate::sync::lock(&feeds.spools);
    counter(o, "faceflow_sender_events_total", "Sender outcomes per sink.");
    for (name, s) in spools.iter() {
        let c = &s.counters;
        for (outcome, v) in [
            ("delivered", &c.delivered),
            ("retried", &c.retries),
            ("dead_letter", &c.dead),
            ("corrupt", &c.corrupt),
            ("dropped_spool_full", &c.dropped_full),
            ("dead_letter_pruned", &c.dead_pruned),
        ] {
            let _ =
                writeln!(o, "faceflow_sender_events_total{{sink=\"{}\",outcome=\"{outcome}\"}} {}", esc(name), get(v));
        }
    }
    gauge(o, "faceflow_spool_events", "Events waiting in each sink's spool.");
    for (name, s) in spools.iter() {
        let _ = writeln!(o, "faceflow_spool_events{{sink=\"{}\"}} {}", esc(name), s.pending());
    }
    gauge(o, "faceflow_spool_bytes", "Bytes in each sink's spool.");
    for (name, s) in spools.iter() {
        let _ = writeln!(o, "faceflow_spool_bytes{{sink=\"{}\"}} {}", esc(name), s.bytes());
    }
    drop(spools);
}

/// The outbox under retention, and the process itself.
fn outbox_and_process(o: &mut String, stats: &Stats) {
    let ob = &stats.outbox;
    gauge(o, "faceflow_outbox_bytes", "Bytes of event records and JPEGs in the outbox.");
    let _ = writeln!(o, "faceflow_outbox_bytes {}", get(&ob.bytes));
    gauge(o, "faceflow_outbox_events", "Events in the outbox.");
    let _ = writeln!(o, "faceflow_outbox_events {}", get(&ob.events));
    counter(o, "faceflow_outbox_pruned_files_total", "Outbox files removed by retention.");
    let _ = writeln!(o, "faceflow_outbox_pruned_files_total {}", get(&ob.pruned_files));
    counter(o, "faceflow_outbox_pruned_bytes_total", "Outbox bytes removed by retention.");
    let _ = writeln!(o, "faceflow_outbox_pruned_bytes_total {}", get(&ob.pruned_bytes));
    counter(o, "faceflow_outbox_pruned_events_total", "Outbox events removed by retention.");
    let _ = writeln!(o, "faceflow_outbox_pruned_events_total {}", get(&ob.pruned_events));

    let p = super::process::sample();
    counter(o, "process_cpu_seconds_total", "User and system CPU time.");
    let _ = writeln!(o, "process_cpu_seconds_total {}", p.cpu_seconds);
    gauge(o, "process_resident_memory_bytes", "Resident memory.");
    let _ = writeln!(o, "process_resident_memory_bytes {}", p.rss_bytes);
    gauge(o, "process_open_fds", "Open file descriptors.");
    let _ = writeln!(o, "process_open_fds {}", p.open_fds);
}
