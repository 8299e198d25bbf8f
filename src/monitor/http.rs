//! The monitoring HTTP server, on its own thread (`tiny_http`, bound to
//! loopback unless configured otherwise): `/` the panel, `/api/stats` JSON,
//! `/metrics` Prometheus, `/healthz`, `/api/preview/<camera>.mjpg` MJPEG,
//! `/api/events` the newest best faces (and `/api/events/<serial>`, its
//! `face.jpg` and `frame.jpg`).
//! With a token set, every request needs `Authorization: Bearer <token>`
//! (or `?token=`, for `<img>` tags); others get 401.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tiny_http::{Header, Request, Response, Server};

use super::history::History;
use crate::config::MonitorConfig;
use crate::metrics::{get, Stats};
use crate::track::preview;

const PANEL: &str = include_str!("panel.html");
const MAX_VIEWERS: usize = 8;
/// Most events one `/api/events` answer lists.
const MAX_EVENTS: usize = 200;

/// A camera name as one URL path segment: everything but unreserved
/// characters as `%XX`.
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` and `+` in a query value (or a path segment).
fn percent_decode(v: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub struct Monitor {
    pub addr: std::net::SocketAddr,
    handle: Option<std::thread::JoinHandle<()>>,
    server: Arc<Server>,
    shutdown: Arc<AtomicBool>,
}

crate::error::context_error!(
    /// The panel's address that could not be served.
    MonitorError,
    "monitor: "
);

impl Monitor {
    /// Binds and starts serving; an error names the address.
    pub fn start(
        cfg: &MonitorConfig,
        stats: Arc<Stats>,
        feeds: Arc<super::Feeds>,
        stop: Arc<AtomicBool>,
    ) -> Result<Monitor, MonitorError> {
        let server =
            Server::http(&cfg.bind).map_err(|e| MonitorError::caused(format!("cannot listen on {}", cfg.bind), e))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| MonitorError::new(format!("{} is not an IP address", cfg.bind)))?;
        let server = Arc::new(server);
        let ctx = Arc::new(Ctx {
            stats,
            feeds,
            history: Mutex::new(History::new(0)),
            token: cfg.token.as_ref().map(|t| t.expose().to_string()).filter(|t| !t.is_empty()),
            preview_interval: Duration::from_secs_f64(1.0 / cfg.preview_fps.max(0.1)),
            preview_width: cfg.preview_width,
            viewers: AtomicUsize::new(0),
            stop,
        });
        *crate::sync::lock(&ctx.history) = History::new(ctx.stats.cameras.len());
        let s2 = server.clone();
        let shutdown = Arc::new(AtomicBool::new(false));
        let sd = shutdown.clone();
        let handle = std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || serve(&s2, &ctx, &sd))
            .map_err(|e| MonitorError::caused("thread", e))?;
        if !addr.ip().is_loopback() && cfg.token.as_ref().is_none_or(|t| t.expose().is_empty()) {
            // Config validation refuses this unless allow_anonymous says so.
            log::warn!(
                "monitor: panel, face crops and frames on http://{addr}/ with no token (monitor.allow_anonymous = true): \
                 anyone who can reach this address sees every face"
            );
        } else {
            log::info!(
                "monitor: panel and stats on http://{addr}/{}",
                if ctx_has_token(cfg) { " (token required)" } else { "" }
            );
        }
        Ok(Monitor { addr, handle: Some(handle), server, shutdown })
    }

    /// Stops serving (as dropping it does).
    pub fn stop(self) {}
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn ctx_has_token(cfg: &MonitorConfig) -> bool {
    cfg.token.as_ref().is_some_and(|t| !t.expose().is_empty())
}

struct Ctx {
    stats: Arc<Stats>,
    feeds: Arc<super::Feeds>,
    history: Mutex<History>,
    token: Option<String>,
    preview_interval: Duration,
    preview_width: u32,
    viewers: AtomicUsize,
    stop: Arc<AtomicBool>,
}

fn serve(server: &Server, ctx: &Arc<Ctx>, shutdown: &AtomicBool) {
    let mut last_sample = Instant::now() - Duration::from_secs(2);
    while !shutdown.load(Ordering::SeqCst) {
        if last_sample.elapsed() >= Duration::from_secs(1) {
            crate::sync::lock(&ctx.history).sample(&ctx.stats);
            last_sample = Instant::now();
        }
        match server.recv_timeout(Duration::from_millis(250)) {
            Ok(Some(req)) => handle(req, ctx),
            Ok(None) => {}
            Err(_) => return, // unblocked: shutting down
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn authorized(req: &Request, token: &Option<String>) -> bool {
    let Some(t) = token else { return true };
    let bearer = format!("Bearer {t}");
    if req.headers().iter().any(|h| h.field.equiv("Authorization") && h.value.as_str() == bearer) {
        return true;
    }
    req.url().split_once('?').is_some_and(|(_, q)| q.split('&').any(|kv| kv == format!("token={t}")))
}

fn handle(req: Request, ctx: &Arc<Ctx>) {
    let allowed = authorized(&req, &ctx.token);
    if !allowed && req.url().split('?').next() == Some("/healthz") {
        // Orchestrators probe without the token: the status and nothing
        // else (no camera names, URLs or reasons).
        let status = super::health(&ctx.stats).status;
        let _ = req.respond(
            Response::from_string(json!({ "status": status }).to_string())
                .with_status_code(if status == "failing" { 503 } else { 200 })
                .with_header(header("Content-Type", "application/json")),
        );
        return;
    }
    if !allowed {
        let _ = req.respond(
            Response::from_string("unauthorized\n")
                .with_status_code(401)
                .with_header(header("WWW-Authenticate", "Bearer")),
        );
        return;
    }
    let path = req.url().split('?').next().unwrap_or("/").to_string();
    match path.as_str() {
        "/" | "/index.html" => {
            let _ = req
                .respond(Response::from_string(PANEL).with_header(header("Content-Type", "text/html; charset=utf-8")));
        }
        "/api/stats" => {
            let body = stats_json(ctx).to_string();
            let _ = req.respond(Response::from_string(body).with_header(header("Content-Type", "application/json")));
        }
        "/metrics" => {
            let body = super::prometheus::render(&ctx.stats, &ctx.feeds);
            let _ = req
                .respond(Response::from_string(body).with_header(header("Content-Type", "text/plain; version=0.0.4")));
        }
        "/healthz" => {
            let h = super::health(&ctx.stats);
            let body = json!({
                "status": h.status,
                "reasons": h.reasons,
                "cameras_failed": h.cameras_failed,
                "cameras_degraded": h.cameras_degraded,
                "cameras_overloaded": h.cameras_overloaded,
            });
            let _ = req.respond(
                Response::from_string(body.to_string())
                    .with_status_code(if h.status == "failing" { 503 } else { 200 })
                    .with_header(header("Content-Type", "application/json")),
            );
        }
        "/api/events" => event_list(req, ctx),
        p if p.starts_with("/api/events/") => {
            let rest = p["/api/events/".len()..].to_string();
            event_item(req, ctx, &rest)
        }
        p if p.starts_with("/api/preview/") && p.ends_with(".mjpg") => {
            // Camera names may hold spaces or quotes: the path carries them
            // percent-encoded (as `/api/stats` gives the URL).
            let name = percent_decode(&p["/api/preview/".len()..p.len() - ".mjpg".len()]);
            match ctx.stats.camera_names.iter().position(|n| *n == name) {
                Some(cam) if ctx.viewers.load(Ordering::Relaxed) < MAX_VIEWERS => {
                    let ctx = ctx.clone();
                    // `?motion=1`: tint what the motion gate saw move.
                    let query = req.url().split_once('?').map_or("", |(_, q)| q);
                    let motion = query.split('&').any(|kv| kv == "motion=1");
                    let _ =
                        std::thread::Builder::new().name("preview".into()).spawn(move || mjpeg(req, &ctx, cam, motion));
                }
                Some(_) => {
                    let _ = req.respond(Response::from_string("too many preview viewers\n").with_status_code(503));
                }
                None => {
                    let _ = req.respond(Response::from_string("no such camera\n").with_status_code(404));
                }
            }
        }
        _ => {
            let _ = req.respond(Response::from_string("not found\n").with_status_code(404));
        }
    }
}

/// `/api/events?camera=&since=&limit=`: the gallery's newest events.
fn event_list(req: Request, ctx: &Arc<Ctx>) {
    let query = req.url().split_once('?').map_or("", |(_, q)| q);
    let (mut camera, mut since, mut limit) = (None, 0u64, 50usize);
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        match k {
            "camera" => camera = Some(percent_decode(v)),
            "since" => since = v.parse().unwrap_or(0),
            "limit" => limit = v.parse::<usize>().unwrap_or(50).min(MAX_EVENTS),
            _ => {}
        }
    }
    let body = ctx.feeds.gallery.list(&ctx.stats.camera_names, camera.as_deref(), since, limit).to_string();
    let _ = req.respond(Response::from_string(body).with_header(header("Content-Type", "application/json")));
}

/// `/api/events/<serial>[/face.jpg|/frame.jpg]`: one event, or its pictures.
fn event_item(req: Request, ctx: &Arc<Ctx>, rest: &str) {
    let (serial, file) = rest.split_once('/').unwrap_or((rest, ""));
    let serial: u64 = serial.parse().unwrap_or(0);
    let g = &ctx.feeds.gallery;
    match file {
        "" => match g.detail(serial) {
            Some(v) => {
                let _ = req.respond(
                    Response::from_string(v.to_string()).with_header(header("Content-Type", "application/json")),
                );
            }
            None => {
                let _ = req.respond(Response::from_string("no such event (or no longer kept)\n").with_status_code(404));
            }
        },
        "face.jpg" | "frame.jpg" => {
            let mut jpeg = Vec::new();
            if g.jpeg(serial, file == "frame.jpg", &mut jpeg) {
                let _ = req.respond(
                    Response::from_data(jpeg)
                        .with_header(header("Content-Type", "image/jpeg"))
                        .with_header(header("Cache-Control", "max-age=3600")),
                );
            } else {
                let _ = req.respond(Response::from_string("no such picture\n").with_status_code(404));
            }
        }
        _ => {
            let _ = req.respond(Response::from_string("not found\n").with_status_code(404));
        }
    }
}

fn hist(h: &crate::metrics::Histogram) -> serde_json::Value {
    json!({
        "count": h.count(),
        "last_ms": h.last_us() as f64 / 1000.0,
        "avg_ms": h.mean_us() / 1000.0,
        "p50_ms": h.quantile_us(0.5) as f64 / 1000.0,
        "p95_ms": h.quantile_us(0.95) as f64 / 1000.0,
        "p99_ms": h.quantile_us(0.99) as f64 / 1000.0,
    })
}

pub(crate) fn stats_json_of(stats: &Stats, feeds: &super::Feeds, history: &History) -> serde_json::Value {
    let latest = history.latest();
    let st = &stats.stages;
    let now_s = stats.started.elapsed().as_secs();
    let cameras: Vec<serde_json::Value> = stats
        .camera_names
        .iter()
        .zip(&stats.cameras)
        .enumerate()
        .map(|(i, (name, c))| camera_json(i, name, c, history, now_s))
        .collect();
    let batches = get(&st.batches);
    let queues: serde_json::Map<String, serde_json::Value> =
        crate::sync::lock(&stats.rings).iter().map(|(n, r)| (n.clone(), json!(r.len()))).collect();
    let senders: Vec<serde_json::Value> = crate::sync::lock(&feeds.spools)
        .iter()
        .map(|(n, s)| {
            let c = &s.counters;
            json!({"sink": n, "pending": s.pending(), "bytes": s.bytes(), "delivered": get(&c.delivered),
                   "retries": get(&c.retries), "dead_letter": get(&c.dead), "corrupt": get(&c.corrupt),
                   "dropped_spool_full": get(&c.dropped_full), "dead_letters_pruned": get(&c.dead_pruned)})
        })
        .collect();
    let proc_now = super::process::sample();
    json!({
        "board": crate::board::NAME,
        "uptime_s": stats.started.elapsed().as_secs_f64(),
        "active_streams": stats.cameras.iter().filter(|c| c.state() == crate::metrics::CameraState::Streaming).count(),
        "cameras": cameras,
        "inference": {
            "last_ms": st.preprocess_infer.last_us() as f64 / 1000.0,
            "avg_ms": st.preprocess_infer.mean_us() / 1000.0,
            "per_s": latest.map(|p| p.inferences_per_s).unwrap_or(0.0),
            "batch_last": get(&st.last_batch),
            "batch_avg": if batches > 0 { get(&st.batched_frames) as f64 / batches as f64 } else { 0.0 },
            "history_ms": history.points.iter().map(|p| p.infer_ms).collect::<Vec<_>>(),
        },
        "stages": {"decode": hist(&st.decode), "detect": hist(&st.preprocess_infer), "model": hist(&st.inference),
                   "track": hist(&st.track), "landmarks": hist(&st.landmarks), "sink": hist(&st.sink)},
        "landmarks": {
            "enabled": st.landmark.enabled.load(std::sync::atomic::Ordering::Relaxed),
            "batches": get(&st.landmark.batches),
            "faces": get(&st.landmark.faces),
            "batch_avg": get(&st.landmark.faces) as f64 / get(&st.landmark.batches).max(1) as f64,
            "queued": get(&st.landmark.queued),
            "queue_capacity": get(&st.landmark.queue_capacity),
            "fallback": get(&st.landmark.fallback),
            "late": get(&st.landmark.late),
            "not_face": get(&st.landmark.not_face),
        },
        "frame_time_ms": hist(&st.decode)["avg_ms"],
        "queues": queues,
        "stalls": stats.stalls.reasons(),
        "overload": {
            "cameras": stats.cameras.iter().filter(|c| c.load.overloaded()).count(),
            "episodes": get(&stats.overload.episodes),
            "cameras_carried": get(&stats.overload.cameras_carried_milli) as f64 / 1000.0,
        },
        "keep": {"in_use": get(&stats.keep_in_use), "capacity": get(&stats.keep_capacity)},
        "senders": senders,
        "outbox": {"bytes": get(&stats.outbox.bytes), "files": get(&stats.outbox.files),
                   "events": get(&stats.outbox.events), "pruned_events": get(&stats.outbox.pruned_events),
                   "pruned_files": get(&stats.outbox.pruned_files), "pruned_bytes": get(&stats.outbox.pruned_bytes)},
        "totals": {
            "frames": stats.cameras.iter().map(|c| get(&c.decoded)).sum::<u64>(),
            "faces": stats.cameras.iter().map(|c| get(&c.faces)).sum::<u64>(),
            "events": get(&st.events_written),
            "tracks_rejected": get(&st.rejected),
        },
        "process": {
            "cpu_percent": latest.map(|p| p.cpu_percent).unwrap_or(0.0),
            "cpu_percent_of_one_core": latest.map(|p| p.cpu_percent * super::process::cores() as f64).unwrap_or(0.0),
            "cores": super::process::cores(),
            "cpu_history": history.points.iter().map(|p| p.cpu_percent).collect::<Vec<_>>(),
            "rss_mb": proc_now.rss_bytes as f64 / (1024.0 * 1024.0),
            "rss_history": history.points.iter().map(|p| p.rss_mb).collect::<Vec<_>>(),
            "open_fds": proc_now.open_fds,
            "threads": proc_now.threads,
        },
        "gpu": serde_json::Value::Null,
    })
}

/// One camera's figures in `/api/stats`.
fn camera_json(
    i: usize,
    name: &str,
    c: &crate::metrics::CameraStats,
    history: &History,
    now_s: u64,
) -> serde_json::Value {
    let latest = history.latest();
    let decoded = get(&c.decoded);
    let skipped = get(&c.skipped_frames);
    json!({
        "name": name,
        "state": c.shown_state(),
        "state_reason": c.reason(),
        "load": {
            "overloaded": c.load.overloaded(),
            "detect_fps": c.load.detect_fps(),
            "wanted_detect_fps": c.load.wanted_fps(),
            "lost_share": c.load.lost_share(),
            "window_s": crate::detect::overload::WINDOW_S,
        },
        "reconnects": get(&c.reconnects),
        "stalls": get(&c.stalls),
        "fps": latest.and_then(|p| p.fps.get(i).copied()).unwrap_or(0.0),
        "detect_fps": latest.and_then(|p| p.camera_detect_fps.get(i).copied()).unwrap_or(0.0),
        "events_per_min": latest.and_then(|p| p.events_per_min.get(i).copied()).unwrap_or(0.0),
        "fps_history": history.points.iter().map(|p| p.fps.get(i).copied().unwrap_or(0.0)).collect::<Vec<_>>(),
        "frames_decoded": decoded,
        "frames_detected": get(&c.detected_frames),
        "frames_skipped": skipped,
        "frames_motion_gated": get(&c.motion_gated),
        "faces_out_of_size": get(&c.faces_out_of_size),
        "skip_rate": if decoded > 0 { skipped as f64 / decoded as f64 } else { 0.0 },
        "decode_errors": get(&c.decode_errors),
        "packets_lost": get(&c.packets_lost),
        "keep_refused": get(&c.keep_refused),
        "tracks_stitched": get(&c.tracks_stitched),
        "face_posts": get(&c.face_posts),
        "improved_posts": get(&c.improved_posts),
        "first_post_latency": hist(&c.first_post_latency),
        "faces": get(&c.faces),
        "events": get(&c.events),
        "dropped": {
            "pool_empty": get(&c.dropped_pool_empty),
            "ring_full": get(&c.dropped_ring_full),
            "superseded": get(&c.dropped_superseded),
            "stale": get(&c.dropped_stale),
        },
        "capture_to_detect": hist(&c.capture_to_detect),
        "attention": {
            "faces_with_pose": get(&c.posed_faces),
            "attentive_faces": get(&c.attentive_faces),
            "attentive_share": if get(&c.posed_faces) > 0 { get(&c.attentive_faces) as f64 / get(&c.posed_faces) as f64 } else { 0.0 },
        },
        "zones": {
            "enters": get(&c.zone_enters),
            "exits": get(&c.zone_exits),
            "dwell_s_total": get(&c.dwell_ms_total) as f64 / 1000.0,
            "dwell_s_avg": if get(&c.zone_exits) > 0 { get(&c.dwell_ms_total) as f64 / 1000.0 / get(&c.zone_exits) as f64 } else { 0.0 },
            "faces_filtered": get(&c.zone_filtered),
        },
        "faces_last_hour": c.face_hist.json(now_s),
        "preview": format!("/api/preview/{}.mjpg", percent_encode(name)),
    })
}

fn stats_json(ctx: &Ctx) -> serde_json::Value {
    let h = crate::sync::lock(&ctx.history);
    stats_json_of(&ctx.stats, &ctx.feeds, &h)
}

/// Streams one camera's preview as multipart JPEG until the viewer leaves;
/// with `motion`, the motion gate's changed cells are tinted.
fn mjpeg(req: Request, ctx: &Ctx, cam: usize, motion: bool) {
    let mut enc = match crate::jpeg::JpegEncoder::new() {
        Ok(e) => e,
        Err(e) => {
            log::error!("preview of camera {cam}: {e}");
            let _ = req.respond(Response::from_string("no JPEG encoder").with_status_code(500));
            return;
        }
    };
    let pv = &ctx.feeds.previews[cam];
    ctx.viewers.fetch_add(1, Ordering::Relaxed);
    pv.watchers.fetch_add(1, Ordering::Relaxed);
    let mut w = req.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    let mut ok = w.write_all(head.as_bytes()).and_then(|_| w.flush()).is_ok();
    let (mut rgb, mut jpeg) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while ok && !(ctx.stop.load(Ordering::Relaxed) && started.elapsed() > Duration::from_secs(1)) {
        let Some(frame) = pv.take() else {
            std::thread::sleep(ctx.preview_interval.min(Duration::from_millis(50)));
            continue;
        };
        let mask = if motion { pv.motion.load() } else { None };
        let (pw, ph) = preview::render(&frame, ctx.preview_width, mask.as_ref(), pv.region(), &mut rgb);
        drop(frame); // give the pool slot back before encoding
        if let Err(e) = enc.encode_rgb(&rgb, pw, ph, 75, &mut jpeg) {
            log::warn!("preview of camera {cam}: {e}");
            continue;
        }
        let part = format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
        ok = w
            .write_all(part.as_bytes())
            .and_then(|_| w.write_all(&jpeg))
            .and_then(|_| w.write_all(b"\r\n"))
            .and_then(|_| w.flush())
            .is_ok();
    }
    if pv.watchers.fetch_sub(1, Ordering::Relaxed) == 1 {
        pv.clear();
    }
    ctx.viewers.fetch_sub(1, Ordering::Relaxed);
}
