//! The event bus sinks against real servers on loopback: Debian's
//! Mosquitto (subscribed to with `mosquitto_sub`, an independent client)
//! and redis-server (read with `redis-cli`). The demo's events arrive as
//! valid JSON with JPEGs ffmpeg decodes, Home Assistant finds the cameras,
//! a broker or Redis restarted mid-run loses nothing, an oversized message
//! arrives with its frame reduced, and a wrong password names the sink
//! while the events stay spooled.

mod common;
#[path = "support/findface.rs"]
mod findface;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faceflow::config::Config;
use faceflow::pipeline;

/// The servers and the real-time runs share this machine's two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A process stopped with SIGTERM (a clean shutdown: Mosquitto and Redis
/// save their data) when dropped.
struct Server {
    child: Child,
}

impl Server {
    fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Who may connect: anyone (mosquitto's `allow_anonymous`).
const ANONYMOUS: &str = "allow_anonymous true\n";

/// Who may connect: `user` with `password` only (a password file in `dir`).
fn password_only(dir: &Path, user: &str, password: &str) -> String {
    let file = dir.join("passwd");
    let ok = Command::new("mosquitto_passwd").args(["-b", "-c"]).arg(&file).args([user, password]).status().unwrap();
    assert!(ok.success(), "mosquitto_passwd");
    format!("allow_anonymous false\npassword_file {}\n", file.display())
}

/// Mosquitto on `port`, persistent (subscriptions and queued messages
/// survive a restart), its listener configured further by `listener`
/// (who may connect, TLS files).
fn mosquitto(dir: &Path, port: u16, listener: &str) -> Server {
    let mut conf = format!(
        "listener {port} 127.0.0.1\npersistence true\npersistence_location {d}/\nlog_dest file {d}/mosquitto-{start}.log\nlog_type all\n",
        d = dir.display(),
        // One log per start: a restart must not overwrite what the first
        // broker received.
        start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    if nix::unistd::geteuid().is_root() {
        // Run as root, Mosquitto drops to the `mosquitto` user, which may
        // not write the test's directory (persistence, log): stay.
        conf += "user root\n";
    }
    conf += listener;
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (apt-get install mosquitto; scripts/deps.sh test installs it)");
    assert!(wait_until(Duration::from_secs(10), || listening(port)), "mosquitto listens on {port}");
    Server { child }
}

/// Lines `mosquitto_sub` prints for `topic` (payloads), collected as they
/// come; a persistent session (`-c`), so a broker restart loses nothing.
struct Subscriber {
    _child: Server,
    lines: Arc<Mutex<Vec<String>>>,
}

/// `extra`: more `mosquitto_sub` options (credentials, a CA file).
fn subscribe(port: u16, topic: &str, id: &str, extra: &[&str]) -> Subscriber {
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic, "-q", "1", "-c", "-i", id]).args(extra);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("mosquitto_sub");
    let out = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(line);
        }
    });
    // Subscribed once the broker counts it: give the client a moment.
    std::thread::sleep(Duration::from_millis(500));
    Subscriber { _child: Server { child }, lines }
}

/// Events faceflow published to the broker (node `node`), counted in the
/// logs of every start of it: the subscriber alone cannot tell faceflow's
/// duplicates from the broker's own QoS 1 redelivery to a persistent
/// subscriber after a restart.
fn faceflow_publishes(dir: &Path, node: &str) -> usize {
    let (from, topic) = (format!("Received PUBLISH from faceflow_{node}_"), format!("'faceflow/{node}/events'"));
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("mosquitto-")))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .map(|log| log.lines().filter(|l| l.contains(&from) && l.contains(&topic)).count())
        .sum()
}

