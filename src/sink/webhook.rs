//! Generic JSON webhook sink: `POST <url>` with the event record and its
//! JPEGs (base64). The `Idempotency-Key` header carries the event's stable
//! id, so a receiver can recognise a retried event.

use std::time::Duration;

use super::http;
use super::spool::SpoolRecord;
use super::{Delivery, Sink, SinkError};
use crate::config::{Secret, WebhookConfig};

pub(crate) struct WebhookSink {
    url: String,
    bearer: Option<Secret>,
    agent: ureq::Agent,
    timeout: Duration,
}

impl WebhookSink {
    /// Errors name the key (`webhook.ca_file`).
    pub fn new(cfg: &WebhookConfig) -> Result<Self, SinkError> {
        let roots = match &cfg.ca_file {
            Some(p) => Some(super::tls::read_ca_file(p).map_err(|e| SinkError::caused("webhook.ca_file", e))?),
            None => None,
        };
        Ok(WebhookSink {
            url: cfg.url.clone(),
            bearer: cfg.bearer_token.clone().filter(|t| !t.expose().is_empty()),
            agent: http::agent(Duration::from_millis(cfg.timeout_ms), roots),
            timeout: Duration::from_millis(cfg.timeout_ms),
        })
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        "webhook"
    }

    fn base_timeout(&self) -> Duration {
        self.timeout
    }

    fn deliver(&self, ev: &SpoolRecord, timeout: Duration) -> Delivery {
        let mut v = serde_json::to_value(&ev.record).unwrap_or_default();
        v["face_jpeg_base64"] = http::base64(&ev.face_jpeg).into();
        v["frame_jpeg_base64"] = http::base64(&ev.frame_jpeg).into();
        let body = v.to_string();
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &ev.record.id);
        if let Some(t) = &self.bearer {
            req = req.header("Authorization", &format!("Bearer {}", t.expose()));
        }
        match http::send(req, body.as_bytes(), timeout) {
            Ok((status, text)) => {
                http::classify_error_status(status, &text).unwrap_or(Delivery::Done(format!("HTTP {status}")))
            }
            Err(d) => d,
        }
    }
}
