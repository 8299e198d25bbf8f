//! The MQTT sink (`[mqtt]`): each event as one JSON message (see `bus`) on
//! `<prefix>/<node>/events`, delivered through the durable spool like
//! FindFace: the spool entry goes only once the broker acknowledged it
//! (PUBACK at QoS 1, PUBCOMP at QoS 2).
//!
//! One connection (rumqttc's blocking client) is shared by the sender
//! threads; a thread of its own drives it and matches acknowledgements to
//! the deliveries waiting for them. rumqttc hands publishes to the socket
//! in the order they were queued, so each queued publish takes its place
//! in a FIFO and gets its packet id when `Outgoing::Publish(pkid)` comes
//! back. When the connection fails, every waiting delivery is told to
//! retry and the connection is dropped whole: the next delivery opens a
//! fresh one (clean session), so nothing is republished behind the
//! spool's back; a message the broker got but whose acknowledgement was
//! lost is sent once more (at most one duplicate per event per outage;
//! the event `id` lets consumers drop it).
//!
//! Best effort, not spooled: `<prefix>/<node>/available` (`online`, and
//! `offline` through the last will), the latest best face per camera as a
//! retained raw JPEG on `<prefix>/<node>/<camera>/face/snapshot`, faces
//! in the last minute on `<prefix>/<node>/<camera>/faces_last_minute`, and
//! Home Assistant discovery (an image entity and a sensor per camera).

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, Transport};
use serde_json::json;

use super::bus::{self, FailureLog, MessageOptions, Shrinker};
use super::spool::SpoolRecord;
use super::{Delivery, Sink, SinkError};
use crate::config::MqttConfig;
use crate::sync::lock;

/// Publishes queued to rumqttc and not yet on the socket, at most: a full
/// queue makes a delivery retry rather than wait inside the lock.
const REQUEST_QUEUE: usize = 64;
/// How often the broker hears from us when idle (and the faces-in-the-
/// last-minute sensors are refreshed).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The window of the faces-in-the-last-minute sensor.
const FACES_WINDOW_MS: u64 = 60_000;

/// What a waiting delivery hears.
enum Ack {
    Done,
    Failed(String),
}

/// Topics of one node.
struct Topics {
    events: String,
    available: String,
    /// `<prefix>/<node>/`: per-camera topics go under it.
    node_root: String,
}

/// State shared by the sink and its connection's thread.
struct Shared {
    cfg: MqttConfig,
    node: String,
    topics: Topics,
    cameras: Vec<String>,
    /// Per camera: when its delivered events were made (the sensor's window).
    recent: Mutex<HashMap<String, VecDeque<u64>>>,
    /// Per camera: the best face time of the snapshot published last.
    snapshot_ms: Mutex<HashMap<String, u64>>,
    failures: FailureLog,
    /// The broker's host and port, parsed once.
    broker: (String, u16),
    /// TLS settings (`mqtts://`), built once: the CA file or the system's
    /// roots are read at start, not at every reconnect.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// One connection and the deliveries waiting on it.
struct Session {
    client: Client,
    /// Publishes queued, in order, each with the delivery waiting for it
    /// (None: a best-effort publish nobody waits for).
    queued: Mutex<VecDeque<Option<SyncSender<Ack>>>>,
    /// Publishes on the socket, by packet id, waiting for their ack.
    sent: Mutex<HashMap<u16, SyncSender<Ack>>>,
    /// Why the connection ended (set once; the session is then replaced).
    broken: Mutex<Option<String>>,
    /// Hears when the connection's thread ends.
    ended: Mutex<Receiver<()>>,
}

pub struct MqttSink {
    shared: Arc<Shared>,
    session: Mutex<Option<Arc<Session>>>,
    shrinker: Mutex<Shrinker>,
    timeout: Duration,
}

impl MqttSink {
    /// `cameras`: the config's camera names (for discovery). Errors name
    /// the key.
    pub fn new(cfg: &MqttConfig, cameras: Vec<String>) -> Result<Self, SinkError> {
        let (host, port, tls) =
            crate::config::broker_address(&cfg.url).map_err(|e| SinkError::caused("mqtt.url", e))?;
        let tls = if tls { Some(Arc::new(rustls_config(cfg)?)) } else { None };
        let node = bus::node_name(&cfg.node);
        let root = format!("{}/{}/", cfg.topic_prefix, bus::topic_level(&node));
        let topics =
            Topics { events: format!("{root}events"), available: format!("{root}available"), node_root: root.clone() };
        Ok(MqttSink {
            shared: Arc::new(Shared {
                cfg: cfg.clone(),
                node,
                topics,
                cameras,
                recent: Mutex::new(HashMap::new()),
                snapshot_ms: Mutex::new(HashMap::new()),
                failures: FailureLog::default(),
                broker: (host, port),
                tls,
            }),
            session: Mutex::new(None),
            shrinker: Mutex::new(Shrinker::default()),
            timeout: Duration::from_millis(cfg.timeout_ms),
        })
    }

