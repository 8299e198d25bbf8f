//! The panel's recent faces: per camera, the newest best faces (face crop
//! and full frame as the JPEGs the sink made, the record) and how each one's
//! delivery went. Bounded: `per_camera` entries a camera, each holding its
//! two JPEG buffers, reused when the slot is overwritten. The sink thread
//! adds (once per event, not per frame), the senders report outcomes, the
//! monitor's HTTP thread reads (`/api/events`).
//!
//! A realtime track posts several times; its newer post replaces its card,
//! so the strip shows people, not posts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::json;

use crate::sink::record::{now_unix_ms, Delivery, DeliveryState, EventRecord};

/// One sink's outcome as `/api/events` shows it.
fn delivery_json(state: &DeliveryState, sink: &str) -> serde_json::Value {
    let (state, attempts, why) = match state {
        DeliveryState::Saved => ("saved", 0, ""),
        DeliveryState::Spooled => ("spooled", 0, ""),
        DeliveryState::Delivered => ("delivered", 0, ""),
        DeliveryState::Retrying { attempts, why } => ("retrying", *attempts, why.as_str()),
        DeliveryState::Dead { why } => ("dead", 0, why.as_str()),
        DeliveryState::Failed { why } => ("failed", 0, why.as_str()),
    };
    json!({"sink": sink, "state": state, "attempts": attempts, "reason": why})
}

struct Entry {
    /// Gallery-wide number of the post shown (picture URLs use it, so a
    /// newer post of the same track is a new picture to the browser).
    serial: u64,
    updated_unix_ms: u64,
    /// Gallery-wide order of the last change (post or delivery outcome):
    /// newest first even within one millisecond.
    change: u64,
    /// Posts of the track seen so far.
    posts: u32,
    record: EventRecord,
    face_jpeg: Vec<u8>,
    frame_jpeg: Vec<u8>,
    delivery: Vec<(String, DeliveryState)>,
}

impl Entry {
    fn same_track(&self, r: &EventRecord) -> bool {
        let e = &self.record;
        e.track_id == r.track_id && e.first_unix_ms == r.first_unix_ms && e.part == r.part
    }
}

struct Inner {
    /// Per camera, oldest first; at most `per_camera` each.
    cameras: Vec<Vec<Entry>>,
    next_serial: u64,
    changes: u64,
}

/// What the gallery holds, for the HTTP thread.
pub struct Gallery {
    inner: Mutex<Inner>,
    /// 0: the gallery is off (no monitor to show it).
    per_camera: AtomicUsize,
}

/// Entries a camera keeps unless configured (`monitor.recent_faces`).
pub use crate::limits::RECENT_FACES_PER_CAMERA as DEFAULT_PER_CAMERA;

impl Gallery {
    pub fn new(cameras: usize, per_camera: usize) -> Self {
        Gallery {
            inner: Mutex::new(Inner {
                cameras: (0..cameras).map(|_| Vec::new()).collect(),
                next_serial: 1,
                changes: 0,
            }),
            per_camera: AtomicUsize::new(per_camera),
        }
    }

