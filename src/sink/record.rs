//! What a finished event is to every sink and to the panel: the record
//! (plain, serialisable data, the spool's and the outbox's format), and how
//! one delivery attempt, and one sink's handling of an event, ended. Data
//! only: no sink, thread or I/O here.

use serde::{Deserialize, Serialize};

use crate::detect::Keypoints;
use crate::face::quality::QualityParts;

/// The event as sinks see it: plain data, serialisable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    /// Stable id: camera, first-seen time, track id and part (and zone crossing).
    pub id: String,
    /// `face`, `zone_enter` or `zone_exit`.
    pub kind: String,
    /// Zone name, for zone events.
    pub zone: Option<String>,
    /// Time spent in the zone, for `zone_exit`.
    pub dwell_ms: Option<u64>,
    /// Head pose of the best face and whether it faces the camera.
    pub yaw_deg: Option<f32>,
    pub pitch_deg: Option<f32>,
    pub attentive: Option<bool>,
    pub camera: String,
    pub track_id: u32,
    pub part: u32,
    pub first_unix_ms: u64,
    pub last_unix_ms: u64,
    pub best_unix_ms: u64,
    pub first_frame: u64,
    pub last_frame: u64,
    pub best_frame: u64,
    pub frame_width: u32,
    pub frame_height: u32,
    /// [x1, y1, x2, y2] in frame pixels.
    pub bbox: [f32; 4],
    pub keypoints: Keypoints,
    pub confidence: f32,
    pub quality: f32,
    pub quality_parts: QualityParts,
    pub frames: u32,
    pub movement_px: f32,
    pub moving_share: f32,
    /// Tracks stitched into this event (a person lost behind something and
    /// found again as a new track), in order; empty for a single track.
    #[serde(default)]
    pub merged_track_ids: Vec<u32>,
    /// Post number within the track (realtime mode posts several; 0 in
    /// overall mode), and whether it is the track's last record.
    #[serde(default)]
    pub sequence: u32,
    #[serde(default, rename = "final")]
    pub is_final: bool,
    /// A final record whose face was already sent as post `repeat_of`: it
    /// tells receivers the track ended; FindFace is not sent it again.
    #[serde(default)]
    pub repeat_of: Option<u32>,
    /// When faceflow made this record (wall clock, ms): minus
    /// `first_unix_ms`, how long after the person appeared it left.
    #[serde(default)]
    pub emitted_unix_ms: u64,
    /// What Face Mesh read from the best face (None for zone events and
    /// faces scored from the detector's keypoints).
    #[serde(default)]
    pub mesh: Option<MeshRecord>,
}

/// A best face's Face Mesh landmarks and what faceflow read from them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MeshRecord {
    /// Head roll, degrees (yaw and pitch are the record's `yaw_deg` and
    /// `pitch_deg`, from the mesh when it is here).
    pub roll_deg: f32,
    /// Mean eye aspect ratio (lid gap over eye width: ~0.3 open, < 0.1 closed)
    /// and the eye-openness part of the quality score (weight 2).
    pub eye_aspect: f32,
    pub eyes_part: f32,
    /// Face-presence probability from the mesh model.
    pub presence: f32,
    /// Where the eyes look (head pose + irises), degrees; None without the
    /// iris model.
    pub gaze_yaw_deg: Option<f32>,
    pub gaze_pitch_deg: Option<f32>,
    /// 468 mesh points, then the 5 iris points of each eye (the eye on the
    /// picture's left first): [x, y, z] in frame pixels, z relative depth
    /// (same scale as x, smaller = nearer). Rounded to 0.1 px. Empty when
    /// the keep store had no room for them.
    pub points: Vec<[f32; 3]>,
}

impl MeshRecord {
    pub fn new(g: &crate::landmarks::FaceGeometry, points: Option<&crate::pool::FrameRef>) -> Self {
        let r = |v: f32| (v * 10.0).round() / 10.0;
        MeshRecord {
            roll_deg: g.roll_deg,
            eye_aspect: g.eye_aspect,
            eyes_part: g.eyes_part(),
            presence: g.presence,
            gaze_yaw_deg: g.gaze.map(|g| g.0),
            gaze_pitch_deg: g.gaze.map(|g| g.1),
            points: points
                .map(|p| crate::face::keep::read_points(p).into_iter().map(|[x, y, z]| [r(x), r(y), r(z)]).collect())
                .unwrap_or_default(),
        }
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Accepted; the text says what the receiver answered.
    Done(String),
    /// Worth trying again later (network, 408/429/5xx).
    Retry(String),
    /// No answer within the timeout: the receiver may still have stored it,
    /// so the sender slows down (fewer requests in flight, longer timeout)
    /// as well as backing off.
    TimedOut(String),
    /// Refused for good (other 4xx, nothing extractable): dead-letter it.
    Permanent(String),
}

/// How one sink has fared with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryState {
    /// Written to a local sink (the outbox).
    Saved,
    /// In the remote sink's durable spool, not yet sent.
    Spooled,
    Delivered,
    /// The last attempt failed; another follows (`attempts` so far).
    Retrying {
        attempts: u32,
        why: String,
    },
    /// Refused for good: in the spool's `dead/` directory.
    Dead {
        why: String,
    },
    /// A local sink failed to write it.
    Failed {
        why: String,
    },
}

/// Wall-clock now, ms since the Unix epoch (0 before it).
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
