//! Faces are biometric data: the panel never goes on the network without a
//! token unless the config says so; the outbox keeps events no longer and
//! no bigger than configured (the spool is never pruned by it); files are
//! owner-only whatever the umask; a FindFace with a private CA is reached
//! through `ca_file`, and without it events stay spooled with an error
//! that names the sink. Real pipeline on the demo video, real HTTP(S).

mod common;
#[path = "support/findface.rs"]
mod findface;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use faceflow::config::Config;
use faceflow::pipeline;
use faceflow::sink::spool::Spool;
use faceflow::sink::Sink;
use findface::{FakeFindFace, Mode, TestCa, API_TOKEN, TOKEN};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push(p.clone());
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn faceflow(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_faceflow")).args(args).current_dir(common::root()).output().unwrap()
}

#[test]
fn a_panel_on_the_network_needs_a_token_and_files_are_owner_only_whatever_the_umask() {
    common::require_assets();
    let dir = common::temp_dir("privacy-panel");
    // FindFace is down (a closed port): events stay in the spool, so the
    // spool's files can be checked too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let write = |monitor: &str| {
        let cfg = dir.join("faceflow.toml");
        std::fs::write(
            &cfg,
            format!(
                "[monitor]\n{monitor}\n[outbox]\ndir = \"{out}\"\n[findface]\nurl = \"http://{closed}/api\"\n\
                 token = \"{TOKEN}\"\n[sender]\nspool_dir = \"{spool}\"\ndrain_timeout_s = 1\n\
                 [[cameras]]\nname = \"door\"\nurl = \"models/demo/demo.h264\"\nfindface_camera = 1\n",
                out = dir.join("outbox").display(),
                spool = dir.join("spool").display(),
            ),
        )
        .unwrap();
        cfg.to_str().unwrap().to_string()
    };

    // On every interface without a token: refused by check-config and run,
    // naming the key and the way out.
    let cfg = write("bind = \"0.0.0.0:0\"");
    for args in [vec!["check-config", &cfg], vec!["run", "--config", &cfg]] {
        let out = faceflow(&args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{args:?} accepted an anonymous panel on the network: {text}");
        assert!(text.contains("monitor.token") && text.contains("allow_anonymous"), "{args:?}: {text}");
    }
    assert!(!dir.join("outbox").exists(), "a refused config started nothing");
    // Loopback, or a token, is fine.
    for monitor in ["bind = \"127.0.0.1:0\"", "bind = \"0.0.0.0:0\"\ntoken = \"mon-SECRET\""] {
        let out = faceflow(&["check-config", &write(monitor)]);
        assert!(out.status.success(), "{monitor}: {}", String::from_utf8_lossy(&out.stderr));
    }

    // Said explicitly: it runs, with a WARN at start. Under umask 000,
    // every face file is still owner-only.
    let cfg = write("bind = \"0.0.0.0:0\"\nallow_anonymous = true");
    let out = std::process::Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" run --config \"$1\"", env!("CARGO_BIN_EXE_faceflow"), &cfg])
        .current_dir(common::root())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.lines().any(|l| l.contains("WARN") && l.contains("no token") && l.contains("allow_anonymous")),
        "no WARN about the anonymous panel: {log}"
    );
    assert!(!log.contains("SECRET"), "a token leaked into the log");
    let files = walk(&dir.join("outbox"));
    let spooled = walk(&dir.join("spool"));
    assert!(files.iter().filter(|p| p.extension().is_some_and(|e| e == "jpg")).count() >= 2, "{files:?}");
    assert!(spooled.iter().any(|p| p.extension().is_some_and(|e| e == "ev")), "{spooled:?}");
    assert_eq!(mode(&dir.join("outbox")), 0o700);
    assert_eq!(mode(&dir.join("spool")), 0o700);
    for p in files.iter().chain(&spooled) {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(p), want, "{} is {:o} under umask 000", p.display(), mode(p));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn outbox_config(dir: &Path, outbox: &str, sinks: &str) -> Config {
    let toml = format!(
        "[monitor]\nbind = \"\"\n[outbox]\ndir = \"{}\"\n{outbox}\n{sinks}\n[sender]\nspool_dir = \"{}\"\n\
         retry_initial_ms = 50\nretry_max_ms = 200\ndrain_timeout_s = 20\n\
         [[cameras]]\nname = \"door\"\nurl = \"models/demo/demo.h264\"\nfindface_camera = 7\n",
        dir.join("outbox").display(),
        dir.join("spool").display()
    );
    Config::from_toml(&toml, "test").unwrap()
}

/// Event ids in the outbox (one per record), and the bytes it holds.
fn outbox_events(dir: &Path) -> (Vec<String>, u64) {
    let files = walk(&dir.join("outbox"));
    let mut ids: Vec<String> =
        files.iter().filter_map(|p| p.file_name()?.to_str()?.strip_suffix(".json").map(str::to_string)).collect();
    ids.sort();
    let bytes = files.iter().filter(|p| p.is_file()).map(|p| std::fs::metadata(p).unwrap().len()).sum();
    (ids, bytes)
}

