//! Best-face selection: follows each confirmed track, keeps the frame and
//! detection with the highest quality, and when the track ends (or reaches
//! `max_frames_per_track`) validates it and yields ONE [`FaceEvent`].

use crate::attention::{self, HeadPose};
use crate::config::{QualityConfig, TrackerConfig, ValidationConfig};
use crate::detect::{Detection, Keypoints};
use crate::geom::BBox;
use crate::pool::FrameRef;
use crate::quality::{self, QualityParts, Rejection, TrackStats};
use crate::track::{FrameUpdate, MAX_TRACKS};

/// What the track thread hands to the sink thread.
#[allow(clippy::large_enum_variant)]
pub enum PipelineEvent {
    Face(FaceEvent),
    Zone(crate::zones::ZoneEvent),
}

/// One person's best face, ready for the sinks. Fixed size: building one
/// allocates nothing; the picture is a pool reference.
#[derive(Clone, Debug)]
pub struct FaceEvent {
    pub camera: u8,
    pub track_id: u32,
    /// Event number within the track (a long track yields several).
    pub part: u32,
    pub first_unix_ms: u64,
    pub last_unix_ms: u64,
    pub best_unix_ms: u64,
    pub first_frame: u64,
    pub last_frame: u64,
    pub best_frame: u64,
    pub bbox: BBox,
    pub keypoints: Keypoints,
    pub confidence: f32,
    pub quality: f32,
    pub parts: QualityParts,
    pub stats: TrackStats,
    /// Head pose of the best face, from its keypoints.
    pub pose: Option<HeadPose>,
    /// The best face looks at the camera (see `attention`).
    pub attentive: bool,
    /// The frame holding the best face.
    pub frame: FrameRef,
}

struct Best {
    frame: FrameRef,
    det: Detection,
    parts: QualityParts,
    quality: f32,
}

struct Candidate {
    track_id: u32,
    part: u32,
    first_unix_ms: u64,
    last_unix_ms: u64,
    first_frame: u64,
    last_frame: u64,
    first_center: (f32, f32),
    last_center: (f32, f32),
    stats: TrackStats,
    best: Option<Best>,
}

/// Counters of what selection decided.
#[derive(Default, Debug, Clone, Copy)]
pub struct SelectCounters {
    pub events: u64,
    pub rejected_movement: u64,
    pub rejected_confidence: u64,
    pub rejected_size: u64,
    pub rejected_moving_share: u64,
}

pub struct BestFaceSelector {
    camera: u8,
    quality: QualityConfig,
    validation: ValidationConfig,
    max_frames: u32,
    live: heapless::Vec<Candidate, MAX_TRACKS>,
    pub counters: SelectCounters,
}

impl BestFaceSelector {
    pub fn new(camera: u8, quality: QualityConfig, validation: ValidationConfig, tracker: &TrackerConfig) -> Self {
        BestFaceSelector {
            camera,
            quality,
            validation,
            max_frames: tracker.max_frames_per_track,
            live: heapless::Vec::new(),
            counters: SelectCounters::default(),
        }
    }

    /// Stream frame number of the track's best face so far.
    pub fn best_frame_of(&self, track_id: u32) -> Option<u64> {
        self.live.iter().find(|c| c.track_id == track_id).and_then(|c| c.best.as_ref()).map(|b| b.frame.meta().seq)
    }

    pub fn live_tracks(&self) -> usize {
        self.live.len()
    }

    /// Folds one frame's tracking result in; `emit` receives finished events.
    pub fn observe(
        &mut self,
        frame: &FrameRef,
        dets: &[Detection],
        upd: &FrameUpdate,
        mut emit: impl FnMut(FaceEvent),
    ) {
        self.observe_matches(frame, dets, upd, &mut emit);
        self.end_tracks(&upd.ended, &mut emit);
    }

    /// Closes every live track (end of stream).
    pub fn end_all(&mut self, mut emit: impl FnMut(FaceEvent)) {
        let ids: heapless::Vec<u32, MAX_TRACKS> = self.live.iter().map(|c| c.track_id).collect();
        self.end_tracks(&ids, &mut emit);
    }

