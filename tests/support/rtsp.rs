//! A real RTSP server on loopback for the tests: GStreamer's gst-rtsp-server
//! driven by `tests/support/rtsp_server.py` (Debian's python3-gi and
//! gir1.2-gst-rtsp-server-1.0; `.ci/run` installs them). Killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RtspServer {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl RtspServer {
    /// Serves `mounts` (`/path` => Annex B file, `.h265` for H.265), with
    /// `auth` = (method, user, password) when given.
    pub fn start(port: u16, mounts: &[(&str, &str)], auth: Option<(&str, &str, &str)>) -> RtspServer {
        let mut args = vec!["tests/support/rtsp_server.py".to_string(), "--port".into(), port.to_string()];
        for (path, file) in mounts {
            args.push("--mount".into());
            args.push(format!("{path}={file}"));
        }
        if let Some((method, user, password)) = auth {
            args.extend([
                "--auth".into(),
                method.into(),
                "--user".into(),
                user.into(),
                "--password".into(),
                password.into(),
            ]);
        }
        let mut s = RtspServer { port, args, child: None };
        s.restart();
        s
    }

    /// Serves `mounts` with `extra` arguments of rtsp_server.py
    /// (`--loss 0.05`, `--no-repeat-params`).
    pub fn start_with(port: u16, mounts: &[(&str, &str)], extra: &[&str]) -> RtspServer {
        let mut s = RtspServer::start(port, mounts, None);
        s.kill();
        s.args.extend(extra.iter().map(|a| a.to_string()));
        s.restart();
        s
    }

    /// (Re)starts the server process and waits until it listens.
    pub fn restart(&mut self) {
        let mut child = Command::new("/usr/bin/python3")
            .args(&self.args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/support/rtsp_server.py (needs python3-gi and gir1.2-gst-rtsp-server-1.0)");
        let mut line = String::new();
        let t0 = Instant::now();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("ready"), "RTSP server did not start: {line:?}");
        assert!(t0.elapsed() < Duration::from_secs(20));
        self.child = Some(child);
    }

    /// SIGKILL, as a crashing or rebooting camera would vanish.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP / SIGCONT: the connection stays open but nothing flows, as
    /// when a network path stalls.
    pub fn pause(&self, paused: bool) {
        use nix::sys::signal::{kill, Signal};
        let pid = nix::unistd::Pid::from_raw(self.child.as_ref().expect("running").id() as i32);
        kill(pid, if paused { Signal::SIGSTOP } else { Signal::SIGCONT }).unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Threads of this process, from /proc.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// Resident set size of this process in KiB.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
