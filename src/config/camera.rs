//! A camera's section (`[[cameras]]`): where its frames come from
//! (`url` parsed into a [`SourceKind`]), how it is read (real time, frame
//! skipping, motion gate, detection region and tiles, face sizes), how its
//! events are posted, and its zones. Secrets in URLs are redacted here for
//! logs and stats.

use serde::Deserialize;
use std::path::PathBuf;

use super::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub name: String,
    /// `file:<path>` (or a bare path) to an H.264 Annex B or MP4 file.
    pub url: String,
    /// Files: pace frames at their frame rate (true) or read as fast as the
    /// pipeline takes them, losing nothing (false).
    #[serde(default)]
    pub realtime: bool,
    /// Frame rate assumed for files without timing (Annex B).
    #[serde(default = "default_fps")]
    pub fps: f32,
    /// Run detection on one frame, then skip this many (tracker predicts).
    #[serde(default)]
    pub detection_skip_frames: u32,
    /// Files: start over at the end (demos, soak tests).
    #[serde(default, rename = "loop")]
    pub loop_file: bool,
    /// Live streams: frames older than this when detection reaches them are dropped.
    #[serde(default = "default_max_age")]
    pub max_frame_age_ms: u64,
    /// FindFace camera id (required when `[findface]` is configured).
    #[serde(default)]
    pub findface_camera: Option<u64>,
    /// Polygon zones in frame pixels.
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
    /// Which point of a face box decides zone membership.
    #[serde(default)]
    pub zone_anchor: ZoneAnchor,
    /// Entering needs the anchor this far inside, leaving this far outside.
    #[serde(default = "default_hysteresis")]
    pub zone_hysteresis_px: f32,
    /// RTSP user name (or `user:password@` in the URL).
    #[serde(default)]
    pub username: Option<String>,
    /// RTSP password; never logged (URLs are redacted everywhere).
    #[serde(default)]
    pub password: Option<Secret>,
    /// RTSP transport: `tcp` (interleaved, the default) or `udp`.
    #[serde(default)]
    pub transport: RtspTransport,
    /// Live cameras: first reconnect delay; doubles up to `reconnect_max_ms`,
    /// with jitter.
    #[serde(default = "default_reconnect_initial")]
    pub reconnect_initial_ms: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// Live cameras: no frame for this long means stalled: reconnect.
    #[serde(default = "default_stall")]
    pub stall_timeout_ms: u64,
    /// Files: the wall-clock time of the stream's start, for event
    /// timestamps (stream time is added to it): `now` (default: when the run
    /// starts), `mtime` (the file's modification time) or an RFC 3339 time
    /// such as `2026-11-30T08:15:00Z`. Live cameras stamp arrival times.
    #[serde(default = "default_start_time")]
    pub start_time: String,
    /// `overall` (default): one best face per track, when it ends.
    /// `realtime`: a first face as soon as one is good enough, then better
    /// ones at most every `realtime_interval_ms`, and the final best.
    #[serde(default)]
    pub mode: EventMode,
    #[serde(default = "default_rt_interval")]
    pub realtime_interval_ms: u64,
    /// The first post waits for a face this good (quality 0..1)...
    #[serde(default = "default_rt_min_quality")]
    pub realtime_min_quality: f32,
    /// ...or until the track is this old, then posts its best so far.
    #[serde(default = "default_rt_max_wait")]
    pub realtime_max_wait_ms: u64,
    /// A later post only when the quality rose by at least this much.
    #[serde(default = "default_rt_min_improvement")]
    pub realtime_min_improvement: f32,
    /// `motion` (default) runs the detector on a frame due
    /// (`detection_skip_frames`) only where something moves or a face was
    /// seen in the last `motion_hold_frames` detected frames: a camera
    /// watching an empty scene costs decoding only. `always` runs it on
    /// every frame due.
    #[serde(default)]
    pub detection: DetectionMode,
    /// Grey levels a sampled point must change by to count as motion.
    #[serde(default = "default_motion_threshold")]
    pub motion_threshold: u8,
    /// Share of sampled points that must change for a frame to move.
    #[serde(default = "default_motion_min_share")]
    pub motion_min_share: f32,
    /// Detected frames the gate stays open after the last face.
    #[serde(default = "default_motion_hold")]
    pub motion_hold_frames: u32,
    /// The part of the frame the detector sees, `[x, y, width, height]` in
    /// pixels or shares (`["25%", "40%", "50%", "60%"]`): letterboxed at the
    /// detector's input on its own, so small faces in a big frame stay big
    /// enough to find. Tracks, events and zones stay in frame coordinates.
    #[serde(default)]
    pub detect_roi: Option<crate::config::region::RegionSpec>,
    /// Cut the frame (or region) into tiles, each detected at the
    /// detector's input size: `"off"`, `"auto"` (from `min_face_px`) or
    /// `[cols, rows]`. For small faces over a whole wide frame.
    #[serde(default)]
    pub detect_tiles: crate::config::region::TileSpec,
    /// Faces narrower than this many frame pixels are dropped before
    /// tracking (0: none); `max_face_px` likewise for wider ones.
    #[serde(default)]
    pub min_face_px: f32,
    #[serde(default)]
    pub max_face_px: f32,
    /// Decode with the board profile's hardware decoder where it names one
    /// (x86-cuda: NVDEC; default true); false: libavcodec's software
    /// decoder on the host's cores.
    #[serde(default = "default_true")]
    pub hardware_decode: bool,
}

/// When a camera's face events leave (see `event`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EventMode {
    #[default]
    Overall,
    Realtime,
}

fn default_start_time() -> String {
    "now".into()
}

/// Milliseconds since the Unix epoch of an RFC 3339 time
/// (`YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)`).
pub(crate) fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        let frac = s.get(start..i)?;
        ms = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, mm) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

