//! Sinks: where finished face events go. The sink thread turns each
//! [`FaceEvent`] into a [`SpoolRecord`] (record + JPEGs), writes it to the
//! local outbox and durably into the spool of every remote sink (FindFace,
//! webhook), whose sender workers deliver it. Encoding and I/O happen here,
//! never on the detect or track threads.

pub mod bus;
pub mod findface;
pub mod gallery;
pub mod http;
pub mod mqtt;
pub mod outbox;
pub mod record;
pub mod redis_stream;
pub mod retention;
pub mod sender;
pub mod spool;
pub mod tls;
pub mod webhook;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::face::event::{FaceEvent, PipelineEvent};
use crate::face::quality::QualityParts;
use crate::jpeg;
use crate::metrics::{inc, Stats};
use crate::ring::{Backoff, Consumer};

pub(crate) use record::{now_unix_ms, MeshRecord};
pub use record::{Delivery, DeliveryState, EventRecord};
pub use spool::SpoolRecord;

crate::error::context_error!(
    /// A sink that could not be set up, or an event it could not deliver.
    SinkError,
    ""
);

/// A destination for events. Remote sinks are called from several sender
/// workers at once, hence `Sync` and `&self`.
pub trait Sink: Send + Sync {
    fn name(&self) -> &str;
    /// The configured time to wait for an answer (`timeout_ms`).
    fn base_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(10)
    }
    /// One attempt, waiting at most `timeout` for the answer.
    fn deliver(&self, ev: &SpoolRecord, timeout: std::time::Duration) -> Delivery;
}

pub fn event_id(camera: &str, ev: &FaceEvent) -> String {
    if ev.realtime {
        format!("{camera}-{}-{}-{}-s{}", ev.first_unix_ms, ev.track_id, ev.part, ev.sequence)
    } else {
        format!("{camera}-{}-{}-{}", ev.first_unix_ms, ev.track_id, ev.part)
    }
}

pub fn record(camera: &str, ev: &FaceEvent) -> EventRecord {
    let m = &ev.face.meta;
    let s = &ev.stats;
    EventRecord {
        id: event_id(camera, ev),
        kind: "face".into(),
        zone: None,
        dwell_ms: None,
        yaw_deg: ev.pose.map(|p| p.yaw_deg),
        pitch_deg: ev.pose.map(|p| p.pitch_deg),
        attentive: ev.pose.map(|_| ev.attentive),
        camera: camera.to_string(),
        track_id: ev.track_id,
        part: ev.part,
        first_unix_ms: ev.first_unix_ms,
        last_unix_ms: ev.last_unix_ms,
        best_unix_ms: ev.best_unix_ms,
        first_frame: ev.first_frame,
        last_frame: ev.last_frame,
        best_frame: ev.best_frame,
        frame_width: m.width,
        frame_height: m.height,
        bbox: [ev.bbox.x1, ev.bbox.y1, ev.bbox.x2, ev.bbox.y2],
        keypoints: ev.keypoints,
        confidence: ev.confidence,
        quality: ev.quality,
        quality_parts: ev.parts,
        frames: s.frames,
        movement_px: s.movement_px,
        moving_share: if s.frames > 1 { s.moving_frames as f32 / (s.frames - 1) as f32 } else { 0.0 },
        merged_track_ids: ev.merged_track_ids.iter().copied().collect(),
        sequence: ev.sequence,
        is_final: ev.is_final,
        repeat_of: ev.repeat_of,
        emitted_unix_ms: now_unix_ms(),
        mesh: ev.geometry.map(|g| MeshRecord::new(&g, ev.points.as_ref())),
    }
}

/// The record of a zone crossing (no pictures).
pub fn zone_record(camera: &str, zone: &str, z: &crate::face::zones::ZoneEvent) -> EventRecord {
    let enter = z.crossing == crate::face::zones::Crossing::Enter;
    EventRecord {
        id: format!("{camera}-zone-{zone}-{}-{}-{}", z.track_id, z.unix_ms, if enter { "enter" } else { "exit" }),
        kind: if enter { "zone_enter" } else { "zone_exit" }.into(),
        zone: Some(zone.to_string()),
        dwell_ms: if enter { None } else { Some(z.dwell_ms) },
        yaw_deg: None,
        pitch_deg: None,
        attentive: None,
        camera: camera.to_string(),
        track_id: z.track_id,
        part: 0,
        first_unix_ms: z.unix_ms,
        last_unix_ms: z.unix_ms,
        best_unix_ms: z.unix_ms,
        first_frame: z.frame,
        last_frame: z.frame,
        best_frame: z.frame,
        frame_width: 0,
        frame_height: 0,
        bbox: [z.bbox.x1, z.bbox.y1, z.bbox.x2, z.bbox.y2],
        keypoints: [[0.0; 2]; 5],
        confidence: 0.0,
        quality: 0.0,
        quality_parts: QualityParts::default(),
        frames: 0,
        movement_px: 0.0,
        moving_share: 0.0,
        merged_track_ids: Vec::new(),
        sequence: 0,
        is_final: true,
        repeat_of: None,
        emitted_unix_ms: now_unix_ms(),
        mesh: None,
    }
}