/// `faceflow drain` (the binary: its log is what a user reads) on the
/// spool in `dir` with `sink` as the only sink: its exit status and log.
fn drain_with_binary(dir: &Path, sink: &str) -> (Option<i32>, String) {
    let toml = dir.join("drain.toml");
    std::fs::write(
        &toml,
        format!(
            "[monitor]\nbind = \"\"\n[sender]\nspool_dir = \"{}\"\n{sink}\n[[cameras]]\nname = \"demo\"\nurl = \"models/demo/demo.h264\"\n",
            dir.join("spool").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faceflow"))
        .args(["drain", "--config", toml.to_str().unwrap(), "--timeout", "3"])
        .current_dir(common::root())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The retained messages under `topic` (`topic payload` lines).
fn retained(port: u16, topic: &str) -> Vec<String> {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic, "-v", "--retained-only", "-W", "2"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Whether ffmpeg decodes `jpeg` as a picture.
fn decodes(dir: &Path, name: &str, jpeg: &[u8]) -> bool {
    let path = dir.join(name);
    std::fs::write(&path, jpeg).unwrap();
    Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .status()
        .is_ok_and(|s| s.success())
}

fn unbase64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let b: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    b.chunks(4)
        .flat_map(|c| {
            let n = c.iter().enumerate().fold(0u32, |n, (i, &v)| n | (v as u32) << (18 - 6 * i));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(c.len() - 1).collect::<Vec<_>>()
        })
        .collect()
}

/// The event ids in the outbox.
fn outbox_ids(dir: &Path) -> HashSet<String> {
    common::files_with_suffix(&dir.join("demo"), ".json")
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect()
}

fn config(dir: &Path, sink: &str, realtime: bool) -> Config {
    config_for(dir, sink, realtime, "models/demo/demo.h264")
}

fn config_for(dir: &Path, sink: &str, realtime: bool, video: &str) -> Config {
    let toml = format!(
        "[outbox]\ndir = \"{}\"\n[monitor]\nbind = \"\"\n[sender]\nspool_dir = \"{}\"\ndrain_timeout_s = 40\nretry_initial_ms = 300\nretry_max_ms = 1500\n{sink}\n[[cameras]]\nname = \"demo\"\nurl = \"{video}\"\nfps = 25\nrealtime = {realtime}\n",
        dir.join("out").display(),
        dir.join("spool").display()
    );
    Config::from_toml(&toml, "test").unwrap()
}

fn run(cfg: &Config) -> pipeline::RunReport {
    pipeline::run(cfg, Arc::new(AtomicBool::new(false))).expect("pipeline runs")
}

/// The event messages received, by id, and how many copies of each came.
fn events(lines: &[String]) -> (HashMap<String, serde_json::Value>, HashMap<String, usize>) {
    let (mut by_id, mut copies) = (HashMap::new(), HashMap::new());
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:.200}"));
        let id = v["id"].as_str().expect("an id").to_string();
        *copies.entry(id.clone()).or_default() += 1;
        by_id.insert(id, v);
    }
    (by_id, copies)
}

/// Copies beyond the first, over all events.
fn duplicates(copies: &HashMap<String, usize>) -> usize {
    copies.values().map(|n| n - 1).sum()
}

#[test]
fn mqtt_events_arrive_whole_and_home_assistant_finds_the_camera() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::require_assets();
    let dir = common::temp_dir("bus-mqtt");
    let port = free_port();
    let _broker = mosquitto(&dir, port, ANONYMOUS);
    let sub = subscribe(port, "faceflow/box-1/events", "bus-test-1", &[]);
    let cfg = config(&dir, &format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nnode = \"box-1\""), false);
    let report = run(&cfg);
    assert_eq!(report.undelivered, 0, "the broker acknowledged every event");
    let ids = outbox_ids(&dir.join("out"));
    assert!(ids.len() >= 3, "the demo made events: {ids:?}");
    assert!(wait_until(Duration::from_secs(10), || sub.lines.lock().unwrap().len() >= ids.len()));
    let (got, copies) = events(&sub.lines.lock().unwrap());
    assert_eq!(got.keys().cloned().collect::<HashSet<_>>(), ids, "every outbox event, nothing else");
    assert_eq!(duplicates(&copies), 0, "no outage, no duplicate");
    for (id, v) in &got {
        assert_eq!(v["schema"], "faceflow.event/1");
        assert_eq!((v["node"].as_str(), v["camera"].as_str()), (Some("box-1"), Some("demo")), "{id}");
        assert!(v["bbox"].as_array().is_some_and(|b| b.len() == 4) && v["quality"].as_f64().is_some(), "{id}");
        assert!(v.get("frame_omitted").is_none(), "{id}: {}", v["frame_omitted"]);
        let face = unbase64(v["face_jpeg_base64"].as_str().unwrap());
        let frame = unbase64(v["frame_jpeg_base64"].as_str().unwrap());
        assert_eq!(
            face,
            std::fs::read(dir.join("out/demo").join(format!("{id}_face.jpg"))).unwrap(),
            "{id}: the outbox's face"
        );
        assert!(decodes(&dir, "face.jpg", &face) && decodes(&dir, "frame.jpg", &frame), "{id}: JPEGs decode");
    }
    // Home Assistant discovery (retained): an image entity and a sensor.
    let discovery = retained(port, "homeassistant/#");
    let image = discovery.iter().find(|l| l.starts_with("homeassistant/image/faceflow_box-1_demo_face/config "));
    let image: serde_json::Value =
        serde_json::from_str(image.expect("image entity").split_once(' ').unwrap().1).unwrap();
    assert_eq!(image["image_topic"], "faceflow/box-1/demo/face/snapshot");
    assert_eq!(image["content_type"], "image/jpeg");
    assert!(discovery.iter().any(|l| l.starts_with("homeassistant/sensor/faceflow_box-1_demo_faces/config ")));
    // The entity's picture: the latest best face, retained raw JPEG.
    let snap = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "faceflow/box-1/demo/face/snapshot",
            "-C",
            "1",
            "-N",
            "-W",
            "3",
        ])
        .output()
        .unwrap();
    assert!(snap.stdout.starts_with(&[0xff, 0xd8]) && decodes(&dir, "snap.jpg", &snap.stdout), "snapshot is a JPEG");
    // The run ended cleanly: the node says so (retained).
    let available = retained(port, "faceflow/box-1/available");
    assert_eq!(available, vec!["faceflow/box-1/available offline".to_string()]);
    // The sink in /metrics like the others.
    let metrics = faceflow::monitor::prometheus::render(&report.stats, &report.feeds);
    let delivered = format!("faceflow_sender_events_total{{sink=\"mqtt\",outcome=\"delivered\"}} {}", ids.len());
    assert!(metrics.contains(&delivered), "{delivered} in /metrics");
    // Throughput: the sink must not be what limits a busy box (100 events/s).
    let sink = faceflow::sink::mqtt::MqttSink::new(cfg.mqtt.as_ref().unwrap(), vec!["demo".into()]).unwrap();
    let rate = throughput(&sink, &outbox_records(&dir.join("out")));
    eprintln!(
        "mqtt sink: {rate:.0} events/s (QoS 1, ~80 KB messages, 4 sender threads, loopback; {})",
        common::cpu_model()
    );
    assert!(rate >= 100.0, "{rate:.0} events/s");
}