fn default_rt_interval() -> u64 {
    1000
}
fn default_rt_min_quality() -> f32 {
    0.7
}
fn default_rt_max_wait() -> u64 {
    1000
}
fn default_rt_min_improvement() -> f32 {
    0.03
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    #[default]
    Tcp,
    Udp,
}

fn default_reconnect_initial() -> u64 {
    500
}
fn default_reconnect_max() -> u64 {
    30_000
}
fn default_stall() -> u64 {
    10_000
}

fn default_hysteresis() -> f32 {
    8.0
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ZoneAnchor {
    /// Bottom centre of the box.
    #[default]
    Foot,
    Center,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    /// Only faces inside an include zone are sent.
    Include,
    /// Faces inside are never sent.
    Exclude,
    /// Enter/exit events with dwell time per track.
    Presence,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    pub kind: ZoneKind,
    /// Polygon vertices `[x, y]` in frame pixels, at least 3.
    pub points: Vec<[f32; 2]>,
}

fn default_motion_threshold() -> u8 {
    12
}
fn default_motion_min_share() -> f32 {
    0.002
}
fn default_motion_hold() -> u32 {
    50
}

/// `detection` per camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectionMode {
    Always,
    #[default]
    Motion,
}

fn default_true() -> bool {
    true
}

fn default_fps() -> f32 {
    25.0
}
fn default_max_age() -> u64 {
    500
}

/// Where a camera's frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    File(PathBuf),
    /// `url` carries no credentials: they travel apart, so no error or log
    /// line built from the URL can leak them.
    Rtsp {
        url: String,
        username: Option<String>,
        password: Option<Secret>,
    },
    /// A USB camera: `v4l2:/dev/video0?width=1280&height=720&format=mjpeg`.
    V4l2 {
        device: String,
        width: u32,
        height: u32,
        format: V4l2Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V4l2Format {
    Mjpeg,
    Yuyv,
}

crate::error::context_error!(
    /// A camera `url` that names no source faceflow can open (its
    /// credentials never shown).
    SourceError,
    ""
);

impl CameraConfig {
    pub fn source(&self) -> Result<SourceKind, SourceError> {
        let u = self.url.trim();
        if let Some(p) = u.strip_prefix("file:") {
            return Ok(SourceKind::File(PathBuf::from(p)));
        }
        if u.starts_with("rtsp://") || u.starts_with("rtsps://") {
            return self.rtsp_source(u);
        }
        if let Some(rest) = u.strip_prefix("v4l2:") {
            return v4l2_source(rest);
        }
        if u.contains("://") {
            let scheme = u.split("://").next().unwrap_or("");
            return Err(SourceError::new(format!(
                "scheme `{scheme}` is not supported (supported: rtsp://, rtsps://, v4l2:, file:)"
            )));
        }
        Ok(SourceKind::File(PathBuf::from(u)))
    }
}

impl CameraConfig {
    fn rtsp_source(&self, u: &str) -> Result<SourceKind, SourceError> {
        let mut parsed =
            url::Url::parse(u).map_err(|e| SourceError::new(format!("not a valid URL ({e}): {}", redact_url(u))))?;
        if parsed.host_str().is_none_or(|h| h.is_empty()) {
            return Err(SourceError::new(format!("no host in {}", redact_url(u))));
        }
        let decode = |s: &str| percent_decode(s);
        let (mut username, mut password) = (None, None);
        if !parsed.username().is_empty() {
            username = Some(decode(parsed.username()));
            password = parsed.password().map(|p| Secret::new(decode(p)));
        }
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        if self.username.is_some() {
            username = self.username.clone();
        }
        if self.password.is_some() {
            password = self.password.clone();
        }
        if password.is_some() && username.is_none() {
            return Err(SourceError::new("a password is set but no username"));
        }
        Ok(SourceKind::Rtsp { url: parsed.to_string(), username, password })
    }

    /// The camera's URL with any credentials replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

pub(super) fn v4l2_source(rest: &str) -> Result<SourceKind, SourceError> {
    let rest = rest.trim_start_matches("//");
    let (device, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !device.starts_with("/dev/") {
        return Err(SourceError::new(format!("V4L2 device must be a /dev path, got {device:?}")));
    }
    let (mut width, mut height, mut format) = (1280u32, 720u32, V4l2Format::Mjpeg);
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let num = || v.parse::<u32>().map_err(|_| SourceError::new(format!("V4L2 `{k}` must be a number, got {v:?}")));
        match k {
            "width" => width = num()?,
            "height" => height = num()?,
            "format" => {
                format = match v {
                    "mjpeg" => V4l2Format::Mjpeg,
                    "yuyv" => V4l2Format::Yuyv,
                    _ => return Err(SourceError::new(format!("V4L2 format must be mjpeg or yuyv, got {v:?}"))),
                }
            }
            _ => return Err(SourceError::new(format!("unknown V4L2 option `{k}` (width, height, format)"))),
        }
    }
    if width == 0 || height == 0 || width > crate::board::MAX_FRAME_WIDTH || height > crate::board::MAX_FRAME_HEIGHT {
        return Err(SourceError::new(format!(
            "V4L2 size {width}x{height} outside 1x1..{}x{} (board `{}`)",
            crate::board::MAX_FRAME_WIDTH,
            crate::board::MAX_FRAME_HEIGHT,
            crate::board::NAME
        )));
    }
    Ok(SourceKind::V4l2 { device: device.to_string(), width, height, format })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces `user:password@` in a URL with `***@`, for logs and stats.
pub(crate) fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            return format!("{}://***@{}", &url[..scheme_end], &rest[at + 1..]);
        }
    }
    url.to_string()
}
