//! Wires the pipeline together and runs it:
//!
//! ```text
//! capture[cam] --ring--> detect (batched) --ring--> track --ring--> sink
//!   (decode into the frame pool)   (ByteTrack + best face)  (JPEG, outbox)
//!                                          ^   |
//!                                  results |   v candidate faces
//!                                    landmarks (batched Face Mesh + Iris)
//! ```
//!
//! Every ring has a fixed capacity from the board profile; frames travel as
//! pool references. A camera that cannot be opened or fails is logged and
//! the others go on.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::board;
use crate::clock::{Clocks, RealClocks};
use crate::config::{Config, DetectorKind, SourceKind};
use crate::detect::blazeface::BlazeFace;
use crate::detect::centerface::CenterFace;
use crate::detect::model::DetectorParams;
use crate::detect::region::FaceSize;
use crate::detect::worker::{CameraInput, DetectWorker};
use crate::detect::{DetectError, Detector};
use crate::face::event::{BestFaceSelector, LandmarkPolicy, RealtimePolicy};
use crate::face::keep::KeepStore;
use crate::face::zones::{CameraZones, Zone};
use crate::ingest::capture::Capture;
use crate::metrics::Stats;
use crate::monitor::Feeds;
use crate::pool::FramePool;
use crate::private_files::Access;
use crate::ring;
use crate::sink::findface::FindFaceSink;
use crate::sink::gallery::Gallery;
use crate::sink::mqtt::MqttSink;
use crate::sink::redis_stream::RedisSink;
use crate::sink::retention::OutboxRetention;
use crate::sink::sender::{default_workers, RetryPolicy, SenderPool};
use crate::sink::spool::Spool;
use crate::sink::webhook::WebhookSink;
use crate::sink::{outbox::OutboxSink, EventRecord, RecentEvents, Sink, SinkError, SinkWorker};
use crate::track::worker::TrackWorker;
use crate::track::ByteTracker;

#[derive(Debug)]
pub enum PipelineError {
    Detector(DetectError),
    Landmarks(DetectError),
    Sink(SinkError),
    NoCameras(Vec<String>),
    Thread(String),
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipelineError::Detector(e) => write!(f, "detector: {e}"),
            PipelineError::Landmarks(e) => write!(f, "landmarks: {e}"),
            PipelineError::Sink(e) => write!(f, "sink: {e}"),
            PipelineError::NoCameras(why) => {
                write!(f, "no camera could be started: {}", why.join("; "))
            }
            PipelineError::Thread(e) => write!(f, "thread: {e}"),
        }
    }
}

impl std::error::Error for PipelineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PipelineError::Detector(e) | PipelineError::Landmarks(e) => Some(e),
            PipelineError::Sink(e) => Some(e),
            PipelineError::NoCameras(_) | PipelineError::Thread(_) => None,
        }
    }
}

pub struct RunReport {
    /// The newest events of the run (at most `RecentEvents::RUN_CAPACITY`).
    pub events: Vec<EventRecord>,
    /// Events made in all, including those no longer in `events`.
    pub events_total: u64,
    pub stats: Arc<Stats>,
    /// The panel's feeds: previews, recent faces, the remote sinks' spools.
    pub feeds: Arc<Feeds>,
    pub camera_names: Vec<String>,
    pub camera_errors: Vec<String>,
    pub wall: Duration,
    /// Events still in a spool when the run ended (sent on the next start).
    pub undelivered: usize,
    /// The monitor, still serving the run's figures and faces; it stops
    /// when the report is dropped (the demo keeps it up for a while).
    pub monitor: Option<crate::monitor::http::Monitor>,
}

/// A remote sink and its durable spool.
pub(crate) type RemoteSink = (Arc<dyn Sink>, Arc<Spool>);

