//! Config validation: every value checked once at load, each error naming
//! its dotted key (`cameras[2].fps`) and what it must be.

use super::*;

type Invalid = (String, String);

fn unit(key: &str, v: f32) -> Result<(), Invalid> {
    if !(0.0..=1.0).contains(&v) || v.is_nan() {
        return Err((key.to_string(), format!("must be between 0 and 1, got {v}")));
    }
    Ok(())
}

fn nonneg(key: &str, v: f32) -> Result<(), Invalid> {
    if v < 0.0 || !v.is_finite() {
        return Err((key.to_string(), format!("must be a finite number >= 0, got {v}")));
    }
    Ok(())
}

fn check_url(key: &str, url: &str) -> Result<(), Invalid> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err((key.into(), format!("must start with http:// or https://, got {:?}", redact_url(url))));
    }
    Ok(())
}

/// `[mqtt]`: a broker URL, QoS 0..=2, topic parts that are one MQTT topic
/// level each, and room in a message for at least a face.
fn validate_mqtt(m: &super::MqttConfig) -> Result<(), Invalid> {
    super::bus::broker_address(&m.url).map_err(|e| ("mqtt.url".to_string(), e.to_string()))?;
    if m.qos > 2 {
        return Err(("mqtt.qos".into(), format!("must be 0, 1 or 2, got {}", m.qos)));
    }
    for (key, v) in
        [("mqtt.node", &m.node), ("mqtt.topic_prefix", &m.topic_prefix), ("mqtt.discovery_prefix", &m.discovery_prefix)]
    {
        if v.contains(['+', '#', '\0']) || (key != "mqtt.node" && v.is_empty()) {
            return Err((key.into(), format!("must be a topic name without + or # (and not empty), got {v:?}")));
        }
    }
    if m.node.contains('/') {
        return Err(("mqtt.node".into(), format!("must be one topic level (no /), got {:?}", m.node)));
    }
    if m.max_message_bytes < 64 * 1024 {
        return Err((
            "mqtt.max_message_bytes".into(),
            format!("must be at least 65536 (a face crop and its record), got {}", m.max_message_bytes),
        ));
    }
    if m.password.is_some() && m.username.is_none() {
        return Err(("mqtt.password".into(), "is set but mqtt.username is not".into()));
    }
    if m.timeout_ms == 0 {
        return Err(("mqtt.timeout_ms".into(), "must be at least 1".into()));
    }
    Ok(())
}

/// `[redis]`: a `redis://` URL without credentials, a stream name.
fn validate_redis(r: &super::RedisConfig) -> Result<(), Invalid> {
    let u = url::Url::parse(&r.url).map_err(|e| ("redis.url".to_string(), format!("not a URL ({e})")))?;
    if u.scheme() != "redis" || u.host_str().is_none_or(str::is_empty) {
        return Err(("redis.url".into(), format!("must be redis://host[:port][/db], got {:?}", redact_url(&r.url))));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(("redis.url".into(), "must not hold credentials: set redis.username and redis.password".into()));
    }
    if r.stream.is_empty() {
        return Err(("redis.stream".into(), "must not be empty".into()));
    }
    if r.timeout_ms == 0 {
        return Err(("redis.timeout_ms".into(), "must be at least 1".into()));
    }
    Ok(())
}

