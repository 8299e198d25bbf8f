//! FindFace Multi sink: `POST {base}/events/faces/add/` as an external
//! detector (see shared/findface-api.md). FindFace re-detects the face in
//! the full frame, so faceflow sends the frame of the track's best face and
//! points FindFace at it with `roi` (the face box grown by a margin) and
//! `mf_selector=biggest`.

use std::time::Duration;

use super::http::{self, Multipart};
use super::spool::SpoolRecord;
use super::{Delivery, Sink, SinkError};
use crate::config::{FindFaceConfig, Secret};

/// FindFace extracts no face smaller than this by default.
pub(crate) const MIN_FACE_PX: f32 = 50.0;

pub struct FindFaceSink {
    url: String,
    token: Secret,
    api_token: Option<Secret>,
    mf_selector: String,
    roi_margin: f32,
    /// faceflow camera name -> FindFace camera id.
    cameras: Vec<(String, u64)>,
    agent: ureq::Agent,
    timeout: Duration,
}

impl FindFaceSink {
    /// Errors name the key (`findface.ca_file`).
    pub fn new(cfg: &FindFaceConfig, cameras: Vec<(String, u64)>) -> Result<Self, SinkError> {
        let roots = match &cfg.ca_file {
            Some(p) => Some(super::tls::read_ca_file(p).map_err(|e| SinkError::caused("findface.ca_file", e))?),
            None => None,
        };
        Ok(FindFaceSink {
            url: format!("{}/events/faces/add/", cfg.url.trim_end_matches('/')),
            token: cfg.token.clone(),
            api_token: cfg.api_token.clone().filter(|t| !t.expose().is_empty()),
            mf_selector: cfg.mf_selector.clone(),
            roi_margin: cfg.roi_margin,
            cameras,
            agent: http::agent(Duration::from_millis(cfg.timeout_ms), roots),
            timeout: Duration::from_millis(cfg.timeout_ms),
        })
    }

    /// The multipart form for one event (exposed for tests).
    pub fn form(&self, ev: &SpoolRecord, camera_id: u64) -> (String, Vec<u8>) {
        let r = &ev.record;
        let [x1, y1, x2, y2] = r.bbox;
        let (mw, mh) = ((x2 - x1) * self.roi_margin, (y2 - y1) * self.roi_margin);
        let (w, h) = (r.frame_width as f32, r.frame_height as f32);
        let roi = [
            (x1 - mw).clamp(0.0, w) as u32,
            (y1 - mh).clamp(0.0, h) as u32,
            (x2 + mw).clamp(0.0, w).ceil() as u32,
            (y2 + mh).clamp(0.0, h).ceil() as u32,
        ];
        let mut m = Multipart::new(&r.id);
        m.text("token", self.token.expose())
            .text("camera", &camera_id.to_string())
            .text("mf_selector", &self.mf_selector)
            .text("timestamp", &http::rfc3339_ms(r.best_unix_ms));
        // A list field in a multipart form: one part per value (as Django REST
        // Framework reads them).
        for v in roi {
            m.text("roi", &v.to_string());
        }
        m.file("fullframe", &format!("{}.jpg", r.id), "image/jpeg", &ev.frame_jpeg);
        m.finish()
    }
}

impl Sink for FindFaceSink {
    fn name(&self) -> &str {
        "findface"
    }

    fn base_timeout(&self) -> Duration {
        self.timeout
    }

    fn deliver(&self, ev: &SpoolRecord, timeout: Duration) -> Delivery {
        let r = &ev.record;
        if r.kind != "face" {
            // FindFace's external-detector API takes faces only.
            return Delivery::Done(format!("{} events are not sent to FindFace", r.kind));
        }
        if let Some(post) = r.repeat_of {
            // The track's final record with a face already sent: FindFace
            // would only store it twice.
            return Delivery::Done(format!("not sent: the same face as post {post} of this track"));
        }
        let Some(&(_, camera_id)) = self.cameras.iter().find(|(n, _)| *n == r.camera) else {
            return Delivery::Permanent(format!("camera {} has no `findface_camera` id", r.camera));
        };
        let (fw, fh) = (r.bbox[2] - r.bbox[0], r.bbox[3] - r.bbox[1]);
        if fw < MIN_FACE_PX || fh < MIN_FACE_PX {
            return Delivery::Permanent(format!(
                "face {fw:.0}x{fh:.0} px is below FindFace's {MIN_FACE_PX}x{MIN_FACE_PX} minimum"
            ));
        }
        let (ct, body) = self.form(ev, camera_id);
        let mut req = self.agent.post(&self.url).header("Content-Type", &ct);
        if let Some(t) = &self.api_token {
            req = req.header("Authorization", &format!("Token {}", t.expose()));
        }
        let (status, text) = match http::send(req, &body, timeout) {
            Ok(x) => x,
            Err(d) => return d,
        };
        if let Some(d) = http::classify_error_status(status, &text) {
            return d;
        }
        // 200: {"events": [...], "errors": [...]}; no event = no face extracted.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let events: Vec<String> = v["events"]
            .as_array()
            .map(|a| a.iter().map(|e| e.as_str().map(String::from).unwrap_or_else(|| e.to_string())).collect())
            .unwrap_or_default();
        if events.is_empty() {
            return Delivery::Permanent(format!("FindFace extracted no face: {}", v["errors"]));
        }
        Delivery::Done(format!("FindFace event(s) {}", events.join(",")))
    }
}