/// The outbox's events as the spool holds them.
fn outbox_records(dir: &Path) -> Vec<faceflow::sink::SpoolRecord> {
    common::files_with_suffix(&dir.join("demo"), ".json")
        .iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            faceflow::sink::SpoolRecord {
                record: serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap(),
                face_jpeg: std::fs::read(dir.join("demo").join(format!("{stem}_face.jpg"))).unwrap(),
                frame_jpeg: std::fs::read(dir.join("demo").join(format!("{stem}_frame.jpg"))).unwrap(),
            }
        })
        .collect()
}

/// Events per second `sink` takes from 4 sender threads (300 events made
/// of `records` with fresh ids), each acknowledged.
fn throughput(sink: &dyn faceflow::sink::Sink, records: &[faceflow::sink::SpoolRecord]) -> f64 {
    use faceflow::sink::Delivery;
    const N: usize = 300;
    let t = Instant::now();
    std::thread::scope(|s| {
        for w in 0..4 {
            s.spawn(move || {
                for i in (w..N).step_by(4) {
                    let mut r = records[i % records.len()].clone();
                    r.record.id = format!("bench-{i}");
                    let d = sink.deliver(&r, Duration::from_secs(5));
                    assert!(matches!(d, Delivery::Done(_)), "bench-{i}: {d:?}");
                }
            });
        }
    });
    N as f64 / t.elapsed().as_secs_f64()
}