    /// The live session, or a new one (connecting in its thread).
    fn session(&self) -> Result<Arc<Session>, SinkError> {
        let mut slot = lock(&self.session);
        if let Some(s) = slot.as_ref() {
            if lock(&s.broken).is_none() {
                return Ok(s.clone());
            }
        }
        let s = connect(&self.shared)?;
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Queues a publish in order; `waiter` hears of its ack.
    fn publish(
        session: &Session,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
        waiter: Option<SyncSender<Ack>>,
    ) -> Result<(), SinkError> {
        let mut queued = lock(&session.queued);
        queued.push_back(waiter);
        if let Err(e) = session.client.try_publish(topic, qos, retain, payload) {
            queued.pop_back();
            return Err(SinkError::caused("mqtt: cannot queue the message", e));
        }
        Ok(())
    }
}

impl Sink for MqttSink {
    fn name(&self) -> &str {
        "mqtt"
    }

    fn base_timeout(&self) -> Duration {
        self.timeout
    }

    fn deliver(&self, ev: &SpoolRecord, timeout: Duration) -> Delivery {
        let sh = &self.shared;
        let opts = MessageOptions {
            node: &sh.node,
            include_frame: sh.cfg.include_frame,
            mesh_points: false,
            max_bytes: sh.cfg.max_message_bytes,
        };
        let msg = bus::message(ev, opts, &mut lock(&self.shrinker));
        if let Some(w) = msg.frame_reduced_to {
            log::info!("sink mqtt: event {}: frame reduced to {w} px wide to fit mqtt.max_message_bytes", ev.record.id);
        } else if msg.frame_omitted.is_some() {
            log::warn!("sink mqtt: event {}: frame left out to fit mqtt.max_message_bytes", ev.record.id);
        }
        let session = match self.session() {
            Ok(s) => s,
            Err(e) => return Delivery::Retry(e.to_string()),
        };
        let (tx, rx) = sync_channel(1);
        let qos = qos_of(sh.cfg.qos);
        if let Err(e) = Self::publish(&session, &sh.topics.events, qos, false, msg.json.into_bytes(), Some(tx)) {
            return Delivery::Retry(e.to_string());
        }
        match wait(&rx, timeout) {
            Ok(()) => {
                sh.delivered(ev);
                self.snapshot(&session, ev);
                Delivery::Done(format!("acknowledged by the broker (QoS {})", sh.cfg.qos))
            }
            Err(why) => Delivery::Retry(why.to_string()),
        }
    }
}

impl Drop for MqttSink {
    /// A clean goodbye: `offline` on the availability topic (the last will
    /// covers a crash), then DISCONNECT, waiting a moment for both to go.
    fn drop(&mut self) {
        let Some(s) = lock(&self.session).take() else { return };
        if lock(&s.broken).is_some() {
            return;
        }
        let _ = Self::publish(&s, &self.shared.topics.available, QoS::AtMostOnce, true, b"offline".to_vec(), None);
        *lock(&s.broken) = Some("closed".into());
        if s.client.try_disconnect().is_ok() {
            let _ = lock(&s.ended).recv_timeout(Duration::from_secs(2));
        }
    }
}

impl MqttSink {
    /// The camera's latest best face as a retained JPEG (if this event's is
    /// newer than the one published), and its faces-in-the-last-minute.
    fn snapshot(&self, session: &Session, ev: &SpoolRecord) {
        let r = &ev.record;
        if r.kind != "face" || ev.face_jpeg.is_empty() {
            return;
        }
        let newer = {
            let mut last = lock(&self.shared.snapshot_ms);
            let t = last.entry(r.camera.clone()).or_insert(0);
            let newer = r.best_unix_ms >= *t;
            if newer {
                *t = r.best_unix_ms;
            }
            newer
        };
        if newer {
            let topic = format!("{}{}/face/snapshot", self.shared.topics.node_root, bus::topic_level(&r.camera));
            let _ = Self::publish(session, &topic, QoS::AtMostOnce, true, ev.face_jpeg.clone(), None);
        }
        self.shared.publish_counts(session, Some(&r.camera));
    }
}

impl Shared {
    fn delivered(&self, ev: &SpoolRecord) {
        if ev.record.kind != "face" {
            return;
        }
        let mut recent = lock(&self.recent);
        recent.entry(ev.record.camera.clone()).or_default().push_back(ev.record.emitted_unix_ms);
    }

