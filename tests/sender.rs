//! The FindFace sender end to end, against a real HTTP server on loopback
//! that enforces FindFace's contract: outages, 500s, 400s, a slow server,
//! SIGKILL mid-send, a corrupt spool. Every event is delivered or
//! dead-lettered with its reason; none is lost.

mod common;
#[path = "support/findface.rs"]
mod findface;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faceflow::config::Config;
use faceflow::pipeline;
use faceflow::sink::spool::{Spool, SpoolRecord};
use findface::{FakeFindFace, Mode, API_TOKEN, TOKEN};

fn config(url: &str, spool: &Path, extra: &str) -> Config {
    let toml = format!(
        r#"
[outbox]
dir = ""
[findface]
url = "{url}"
token = "{TOKEN}"
api_token = "{API_TOKEN}"
timeout_ms = 2000
[sender]
spool_dir = "{}"
retry_initial_ms = 50
retry_max_ms = 400
drain_timeout_s = 30
{extra}
[[cameras]]
name = "door"
url = "models/demo/demo.h264"
findface_camera = 42
"#,
        spool.display()
    );
    Config::from_toml(&toml, "test").unwrap()
}

fn record(id: &str) -> SpoolRecord {
    let frame = std::fs::read(common::root().join("tests/data/face.jpg"))
        .unwrap_or_else(|_| vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2]);
    SpoolRecord {
        record: faceflow::sink::EventRecord {
            id: id.into(),
            kind: "face".into(),
            zone: None,
            dwell_ms: None,
            yaw_deg: Some(4.0),
            pitch_deg: Some(1.0),
            attentive: Some(true),
            camera: "door".into(),
            track_id: 1,
            part: 0,
            first_unix_ms: 1_795_000_000_000,
            last_unix_ms: 1_795_000_001_000,
            best_unix_ms: 1_795_000_000_500,
            first_frame: 0,
            last_frame: 25,
            best_frame: 10,
            frame_width: 640,
            frame_height: 480,
            bbox: [100.0, 100.0, 180.0, 200.0],
            keypoints: [[0.0; 2]; 5],
            confidence: 0.9,
            quality: 0.8,
            quality_parts: Default::default(),
            frames: 25,
            movement_px: 80.0,
            moving_share: 0.9,
            merged_track_ids: Vec::new(),
            sequence: 0,
            is_final: true,
            repeat_of: None,
            emitted_unix_ms: 0,
            mesh: None,
        },
        face_jpeg: frame.clone(),
        frame_jpeg: frame,
    }
}

fn fill_spool(dir: &Path, n: usize) -> Vec<String> {
    let s = Spool::open(&dir.join("findface"), 1 << 30).unwrap();
    (0..n)
        .map(|i| {
            let id = format!("door-1795000000000-{i}-0");
            s.put(&record(&id)).unwrap();
            id
        })
        .collect()
}

fn ev_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "ev")).count())
        .unwrap_or(0)
}

#[test]
fn findface_down_then_back_every_event_delivered_once() {
    common::require_assets();
    let spool = common::temp_dir("ff-down");
    // Reserve a port, then leave it closed: FindFace is down at the start.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let cfg = config(&format!("http://{addr}/api"), &spool, "");
    let comeback = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(4));
        FakeFindFace::start_on(addr, Mode::Ok, None)
    });
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).unwrap();
    let server = comeback.join().unwrap();
    assert_eq!(report.undelivered, 0, "spool drained once FindFace came back");
    assert_eq!(server.violations(), Vec::<String>::new(), "requests follow the contract");
    let mut want: Vec<String> = report.events.iter().map(|e| e.id.clone()).collect();
    want.sort();
    assert_eq!(want.len(), 5);
    assert_eq!(server.accepted_ids(), want, "each event accepted exactly once");
    for r in server.shared.accepted.lock().unwrap().iter() {
        assert_eq!(r.camera, 42);
        assert!(r.fullframe_len > 1000);
        assert!(r.roi[2] <= 640 && r.roi[3] <= 480);
    }
    assert_eq!(ev_files(&spool.join("findface")), 0);
}

#[test]
fn findface_500s_are_retried_until_accepted() {
    let spool = common::temp_dir("ff-500");
    let ids = fill_spool(&spool, 4);
    let server = FakeFindFace::start(Mode::FailFirst(6));
    let left = pipeline::drain(&config(&server.url(), &spool, ""), Duration::from_secs(30)).unwrap();
    assert_eq!(left, 0);
    assert_eq!(server.accepted_ids(), ids);
    assert_eq!(
        server.shared.requests.load(Ordering::SeqCst),
        10,
        "6 failures + 4 successes, nothing sent twice after success"
    );
    assert_eq!(server.violations(), Vec::<String>::new());
}