impl Config {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        self.validate_stages()?;
        self.validate_outputs()?;
        self.validate_cameras()
    }

    /// Detector, tracker, quality and validation thresholds.
    fn validate_stages(&self) -> Result<(), Invalid> {
        unit("detector.min_score", self.detector.min_score)?;
        unit("landmarks.candidate_margin", self.landmarks.candidate_margin)?;
        unit("landmarks.min_presence", self.landmarks.min_presence)?;
        for p in &self.landmarks.execution_providers {
            if !crate::board::KNOWN_PROVIDERS.contains(&p.as_str()) {
                return Err((
                    "landmarks.execution_providers".into(),
                    format!("{p:?} is not an execution provider: {}", crate::board::KNOWN_PROVIDERS.join(", ")),
                ));
            }
        }
        if self.detector.batch_size > crate::limits::MAX_BATCH {
            return Err((
                "detector.batch_size".into(),
                format!("must be at most {}, got {}", crate::limits::MAX_BATCH, self.detector.batch_size),
            ));
        }
        unit("detector.nms_iou", self.detector.nms_iou)?;
        if self.detector.kind == DetectorKind::BlazeFace
            && matches!(self.detector.precision, Precision::Int8 | Precision::Fp16)
        {
            return Err((
                "detector.precision".into(),
                "BlazeFace comes in fp32 only; int8 and fp16 are CenterFace's".into(),
            ));
        }
        if self.detector.kind == DetectorKind::BlazeFace && self.detector.preprocess == Preprocess::Model {
            return Err((
                "detector.preprocess".into(),
                "BlazeFace letterboxes on the CPU only; \"model\" is CenterFace's".into(),
            ));
        }
        unit("tracker.high_score", self.tracker.high_score)?;
        unit("tracker.new_track_score", self.tracker.new_track_score)?;
        unit("tracker.match_iou", self.tracker.match_iou)?;
        unit("tracker.low_match_iou", self.tracker.low_match_iou)?;
        if self.tracker.high_score < self.detector.min_score {
            return Err((
                "tracker.high_score".into(),
                format!("must be >= detector.min_score ({}), got {}", self.detector.min_score, self.tracker.high_score),
            ));
        }
        if self.tracker.max_frames_per_track == 0 {
            return Err(("tracker.max_frames_per_track".into(), "must be at least 1".into()));
        }
        if self.quality.full_size_px <= 0.0 {
            return Err(("quality.full_size_px".into(), "must be > 0".into()));
        }
        if self.quality.ideal_aspect <= 0.0 {
            return Err(("quality.ideal_aspect".into(), "must be > 0".into()));
        }
        nonneg("validation.min_movement_px", self.validation.min_movement_px)?;
        unit("validation.min_confidence", self.validation.min_confidence)?;
        nonneg("validation.min_box_width", self.validation.min_box_width)?;
        unit("validation.min_moving_share", self.validation.min_moving_share)?;
        nonneg("validation.moving_frame_px", self.validation.moving_frame_px)?;
        Ok(())
    }

    /// Outbox, remote sinks, monitor and sender.
    fn validate_outputs(&self) -> Result<(), Invalid> {
        if !(1..=100).contains(&self.outbox.jpeg_quality) {
            return Err(("outbox.jpeg_quality".into(), format!("must be 1..=100, got {}", self.outbox.jpeg_quality)));
        }
        if !(self.outbox.max_age_h >= 0.0 && self.outbox.max_age_h.is_finite()) {
            return Err((
                "outbox.max_age_h".into(),
                format!("must be hours >= 0 (0: no limit), got {}", self.outbox.max_age_h),
            ));
        }
        if self.outbox.keep == super::Keep::UntilDelivered && !self.has_remote_sink() {
            return Err((
                "outbox.keep".into(),
                "\"until_delivered\" needs a remote sink ([findface], [webhook], [mqtt] or [redis]) to deliver to; \
                 without one the outbox would keep nothing"
                    .into(),
            ));
        }
        if let Err(e) = crate::private_files::Access::with_group(self.outbox.group.as_deref()) {
            return Err(("outbox.group".into(), e.to_string()));
        }
        if let Some(ff) = &self.findface {
            check_url("findface.url", &ff.url)?;
            if ff.token.expose().is_empty() {
                return Err(("findface.token".into(), "must not be empty (the camera's events-creation token)".into()));
            }
            if ff.mf_selector != "biggest" && ff.mf_selector != "all" {
                return Err((
                    "findface.mf_selector".into(),
                    format!("must be \"biggest\" or \"all\", got {:?}", ff.mf_selector),
                ));
            }
            nonneg("findface.roi_margin", ff.roi_margin)?;
            if ff.timeout_ms == 0 {
                return Err(("findface.timeout_ms".into(), "must be at least 1".into()));
            }
            for (i, c) in self.cameras.iter().enumerate() {
                if c.findface_camera.is_none() {
                    return Err((
                        format!("cameras[{i}].findface_camera"),
                        "is required when [findface] is configured".into(),
                    ));
                }
            }
        }
        if let Some(wh) = &self.webhook {
            check_url("webhook.url", &wh.url)?;
            if wh.timeout_ms == 0 {
                return Err(("webhook.timeout_ms".into(), "must be at least 1".into()));
            }
        }
        if let Some(m) = &self.mqtt {
            validate_mqtt(m)?;
        }
        if let Some(r) = &self.redis {
            validate_redis(r)?;
        }
        if !self.monitor.bind.is_empty() && self.monitor.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "monitor.bind".into(),
                format!("must be host:port with an IP address, got {:?}", self.monitor.bind),
            ));
        }
        if let Ok(addr) = self.monitor.bind.parse::<std::net::SocketAddr>() {
            let no_token = self.monitor.token.as_ref().is_none_or(|t| t.expose().is_empty());
            if !addr.ip().is_loopback() && no_token && !self.monitor.allow_anonymous {
                return Err((
                    "monitor.token".into(),
                    format!(
                        "is required: monitor.bind = {:?} serves the panel, face crops and frames beyond this \
                         machine; set a token, bind to 127.0.0.1, or set monitor.allow_anonymous = true to \
                         serve them to anyone who can reach it",
                        self.monitor.bind
                    ),
                ));
            }
        }
        if self.monitor.recent_faces > 64 {
            return Err((
                "monitor.recent_faces".into(),
                format!("must be at most 64 (each holds two JPEGs in memory), got {}", self.monitor.recent_faces),
            ));
        }
        if !(self.monitor.stall_report_s > 0.0 && self.monitor.stall_report_s <= 3600.0) {
            return Err((
                "monitor.stall_report_s".into(),
                format!("must be in (0, 3600] seconds, got {}", self.monitor.stall_report_s),
            ));
        }
        if !(self.monitor.preview_fps > 0.0 && self.monitor.preview_fps <= 30.0) {
            return Err((
                "monitor.preview_fps".into(),
                format!("must be in (0, 30], got {}", self.monitor.preview_fps),
            ));
        }
        if self.sender.spool_max_mb == 0 {
            return Err(("sender.spool_max_mb".into(), "must be at least 1".into()));
        }
        if self.sender.retry_initial_ms == 0 || self.sender.retry_max_ms < self.sender.retry_initial_ms {
            return Err(("sender.retry_max_ms".into(), "retry_initial_ms must be >= 1 and <= retry_max_ms".into()));
        }
        Ok(())
    }

    fn validate_cameras(&self) -> Result<(), Invalid> {
        if self.cameras.is_empty() {
            return Err(("cameras".into(), "at least one [[cameras]] entry is needed".into()));
        }
        if self.cameras.len() > board::MAX_CAMERAS {
            return Err((
                "cameras".into(),
                format!(
                    "{} cameras configured, board `{}` supports at most {}",
                    self.cameras.len(),
                    board::NAME,
                    board::MAX_CAMERAS
                ),
            ));
        }
        for (i, c) in self.cameras.iter().enumerate() {
            validate_camera(i, c, &self.cameras[..i])?;
        }
        Ok(())
    }
}