pub(crate) struct SinkWorker {
    pub events: Consumer<PipelineEvent>,
    /// Zone names per camera, for zone records.
    pub zone_names: Vec<Vec<String>>,
    /// Local sinks, called in this thread (the outbox).
    pub sinks: Vec<Box<dyn Sink>>,
    /// How long and how much the outbox keeps (None without an outbox).
    pub retention: Option<retention::OutboxRetention>,
    /// Spools of the remote sinks, by sink name: each event is written
    /// durably to each.
    pub spools: Vec<(String, Arc<spool::Spool>)>,
    pub camera_names: Vec<String>,
    pub jpeg_quality: u8,
    pub stats: Arc<Stats>,
    /// The newest best faces, for the panel.
    pub gallery: Arc<gallery::Gallery>,
    pub stop: Arc<AtomicBool>,
    /// The most recent records, for callers that report on a run (demo, tests).
    pub delivered: Arc<Mutex<RecentEvents>>,
}

/// The last `capacity` event records of a run and how many there were in all.
///
/// A run can last months; keeping every record would grow memory with every
/// event (the soak run showed it), so only the newest are kept for reports.
pub(crate) struct RecentEvents {
    records: std::collections::VecDeque<EventRecord>,
    capacity: usize,
    total: u64,
}

impl RecentEvents {
    /// Records kept by a pipeline run: far more than a demo or test makes,
    /// a few MB at most.
    pub(crate) const RUN_CAPACITY: usize = 4096;

    pub fn new(capacity: usize) -> Self {
        RecentEvents {
            records: std::collections::VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
            total: 0,
        }
    }

    pub fn push(&mut self, r: EventRecord) {
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(r);
        self.total += 1;
    }

    /// Events seen in all, kept or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept records, oldest first.
    pub(crate) fn into_vec(self) -> Vec<EventRecord> {
        self.records.into()
    }
}

impl SinkWorker {
    /// Hands one record to the local sinks and durably to every spool;
    /// says where it went (for the panel).
    fn deliver(&mut self, encoded: SpoolRecord) -> (SpoolRecord, Vec<(String, DeliveryState)>) {
        let mut went = Vec::with_capacity(self.sinks.len() + self.spools.len());
        for s in self.sinks.iter() {
            match s.deliver(&encoded, std::time::Duration::from_secs(10)) {
                Delivery::Done(_) => went.push((s.name().to_string(), DeliveryState::Saved)),
                Delivery::Retry(e) | Delivery::TimedOut(e) | Delivery::Permanent(e) => {
                    log::error!("event {}: sink {}: {e}", encoded.record.id, s.name());
                    inc(&self.stats.stages.sink_errors);
                    went.push((s.name().to_string(), DeliveryState::Failed { why: e }));
                }
            }
        }
        for (name, sp) in self.spools.iter() {
            // Retry the disk write a few times: losing an event is worse than a stall.
            let mut tries = 0;
            while let Err(e) = sp.put(&encoded) {
                tries += 1;
                inc(&self.stats.stages.sink_errors);
                if tries >= 5 {
                    log::error!("event {}: giving up on the spool after {tries} tries: {e}", encoded.record.id);
                    break;
                }
                log::error!("event {}: {e}; retrying", encoded.record.id);
                std::thread::sleep(std::time::Duration::from_millis(200 * tries));
            }
            went.push((
                name.clone(),
                if tries >= 5 {
                    DeliveryState::Failed { why: "the spool could not be written".into() }
                } else {
                    DeliveryState::Spooled
                },
            ));
        }
        if let Some(r) = self.retention.as_mut() {
            let saved = went.iter().any(|(n, s)| n == "outbox" && *s == DeliveryState::Saved);
            if saved {
                let spooled = went.iter().all(|(_, s)| !matches!(s, DeliveryState::Failed { .. }));
                r.written(&encoded.record.camera, &encoded.record.id, now_unix_ms(), spooled);
            }
        }
        (encoded, went)
    }

    /// Retention's age and delivery rules (throttled to once a second).
    fn maintain_outbox(&mut self, force: bool) {
        if let Some(r) = self.retention.as_mut() {
            r.maintain(now_unix_ms(), self.spools.iter().map(|(_, s)| &**s), force);
        }
    }