#[test]
fn a_broker_restarted_mid_run_loses_no_event() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::require_assets();
    let dir = common::temp_dir("bus-restart");
    let port = free_port();
    let mut broker = mosquitto(&dir, port, ANONYMOUS);
    let sub = subscribe(port, "faceflow/box-2/events", "bus-test-2", &[]);
    let cfg =
        config(&dir, &format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nnode = \"box-2\"\ntimeout_ms = 2000"), true);
    let handle = std::thread::spawn(move || run(&cfg));
    // The demo runs 14 s in real time; the broker goes once the first event
    // is through (a live connection lost, the rest still to come).
    assert!(wait_until(Duration::from_secs(20), || !sub.lines.lock().unwrap().is_empty()), "a first event");
    broker.stop();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let _broker = mosquitto(&dir, port, ANONYMOUS);
    eprintln!("broker down {:.1} s", down.elapsed().as_secs_f64());
    let report = handle.join().unwrap();
    assert_eq!(report.undelivered, 0, "the spool delivered everything after the restart");
    let ids = outbox_ids(&dir.join("out"));
    assert!(ids.len() >= 3);
    assert!(
        wait_until(Duration::from_secs(20), || {
            events(&sub.lines.lock().unwrap()).0.keys().cloned().collect::<HashSet<_>>().is_superset(&ids)
        }),
        "every outbox event arrived at the subscriber: {ids:?} vs {:?}",
        events(&sub.lines.lock().unwrap()).0.keys().collect::<Vec<_>>()
    );
    let lines = sub.lines.lock().unwrap().clone();
    let (got, count) = events(&lines);
    let duplicates = duplicates(&count);
    let published = faceflow_publishes(&dir, "box-2");
    eprintln!(
        "{} events, {published} published, {} received, {duplicates} duplicate(s) over one outage",
        got.len(),
        lines.len()
    );
    assert!(published <= 2 * ids.len(), "{published} publishes for {} events", ids.len());
    // Each copy: faceflow's first and at most one more, plus at most one
    // redelivery by the restarted broker to the persistent subscriber.
    assert!(count.values().all(|&n| n <= 3), "copies per event: {count:?}");
    assert_eq!(got.keys().cloned().collect::<HashSet<_>>(), ids, "nothing beyond the outbox's events");
}

/// A busy stretch: the 1080p crowd video (40 people) at full speed ends
/// most tracks at once, so dozens of events are in flight on the sender
/// threads when the broker goes (right after the first arrives) and comes
/// back 5 s later. Every event arrives, at most twice.
#[test]
fn a_broker_restarted_during_a_burst_of_crowd_events_loses_none() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::require_assets();
    let dir = common::temp_dir("bus-burst");
    let port = free_port();
    let mut broker = mosquitto(&dir, port, ANONYMOUS);
    let sub = subscribe(port, "faceflow/box-7/events", "bus-test-7", &[]);
    let sink = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nnode = \"box-7\"\ntimeout_ms = 2000\nhome_assistant = false"
    );
    let cfg = config_for(&dir, &sink, false, "models/demo/crowd/crowd.h264");
    let handle = std::thread::spawn(move || run(&cfg));
    assert!(wait_until(Duration::from_secs(120), || !sub.lines.lock().unwrap().is_empty()), "a first event");
    broker.stop();
    std::thread::sleep(Duration::from_secs(5));
    let _broker = mosquitto(&dir, port, ANONYMOUS);
    let report = handle.join().unwrap();
    assert_eq!(report.undelivered, 0, "the spool delivered everything after the restart");
    let ids = outbox_ids(&dir.join("out"));
    assert!(ids.len() >= 30, "a crowd's worth of events: {}", ids.len());
    assert!(
        wait_until(Duration::from_secs(20), || {
            events(&sub.lines.lock().unwrap()).0.keys().cloned().collect::<HashSet<_>>().is_superset(&ids)
        }),
        "every outbox event arrived: {} of {}",
        events(&sub.lines.lock().unwrap()).0.len(),
        ids.len()
    );
    let lines = sub.lines.lock().unwrap().clone();
    let (_, count) = events(&lines);
    let duplicates = duplicates(&count);
    let published = faceflow_publishes(&dir, "box-7");
    eprintln!(
        "crowd burst: {} events, {published} published, {} received, {duplicates} duplicate(s)",
        ids.len(),
        lines.len()
    );
    assert!(published <= 2 * ids.len(), "{published} publishes for {} events", ids.len());
    assert!(published >= ids.len());
    assert!(count.values().all(|&n| n <= 3), "copies per event (faceflow's two, the broker's redelivery): {count:?}");
    assert_eq!(count.keys().cloned().collect::<HashSet<_>>(), ids);
}