    /// Entries kept per camera from now on; 0 keeps none.
    pub fn set_per_camera(&self, n: usize) {
        self.per_camera.store(n, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        crate::sync::lock(&self.inner)
    }

    /// A face record the sink has just handed on, with its pictures and
    /// where it went. A final record that only repeats an earlier post
    /// (`repeat_of`) marks that post final and keeps its pictures.
    pub fn add(
        &self,
        camera: usize,
        record: &EventRecord,
        face_jpeg: &[u8],
        frame_jpeg: &[u8],
        delivery: Vec<(String, DeliveryState)>,
    ) {
        let per_camera = self.per_camera.load(Ordering::Relaxed);
        if per_camera == 0 {
            return;
        }
        let mut g = self.lock();
        g.changes += 1;
        let (serial, change) = (g.next_serial, g.changes);
        let Some(list) = g.cameras.get_mut(camera) else { return };
        let mut e = match list.iter().position(|e| e.same_track(record)) {
            Some(i) => list.remove(i),
            None => {
                while list.len() > per_camera {
                    list.remove(0);
                }
                if list.len() == per_camera {
                    // Full: the oldest goes, its buffers reused.
                    let mut oldest = list.remove(0);
                    oldest.posts = 0;
                    oldest
                } else {
                    Entry {
                        serial: 0,
                        updated_unix_ms: 0,
                        change: 0,
                        posts: 0,
                        record: record.clone(),
                        face_jpeg: Vec::new(),
                        frame_jpeg: Vec::new(),
                        delivery: Vec::new(),
                    }
                }
            }
        };
        e.updated_unix_ms = now_unix_ms();
        e.change = change;
        if record.repeat_of.is_some() && e.posts > 0 {
            e.record.is_final = true;
        } else {
            e.posts += 1;
            e.serial = serial;
            e.record.clone_from(record);
            e.face_jpeg.clear();
            e.face_jpeg.extend_from_slice(face_jpeg);
            e.frame_jpeg.clear();
            e.frame_jpeg.extend_from_slice(frame_jpeg);
            e.delivery = delivery;
        }
        list.push(e);
        g.next_serial += 1;
    }

    /// A remote sink's attempt on the record `id` ended with `outcome`
    /// (`attempts` made so far, this one included).
    pub fn delivery(&self, id: &str, sink: &str, outcome: &Delivery, attempts: u32) {
        let state = match outcome {
            Delivery::Done(_) => DeliveryState::Delivered,
            Delivery::Retry(why) | Delivery::TimedOut(why) => DeliveryState::Retrying { attempts, why: why.clone() },
            Delivery::Permanent(why) => DeliveryState::Dead { why: why.clone() },
        };
        let mut g = self.lock();
        let change = g.changes + 1;
        let Some(e) = g.cameras.iter_mut().flat_map(|l| l.iter_mut()).find(|e| e.record.id == id) else {
            return; // an older post, or an entry already overwritten
        };
        e.updated_unix_ms = now_unix_ms();
        e.change = change;
        match e.delivery.iter_mut().find(|(s, _)| s == sink) {
            Some((_, st)) => *st = state,
            None => e.delivery.push((sink.to_string(), state)),
        }
        g.changes = change;
    }

    /// Entries changed after `since_unix_ms`, newest first, at most `limit`;
    /// of one camera when `camera` is given. No points (see [`Self::detail`]).
    pub fn list(&self, names: &[String], camera: Option<&str>, since_unix_ms: u64, limit: usize) -> serde_json::Value {
        let g = self.lock();
        let mut out: Vec<&Entry> = g
            .cameras
            .iter()
            .zip(names)
            .filter(|(_, n)| camera.is_none_or(|c| c == n.as_str()))
            .flat_map(|(l, _)| l.iter())
            .filter(|e| e.updated_unix_ms > since_unix_ms)
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.change));
        out.truncate(limit);
        json!({
            "now_unix_ms": now_unix_ms(),
            "events": out.iter().map(|e| summary(e)).collect::<Vec<_>>(),
        })
    }

    /// One entry in full (with the mesh points), by its serial.
    pub fn detail(&self, serial: u64) -> Option<serde_json::Value> {
        let g = self.lock();
        let e = g.cameras.iter().flat_map(|l| l.iter()).find(|e| e.serial == serial)?;
        let mut v = summary(e);
        v["record"] = serde_json::to_value(&e.record).ok()?;
        Some(v)
    }

    /// The face crop (`frame == false`) or full frame JPEG of an entry.
    pub fn jpeg(&self, serial: u64, frame: bool, out: &mut Vec<u8>) -> bool {
        let g = self.lock();
        match g.cameras.iter().flat_map(|l| l.iter()).find(|e| e.serial == serial) {
            Some(e) => {
                let src = if frame { &e.frame_jpeg } else { &e.face_jpeg };
                out.clear();
                out.extend_from_slice(src);
                !src.is_empty()
            }
            None => false,
        }
    }
}