    /// Runs until the events ring is finished; gives back the outbox's
    /// retention for a last pass once the senders have drained.
    pub fn run(mut self) -> Option<retention::OutboxRetention> {
        crate::board::pin_current_thread(crate::board::Role::Sender);
        // Without an encoder, events still go out (without pictures, counted).
        let mut enc = jpeg::JpegEncoder::new().map_err(|e| log::error!("{e}; events go out without JPEGs")).ok();
        // The full-size frame of an event, rebuilt from its kept face; grown
        // to the largest frame once, then reused.
        let mut frame_buf = Vec::new();
        let mut backoff = Backoff::default();
        loop {
            let Some(ev) = self.events.try_pop() else {
                if self.events.is_finished() {
                    break;
                }
                self.maintain_outbox(false);
                backoff.snooze();
                continue;
            };
            backoff.reset();
            let t0 = std::time::Instant::now();
            let ev = match ev {
                PipelineEvent::Face(f) => f,
                PipelineEvent::Zone(z) => {
                    let cam = &self.camera_names[z.camera as usize];
                    let zone = self.zone_names[z.camera as usize].get(z.zone as usize).cloned().unwrap_or_default();
                    let rec = zone_record(cam, &zone, &z);
                    log::info!("zone event {} camera={cam} zone={zone} track={} {}", rec.id, z.track_id, rec.kind);
                    let (done, _) =
                        self.deliver(SpoolRecord { record: rec, face_jpeg: Vec::new(), frame_jpeg: Vec::new() });
                    crate::sync::lock(&self.delivered).push(done.record);
                    continue;
                }
            };
            let camera = ev.camera as usize;
            let cam = &self.camera_names[camera];
            let rec = record(cam, &ev);
            let cs = &self.stats.cameras[camera];
            if ev.repeat_of.is_none() {
                inc(&cs.face_posts);
                if ev.sequence > 0 {
                    inc(&cs.improved_posts);
                } else {
                    cs.first_post_latency.record_us(rec.emitted_unix_ms.saturating_sub(rec.first_unix_ms) * 1000);
                }
            }
            let pic = ev.face.compose(&mut frame_buf);
            let mut face_jpeg = Vec::new();
            let mut frame_jpeg = Vec::new();
            let full = crate::geom::BBox::new(0.0, 0.0, pic.width as f32, pic.height as f32);
            let (r1, r2) = match enc.as_mut() {
                Some(enc) => (
                    enc.encode_i420(&pic, &jpeg::face_crop_region(&ev.bbox, 0.25), self.jpeg_quality, &mut face_jpeg),
                    enc.encode_i420(&pic, &full, self.jpeg_quality, &mut frame_jpeg),
                ),
                None => (Err(jpeg::JpegError::Init("tjInitCompress")), Ok(())),
            };
            drop(ev);
            if let Err(e) = r1.and(r2) {
                log::error!("event {}: JPEG encoding failed: {e}", rec.id);
                inc(&self.stats.stages.sink_errors);
            }
            let encoded = SpoolRecord { record: rec, face_jpeg, frame_jpeg };
            let (encoded, went) = self.deliver(encoded);
            self.gallery.add(camera, &encoded.record, &encoded.face_jpeg, &encoded.frame_jpeg, went);
            let r = &encoded.record;
            log::info!(
                "event {} camera={} track={} frames {}..{} best frame {} bbox [{:.0},{:.0},{:.0},{:.0}] quality {:.3}",
                r.id,
                r.camera,
                r.track_id,
                r.first_frame,
                r.last_frame,
                r.best_frame,
                r.bbox[0],
                r.bbox[1],
                r.bbox[2],
                r.bbox[3],
                r.quality
            );
            inc(&self.stats.stages.events_written);
            inc(&self.stats.cameras[camera].events);
            self.stats.stages.sink.record_us(t0.elapsed().as_micros() as u64);
            crate::sync::lock(&self.delivered).push(encoded.record);
            self.maintain_outbox(false);
            if self.stop.load(Ordering::Relaxed) && self.events.is_empty() && self.events.is_finished() {
                break;
            }
        }
        self.maintain_outbox(true);
        self.retention.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::zones::{Crossing, ZoneEvent};

    fn zone_rec(track_id: u32) -> EventRecord {
        let z = ZoneEvent {
            camera: 0,
            zone: 0,
            track_id,
            crossing: Crossing::Enter,
            unix_ms: 1,
            frame: 1,
            dwell_ms: 0,
            bbox: crate::geom::BBox::new(0.0, 0.0, 1.0, 1.0),
        };
        zone_record("cam", "door", &z)
    }

    #[test]
    fn recent_events_keep_the_newest_and_count_all() {
        let mut log = RecentEvents::new(3);
        for t in 0..10 {
            log.push(zone_rec(t));
        }
        assert_eq!(log.total(), 10);
        let kept: Vec<u32> = log.into_vec().iter().map(|r| r.track_id).collect();
        assert_eq!(kept, vec![7, 8, 9], "oldest evicted first, order kept");
    }
}