/// The remote sinks the config asks for, each with its durable spool.
pub(crate) fn remote_sinks(cfg: &Config) -> Result<Vec<RemoteSink>, PipelineError> {
    let mut out: Vec<RemoteSink> = Vec::new();
    let cap = cfg.sender.spool_max_mb * 1024 * 1024;
    if cfg.has_remote_sink() {
        // The spools hold faces: their parent is owner-only too (narrowed
        // if an older version made it wider).
        Access::PRIVATE.create_dir_all(&cfg.sender.spool_dir).map_err(|e| {
            PipelineError::Sink(SinkError::caused(format!("sender.spool_dir {}", cfg.sender.spool_dir.display()), e))
        })?;
    }
    let open = |name: &str| {
        let spool = Spool::open(&cfg.sender.spool_dir.join(name), cap)
            .map(Arc::new)
            .map_err(|e| PipelineError::Sink(SinkError::caused(format!("{name} spool"), e)))?;
        spool.set_dead_letters_max(cfg.sender.dead_letters_max);
        Ok::<_, PipelineError>(spool)
    };
    if let Some(ff) = &cfg.findface {
        let ids = cfg.cameras.iter().filter_map(|c| c.findface_camera.map(|id| (c.name.clone(), id))).collect();
        out.push((Arc::new(FindFaceSink::new(ff, ids).map_err(PipelineError::Sink)?), open("findface")?));
    }
    if let Some(wh) = &cfg.webhook {
        out.push((Arc::new(WebhookSink::new(wh).map_err(PipelineError::Sink)?), open("webhook")?));
    }
    if let Some(m) = &cfg.mqtt {
        let cameras = cfg.cameras.iter().map(|c| c.name.clone()).collect();
        out.push((Arc::new(MqttSink::new(m, cameras).map_err(PipelineError::Sink)?), open("mqtt")?));
    }
    if let Some(r) = &cfg.redis {
        out.push((Arc::new(RedisSink::new(r).map_err(PipelineError::Sink)?), open("redis")?));
    }
    Ok(out)
}

/// With `gallery`, delivery outcomes show in the panel's recent faces.
fn start_senders(
    cfg: &Config,
    remotes: Vec<RemoteSink>,
    stop: &Arc<AtomicBool>,
    gallery: Option<Arc<Gallery>>,
) -> Vec<SenderPool> {
    let workers = if cfg.sender.workers == 0 { default_workers() } else { cfg.sender.workers };
    let retry = RetryPolicy {
        initial: Duration::from_millis(cfg.sender.retry_initial_ms),
        max: Duration::from_millis(cfg.sender.retry_max_ms),
    };
    remotes
        .into_iter()
        .map(|(sink, spool)| SenderPool::start(sink, spool, workers, retry, stop.clone(), gallery.clone()))
        .collect()
}

/// Delivers what the spools hold (left by earlier runs) without running the
/// pipeline; returns the number of events still undelivered after `timeout`.
pub fn drain(cfg: &Config, timeout: Duration) -> Result<usize, PipelineError> {
    let stop = Arc::new(AtomicBool::new(false));
    let pools = start_senders(cfg, remote_sinks(cfg)?, &stop, None);
    Ok(pools.into_iter().map(|p| p.finish(timeout)).sum())
}

/// A live camera (RTSP, V4L2) as a reconnecting source.
fn live_source(
    cam: &crate::config::CameraConfig,
    index: usize,
    opener: Box<dyn crate::ingest::live::StreamOpener>,
    clocks: &Arc<dyn Clocks>,
    stats: &Arc<Stats>,
    stop: &Arc<AtomicBool>,
) -> Box<dyn crate::ingest::PacketSource> {
    let policy = crate::ingest::live::ReconnectPolicy {
        initial: Duration::from_millis(cam.reconnect_initial_ms),
        max: Duration::from_millis(cam.reconnect_max_ms),
        stall: Duration::from_millis(cam.stall_timeout_ms),
    };
    log::info!("camera {}: {} ({:?} transport for RTSP)", cam.name, cam.redacted_url(), cam.transport);
    Box::new(crate::ingest::live::LiveSource::new(
        cam.name.clone(),
        index,
        opener,
        policy,
        clocks.clone(),
        stats.clone(),
        stop.clone(),
    ))
}

#[cfg(feature = "v4l2")]
#[allow(clippy::too_many_arguments)]
fn open_v4l2(
    cam: &crate::config::CameraConfig,
    index: usize,
    device: String,
    width: u32,
    height: u32,
    format: crate::config::V4l2Format,
    clocks: &Arc<dyn Clocks>,
    stats: &Arc<Stats>,
    stop: &Arc<AtomicBool>,
) -> Result<Box<dyn crate::ingest::PacketSource>, crate::ingest::IngestError> {
    let opener = crate::ingest::v4l2::V4l2Opener { device, width, height, format };
    Ok(live_source(cam, index, Box::new(opener), clocks, stats, stop))
}

