//! `[mqtt]` and `[redis]`: the event bus sinks for fleets (one faceflow per
//! box, events collected by a broker or a Redis stream). Both deliver
//! through the durable spool like `[findface]`.

use std::path::PathBuf;

use serde::Deserialize;

use super::Secret;

/// `[mqtt]`: events as JSON on `<topic_prefix>/<node>/events`, QoS 1 by
/// default, each removed from the spool after the broker's PUBACK.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]`.
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// This box's name in topics and ids; empty: the host name.
    #[serde(default)]
    pub node: String,
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// 0, 1 or 2. With 0 an event leaves the spool once written to the
    /// socket (no acknowledgement: a broker outage can lose it).
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Largest message sent: an event over it has its frame JPEG made
    /// smaller, then left out (`frame_omitted` says why); never dropped.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Home Assistant MQTT discovery: an image entity per camera (the
    /// latest best face) and a faces-in-the-last-minute sensor.
    #[serde(default = "yes")]
    pub home_assistant: bool,
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
    /// The whole frame JPEG in each event (the face crop always goes).
    #[serde(default = "yes")]
    pub include_frame: bool,
    /// PEM file of a private CA that signed the broker's certificate
    /// (`mqtts://`); unset: the system's trusted CAs.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// `[redis]`: events as entries of a Redis stream (XADD), each removed
/// from the spool once Redis returned the entry's id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host[:6379][/db]` (credentials go in `username`/`password`).
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// This box's name in each entry; empty: the host name.
    #[serde(default)]
    pub node: String,
    #[serde(default = "default_stream")]
    pub stream: String,
    /// The stream is trimmed to about this many entries (`MAXLEN ~`); 0:
    /// never trimmed.
    #[serde(default = "default_maxlen")]
    pub maxlen: u64,
    /// The whole frame JPEG in each entry (the face crop always goes).
    #[serde(default = "yes")]
    pub include_frame: bool,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_topic_prefix() -> String {
    "faceflow".into()
}

fn default_qos() -> u8 {
    1
}

fn default_max_message_bytes() -> usize {
    1_000_000
}

fn default_discovery_prefix() -> String {
    "homeassistant".into()
}

fn default_stream() -> String {
    "faceflow:events".into()
}

fn default_maxlen() -> u64 {
    100_000
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn yes() -> bool {
    true
}

crate::error::context_error!(
    /// An `mqtt.url` that names no broker (its credentials never shown).
    BrokerUrlError,
    ""
);

/// A broker URL's host, port and whether it wants TLS. Errors say what is
/// wrong without the URL's credentials.
pub fn broker_address(url: &str) -> Result<(String, u16, bool), BrokerUrlError> {
    let u = url::Url::parse(url).map_err(|e| BrokerUrlError::caused("not a URL", e))?;
    let tls = match u.scheme() {
        "mqtt" => false,
        "mqtts" => true,
        s => return Err(BrokerUrlError::new(format!("scheme {s}:// is not supported (mqtt:// or mqtts://)"))),
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Err(BrokerUrlError::new("must not hold credentials: set mqtt.username and mqtt.password"));
    }
    let host = u.host_str().filter(|h| !h.is_empty()).ok_or_else(|| BrokerUrlError::new("no host"))?.to_string();
    Ok((host, u.port().unwrap_or(if tls { 8883 } else { 1883 }), tls))
}
