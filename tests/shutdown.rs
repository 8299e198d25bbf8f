//! SIGTERM drains the pipeline in bounded time and loses no event of the
//! tracks seen so far; a second signal exits at once.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn start(dir: &std::path::Path) -> Child {
    let cfg = dir.join("faceflow.toml");
    std::fs::write(
        &cfg,
        format!(
            "[outbox]\ndir = \"{}\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"door\"\nurl = \"models/demo/demo.h264\"\nrealtime = true\n",
            dir.join("out").display()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_faceflow"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .current_dir(common::root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
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
    let dir = common::temp_dir("sigterm");
    let mut child = start(&dir);
    // 7 s at 25 fps = frame ~175: track 1 has ended, track 2 is about to, track 3 is open.
    std::thread::sleep(Duration::from_secs(7));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let t0 = Instant::now();
    let status = wait(&mut child, Duration::from_secs(20)).expect("exits within 20 s of SIGTERM");
    let took = t0.elapsed();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "clean exit: {status:?}\n{log}");
    assert!(log.contains("stop requested"), "{log}");
    let events = common::files_with_suffix(&dir.join("out/door"), ".json");
    assert!(events.len() >= 2, "tracks seen before the signal became events: {} ({log})", events.len());
    assert!(took < Duration::from_secs(15), "bounded shutdown: {took:?}");
}

#[test]
fn second_signal_exits_at_once() {
    common::require_assets();
    let dir = common::temp_dir("sigterm2");
    let mut child = start(&dir);
    std::thread::sleep(Duration::from_secs(3));
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    kill(pid, Signal::SIGINT).unwrap();
    let status = wait(&mut child, Duration::from_secs(3)).expect("exits within 3 s of the second signal");
    assert!(status.success() || status.code() == Some(130), "{status:?}");
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("ERROR"), "a clean immediate exit: no error from the runtime or anything else\n{log}");
}

/// Two signals at once (as `timeout -s INT` or a terminal's Ctrl-C send
/// them) are one stop request: the pipeline drains, it does not exit at once.
#[test]
fn two_signals_at_once_are_one_stop_request() {
    common::require_assets();
    let dir = common::temp_dir("sigint-twice");
    let mut child = start(&dir);
    std::thread::sleep(Duration::from_secs(7));
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).unwrap();
    kill(pid, Signal::SIGINT).unwrap();
    let status = wait(&mut child, Duration::from_secs(20)).expect("exits after draining");
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "drained, not killed: {status:?}\n{log}");
    assert!(!log.contains("exiting now"), "{log}");
    let events = common::files_with_suffix(&dir.join("out/door"), ".json");
    assert!(events.len() >= 2, "open tracks closed into events: {}", events.len());
}