fn summary(e: &Entry) -> serde_json::Value {
    let r = &e.record;
    let p = &r.quality_parts;
    json!({
        "serial": e.serial,
        "id": r.id,
        "camera": r.camera,
        "track_id": r.track_id,
        "posts": e.posts,
        "final": r.is_final,
        "first_unix_ms": r.first_unix_ms,
        "best_unix_ms": r.best_unix_ms,
        "emitted_unix_ms": r.emitted_unix_ms,
        "updated_unix_ms": e.updated_unix_ms,
        "quality": r.quality,
        "quality_parts": {"frontality": p.frontality, "size": p.size, "confidence": p.confidence,
                          "sharpness": p.sharpness, "aspect": p.aspect,
                          "eyes": r.mesh.as_ref().map(|m| m.eyes_part)},
        "confidence": r.confidence,
        "width_px": r.bbox[2] - r.bbox[0],
        "bbox": r.bbox,
        "frame_size": [r.frame_width, r.frame_height],
        "pose": {"yaw_deg": r.yaw_deg, "pitch_deg": r.pitch_deg, "roll_deg": r.mesh.as_ref().map(|m| m.roll_deg)},
        "gaze": r.mesh.as_ref().and_then(|m| m.gaze_yaw_deg.zip(m.gaze_pitch_deg)).map(|(y, p)| json!({"yaw_deg": y, "pitch_deg": p})),
        "attentive": r.attentive,
        "landmarks": r.mesh.as_ref().map_or(0, |m| m.points.len()),
        "delivery": e.delivery.iter().map(|(s, st)| delivery_json(st, s)).collect::<Vec<_>>(),
        "face": format!("/api/events/{}/face.jpg", e.serial),
        "frame": format!("/api/events/{}/frame.jpg", e.serial),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(camera: &str, track: u32, seq: u32) -> EventRecord {
        let z = crate::face::zones::ZoneEvent {
            camera: 0,
            zone: 0,
            track_id: track,
            crossing: crate::face::zones::Crossing::Enter,
            unix_ms: 1000,
            frame: 1,
            dwell_ms: 0,
            bbox: crate::geom::BBox::new(10.0, 10.0, 74.0, 90.0),
        };
        let mut r = crate::sink::zone_record(camera, "z", &z);
        r.kind = "face".into();
        r.sequence = seq;
        r.id = format!("{camera}-1000-{track}-0-s{seq}");
        r
    }

    fn names() -> Vec<String> {
        vec!["door".into(), "hall".into()]
    }

    #[test]
    fn newest_first_bounded_per_camera_and_a_later_post_replaces_its_track() {
        let g = Gallery::new(2, 3);
        for t in 0..5 {
            g.add(0, &rec("door", t, 0), b"face", b"frame", vec![("findface".into(), DeliveryState::Spooled)]);
        }
        g.add(1, &rec("hall", 9, 0), b"f", b"", vec![]);
        let v = g.list(&names(), Some("door"), 0, 10);
        let tracks: Vec<u64> =
            v["events"].as_array().unwrap().iter().map(|e| e["track_id"].as_u64().unwrap()).collect();
        assert_eq!(tracks, vec![4, 3, 2], "three kept for door, newest first");
        // A second post of track 3 replaces its card and is now the newest.
        g.add(0, &rec("door", 3, 1), b"face2", b"frame2", vec![("findface".into(), DeliveryState::Spooled)]);
        let v = g.list(&names(), None, 0, 10);
        let ev = v["events"].as_array().unwrap();
        assert_eq!(ev.len(), 4);
        assert_eq!((ev[0]["track_id"].as_u64(), ev[0]["posts"].as_u64()), (Some(3), Some(2)));
        let serial = ev[0]["serial"].as_u64().unwrap();
        let mut buf = Vec::new();
        assert!(g.jpeg(serial, false, &mut buf) && buf == b"face2");
        assert!(g.jpeg(serial, true, &mut buf) && buf == b"frame2");
        assert!(!g.jpeg(9999, false, &mut buf));
        // `limit` and `since`.
        assert_eq!(g.list(&names(), None, 0, 1)["events"].as_array().unwrap().len(), 1);
        let latest = ev[0]["updated_unix_ms"].as_u64().unwrap();
        assert!(g.list(&names(), None, latest, 10)["events"].as_array().unwrap().is_empty());
    }

    #[test]
    fn delivery_outcomes_update_the_card() {
        let g = Gallery::new(1, 4);
        let r = rec("door", 1, 0);
        g.add(0, &r, b"f", b"F", vec![("findface".into(), DeliveryState::Spooled)]);
        g.delivery(&r.id, "findface", &Delivery::Retry("HTTP 503".into()), 1);
        let state = |g: &Gallery| g.list(&["door".into()], None, 0, 1)["events"][0]["delivery"][0].clone();
        assert_eq!(state(&g)["state"], "retrying");
        assert_eq!(state(&g)["attempts"], 1);
        assert_eq!(state(&g)["reason"], "HTTP 503");
        g.delivery(&r.id, "findface", &Delivery::Permanent("HTTP 400: bad image".into()), 2);
        assert_eq!(state(&g)["state"], "dead");
        g.delivery("unknown-id", "findface", &Delivery::Done(String::new()), 1);
        let serial = g.list(&["door".into()], None, 0, 1)["events"][0]["serial"].as_u64().unwrap();
        let d = g.detail(serial).unwrap();
        assert_eq!(d["record"]["id"], r.id.as_str());
    }
}