#[test]
fn an_oversized_message_arrives_with_a_smaller_frame() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::require_assets();
    let dir = common::temp_dir("bus-size");
    let port = free_port();
    let _broker = mosquitto(&dir, port, ANONYMOUS);
    let sub = subscribe(port, "faceflow/box-3/events", "bus-test-3", &[]);
    let limit = 65536;
    let cfg = config(
        &dir,
        &format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nnode = \"box-3\"\nmax_message_bytes = {limit}\nhome_assistant = false"),
        false,
    );
    let report = run(&cfg);
    assert_eq!(report.undelivered, 0);
    let ids = outbox_ids(&dir.join("out"));
    assert!(wait_until(Duration::from_secs(10), || sub.lines.lock().unwrap().len() >= ids.len()));
    let lines = sub.lines.lock().unwrap().clone();
    let (got, _) = events(&lines);
    assert_eq!(got.len(), ids.len(), "every event arrived, none dropped for its size");
    let mut reduced = 0;
    for l in &lines {
        assert!(l.len() <= limit, "a message of {} bytes over {limit}", l.len());
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if let Some(w) = v["frame_reduced_to_width"].as_u64() {
            reduced += 1;
            assert!((160..640).contains(&w), "{w}");
            let frame = unbase64(v["frame_jpeg_base64"].as_str().unwrap());
            assert!(decodes(&dir, "small.jpg", &frame), "the reduced frame decodes");
        } else {
            assert!(v.get("frame_omitted").is_some() || v["frame_jpeg_base64"].is_string());
        }
    }
    // The demo's 640x480 frames at quality 90 do not fit 64 KiB in base64.
    assert!(reduced > 0, "some frames had to be reduced: {lines:.300?}");
}

#[test]
fn a_wrong_broker_password_names_the_sink_and_keeps_the_events() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::require_assets();
    let dir = common::temp_dir("bus-auth");
    let port = free_port();
    let _broker = mosquitto(&dir, port, &password_only(&dir, "cam", "right-pass"));
    let mqtt = |password: &str| {
        format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nnode = \"box-4\"\nusername = \"cam\"\npassword = \"{password}\"")
    };
    let mut cfg = config(&dir, &mqtt("WRONG-pass"), false);
    cfg.sender.drain_timeout_s = 2;
    let report = run(&cfg);
    let ids = outbox_ids(&dir.join("out"));
    assert!(ids.len() >= 3);
    assert_eq!(report.undelivered, ids.len(), "every event stays spooled");
    // `faceflow drain` with the same config says why, naming the sink and
    // the keys to check, and never the password.
    let (status, log) = drain_with_binary(&dir, &mqtt("WRONG-pass"));
    assert_eq!(status, Some(1), "still undelivered: {log}");
    assert!(log.contains("sink mqtt: broker refused the connection") && log.contains("mqtt.password"), "{log}");
    assert!(!log.contains("WRONG-pass"), "the password never appears: {log}");
    // With the right password the spool empties into the broker.
    let sub = subscribe(port, "faceflow/box-4/events", "bus-test-4", &["-u", "cam", "-P", "right-pass"]);
    let right = config(&dir, &mqtt("right-pass"), false);
    assert_eq!(pipeline::drain(&right, Duration::from_secs(20)).unwrap(), 0, "delivered once the password is right");
    assert!(wait_until(Duration::from_secs(10), || events(&sub.lines.lock().unwrap()).0.len() >= ids.len()));
    assert_eq!(events(&sub.lines.lock().unwrap()).0.keys().cloned().collect::<HashSet<_>>(), ids);
}

/// redis-server on `port`, appending every write to its file (so a restart
/// keeps the stream).
fn redis(dir: &Path, port: u16) -> Server {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
        .args(["--appendfsync", "always", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server; scripts/deps.sh test installs it)");
    assert!(wait_until(Duration::from_secs(10), || listening(port)), "redis listens on {port}");
    Server { child }
}

/// The stream's entries as (event id, message JSON), read with redis-cli.
fn stream_entries(port: u16, stream: &str) -> Vec<(String, serde_json::Value)> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--raw", "XRANGE", stream, "-", "+"])
        .output()
        .expect("redis-cli");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::new();
    let mut i = 0;
    while i + 4 < lines.len() {
        // entry id, "id", event id, "event", JSON
        if lines[i + 1] == "id" && lines[i + 3] == "event" {
            entries.push((lines[i + 2].to_string(), serde_json::from_str(lines[i + 4]).expect("JSON entry")));
            i += 5;
        } else {
            i += 1;
        }
    }
    entries
}