#[cfg(not(feature = "v4l2"))]
#[allow(clippy::too_many_arguments)]
fn open_v4l2(
    _cam: &crate::config::CameraConfig,
    _index: usize,
    _device: String,
    _width: u32,
    _height: u32,
    _format: crate::config::V4l2Format,
    _clocks: &Arc<dyn Clocks>,
    _stats: &Arc<Stats>,
    _stop: &Arc<AtomicBool>,
) -> Result<Box<dyn crate::ingest::PacketSource>, crate::ingest::IngestError> {
    Err(crate::ingest::IngestError::new(
        "USB (V4L2) cameras need a build with the `v4l2` cargo feature (apt-get install libclang-dev for its bindings)",
    ))
}

/// What `faceflow check-config` checks beyond the text: the files the
/// config names exist (camera videos, the model, the runtime library
/// when set) and the spool directory is writable. One line per problem,
/// naming the key.
pub fn check_files(cfg: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, c) in cfg.cameras.iter().enumerate() {
        if let Ok(SourceKind::File(p)) = c.source() {
            if !p.is_file() {
                problems.push(format!("cameras[{i}].url: video file {} does not exist", p.display()));
            } else if let Some(why) = frame_too_big(&p) {
                problems.push(format!("cameras[{i}].url: {why}"));
            }
        }
    }
    let model = cfg.detector.model_path();
    if !model.is_file() {
        problems.push(format!(
            "detector.model: {} does not exist (scripts/setup.sh fetches the default models)",
            model.display()
        ));
    }
    if !cfg.detector.runtime.as_os_str().is_empty() && !cfg.detector.runtime.is_file() {
        problems.push(format!("detector.runtime: {} does not exist", cfg.detector.runtime.display()));
    }
    let ca_files = [
        ("findface.ca_file", cfg.findface.as_ref().and_then(|f| f.ca_file.as_ref())),
        ("webhook.ca_file", cfg.webhook.as_ref().and_then(|w| w.ca_file.as_ref())),
        ("mqtt.ca_file", cfg.mqtt.as_ref().and_then(|m| m.ca_file.as_ref())),
    ];
    for (key, path) in ca_files {
        if let Some(path) = path {
            if let Err(e) = crate::sink::tls::read_ca_file(path) {
                problems.push(format!("{key}: {e}"));
            }
        }
    }
    if cfg.has_remote_sink() {
        let dir = &cfg.sender.spool_dir;
        let probe = dir.join(".faceflow-check");
        let ok =
            crate::private_files::Access::PRIVATE.create_dir_all(dir).and_then(|_| std::fs::write(&probe, b"")).is_ok();
        let _ = std::fs::remove_file(&probe);
        if !ok {
            problems.push(format!("sender.spool_dir: {} is not a writable directory", dir.display()));
        }
    }
    problems
}

/// Why a recording's frames do not fit this board's frame pool (its first
/// frame is decoded to know), or None when they fit or it cannot be read
/// (the run reports that).
fn frame_too_big(path: &std::path::Path) -> Option<String> {
    let mut size = None;
    crate::ingest::decode_file(path, 1, |p| size = Some((p.width, p.height))).ok()?;
    let (w, h) = size?;
    let b = crate::board::frame_limit_text();
    (w > crate::board::MAX_FRAME_WIDTH || h > crate::board::MAX_FRAME_HEIGHT)
        .then(|| format!("{} has {w}x{h} frames, more than {b}", path.display()))
}

/// A file camera's `start_time` in ms since the epoch (validated with the config).
fn file_start_ms(cam: &crate::config::CameraConfig, clocks: &Arc<dyn Clocks>) -> u64 {
    match cam.start_time.as_str() {
        "mtime" => match cam.source() {
            Ok(SourceKind::File(p)) => std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64)
                .unwrap_or_else(|| clocks.unix_ms()),
            _ => clocks.unix_ms(),
        },
        "now" => clocks.unix_ms(),
        t => crate::config::parse_rfc3339_ms(t).unwrap_or_else(|| clocks.unix_ms()),
    }
}

/// Builds the detector the board and config ask for.
pub fn load_detector(cfg: &Config) -> Result<Box<dyn Detector>, DetectError> {
    load_detector_for(cfg, None)
}