/// One `[[cameras]]` entry; `earlier` are the entries before it.
fn validate_camera(i: usize, c: &CameraConfig, earlier: &[CameraConfig]) -> Result<(), Invalid> {
    let k = |f: &str| format!("cameras[{i}].{f}");
    if c.name.trim().is_empty() || !c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
        return Err((
            k("name"),
            format!("must be non-empty and use only letters, digits, '-', '_', '.', got {:?}", c.name),
        ));
    }
    if earlier.iter().any(|o| o.name == c.name) {
        return Err((k("name"), format!("duplicate camera name {:?}", c.name)));
    }
    c.source().map_err(|m| (k("url"), m.to_string()))?;
    nonneg(&k("min_face_px"), c.min_face_px)?;
    nonneg(&k("max_face_px"), c.max_face_px)?;
    if c.detect_tiles == crate::config::region::TileSpec::Auto && c.min_face_px <= 0.0 {
        return Err((
            k("detect_tiles"),
            "\"auto\" picks tiles from the smallest face wanted: set min_face_px (frame pixels)".into(),
        ));
    }
    if c.max_face_px > 0.0 && c.max_face_px < c.min_face_px {
        return Err((
            k("max_face_px"),
            format!("must be at least min_face_px ({}) or 0, got {}", c.min_face_px, c.max_face_px),
        ));
    }
    if !matches!(c.start_time.as_str(), "now" | "mtime") && parse_rfc3339_ms(&c.start_time).is_none() {
        return Err((
            k("start_time"),
            format!("must be \"now\", \"mtime\" or an RFC 3339 time like 2026-11-30T08:15:00Z, got {:?}", c.start_time),
        ));
    }
    if c.realtime_interval_ms < 40 {
        return Err((k("realtime_interval_ms"), format!("must be at least 40, got {}", c.realtime_interval_ms)));
    }
    if !(0.0..=1.0).contains(&c.realtime_min_quality) {
        return Err((k("realtime_min_quality"), format!("must be in [0, 1], got {}", c.realtime_min_quality)));
    }
    if !(0.0..=1.0).contains(&c.realtime_min_improvement) {
        return Err((k("realtime_min_improvement"), format!("must be in [0, 1], got {}", c.realtime_min_improvement)));
    }
    if !(0.0..=1.0).contains(&c.motion_min_share) || c.motion_min_share.is_nan() {
        return Err((k("motion_min_share"), format!("must be in [0, 1], got {}", c.motion_min_share)));
    }
    for (j, z) in c.zones.iter().enumerate() {
        if z.points.len() < 3 {
            return Err((
                format!("cameras[{i}].zones[{j}].points"),
                format!("a polygon needs at least 3 points, got {}", z.points.len()),
            ));
        }
        if z.points.iter().flatten().any(|v| !v.is_finite()) {
            return Err((format!("cameras[{i}].zones[{j}].points"), "coordinates must be finite numbers".into()));
        }
        if z.name.is_empty() || c.zones[..j].iter().any(|o| o.name == z.name) {
            return Err((
                format!("cameras[{i}].zones[{j}].name"),
                format!("must be non-empty and unique, got {:?}", z.name),
            ));
        }
    }
    if c.zones.len() > crate::limits::MAX_ZONES {
        return Err((format!("cameras[{i}].zones"), format!("at most {} zones per camera", crate::limits::MAX_ZONES)));
    }
    nonneg(&k("zone_hysteresis_px"), c.zone_hysteresis_px)?;
    if !(c.fps > 0.0 && c.fps <= 240.0) {
        return Err((k("fps"), format!("must be in (0, 240], got {}", c.fps)));
    }
    Ok(())
}
