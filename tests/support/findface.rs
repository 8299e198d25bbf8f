//! A real HTTP/1.1 server on loopback that plays FindFace Multi's
//! `POST /api/events/faces/add/` and checks every request against the
//! contract (shared/findface-api.md): multipart fields, token, camera id,
//! roi, timestamp, a JPEG full frame, the Authorization header. Over plain
//! HTTP, or HTTPS with a certificate from a test CA made here
//! (`start_tls`), as an on-premises FindFace with a private CA serves.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TOKEN: &str = "events-token-SECRET-1";
pub const API_TOKEN: &str = "api-token-SECRET-2";

#[derive(Clone, Debug)]
pub enum Mode {
    Ok,
    /// Answer this status with a FindFace-style error body.
    Status(u16),
    /// Answer 500 this many times, then OK.
    FailFirst(usize),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub event_id: String,
    pub camera: u64,
    pub roi: Vec<u32>,
    pub timestamp: String,
    pub fullframe_len: usize,
}

pub struct Shared {
    pub mode: Mutex<Mode>,
    pub delay: Mutex<Duration>,
    pub accepted: Mutex<Vec<Received>>,
    pub requests: AtomicUsize,
    /// Requests that broke the contract (answered 422, a status FindFace
    /// does not use here, so no test expecting FindFace's answers passes on
    /// a malformed request).
    pub violations: Mutex<Vec<String>>,
    /// Well-formed requests FindFace itself refuses (a wrong token: 403).
    pub refused: Mutex<Vec<(u16, String)>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    stop: AtomicBool,
}