    fn observe_matches(
        &mut self,
        frame: &FrameRef,
        dets: &[Detection],
        upd: &FrameUpdate,
        emit: &mut impl FnMut(FaceEvent),
    ) {
        let meta = *frame.meta();
        let pic = frame.planes();
        for &(id, di) in upd.matched.iter() {
            let det = &dets[di];
            let parts = quality::score(&self.quality, det, &pic);
            let q = parts.total();
            let center = det.bbox.center();
            let idx = match self.live.iter().position(|c| c.track_id == id) {
                Some(i) => i,
                None => {
                    let fresh = Candidate {
                        track_id: id,
                        part: 0,
                        first_unix_ms: meta.captured_unix_ms,
                        last_unix_ms: meta.captured_unix_ms,
                        first_frame: meta.seq,
                        last_frame: meta.seq,
                        first_center: center,
                        last_center: center,
                        stats: TrackStats::default(),
                        best: None,
                    };
                    if self.live.push(fresh).is_err() {
                        continue; // the tracker holds at most MAX_TRACKS, so this cannot happen
                    }
                    self.live.len() - 1
                }
            };
            let c = &mut self.live[idx];
            let s = &mut c.stats;
            if s.frames > 0 {
                let step = ((center.0 - c.last_center.0).powi(2) + (center.1 - c.last_center.1).powi(2)).sqrt();
                if step >= self.validation.moving_frame_px {
                    s.moving_frames += 1;
                }
            }
            s.frames += 1;
            let from_start = ((center.0 - c.first_center.0).powi(2) + (center.1 - c.first_center.1).powi(2)).sqrt();
            s.movement_px = s.movement_px.max(from_start);
            s.best_confidence = s.best_confidence.max(det.score);
            s.best_width = s.best_width.max(det.bbox.width());
            c.last_center = center;
            c.last_unix_ms = meta.captured_unix_ms;
            c.last_frame = meta.seq;
            if c.best.as_ref().is_none_or(|b| q > b.quality) {
                c.best = Some(Best { frame: frame.clone(), det: *det, parts, quality: q });
            }
            if s.frames >= self.max_frames {
                let c = &mut self.live[idx];
                let part = c.part;
                if let Some(ev) = Self::close(self.camera, &self.validation, &mut self.counters, c) {
                    emit(ev);
                }
                let c = &mut self.live[idx];
                c.part = part + 1;
                c.stats = TrackStats::default();
                c.first_center = center;
                c.first_unix_ms = meta.captured_unix_ms;
                c.first_frame = meta.seq;
                c.best = None;
            }
        }
    }

    /// Closes the given tracks, validating each into at most one event.
    pub fn end_tracks(&mut self, ended: &[u32], emit: &mut impl FnMut(FaceEvent)) {
        for &id in ended.iter() {
            if let Some(i) = self.live.iter().position(|c| c.track_id == id) {
                let mut c = self.live.swap_remove(i);
                if let Some(ev) = Self::close(self.camera, &self.validation, &mut self.counters, &mut c) {
                    emit(ev);
                }
            }
        }
    }

    fn close(camera: u8, v: &ValidationConfig, counters: &mut SelectCounters, c: &mut Candidate) -> Option<FaceEvent> {
        let best = c.best.take()?;
        match quality::validate(v, &c.stats) {
            Ok(()) => {
                counters.events += 1;
                let meta = *best.frame.meta();
                Some(FaceEvent {
                    camera,
                    track_id: c.track_id,
                    part: c.part,
                    first_unix_ms: c.first_unix_ms,
                    last_unix_ms: c.last_unix_ms,
                    best_unix_ms: meta.captured_unix_ms,
                    first_frame: c.first_frame,
                    last_frame: c.last_frame,
                    best_frame: meta.seq,
                    bbox: best.det.bbox,
                    keypoints: best.det.keypoints,
                    confidence: best.det.score,
                    quality: best.quality,
                    parts: best.parts,
                    stats: c.stats,
                    pose: attention::head_pose(&best.det.keypoints),
                    attentive: false,
                    frame: best.frame,
                })
            }
            Err(r) => {
                match r {
                    Rejection::NotMoving => counters.rejected_movement += 1,
                    Rejection::LowConfidence => counters.rejected_confidence += 1,
                    Rejection::TooSmall => counters.rejected_size += 1,
                    Rejection::RarelyMoving => counters.rejected_moving_share += 1,
                }
                log::debug!(
                    "camera {camera} track {}: no event, fails validation.{} ({:?})",
                    c.track_id,
                    r.as_str(),
                    c.stats
                );
                None
            }
        }
    }
}