#[test]
fn findface_400_is_permanent_and_dead_lettered_with_the_reason() {
    let spool = common::temp_dir("ff-400");
    fill_spool(&spool, 3);
    let server = FakeFindFace::start(Mode::Status(400));
    let left = pipeline::drain(&config(&server.url(), &spool, ""), Duration::from_secs(30)).unwrap();
    assert_eq!(left, 0, "a permanent refusal leaves the queue");
    assert_eq!(server.shared.requests.load(Ordering::SeqCst), 3, "no retry of a 400");
    let dead = spool.join("findface/dead");
    assert_eq!(ev_files(&dead), 3, "the events are kept in dead/");
    let reasons: Vec<String> = std::fs::read_dir(&dead)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "reason"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(reasons.len(), 3);
    assert!(reasons.iter().all(|r| r.contains("HTTP 400") && r.contains("BAD_PARAM")), "{reasons:?}");
    // FindFace's 400, not the stand-in's answer to a malformed request.
    assert_eq!(server.violations(), Vec::<String>::new());
}

#[test]
fn wrong_token_is_refused_403_and_not_retried() {
    let spool = common::temp_dir("ff-403");
    fill_spool(&spool, 2);
    let server = FakeFindFace::start(Mode::Ok);
    let mut cfg = config(&server.url(), &spool, "");
    cfg.findface.as_mut().unwrap().token = faceflow::config::Secret::new("wrong");
    assert_eq!(pipeline::drain(&cfg, Duration::from_secs(30)).unwrap(), 0);
    assert_eq!(server.shared.requests.load(Ordering::SeqCst), 2);
    let dead = spool.join("findface/dead");
    assert_eq!(ev_files(&dead), 2);
    // Refused for the token, nothing else: well-formed, answered 403.
    assert_eq!(server.violations(), Vec::<String>::new());
    assert_eq!(server.refused().iter().filter(|(status, _)| *status == 403).count(), 2, "{:?}", server.refused());
    for e in std::fs::read_dir(&dead).unwrap().filter_map(|e| e.ok()) {
        if e.path().extension().is_some_and(|x| x == "reason") {
            let why = std::fs::read_to_string(e.path()).unwrap();
            assert!(why.contains("HTTP 403"), "{why}");
        }
    }
}

#[test]
fn slow_findface_is_served_by_parallel_workers() {
    let spool = common::temp_dir("ff-slow");
    let ids = fill_spool(&spool, 8);
    let server = FakeFindFace::start(Mode::Ok);
    *server.shared.delay.lock().unwrap() = Duration::from_millis(400);
    let t0 = Instant::now();
    let left = pipeline::drain(&config(&server.url(), &spool, "workers = 4"), Duration::from_secs(30)).unwrap();
    assert_eq!(left, 0);
    assert_eq!(server.accepted_ids(), ids);
    assert!(server.shared.max_in_flight.load(Ordering::SeqCst) >= 2, "requests overlap");
    assert!(t0.elapsed() < Duration::from_millis(8 * 400), "faster than one at a time: {:?}", t0.elapsed());
    assert_eq!(server.violations(), Vec::<String>::new());
}

#[test]
fn timeouts_are_retried() {
    let spool = common::temp_dir("ff-timeout");
    let ids = fill_spool(&spool, 2);
    let server = FakeFindFace::start(Mode::Ok);
    *server.shared.delay.lock().unwrap() = Duration::from_millis(3000);
    let s2 = server.shared.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        *s2.delay.lock().unwrap() = Duration::ZERO;
    });
    // timeout_ms = 2000 < 3000: the first attempts time out.
    let left = pipeline::drain(&config(&server.url(), &spool, ""), Duration::from_secs(30)).unwrap();
    assert_eq!(left, 0);
    assert!(server.shared.requests.load(Ordering::SeqCst) > 2, "timed-out attempts were retried");
    // A timed-out request may still have been accepted by the server: at-least-once.
    let got = server.accepted_ids();
    for id in &ids {
        assert!(got.contains(id), "{id} delivered");
    }
    assert_eq!(server.violations(), Vec::<String>::new());
}