/// As [`load_detector`], warmed up at `frame` size (`DetectorParams::warm_frame`)
/// where the cameras' frame size is known before they start.
pub fn load_detector_for(cfg: &Config, frame: Option<(u32, u32)>) -> Result<Box<dyn Detector>, DetectError> {
    // Before the session: the decoders' CUDA device must come first.
    crate::decode::open_hardware_device();
    let params = DetectorParams {
        input_width: board::DETECTOR_WIDTH,
        input_height: board::DETECTOR_HEIGHT,
        // A tiled frame goes into one inference, all its tiles.
        max_batch: cfg.cameras.iter().map(|c| c.detect_tiles.max_parts()).fold(cfg.detector.batch(), usize::max),
        min_score: cfg.detector.min_score,
        nms_iou: cfg.detector.nms_iou,
        pad_batches: board::PAD_BATCHES,
        overlap: cfg.detector.overlap(),
        pinned_buffers: cfg.detector.pinned_buffers,
        cuda_conv_search: cfg.detector.cuda_conv_search,
        warm_frame: frame,
    };
    let (runtime, model) = (&cfg.detector.runtime, &cfg.detector.model_path());
    Ok(match cfg.detector.kind {
        DetectorKind::CenterFace => Box::new(CenterFace::load(runtime, model, params)?),
        DetectorKind::BlazeFace => Box::new(BlazeFace::load(runtime, model, params)?),
    })
}

/// Runs the pipeline until every camera's stream ends (or `stop` is set).
pub fn run(cfg: &Config, stop: Arc<AtomicBool>) -> Result<RunReport, PipelineError> {
    let detector = load_detector(cfg).map_err(PipelineError::Detector)?;
    run_with_detector(cfg, detector, Arc::new(RealClocks::default()), stop)
}

pub fn run_with_detector(
    cfg: &Config,
    detector: Box<dyn Detector>,
    clocks: Arc<dyn Clocks>,
    stop: Arc<AtomicBool>,
) -> Result<RunReport, PipelineError> {
    run_observed(cfg, detector, clocks, stop, stats_for(cfg))
}

/// Counters for `cfg`'s cameras, to watch a run from outside while it goes
/// (`run_observed`; benches read them at the edges of a timed window).
pub fn stats_for(cfg: &Config) -> Arc<Stats> {
    Stats::with_names(cfg.cameras.iter().map(|c| c.name.clone()).collect())
}

