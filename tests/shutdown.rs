//! SIGTERM drains the pipeline in bounded time and loses no event of the
//! tracks seen so far; a second signal exits at once.
//!
//! Signals are sent at a point of the stream (frames decoded, read from
//! `/api/stats`) or of the log, not after a fixed sleep, and the runs go one
//! at a time: a slow or busy machine reaches the same point later.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A real-time `faceflow run` on the demo, its monitor on a loopback port
/// and its log collected as it is written.
struct Run {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn start(dir: &std::path::Path) -> Run {
    let cfg = dir.join("faceflow.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &cfg,
        format!(
            "[outbox]\ndir = \"{}\"\n[monitor]\nbind = \"127.0.0.1:{port}\"\n[[cameras]]\nname = \"door\"\nurl = \"models/demo/demo.h264\"\nrealtime = true\n",
            dir.join("out").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_faceflow"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .current_dir(common::root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (stderr, log2) = (child.stderr.take().unwrap(), log.clone());
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut l = log2.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    Run { child, port, log, reader: Some(reader) }
}

impl Run {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn frames_decoded(&self) -> u64 {
        let Ok(mut r) = ureq::get(&format!("http://127.0.0.1:{}/api/stats", self.port)).call() else { return 0 };
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or_default();
        v["cameras"][0]["frames_decoded"].as_u64().unwrap_or(0)
    }

    /// Waits until the camera has decoded `n` frames: a point in the stream.
    fn wait_for_frame(&self, n: u64) {
        let t0 = Instant::now();
        while self.frames_decoded() < n {
            assert!(t0.elapsed() < Duration::from_secs(120), "frame {n} never decoded\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_log(&self, text: &str) {
        let t0 = Instant::now();
        while !self.log().contains(text) {
            assert!(t0.elapsed() < Duration::from_secs(60), "`{text}` never logged\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for the exit, then for the rest of the log.
    fn finish(mut self, limit: Duration) -> Option<(std::process::ExitStatus, String)> {
        let status = wait(&mut self.child, limit)?;
        self.reader.take().unwrap().join().unwrap();
        Some((status, self.log()))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn sigterm_drains_and_closes_open_tracks_into_events() {
    common::require_assets();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = common::temp_dir("sigterm");
    let run = start(&dir);
    // Frame 175: track 1 has ended, track 2 is about to, track 3 is open.
    run.wait_for_frame(175);
    kill(run.pid(), Signal::SIGTERM).unwrap();
    let t0 = Instant::now();
    let (status, log) = run.finish(Duration::from_secs(60)).expect("exits within 60 s of SIGTERM");
    let took = t0.elapsed();
    assert!(status.success(), "clean exit: {status:?}\n{log}");
    assert!(log.contains("stop requested"), "{log}");
    let events = common::files_with_suffix(&dir.join("out/door"), ".json");
    assert!(events.len() >= 2, "tracks seen before the signal became events: {} ({log})", events.len());
    // The drain is bounded by the pipeline's own timeouts (well under a
    // second here); 15 s is what a stuck stage would exceed.
    assert!(took < Duration::from_secs(15), "bounded shutdown: {took:?}");
}

#[test]
fn second_signal_exits_at_once() {
    common::require_assets();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = common::temp_dir("sigterm2");
    let run = start(&dir);
    run.wait_for_frame(50);
    kill(run.pid(), Signal::SIGTERM).unwrap();
    // The first signal has been taken as a stop request before the second.
    run.wait_for_log("stop requested");
    kill(run.pid(), Signal::SIGINT).unwrap();
    // At once: no drain, no timeouts waited out (a drain takes its own
    // timeouts; 5 s leaves room for a busy machine to schedule the exit).
    let (status, log) = run.finish(Duration::from_secs(5)).expect("exits within 5 s of the second signal");
    assert!(status.success() || status.code() == Some(130), "{status:?}");
    assert!(!log.contains("ERROR"), "a clean immediate exit: no error from the runtime or anything else\n{log}");
}

/// Two signals at once (as `timeout -s INT` or a terminal's Ctrl-C send
/// them) are one stop request: the pipeline drains, it does not exit at once.
#[test]
fn two_signals_at_once_are_one_stop_request() {
    common::require_assets();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = common::temp_dir("sigint-twice");
    let run = start(&dir);
    run.wait_for_frame(175);
    kill(run.pid(), Signal::SIGINT).unwrap();
    kill(run.pid(), Signal::SIGINT).unwrap();
    let (status, log) = run.finish(Duration::from_secs(60)).expect("exits after draining");
    assert!(status.success(), "drained, not killed: {status:?}\n{log}");
    assert!(!log.contains("exiting now"), "{log}");
    let events = common::files_with_suffix(&dir.join("out/door"), ".json");
    assert!(events.len() >= 2, "open tracks closed into events: {}", events.len());
}