#[test]
fn redis_restarted_mid_run_loses_no_event() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::require_assets();
    let dir = common::temp_dir("bus-redis");
    let data: PathBuf = dir.join("redis");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let mut server = redis(&data, port);
    let cfg = config(
        &dir,
        &format!("[redis]\nurl = \"redis://127.0.0.1:{port}\"\nnode = \"box-5\"\ntimeout_ms = 2000"),
        true,
    );
    let handle = std::thread::spawn(move || run(&cfg));
    // Redis goes once the first entry is in (a live connection lost).
    assert!(
        wait_until(Duration::from_secs(20), || !stream_entries(port, "faceflow:events").is_empty()),
        "a first entry"
    );
    server.stop();
    std::thread::sleep(Duration::from_secs(5));
    let _server = redis(&data, port);
    let report = handle.join().unwrap();
    assert_eq!(report.undelivered, 0, "the spool delivered everything after the restart");
    let ids = outbox_ids(&dir.join("out"));
    assert!(ids.len() >= 3);
    let entries = stream_entries(port, "faceflow:events");
    let got: HashSet<String> = entries.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(got, ids, "every outbox event is in the stream");
    assert!(entries.len() <= 2 * ids.len(), "at most one duplicate per event: {} entries", entries.len());
    for (id, v) in &entries {
        assert_eq!(
            (v["schema"].as_str(), v["node"].as_str(), v["id"].as_str()),
            (Some("faceflow.event/1"), Some("box-5"), Some(id.as_str()))
        );
        assert!(decodes(&dir, "r.jpg", &unbase64(v["face_jpeg_base64"].as_str().unwrap())), "{id}");
    }
    let cfg = config(&dir, &format!("[redis]\nurl = \"redis://127.0.0.1:{port}\"\nstream = \"bench\""), false);
    let sink = faceflow::sink::redis_stream::RedisSink::new(cfg.redis.as_ref().unwrap()).unwrap();
    let rate = throughput(&sink, &outbox_records(&dir.join("out")));
    eprintln!(
        "redis sink: {rate:.0} events/s (XADD, ~80 KB entries, 4 sender threads, loopback, fsync always; {})",
        common::cpu_model()
    );
    assert!(rate >= 100.0, "{rate:.0} events/s");
}

/// A private CA made for the test (the FindFace stand-in's) and the broker
/// certificate it signed (for 127.0.0.1), as PEM files in `dir`: (ca,
/// cert, key).
fn test_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca = findface::TestCa::new();
    let files =
        (dir.join(format!("{name}-ca.pem")), dir.join(format!("{name}-cert.pem")), dir.join(format!("{name}-key.pem")));
    std::fs::write(&files.0, &ca.ca_pem).unwrap();
    std::fs::write(&files.1, &ca.server_cert_pem).unwrap();
    std::fs::write(&files.2, &ca.server_key_pem).unwrap();
    files
}

#[test]
fn mqtts_with_a_private_ca_delivers_and_another_ca_is_refused_by_name() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::require_assets();
    let dir = common::temp_dir("bus-tls");
    let (ca, cert, key) = test_ca(&dir, "site");
    let (other_ca, _, _) = test_ca(&dir, "other");
    let port = free_port();
    let tls = format!("cafile {}\ncertfile {}\nkeyfile {}\n{ANONYMOUS}", ca.display(), cert.display(), key.display());
    let _broker = mosquitto(&dir, port, &tls);
    let sub = subscribe(port, "faceflow/box-6/events", "bus-test-6", &["--cafile", ca.to_str().unwrap()]);
    let mqtt = |ca: &Path| {
        format!(
            "[mqtt]\nurl = \"mqtts://127.0.0.1:{port}\"\nnode = \"box-6\"\nca_file = \"{}\"\nhome_assistant = false",
            ca.display()
        )
    };
    // Another CA: refused, named, nothing lost.
    let mut cfg = config(&dir, &mqtt(&other_ca), false);
    cfg.sender.drain_timeout_s = 2;
    let report = run(&cfg);
    let ids = outbox_ids(&dir.join("out"));
    assert!(ids.len() >= 3);
    assert_eq!(report.undelivered, ids.len(), "an untrusted broker gets nothing; every event stays spooled");
    let (_, log) = drain_with_binary(&dir, &mqtt(&other_ca));
    assert!(log.contains("sink mqtt: TLS with the broker failed") && log.contains("mqtt.ca_file"), "{log}");
    // The site's CA: the spool empties into the broker over TLS.
    let right = config(&dir, &mqtt(&ca), false);
    assert_eq!(pipeline::drain(&right, Duration::from_secs(20)).unwrap(), 0, "delivered over TLS");
    assert!(wait_until(Duration::from_secs(10), || sub.lines.lock().unwrap().len() >= ids.len()));
    assert_eq!(events(&sub.lines.lock().unwrap()).0.keys().cloned().collect::<HashSet<_>>(), ids);
}