pub struct FakeFindFace {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeFindFace {
    pub fn start(mode: Mode) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), mode, None)
    }

    /// Starts on a given address (to come back on the port clients know),
    /// keeping the state of an earlier instance if given.
    pub fn start_on(addr: SocketAddr, mode: Mode, shared: Option<Arc<Shared>>) -> Self {
        Self::start_with(addr, mode, shared, None)
    }

    /// HTTPS with `ca`'s server certificate (for 127.0.0.1 and localhost).
    pub fn start_tls(mode: Mode, ca: &TestCa) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![ca.server_cert.clone()], ca.server_key.clone_key())
            .unwrap();
        Self::start_with("127.0.0.1:0".parse().unwrap(), mode, None, Some(Arc::new(config)))
    }

    fn start_with(
        addr: SocketAddr,
        mode: Mode,
        shared: Option<Arc<Shared>>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let listener = TcpListener::bind(addr).expect("bind fake FindFace");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = shared.unwrap_or_else(|| {
            Arc::new(Shared {
                mode: Mutex::new(mode.clone()),
                delay: Mutex::new(Duration::ZERO),
                accepted: Mutex::new(Vec::new()),
                requests: AtomicUsize::new(0),
                violations: Mutex::new(Vec::new()),
                refused: Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                stop: AtomicBool::new(false),
            })
        });
        *shared.mode.lock().unwrap() = mode;
        shared.stop.store(false, Ordering::SeqCst);
        let s2 = shared.clone();
        let thread = std::thread::spawn(move || {
            // Bounded: the server stops when told, or after 5 minutes.
            let deadline = std::time::Instant::now() + Duration::from_secs(300);
            while !s2.stop.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let s3 = s2.clone();
                        let tls = tls.clone();
                        std::thread::spawn(move || {
                            conn.set_nonblocking(false).ok();
                            conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
                            match tls {
                                None => handle(conn, &s3),
                                Some(cfg) => {
                                    let Ok(session) = rustls::ServerConnection::new(cfg) else { return };
                                    handle(rustls::StreamOwned::new(session, conn), &s3)
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeFindFace { addr, shared, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn https_url(&self) -> String {
        format!("https://{}/api", self.addr)
    }

    /// Stops listening (the port refuses connections afterwards).
    pub fn stop(mut self) -> Arc<Shared> {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.clone()
    }

    pub fn accepted_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.shared.accepted.lock().unwrap().iter().map(|r| r.event_id.clone()).collect();
        v.sort();
        v
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.violations.lock().unwrap().clone()
    }

    /// (status, why) of each well-formed request refused as FindFace would.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.shared.refused.lock().unwrap().clone()
    }
}

impl Drop for FakeFindFace {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// A private CA made for one test, and a server certificate it signed.
pub struct TestCa {
    /// The CA's certificate, PEM: what `findface.ca_file` names.
    pub ca_pem: String,
    /// The server's certificate and key, PEM (for servers other than this
    /// stand-in: the tests' Mosquitto).
    pub server_cert_pem: String,
    pub server_key_pem: String,
    server_cert: rustls::pki_types::CertificateDer<'static>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "faceflow test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
        TestCa {
            ca_pem: ca_cert.pem(),
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
            server_cert: cert.der().clone(),
            server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }
}

fn respond(conn: &mut impl Write, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Content",
        _ => "Error",
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}

fn handle(conn: impl Read + Write, s: &Shared) {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() {
            return;
        }
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    // The request is read whole: nothing is left in the buffer.
    let mut conn = reader.into_inner();
    s.requests.fetch_add(1, Ordering::SeqCst);
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = *s.delay.lock().unwrap();
    std::thread::sleep(delay);
    let result = check(&line, &header, &body);
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    let received = match result {
        Ok(r) => r,
        Err(Refusal::Violation(why)) => {
            s.violations.lock().unwrap().push(why.clone());
            respond(&mut conn, 422, &format!("{{\"code\":\"CONTRACT_VIOLATION\",\"desc\":{why:?}}}"));
            return;
        }
        Err(Refusal::Answer(status, why)) => {
            s.refused.lock().unwrap().push((status, why.clone()));
            respond(&mut conn, status, &format!("{{\"code\":\"UNAUTHORIZED\",\"desc\":{why:?}}}"));
            return;
        }
    };
    let mode = s.mode.lock().unwrap().clone();
    match mode {
        Mode::Status(code) => {
            respond(&mut conn, code, "{\"code\":\"BAD_PARAM\",\"desc\":\"camera not found\",\"param\":\"camera\"}")
        }
        Mode::FailFirst(n) if n > 0 => {
            *s.mode.lock().unwrap() = Mode::FailFirst(n - 1);
            respond(&mut conn, 500, "{\"code\":\"INTERNAL\",\"desc\":\"try later\"}");
        }
        _ => {
            let id = {
                let mut acc = s.accepted.lock().unwrap();
                acc.push(received);
                format!("{}", 4_000_000_000_000u64 + acc.len() as u64)
            };
            respond(&mut conn, 200, &format!("{{\"events\":[\"{id}\"],\"errors\":[]}}"));
        }
    }
}

/// Why a request was not accepted.
enum Refusal {
    /// faceflow broke the contract (shared/findface-api.md).
    Violation(String),
    /// A well-formed request FindFace refuses with this status.
    Answer(u16, String),
}

type Check = Result<Received, Refusal>;

fn check(line: &str, header: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Check {
    let bad = |m: String| Err(Refusal::Violation(m));
    if !line.starts_with("POST /api/events/faces/add/ ") {
        return bad(format!("unexpected request line {line:?}"));
    }
    match header("authorization") {
        Some(a) if a == format!("Token {API_TOKEN}") => {}
        other => return bad(format!("Authorization header {other:?}")),
    }
    let ct = header("content-type").unwrap_or_default();
    let Some(boundary) = ct.strip_prefix("multipart/form-data; boundary=") else {
        return bad(format!("content type {ct:?}"));
    };
    let parts = parse_multipart(body, boundary).map_err(|(_, m)| Refusal::Violation(m))?;
    let field = |n: &str| parts.iter().filter(|p| p.0 == n).map(|p| p.2.clone()).collect::<Vec<_>>();
    let text = |n: &str| field(n).first().map(|v| String::from_utf8_lossy(v).to_string());
    if text("token").as_deref() != Some(TOKEN) {
        return Err(Refusal::Answer(403, "Incorrect events creation API token".into()));
    }
    let camera: u64 =
        text("camera").and_then(|c| c.parse().ok()).ok_or_else(|| Refusal::Violation("camera".to_string()))?;
    match text("mf_selector").as_deref() {
        Some("biggest") | Some("all") => {}
        other => return bad(format!("mf_selector {other:?}")),
    }
    let timestamp = text("timestamp").unwrap_or_default();
    if !(timestamp.len() >= 20
        && timestamp.as_bytes()[4] == b'-'
        && timestamp.contains('T')
        && timestamp.ends_with('Z'))
    {
        return bad(format!("timestamp {timestamp:?}"));
    }
    let roi: Vec<u32> = field("roi").iter().filter_map(|v| String::from_utf8_lossy(v).parse().ok()).collect();
    if roi.len() != 4 || roi[0] >= roi[2] || roi[1] >= roi[3] {
        return bad(format!("roi {roi:?}"));
    }
    let Some(ff) = parts.iter().find(|p| p.0 == "fullframe") else {
        return bad("fullframe missing".into());
    };
    if !ff.2.starts_with(&[0xFF, 0xD8, 0xFF]) || ff.2.len() > 10 << 20 {
        return bad("fullframe is not a JPEG under 10 MB".into());
    }
    let event_id = ff.1.trim_end_matches(".jpg").to_string();
    Ok(Received { event_id, camera, roi, timestamp, fullframe_len: ff.2.len() })
}

/// (name, filename, data) of one part.
type Part = (String, String, Vec<u8>);

fn parse_multipart(body: &[u8], boundary: &str) -> Result<Vec<Part>, (u16, String)> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, delim.as_bytes()).ok_or((400, "no multipart boundary".to_string()))?;
    rest = &rest[start + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest.strip_prefix(b"\r\n").ok_or((400, "malformed part".to_string()))?;
        let hend = find(rest, b"\r\n\r\n").ok_or((400, "part without headers".to_string()))?;
        let head = String::from_utf8_lossy(&rest[..hend]).to_string();
        rest = &rest[hend + 4..];
        let end = find(rest, format!("\r\n{delim}").as_bytes()).ok_or((400, "unterminated part".to_string()))?;
        let data = rest[..end].to_vec();
        rest = &rest[end + 2 + delim.len()..];
        let disposition =
            head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition")).unwrap_or("");
        let attr = |k: &str| {
            disposition
                .split(';')
                .find_map(|a| a.trim().strip_prefix(&format!("{k}=\"")).map(|v| v.trim_end_matches('"').to_string()))
        };
        parts.push((attr("name").unwrap_or_default(), attr("filename").unwrap_or_default(), data));
    }
    Ok(parts)
}