#[test]
fn corrupt_spool_file_is_quarantined_not_fatal() {
    let spool = common::temp_dir("ff-corrupt");
    let ids = fill_spool(&spool, 2);
    std::fs::write(spool.join("findface/0000000000000500.ev"), b"FFEV\x01garbage").unwrap();
    let server = FakeFindFace::start(Mode::Ok);
    assert_eq!(pipeline::drain(&config(&server.url(), &spool, ""), Duration::from_secs(30)).unwrap(), 0);
    assert_eq!(server.accepted_ids(), ids);
    assert!(spool.join("findface/corrupt/0000000000000500.ev").exists());
    assert_eq!(server.violations(), Vec::<String>::new());
}

#[test]
fn sigkill_mid_send_loses_nothing() {
    common::require_assets();
    let dir = common::temp_dir("ff-kill");
    let server = FakeFindFace::start(Mode::Status(503));
    let spool = dir.join("spool");
    let cfg_text = format!(
        "[outbox]\ndir = \"\"\n[findface]\nurl = \"{}\"\ntoken = \"{TOKEN}\"\napi_token = \"{API_TOKEN}\"\n[sender]\nspool_dir = \"{}\"\nretry_initial_ms = 50\nretry_max_ms = 200\n[[cameras]]\nname = \"door\"\nurl = \"models/demo/demo.h264\"\nfindface_camera = 42\n",
        server.url(),
        spool.display()
    );
    let cfg_path = dir.join("faceflow.toml");
    std::fs::write(&cfg_path, &cfg_text).unwrap();
    let exe = env!("CARGO_BIN_EXE_faceflow");
    let mut child = std::process::Command::new(exe)
        .args(["run", "--config", cfg_path.to_str().unwrap()])
        .current_dir(common::root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for at least 3 events to be spooled and retried (503 keeps them there).
    let deadline = Instant::now() + Duration::from_secs(120);
    while ev_files(&spool.join("findface")) < 3 || server.shared.requests.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "events never reached the spool");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!log.contains("SECRET"), "a token leaked into the log");
    let spooled = ev_files(&spool.join("findface"));
    assert!(spooled >= 3);
    // Restart with FindFace healthy: everything spooled is delivered.
    *server.shared.mode.lock().unwrap() = Mode::Ok;
    let st = std::process::Command::new(exe)
        .args(["drain", "--config", cfg_path.to_str().unwrap(), "--timeout", "60"])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    assert_eq!(server.accepted_ids().len(), spooled, "every spooled event delivered once");
    assert_eq!(ev_files(&spool.join("findface")), 0);
    assert!(!String::from_utf8_lossy(&st.stderr).contains("SECRET"));
    assert_eq!(server.violations(), Vec::<String>::new());
}

#[test]
fn webhook_gets_json_with_a_stable_idempotency_key() {
    use std::io::{BufRead, BufReader, Read, Write};
    let spool = common::temp_dir("webhook");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(std::sync::Mutex::new(Vec::<(String, serde_json::Value)>::new()));
    let g2 = got.clone();
    std::thread::spawn(move || {
        // Serves a bounded number of requests; the first answers 503 to force a retry.
        for (n, conn) in listener.incoming().take(4).enumerate() {
            let mut conn = conn.unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let (mut key, mut len, mut auth) = (String::new(), 0usize, String::new());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "idempotency-key" => key = v.trim().into(),
                    "content-length" => len = v.trim().parse().unwrap(),
                    "authorization" => auth = v.trim().into(),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            assert_eq!(auth, "Bearer hook-SECRET");
            let status = if n == 0 { "503 Unavailable" } else { "204 No Content" };
            write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
            g2.lock().unwrap().push((key, serde_json::from_slice(&body).unwrap()));
        }
    });
    let s = Spool::open(&spool.join("webhook"), 1 << 30).unwrap();
    s.put(&record("door-1-7-0")).unwrap();
    drop(s);
    let toml = format!(
        "[outbox]\ndir = \"\"\n[webhook]\nurl = \"http://{addr}/hook\"\nbearer_token = \"hook-SECRET\"\n[sender]\nspool_dir = \"{}\"\nretry_initial_ms = 50\n[[cameras]]\nname = \"door\"\nurl = \"x.h264\"\n",
        spool.display()
    );
    let cfg = Config::from_toml(&toml, "test").unwrap();
    assert_eq!(pipeline::drain(&cfg, Duration::from_secs(30)).unwrap(), 0);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 2, "one 503, one retry");
    assert_eq!(got[0].0, got[1].0, "the retry carries the same idempotency key");
    assert_eq!(got[1].0, "door-1-7-0");
    assert_eq!(got[1].1["id"], "door-1-7-0");
    assert!(got[1].1["frame_jpeg_base64"].as_str().unwrap().starts_with("/9j/"), "base64 JPEG");
}