#[test]
fn outbox_retention_removes_old_and_oldest_events_counts_them_and_never_touches_the_spool() {
    common::require_assets();
    let dir = common::temp_dir("privacy-retention");
    // An event from an earlier run, ten days old.
    let door = dir.join("outbox/door");
    std::fs::create_dir_all(&door).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(10 * 86_400);
    for name in ["door-1-1-0.json", "door-1-1-0_face.jpg", "door-1-1-0_frame.jpg"] {
        let f = std::fs::File::create(door.join(name)).unwrap();
        std::io::Write::write_all(&mut &f, &[0u8; 1000]).unwrap();
        f.set_modified(old).unwrap();
    }
    // FindFace is down: every event stays spooled, whatever the outbox does.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let max_bytes = 150_000;
    let cfg = outbox_config(
        &dir,
        &format!("max_age_h = 24\nmax_bytes = {max_bytes}"),
        &format!("[findface]\nurl = \"http://{closed}/api\"\ntoken = \"{TOKEN}\"\n"),
    );
    let mut cfg = cfg;
    cfg.sender.drain_timeout_s = 1;
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).unwrap();
    let made: Vec<String> = report.events.iter().map(|e| e.id.clone()).collect();
    let (kept, bytes) = outbox_events(&dir);
    assert!(made.len() >= 4, "the demo makes several events: {made:?}");
    assert!(!kept.contains(&"door-1-1-0".to_string()) && !door.join("door-1-1-0_frame.jpg").exists(), "{kept:?}");
    assert!(bytes <= max_bytes, "outbox holds {bytes} bytes, more than max_bytes {max_bytes}");
    assert!(!kept.is_empty() && kept.len() < made.len(), "kept {kept:?} of {made:?}");
    // The newest survive, whole (record and both JPEGs).
    let newest: Vec<&String> = made.iter().rev().take(kept.len()).collect();
    for id in &kept {
        assert!(newest.contains(&id), "{id} kept but older events went first? kept {kept:?}, made {made:?}");
        assert!(door.join(format!("{id}_face.jpg")).exists() && door.join(format!("{id}_frame.jpg")).exists());
    }
    // Counted: what the stats say is what the disk holds.
    let ob = &report.stats.outbox;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(get(&ob.bytes), bytes);
    assert_eq!(get(&ob.events), kept.len() as u64);
    assert_eq!(get(&ob.pruned_events), (made.len() - kept.len()) as u64 + 1, "the old event and the oldest new ones");
    assert!(get(&ob.pruned_files) >= 3 * (made.len() - kept.len()) as u64);
    let metrics = faceflow::monitor::prometheus::render(&report.stats, &report.feeds);
    assert!(metrics.contains(&format!("faceflow_outbox_bytes {bytes}")), "{metrics}");
    assert!(metrics.contains("faceflow_outbox_pruned_files_total "));
    // The spool was not pruned: every event is still there to deliver.
    assert_eq!(report.undelivered, made.len());
    drop(report);
    assert_eq!(Spool::open(&dir.join("spool/findface"), 1 << 30).unwrap().pending(), made.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn until_delivered_keeps_no_copy_of_what_findface_has_and_every_copy_of_what_it_has_not() {
    common::require_assets();
    // FindFace up: every event delivered, the outbox keeps none.
    let dir = common::temp_dir("privacy-delivered");
    let server = FakeFindFace::start(Mode::Ok);
    let sinks = format!("[findface]\nurl = \"{}\"\ntoken = \"{TOKEN}\"\napi_token = \"{API_TOKEN}\"\n", server.url());
    let cfg = outbox_config(&dir, "keep = \"until_delivered\"", &sinks);
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(report.undelivered, 0);
    assert!(report.events.len() >= 4);
    assert_eq!(server.accepted_ids().len(), report.events.len());
    assert_eq!(server.violations(), Vec::<String>::new());
    let (kept, bytes) = outbox_events(&dir);
    assert!(kept.is_empty() && bytes == 0, "delivered events still in the outbox: {kept:?} ({bytes} bytes)");
    let _ = std::fs::remove_dir_all(&dir);

    // FindFace refusing for now (503): every event keeps its outbox copy.
    let dir = common::temp_dir("privacy-undelivered");
    let server = FakeFindFace::start(Mode::Status(503));
    let sinks = format!("[findface]\nurl = \"{}\"\ntoken = \"{TOKEN}\"\napi_token = \"{API_TOKEN}\"\n", server.url());
    let mut cfg = outbox_config(&dir, "keep = \"until_delivered\"", &sinks);
    cfg.sender.drain_timeout_s = 1;
    let report = pipeline::run(&cfg, Arc::new(AtomicBool::new(false))).unwrap();
    let mut made: Vec<String> = report.events.iter().map(|e| e.id.clone()).collect();
    made.sort();
    assert_eq!(report.undelivered, made.len());
    assert_eq!(outbox_events(&dir).0, made, "undelivered events keep their outbox copy");
    let _ = std::fs::remove_dir_all(&dir);
}

fn one_event_spool(dir: &Path) -> String {
    let s = Spool::open(&dir.join("findface"), 1 << 30).unwrap();
    let frame = std::fs::read(common::root().join("tests/data/face.jpg")).unwrap();
    let rec = faceflow::sink::SpoolRecord {
        record: faceflow::sink::EventRecord {
            id: "door-1795000000000-1-0".into(),
            kind: "face".into(),
            zone: None,
            dwell_ms: None,
            yaw_deg: Some(0.0),
            pitch_deg: Some(0.0),
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
    };
    s.put(&rec).unwrap();
    rec.record.id
}

#[test]
fn findface_with_a_private_ca_is_reached_through_ca_file_and_without_it_events_stay_spooled() {
    common::require_assets();
    let dir = common::temp_dir("privacy-ca");
    let ca = TestCa::new();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let server = FakeFindFace::start_tls(Mode::Ok, &ca);
    let spool = dir.join("spool");
    let config = |ca_line: &str| {
        let toml = format!(
            "[outbox]\ndir = \"\"\n[findface]\nurl = \"{}\"\ntoken = \"{TOKEN}\"\napi_token = \"{API_TOKEN}\"\n{ca_line}\n\
             [sender]\nspool_dir = \"{}\"\nretry_initial_ms = 50\nretry_max_ms = 200\n\
             [[cameras]]\nname = \"door\"\nurl = \"models/demo/demo.h264\"\nfindface_camera = 42\n",
            server.https_url(),
            spool.display()
        );
        Config::from_toml(&toml, "test").unwrap()
    };
    let id = one_event_spool(&spool);

    // Without the CA: the certificate is refused, the error names the sink
    // and the way out, and the event stays spooled.
    let cfg = config("");
    let sink =
        faceflow::sink::findface::FindFaceSink::new(cfg.findface.as_ref().unwrap(), vec![("door".into(), 42)]).unwrap();
    let rec = Spool::open(&spool.join("findface"), 1 << 30).unwrap().take(Duration::ZERO).unwrap().record;
    match sink.deliver(&rec, Duration::from_secs(5)) {
        faceflow::sink::Delivery::Retry(why) => assert!(why.contains("ca_file") && why.contains("TLS"), "{why}"),
        other => panic!("an untrusted certificate must be retried later, got {other:?}"),
    }
    assert_eq!(pipeline::drain(&cfg, Duration::from_secs(2)).unwrap(), 1, "kept spooled");
    assert!(server.accepted_ids().is_empty());
    // The run's log names the sink (what an operator reads).
    let cfg_path = dir.join("no-ca.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[outbox]\ndir = \"\"\n[findface]\nurl = \"{}\"\ntoken = \"{TOKEN}\"\n[sender]\nspool_dir = \"{}\"\n\
             [[cameras]]\nname = \"door\"\nurl = \"x.h264\"\nfindface_camera = 42\n",
            server.https_url(),
            spool.display()
        ),
    )
    .unwrap();
    let out = faceflow(&["drain", "--config", cfg_path.to_str().unwrap(), "--timeout", "2"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(log.lines().any(|l| l.contains("sink findface") && l.contains("ca_file")), "{log}");
    assert!(!log.contains("SECRET"), "a token leaked into the log");

    // With the CA: delivered, following the contract.
    let cfg = config(&format!("ca_file = \"{}\"", ca_file.display()));
    assert!(faceflow::pipeline::check_files(&cfg).is_empty(), "{:?}", faceflow::pipeline::check_files(&cfg));
    assert_eq!(pipeline::drain(&cfg, Duration::from_secs(20)).unwrap(), 0);
    assert_eq!(server.accepted_ids(), [id]);
    assert_eq!(server.violations(), Vec::<String>::new());

    // A CA file that is missing or holds no certificate: named at
    // check-config and at start, with the key.
    std::fs::write(dir.join("not-a-ca.pem"), "hello\n").unwrap();
    for bad in [dir.join("missing.pem"), dir.join("not-a-ca.pem")] {
        let cfg = config(&format!("ca_file = \"{}\"", bad.display()));
        let problems = faceflow::pipeline::check_files(&cfg);
        assert!(problems.iter().any(|p| p.starts_with("findface.ca_file") && p.contains(&*bad.to_string_lossy())));
        let e = pipeline::drain(&cfg, Duration::from_secs(1)).expect_err("refused at start").to_string();
        assert!(e.contains("findface.ca_file"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