/// `run_with_detector`, writing its figures into `stats` (from `stats_for`).
pub fn run_observed(
    cfg: &Config,
    detector: Box<dyn Detector>,
    clocks: Arc<dyn Clocks>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) -> Result<RunReport, PipelineError> {
    let started = std::time::Instant::now();
    let n = cfg.cameras.len();
    stats.stalls.set_after(Duration::from_secs_f64(cfg.monitor.stall_report_s));
    for (cs, c) in stats.cameras.iter().zip(&cfg.cameras) {
        cs.face_hist.set_quality_threshold(c.realtime_min_quality);
    }
    let feeds = Feeds::new(n, if cfg.monitor.bind.is_empty() { 0 } else { cfg.monitor.recent_faces });
    let monitor = if cfg.monitor.bind.is_empty() {
        None
    } else {
        match crate::monitor::http::Monitor::start(&cfg.monitor, stats.clone(), feeds.clone(), stop.clone()) {
            Ok(m) => Some(m),
            Err(e) => {
                log::error!("{e}; running without the monitor");
                None
            }
        }
    };
    let pool = FramePool::new(board::FRAME_POOL_SLOTS, board::FRAME_SLOT_BYTES);
    let names: Vec<String> = cfg.cameras.iter().map(|c| c.name.clone()).collect();

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mut retention = None;
    if !cfg.outbox.dir.as_os_str().is_empty() {
        let access = Access::with_group(cfg.outbox.group.as_deref())
            .map_err(|e| PipelineError::Sink(SinkError::caused("outbox.group", e)))?;
        sinks.push(Box::new(OutboxSink::new(&cfg.outbox.dir, access).map_err(PipelineError::Sink)?));
        let policy = crate::sink::retention::Policy::of(&cfg.outbox);
        retention = Some(OutboxRetention::open(&cfg.outbox.dir, policy, stats.outbox.clone()).map_err(|e| {
            PipelineError::Sink(SinkError::caused(
                format!("outbox {}: indexing for retention", cfg.outbox.dir.display()),
                e,
            ))
        })?);
    }

    let remotes = remote_sinks(cfg)?;
    let spools: Vec<(String, Arc<Spool>)> = remotes.iter().map(|(k, s)| (k.name().to_string(), s.clone())).collect();
    for (sink, spool) in remotes.iter() {
        feeds.register_spool(sink.name(), spool.clone());
    }
    let senders = start_senders(cfg, remotes, &stop, Some(feeds.gallery.clone()));

    let decode_threads = crate::decode::Threads::for_cameras_here(cfg.cameras.len());
    let mut inputs = Vec::new();
    let mut captures = Vec::new();
    let mut camera_errors = Vec::new();
    for (i, cam) in cfg.cameras.iter().enumerate() {
        let mut live = false;
        let src = match cam.source() {
            Ok(SourceKind::File(path)) => crate::ingest::open_file(&path),
            Ok(SourceKind::Rtsp { url, username, password }) => {
                live = true;
                let opener = crate::ingest::rtsp::RtspOpener::new(&url, username, password, cam.transport);
                opener.map(|o| live_source(cam, i, Box::new(o), &clocks, &stats, &stop))
            }
            Ok(SourceKind::V4l2 { device, width, height, format }) => {
                live = true;
                open_v4l2(cam, i, device, width, height, format, &clocks, &stats, &stop)
            }
            Err(e) => Err(crate::ingest::IngestError::caused("url", e)),
        };
        let src = src.map(|mut s| {
            if cam.loop_file && !s.set_looping(true) {
                log::warn!("camera {}: this source cannot loop", cam.name);
            }
            s
        });
        let source = match src {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("camera {}: {e}", cam.name);
                log::error!("{msg}{}", if n > 1 { "; the other cameras go on" } else { "" });
                stats.cameras[i].set_state_reason(crate::metrics::CameraState::Failed, &msg);
                camera_errors.push(msg);
                continue;
            }
        };
        let (p, c) = ring::channel(board::CAPTURE_RING);
        stats.register_ring(format!("capture/{}", cam.name), p.stats().clone());
        let realtime = cam.realtime || live;
        let gate = (cam.detection == crate::config::DetectionMode::Motion)
            .then(|| crate::detect::motion::MotionGate::new(cam.motion_threshold, cam.motion_min_share));
        inputs.push(
            CameraInput::new(i as u8, c, cam.detection_skip_frames, realtime, cam.max_frame_age_ms)
                .with_motion(gate, cam.motion_hold_frames)
                .with_parts(
                    cam.detect_roi.clone(),
                    cam.detect_tiles,
                    FaceSize { min: cam.min_face_px, max: cam.max_face_px },
                    cfg.detector.nms_iou,
                ),
        );
        captures.push((
            Capture {
                camera: i as u8,
                name: cam.name.clone(),
                realtime,
                fps: cam.fps,
                pool: pool.clone(),
                out: p,
                clocks: clocks.clone(),
                stats: stats.clone(),
                stop: stop.clone(),
                start_unix_ms: if live { None } else { Some(file_start_ms(cam, &clocks)) },
                decode_threads,
                hardware_decode: cam.hardware_decode,
            },
            source,
        ));
    }
    if captures.is_empty() {
        return Err(PipelineError::NoCameras(camera_errors));
    }

    let (to_track, from_detect) = ring::channel(board::DETECT_RING);
    let (to_sink, from_track) = ring::channel(board::EVENT_RING);
    stats.register_ring("detect->track", to_track.stats().clone());
    stats.register_ring("track->sink", to_sink.stats().clone());
    let detect = DetectWorker {
        detector,
        region_buffers: Vec::new(),
        inputs,
        out: to_track,
        batch_size: cfg.detector.batch(),
        batch_timeout: Duration::from_millis(board::BATCH_TIMEOUT_MS),
        clocks: clocks.clone(),
        stats: stats.clone(),
        previews: feeds.previews.clone(),
        stop: stop.clone(),
    };
    let mut mot = Vec::new();
    for cam in &cfg.cameras {
        let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| cfg.per_camera_path(p, &cam.name));
        let w = crate::track::worker::MotWriter::create(
            path(&cfg.tracks_out).as_deref(),
            path(&cfg.detections_out).as_deref(),
        )
        .map_err(|e| PipelineError::Sink(SinkError::caused(format!("camera {}: MOT output", cam.name), e)))?;
        mot.push(w);
    }
    let (landmark_worker, landmark_client) = match crate::landmarks::worker::from_config(cfg, stats.clone()) {
        Ok(Some((w, c))) => (Some(w), Some(c)),
        Ok(None) => (None, None),
        Err(e) => return Err(PipelineError::Landmarks(e)),
    };
    let landmark_policy = landmark_client.is_some().then_some(LandmarkPolicy {
        candidate_margin: cfg.landmarks.candidate_margin,
        min_presence: cfg.landmarks.min_presence,
        min_interval_ms: cfg.landmarks.min_interval_ms,
    });
    let track = TrackWorker {
        landmarks: landmark_client,
        landmark_wait: Duration::from_millis(cfg.landmarks.wait_ms),
        settle_each_frame: cfg
            .cameras
            .iter()
            .map(|c| matches!(c.source(), Ok(SourceKind::File(_))) && !c.realtime)
            .collect(),
        keep: KeepStore::for_board(n),
        mot,
        input: from_detect,
        out: to_sink,
        trackers: (0..n).map(|_| ByteTracker::new(cfg.tracker.clone(), cfg.detector.min_score)).collect(),
        selectors: (0..n)
            .map(|i| {
                BestFaceSelector::new(i as u8, cfg.quality.clone(), cfg.validation.clone(), &cfg.tracker)
                    .with_realtime(RealtimePolicy::for_camera(&cfg.cameras[i]))
                    .with_landmarks(landmark_policy)
            })
            .collect(),
        zones: cfg
            .cameras
            .iter()
            .enumerate()
            .map(|(i, c)| {
                CameraZones::new(
                    i as u8,
                    c.zones.iter().map(Zone::from_config).collect(),
                    c.zone_anchor,
                    c.zone_hysteresis_px,
                )
            })
            .collect(),
        attention: cfg.attention.clone(),
        stats: stats.clone(),
        previews: feeds.previews.clone(),
        preview_interval: Duration::from_secs_f64(1.0 / cfg.monitor.preview_fps),
    };
    let delivered = Arc::new(Mutex::new(RecentEvents::new(RecentEvents::RUN_CAPACITY)));
    let sink = SinkWorker {
        events: from_track,
        sinks,
        retention,
        spools,
        zone_names: cfg.cameras.iter().map(|c| c.zones.iter().map(|z| z.name.clone()).collect()).collect(),
        camera_names: names.clone(),
        jpeg_quality: cfg.outbox.jpeg_quality,
        stats: stats.clone(),
        gallery: feeds.gallery.clone(),
        stop: stop.clone(),
        delivered: delivered.clone(),
    };

    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name(name).spawn(f).map_err(|e| PipelineError::Thread(e.to_string()))
    };
    let mut cap_handles = Vec::new();
    for (cap, source) in captures {
        let name = cap.name.clone();
        let h = std::thread::Builder::new()
            .name(format!("cap-{name}"))
            .spawn(move || cap.run(source))
            .map_err(|e| PipelineError::Thread(e.to_string()))?;
        cap_handles.push((name, h));
    }
    let hd = spawn("detect".into(), Box::new(move || detect.run()))?;
    let ht = spawn("track".into(), Box::new(move || track.run()))?;
    let hl = match landmark_worker {
        Some(w) => Some(spawn("landmarks".into(), Box::new(move || w.run()))?),
        None => None,
    };
    let spools_after = sink.spools.clone();
    let hs = std::thread::Builder::new()
        .name("sink".into())
        .spawn(move || sink.run())
        .map_err(|e| PipelineError::Thread(e.to_string()))?;
    for (name, h) in cap_handles {
        match h.join() {
            Ok(Ok(frames)) => log::info!("camera {name}: stream ended after {frames} frames"),
            Ok(Err(e)) => {
                log::error!("{e}{}", if n > 1 { "; the other cameras go on" } else { "" });
                camera_errors.push(e.to_string());
            }
            Err(_) => camera_errors.push(format!("camera {name}: capture thread panicked")),
        }
    }
    for (what, h) in [("detect", Some(hd)), ("track", Some(ht)), ("landmarks", hl)] {
        let Some(h) = h else { continue };
        h.join().map_err(|_| PipelineError::Thread(format!("{what} thread panicked")))?;
    }
    let retention = hs.join().map_err(|_| PipelineError::Thread("sink thread panicked".into()))?;
    let drain = Duration::from_secs(cfg.sender.drain_timeout_s);
    let undelivered = senders.into_iter().map(|p| p.finish(drain)).sum();
    if let Some(mut r) = retention {
        // What the senders delivered while draining leaves the outbox now
        // (`keep = "until_delivered"`), not at the next start.
        r.maintain(crate::sink::now_unix_ms(), spools_after.iter().map(|(_, s)| &**s), true);
    }
    let recent = std::mem::replace(&mut *crate::sync::lock(&delivered), RecentEvents::new(1));
    let events_total = recent.total();
    Ok(RunReport {
        events: recent.into_vec(),
        events_total,
        stats,
        feeds,
        camera_names: names,
        camera_errors,
        wall: started.elapsed(),
        undelivered,
        monitor,
    })
}