/// A FindFace 1.5x slower than the timeout: timed-out attempts may be
/// stored anyway, so faceflow must slow down (fewer in flight, a longer
/// timeout) rather than retry at the same pace: at most 2 deliveries per
/// event, none lost.
#[test]
fn a_server_slower_than_the_timeout_is_not_flooded() {
    let spool = common::temp_dir("ff-slower");
    let mut ids = fill_spool(&spool, 12);
    ids.sort();
    let server = FakeFindFace::start(Mode::Ok);
    *server.shared.delay.lock().unwrap() = Duration::from_millis(1500);
    let mut cfg = config(&server.url(), &spool, "");
    cfg.findface.as_mut().unwrap().timeout_ms = 1000;
    let left = pipeline::drain(&cfg, Duration::from_secs(90)).unwrap();
    assert_eq!(left, 0, "every event delivered");
    let requests = server.shared.requests.load(Ordering::SeqCst);
    let mut got = server.accepted_ids();
    let stored = got.len();
    got.dedup();
    assert_eq!(got, ids, "each event reached FindFace");
    assert!(requests <= 2 * ids.len(), "{requests} requests for {} events (at most 2 each)", ids.len());
    assert!(stored <= 2 * ids.len(), "{stored} stored for {} events", ids.len());
    assert_eq!(server.violations(), Vec::<String>::new());
    eprintln!("slow server: {requests} requests, {stored} stored for {} events", ids.len());
}

/// The pace learned against a slow FindFace survives a restart: the first
/// run stops mid-way (its drain deadline), and the next start carries on
/// at that pace instead of flooding the server again at full speed: each
/// event left for it costs exactly one request, and the whole at most 2
/// per event (it was 2.5 before the pace was kept).
#[test]
fn the_pace_learned_before_a_restart_is_kept() {
    let spool = common::temp_dir("ff-pace");
    let mut ids = fill_spool(&spool, 12);
    ids.sort();
    let server = FakeFindFace::start(Mode::Ok);
    *server.shared.delay.lock().unwrap() = Duration::from_millis(1500);
    let mut cfg = config(&server.url(), &spool, "");
    cfg.findface.as_mut().unwrap().timeout_ms = 1000;
    let left = pipeline::drain(&cfg, Duration::from_secs(6)).unwrap();
    assert!(left > 0 && left < ids.len(), "the first run stopped mid-way: {left} left");
    let before = server.shared.requests.load(Ordering::SeqCst);
    assert!(spool.join("findface/pacing").exists(), "the pace is kept beside the spool");
    assert_eq!(pipeline::drain(&cfg, Duration::from_secs(90)).unwrap(), 0, "every event delivered");
    let after = server.shared.requests.load(Ordering::SeqCst) - before;
    assert_eq!(after, left, "one request per event left: no timed-out retries after the restart");
    let mut got = server.accepted_ids();
    got.dedup();
    assert_eq!(got, ids, "each event reached FindFace");
    assert!(before + after <= 2 * ids.len(), "{} requests for {} events", before + after, ids.len());
    assert_eq!(server.violations(), Vec::<String>::new());
}

/// `drain_timeout_s` is a hard deadline: against a FindFace that never
/// answers, draining ends within it (plus a moment), and what was not
/// delivered stays spooled.
#[test]
fn the_drain_deadline_holds_against_a_hanging_server() {
    let spool = common::temp_dir("ff-hang");
    fill_spool(&spool, 3);
    let server = FakeFindFace::start(Mode::Ok);
    *server.shared.delay.lock().unwrap() = Duration::from_secs(60);
    let cfg = config(&server.url(), &spool, "");
    let t0 = Instant::now();
    let left = pipeline::drain(&cfg, Duration::from_secs(2)).unwrap();
    let took = t0.elapsed();
    assert_eq!(left, 3, "nothing lost: still spooled");
    assert!(took < Duration::from_secs(3), "drained within the deadline + 1 s: {took:?}");
    assert_eq!(ev_files(&spool.join("findface")), 3);
}