    /// Faces in the last minute per camera (all, or `only`), retained.
    fn publish_counts(&self, session: &Session, only: Option<&str>) {
        let now = crate::sink::now_unix_ms();
        let counts: Vec<(String, usize)> = {
            let mut recent = lock(&self.recent);
            self.cameras
                .iter()
                .filter(|c| only.is_none_or(|o| o == c.as_str()))
                .map(|c| {
                    let q = recent.entry(c.clone()).or_default();
                    while q.front().is_some_and(|&t| t + FACES_WINDOW_MS < now) {
                        q.pop_front();
                    }
                    (c.clone(), q.len())
                })
                .collect()
        };
        for (camera, n) in counts {
            let topic = format!("{}{}/faces_last_minute", self.topics.node_root, bus::topic_level(&camera));
            let _ = MqttSink::publish(session, &topic, QoS::AtMostOnce, true, n.to_string().into_bytes(), None);
        }
    }

    /// Home Assistant discovery: per camera an image entity (the snapshot)
    /// and a sensor (faces in the last minute), one device per node.
    fn publish_discovery(&self, session: &Session) {
        let device = json!({
            "identifiers": [bus::object_id(&["faceflow", &self.node])],
            "name": format!("faceflow {}", self.node),
            "manufacturer": "faceflow",
            "model": crate::board::NAME,
        });
        for camera in &self.cameras {
            let level = bus::topic_level(camera);
            let image_id = bus::object_id(&["faceflow", &self.node, camera, "face"]);
            let image = json!({
                "name": format!("{camera} best face"),
                "unique_id": image_id,
                "image_topic": format!("{}{level}/face/snapshot", self.topics.node_root),
                "content_type": "image/jpeg",
                "availability_topic": self.topics.available,
                "device": device,
            });
            let sensor_id = bus::object_id(&["faceflow", &self.node, camera, "faces"]);
            let sensor = json!({
                "name": format!("{camera} faces in the last minute"),
                "unique_id": sensor_id,
                "state_topic": format!("{}{level}/faces_last_minute", self.topics.node_root),
                "unit_of_measurement": "faces",
                "state_class": "measurement",
                "availability_topic": self.topics.available,
                "device": device,
            });
            let prefix = &self.cfg.discovery_prefix;
            for (topic, payload) in [
                (format!("{prefix}/image/{image_id}/config"), image),
                (format!("{prefix}/sensor/{sensor_id}/config"), sensor),
            ] {
                let _ =
                    MqttSink::publish(session, &topic, QoS::AtLeastOnce, true, payload.to_string().into_bytes(), None);
            }
        }
    }
}

/// Waits for a delivery's ack.
fn wait(rx: &Receiver<Ack>, timeout: Duration) -> Result<(), SinkError> {
    match rx.recv_timeout(timeout) {
        Ok(Ack::Done) => Ok(()),
        Ok(Ack::Failed(why)) => Err(SinkError::new(why)),
        Err(RecvTimeoutError::Timeout) => {
            Err(SinkError::new(format!("no acknowledgement from the broker in {} ms", timeout.as_millis())))
        }
        Err(RecvTimeoutError::Disconnected) => Err(SinkError::new("the connection ended")),
    }
}

fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtLeastOnce,
    }
}

/// A new session: options from the config, its thread started.
fn connect(sh: &Arc<Shared>) -> Result<Arc<Session>, SinkError> {
    let cfg = &sh.cfg;
    let id = bus::object_id(&["faceflow", &sh.node, &std::process::id().to_string()]);
    let mut o = MqttOptions::new(id, sh.broker.0.clone(), sh.broker.1);
    o.set_keep_alive(KEEP_ALIVE);
    o.set_clean_session(true);
    // Room for the largest message plus its headers; rumqttc's default
    // (10 KiB) would refuse every event with a face JPEG.
    o.set_max_packet_size(1 << 20, cfg.max_message_bytes + 16 * 1024);
    o.set_request_channel_capacity(REQUEST_QUEUE);
    o.set_last_will(LastWill::new(&sh.topics.available, "offline", QoS::AtLeastOnce, true));
    if let Some(user) = &cfg.username {
        o.set_credentials(user, cfg.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default());
    }
    if let Some(tls) = &sh.tls {
        o.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls.clone())));
    }
    let (client, mut connection) = Client::new(o, REQUEST_QUEUE);
    let (ended_tx, ended_rx) = sync_channel(1);
    let session = Arc::new(Session {
        client,
        queued: Mutex::new(VecDeque::new()),
        sent: Mutex::new(HashMap::new()),
        broken: Mutex::new(None),
        ended: Mutex::new(ended_rx),
    });
    let (s, shared) = (session.clone(), sh.clone());
    std::thread::Builder::new()
        .name("mqtt".into())
        .spawn(move || {
            let mut last_counts = Instant::now();
            for notification in connection.iter() {
                match notification {
                    // Our own goodbye (Drop): nothing more to do.
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(event) => on_event(&shared, &s, event, &mut last_counts),
                    Err(_) if lock(&s.broken).is_some() => break,
                    Err(e) => {
                        end(&shared, &s, describe(&e));
                        break;
                    }
                }
            }
            let _ = ended_tx.send(());
        })
        .map_err(|e| SinkError::caused("mqtt: thread", e))?;
    Ok(session)
}

/// One event of the connection.
fn on_event(sh: &Shared, s: &Session, event: Event, last_counts: &mut Instant) {
    match event {
        Event::Incoming(Packet::ConnAck(_)) => {
            let url = crate::config::redact_url(&sh.cfg.url);
            match sh.failures.recovered() {
                None => log::info!("sink mqtt: connected to {url} as node {}", sh.node),
                Some(was) => log::info!("sink mqtt: connected again to {url} (was: {was})"),
            }
            let _ = MqttSink::publish(s, &sh.topics.available, QoS::AtLeastOnce, true, b"online".to_vec(), None);
            if sh.cfg.home_assistant {
                sh.publish_discovery(s);
            }
            sh.publish_counts(s, None);
        }
        Event::Outgoing(Outgoing::Publish(pkid)) => {
            let Some(waiter) = lock(&s.queued).pop_front() else { return };
            if let Some(tx) = waiter {
                if pkid == 0 {
                    // QoS 0: on the socket is all there is.
                    let _ = tx.try_send(Ack::Done);
                } else {
                    lock(&s.sent).insert(pkid, tx);
                }
            }
        }
        Event::Incoming(Packet::PubAck(a)) => ack(s, a.pkid),
        Event::Incoming(Packet::PubComp(c)) => ack(s, c.pkid),
        Event::Outgoing(Outgoing::PingReq) if last_counts.elapsed() >= KEEP_ALIVE => {
            *last_counts = Instant::now();
            sh.publish_counts(s, None);
        }
        _ => {}
    }
}

fn ack(s: &Session, pkid: u16) {
    if let Some(tx) = lock(&s.sent).remove(&pkid) {
        let _ = tx.try_send(Ack::Done);
    }
}

/// The connection failed: every waiting delivery retries, the session is
/// marked broken (the next delivery opens a new one), the reason logged
/// once while it stays the same.
fn end(sh: &Shared, s: &Session, why: String) {
    *lock(&s.broken) = Some(why.clone());
    let waiting: Vec<SyncSender<Ack>> =
        lock(&s.queued).drain(..).flatten().chain(lock(&s.sent).drain().map(|(_, tx)| tx)).collect();
    for tx in waiting {
        let _ = tx.try_send(Ack::Failed(why.clone()));
    }
    if sh.failures.is_new(&why) {
        log::error!("sink mqtt: {why}; events stay spooled and go out when the broker is back");
    }
}

/// A connection error in words, naming the key to check where one is.
fn describe(e: &ConnectionError) -> String {
    use rumqttc::ConnectReturnCode as C;
    match e {
        ConnectionError::ConnectionRefused(C::BadUserNamePassword | C::NotAuthorized) => {
            format!("broker refused the connection ({e}): check mqtt.username and mqtt.password")
        }
        ConnectionError::ConnectionRefused(_) => format!("broker refused the connection ({e})"),
        ConnectionError::Tls(_) => format!("TLS with the broker failed ({e}): check mqtt.ca_file and the URL's host"),
        _ => format!("connection to the broker lost or refused ({e})"),
    }
}

/// TLS client settings: the private CA of `mqtt.ca_file`, else the
/// system's trusted CAs.
fn rustls_config(cfg: &MqttConfig) -> Result<rustls::ClientConfig, SinkError> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(p) => {
            for c in super::tls::read_ca_file(p).map_err(|e| SinkError::caused("mqtt.ca_file", e))? {
                roots
                    .add(rustls::pki_types::CertificateDer::from(c.der().to_vec()))
                    .map_err(|e| SinkError::caused("mqtt.ca_file", e))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::caused("mqtt: TLS", e))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
