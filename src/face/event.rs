//! Best-face selection: follows each confirmed track, keeps the face and
//! detection with the highest quality (copied into the [`KeepStore`], so no
//! frame-pool slot is held), and when the track ends (or reaches
//! `max_frames_per_track`) validates it and yields ONE [`FaceEvent`].
//!
//! Realtime mode (per camera, `mode = "realtime"`), as FindFace's own video
//! worker offers it: a track posts its first face as soon as one reaches
//! `realtime_min_quality` (or when it is `realtime_max_wait_ms` old), then
//! a better one (by `realtime_min_improvement`) at most every
//! `realtime_interval_ms` (stream time), and at its end a `final` record:
//! the final best face if it beats every post by the same margin and the
//! interval has passed since the last post (the interval holds for every
//! post, so a person passing in under a second gets one), else a record
//! repeating the last post (`repeat_of`, not sent to FindFace). Every post
//! passes validation as the track stands when it is made.
//!
//! Landmarks (when the stage runs): a face whose detector-based quality
//! is within `landmarks.candidate_margin` of the track's best is sent to
//! the landmarks stage instead of being judged at once; its result is
//! scored with the mesh (head pose, eye openness, presence) and becomes
//! the best face if it beats it. A track's first face is kept at once
//! (and rescored when its result comes), so a track always has a best
//! face; a face the stage cannot take is judged from the detector's
//! keypoints, as without landmarks.
//!
//! Track stitching: a track that ends lost (hidden longer than the tracker
//! could bridge) and a track that started within `max_frames_lost` frames
//! near where the first was heading are one person: they become one event,
//! with the better best face and both ids in `merged_track_ids`. A lost
//! track's event waits out the lost period anyway, so this adds no delay.

use crate::config::{QualityConfig, TrackerConfig, ValidationConfig};
use crate::detect::{Detection, Keypoints};
use crate::face::attention::{self, HeadPose};
use crate::face::keep::{KeepStore, KeptFace};
use crate::face::quality::{self, QualityParts, Rejection, TrackStats};
use crate::geom::BBox;
use crate::landmarks::worker::LandmarkClient;
use crate::landmarks::{FaceGeometry, LandmarkResult};
use crate::pool::FrameRef;
use crate::track::{FrameUpdate, MAX_TRACKS};

mod stitch;

/// Tracks one event can be stitched from.
pub(crate) const MAX_MERGED: usize = 8;

/// A face this much better than its track's best (by the detector's
/// keypoints) is worth landmarks at once; smaller gains are frame-to-frame
/// jitter and wait for `landmarks.min_interval_ms`.
const CLEAR_GAIN: f32 = 0.03;

/// What the track thread hands to the sink thread.
#[allow(clippy::large_enum_variant)]
pub(crate) enum PipelineEvent {
    Face(FaceEvent),
    Zone(crate::face::zones::ZoneEvent),
}

/// One person's best face, ready for the sinks. Fixed size: building one
/// allocates nothing; the picture lives in the keep store.
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
    /// The best face (its region and the frame around it).
    pub face: KeptFace,
    /// Every track stitched into this event, oldest first, this one last;
    /// empty when the event is one track.
    pub merged_track_ids: heapless::Vec<u32, MAX_MERGED>,
    /// Post number within the track's part (0 = the first; always 0 in
    /// overall mode), whether it is the part's last, and, for a final record
    /// whose face was already posted, that post's number.
    pub sequence: u32,
    pub is_final: bool,
    pub repeat_of: Option<u32>,
    /// Made in realtime mode (several posts per track).
    pub realtime: bool,
    /// What Face Mesh read from the best face, and its points (a keep-store
    /// slot: see `keep::read_points`); None where it was scored from the
    /// detector's keypoints.
    pub geometry: Option<FaceGeometry>,
    pub points: Option<FrameRef>,
}

/// A camera's realtime-mode settings (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RealtimePolicy {
    pub interval_ms: u64,
    pub min_quality: f32,
    pub max_wait_ms: u64,
    pub min_improvement: f32,
}

impl RealtimePolicy {
    pub(crate) fn for_camera(c: &crate::config::CameraConfig) -> Option<Self> {
        (c.mode == crate::config::EventMode::Realtime).then_some(RealtimePolicy {
            interval_ms: c.realtime_interval_ms,
            min_quality: c.realtime_min_quality,
            max_wait_ms: c.realtime_max_wait_ms,
            min_improvement: c.realtime_min_improvement,
        })
    }
}

#[derive(Clone)]
struct Best {
    face: KeptFace,
    det: Detection,
    parts: QualityParts,
    quality: f32,
    geometry: Option<FaceGeometry>,
    points: Option<FrameRef>,
    /// The stage answered without points for this face (model error):
    /// it is not asked again.
    mesh_failed: bool,
    /// The face's score from the detector's keypoints alone: what new
    /// faces (scored the same way) are compared with to pick candidates.
    det_quality: f32,
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
    first_height: f32,
    last_height: f32,
    /// Tracks stitched in before this one, oldest first.
    merged: heapless::Vec<u32, MAX_MERGED>,
    /// Stream time of the part's first and latest frames (ms).
    first_pts_ms: u64,
    last_pts_ms: u64,
    /// Realtime mode: posts made, the stream time and quality of the last.
    posted: u32,
    last_post_pts: u64,
    posted_quality: f32,
    stats: TrackStats,
    best: Option<Best>,
    /// Landmark requests not yet answered, and the best detector-based
    /// quality among them (while some are out, only a face better than
    /// that is worth asking about too).
    pending: u32,
    asked_quality: f32,
    /// Stream time of the last face asked about.
    last_ask_pts: Option<u64>,
}

/// Counters of what selection decided.
#[derive(Default, Debug, Clone, Copy)]
pub struct SelectCounters {
    pub events: u64,
    pub rejected_movement: u64,
    pub rejected_confidence: u64,
    pub rejected_size: u64,
    pub rejected_moving_share: u64,
    /// Lost tracks stitched into a later track's event.
    pub stitched: u64,
    /// Realtime mode: posts made before a track's end.
    pub early_posts: u64,
    /// Tracks with no face Face Mesh called a face.
    pub rejected_not_face: u64,
    /// Landmark results that came after their track had closed.
    pub landmarks_late: u64,
    /// Faces the mesh model said were not faces.
    pub not_face: u64,
}

/// How a camera's selector uses the landmarks stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LandmarkPolicy {
    pub candidate_margin: f32,
    pub min_presence: f32,
    pub min_interval_ms: u64,
}

pub struct BestFaceSelector {
    camera: u8,
    quality: QualityConfig,
    validation: ValidationConfig,
    max_frames: u32,
    /// Frames a new track may start after a lost one to be stitched to it.
    stitch_frames: u64,
    realtime: Option<RealtimePolicy>,
    landmarks: Option<LandmarkPolicy>,
    live: heapless::Vec<Candidate, MAX_TRACKS>,
    /// The frames' width and height, once told: a lost track heading out
    /// of the picture is not stitched to one that starts after it.
    picture: Option<(f32, f32)>,
    /// The last observed frame's tracked faces: (box width px, quality).
    frame_faces: heapless::Vec<(f32, f32), MAX_TRACKS>,
    pub counters: SelectCounters,
}

impl BestFaceSelector {
    pub fn new(camera: u8, quality: QualityConfig, validation: ValidationConfig, tracker: &TrackerConfig) -> Self {
        BestFaceSelector {
            camera,
            quality,
            validation,
            max_frames: tracker.max_frames_per_track,
            stitch_frames: tracker.max_frames_lost as u64,
            realtime: None,
            landmarks: None,
            live: heapless::Vec::new(),
            picture: None,
            frame_faces: heapless::Vec::new(),
            counters: SelectCounters::default(),
        }
    }

    /// The size of this camera's frames (see `picture`).
    /// When it changes, the live candidates' positions are carried into
    /// the new picture's pixels (their best faces keep the frames they
    /// were taken from, with boxes in those frames' pixels).
    pub(crate) fn set_picture(&mut self, width: u32, height: u32) {
        let new = (width as f32, height as f32);
        if let Some(old) = self.picture.filter(|old| *old != new && old.0 > 0.0 && old.1 > 0.0) {
            let (sx, sy) = (new.0 / old.0, new.1 / old.1);
            let scale = |p: (f32, f32)| (p.0 * sx, p.1 * sy);
            for c in self.live.iter_mut() {
                c.first_center = scale(c.first_center);
                c.last_center = scale(c.last_center);
                c.first_height *= sy;
                c.last_height *= sy;
                c.stats.movement_px *= (sx * sy).sqrt();
            }
        }
        self.picture = Some(new);
    }

    /// Posts faces early (realtime mode) when `policy` is set.
    pub(crate) fn with_realtime(mut self, policy: Option<RealtimePolicy>) -> Self {
        self.realtime = policy;
        self
    }

    /// Sends candidate faces to the landmarks stage (see the module docs).
    pub(crate) fn with_landmarks(mut self, policy: Option<LandmarkPolicy>) -> Self {
        self.landmarks = policy;
        self
    }

    /// No landmark request is outstanding for the tracks (`only`, else
    /// all), and each best face has its landmarks (or could not get them).
    pub(crate) fn settled(&self, only: Option<&[u32]>, gaze: bool) -> bool {
        self.landmarks.is_none()
            || self
                .live
                .iter()
                .filter(|c| only.is_none_or(|ids| ids.contains(&c.track_id)))
                .all(|c| c.pending == 0 && c.best.as_ref().is_none_or(|b| b.mesh_failed || !lacks(b, gaze)))
    }

    /// Stream frame number of the track's best face so far.
    pub(crate) fn best_frame_of(&self, track_id: u32) -> Option<u64> {
        self.live.iter().find(|c| c.track_id == track_id).and_then(|c| c.best.as_ref()).map(|b| b.face.meta.seq)
    }

    pub fn live_tracks(&self) -> usize {
        self.live.len()
    }

    /// Width (px) and quality of each tracked face of the last observed
    /// frame (for the last-hour histograms).
    pub(crate) fn frame_faces(&self) -> &[(f32, f32)] {
        &self.frame_faces
    }

    /// Folds one frame's tracking result in; `emit` receives finished events.
    pub fn observe(
        &mut self,
        keep: &mut KeepStore,
        frame: &FrameRef,
        dets: &[Detection],
        upd: &FrameUpdate,
        emit: impl FnMut(FaceEvent),
    ) {
        self.observe_with(keep, frame, dets, upd, None, emit)
    }

    /// [`Self::observe`], sending candidate faces to the landmarks stage
    /// through `lm` (when this selector uses landmarks).
    pub(crate) fn observe_with(
        &mut self,
        keep: &mut KeepStore,
        frame: &FrameRef,
        dets: &[Detection],
        upd: &FrameUpdate,
        mut lm: Option<&mut LandmarkClient>,
        mut emit: impl FnMut(FaceEvent),
    ) {
        if self.landmarks.is_none() {
            lm = None;
        }
        self.observe_matches(keep, frame, dets, upd, lm.as_deref_mut(), &mut emit);
        if let Some(l) = lm {
            self.request_missing(l, None, false);
        }
        self.end_lost_tracks(&upd.ended, &mut emit);
    }

    /// Best faces judged from the detector's keypoints (the stage was full
    /// when they came) get their landmarks from their kept region now, as
    /// far as the stage's queue has room: every event should carry its
    /// mesh. `only`: just these tracks (ending ones). `gaze`: also best
    /// faces without their irises read (a track's final best face: irises
    /// cost twice the mesh, so candidates go without).
    pub(crate) fn request_missing(&mut self, lm: &mut LandmarkClient, only: Option<&[u32]>, gaze: bool) {
        if self.landmarks.is_none() {
            return;
        }
        let gaze = gaze && lm.has_iris();
        for c in self.live.iter_mut() {
            if c.pending > 0 || only.is_some_and(|ids| !ids.contains(&c.track_id)) {
                continue;
            }
            let Some(b) = c.best.as_ref().filter(|b| !b.mesh_failed && lacks(b, gaze)) else { continue };
            let f = &b.face;
            let region = crate::landmarks::KeptRegion {
                origin: (f.region.0 as f32, f.region.1 as f32),
                scale: f.crop_scale as f32,
            };
            if !lm.request_kept(&f.crop, region, c.track_id, c.part, &b.det, gaze) {
                return; // the queue is full: next frame
            }
            c.pending += 1;
        }
    }

    /// Folds in one landmark result: the face is scored with its mesh and
    /// becomes the track's best if it beats it (or rescores the best when
    /// it is the best). A result whose track has closed is counted late.
    pub(crate) fn apply_landmarks(&mut self, keep: &mut KeepStore, r: LandmarkResult, mut emit: impl FnMut(FaceEvent)) {
        let Some(policy) = self.landmarks else { return };
        let Some(idx) = self.live.iter().position(|c| c.track_id == r.track_id && c.part == r.part) else {
            self.counters.landmarks_late += 1;
            return;
        };
        let meta = *r.frame.meta();
        let pic = r.frame.planes();
        let c = &mut self.live[idx];
        c.pending = c.pending.saturating_sub(1);
        if c.pending == 0 {
            c.asked_quality = f32::NEG_INFINITY;
        }
        if r.kept.is_some() {
            // A kept best face's landmarks: it rescores that best (if it
            // still is the best); the rest of its parts stand.
            let Some(b) = c.best.as_mut().filter(|b| b.face.meta.seq == meta.seq) else { return };
            let Some(points) = r.points.as_ref() else {
                b.mesh_failed = true;
                return;
            };
            let g = r.geometry;
            c.stats.mesh_checked += 1;
            b.parts = QualityParts { frontality: g.frontality(), eyes: Some(g.eyes_part()), ..b.parts };
            b.quality = if g.presence >= policy.min_presence {
                c.stats.mesh_faces += 1;
                b.parts.total()
            } else {
                self.counters.not_face += 1;
                0.0
            };
            b.geometry = Some(g);
            b.points = keep.keep_points(meta.camera as usize, points);
            return;
        }
        let det_parts = quality::score(&self.quality, &r.det, &pic);
        let det_quality = det_parts.total();
        let (parts, q, geometry) = match &r.points {
            Some(_) => {
                let g = r.geometry;
                let parts = QualityParts { frontality: g.frontality(), eyes: Some(g.eyes_part()), ..det_parts };
                c.stats.mesh_checked += 1;
                if g.presence >= policy.min_presence {
                    c.stats.mesh_faces += 1;
                    (parts, parts.total(), Some(g))
                } else {
                    self.counters.not_face += 1;
                    (parts, 0.0, Some(g))
                }
            }
            // The model failed on this batch: the detector's keypoints.
            None => (det_parts, det_quality, None),
        };
        let is_best = c.best.as_ref().is_some_and(|b| b.face.meta.seq == meta.seq);
        if is_best {
            let points = r.points.as_ref().and_then(|p| keep.keep_points(meta.camera as usize, p));
            if let Some(b) = c.best.as_mut() {
                b.parts = parts;
                b.quality = q;
                b.geometry = geometry;
                b.points = points;
                b.mesh_failed = r.points.is_none();
            }
        } else if c.best.as_ref().is_none_or(|b| q > b.quality) {
            if let Some(face) = keep.keep(&r.frame, &r.det.bbox) {
                let points = r.points.as_ref().and_then(|p| keep.keep_points(meta.camera as usize, p));
                c.best = Some(Best {
                    face,
                    det: r.det,
                    parts,
                    quality: q,
                    geometry,
                    points,
                    mesh_failed: false,
                    det_quality,
                });
            }
        } else {
            return;
        }
        if let Some(ev) = self.maybe_post(idx, meta.pts_ms.max(self.live[idx].last_pts_ms)) {
            emit(ev);
        }
    }

    /// Closes every live track (end of stream).
    pub(crate) fn end_all(&mut self, mut emit: impl FnMut(FaceEvent)) {
        let ids: heapless::Vec<u32, MAX_TRACKS> = self.live.iter().map(|c| c.track_id).collect();
        self.end_tracks(&ids, &mut emit);
    }

    fn observe_matches(
        &mut self,
        keep: &mut KeepStore,
        frame: &FrameRef,
        dets: &[Detection],
        upd: &FrameUpdate,
        mut lm: Option<&mut LandmarkClient>,
        emit: &mut impl FnMut(FaceEvent),
    ) {
        let margin = self.landmarks.map_or(0.0, |p| p.candidate_margin);
        let interval_ms = self.landmarks.map_or(0, |p| p.min_interval_ms);
        let meta = *frame.meta();
        let pic = frame.planes();
        self.frame_faces.clear();
        for &(id, di) in upd.matched.iter() {
            let det = &dets[di];
            let parts = quality::score(&self.quality, det, &pic);
            let q = parts.total();
            let _ = self.frame_faces.push((det.bbox.width(), q));
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
                        first_height: det.bbox.height(),
                        last_height: det.bbox.height(),
                        merged: heapless::Vec::new(),
                        first_pts_ms: meta.pts_ms,
                        last_pts_ms: meta.pts_ms,
                        posted: 0,
                        last_post_pts: 0,
                        posted_quality: f32::NEG_INFINITY,
                        stats: TrackStats::default(),
                        best: None,
                        pending: 0,
                        asked_quality: f32::NEG_INFINITY,
                        last_ask_pts: None,
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
            c.last_height = det.bbox.height();
            c.last_pts_ms = meta.pts_ms;
            c.last_unix_ms = meta.captured_unix_ms;
            c.last_frame = meta.seq;
            // A candidate for landmarks: near or above the best (by the
            // detector's keypoints). Asked for, it waits for its result,
            // unless the track has no best face yet.
            // Near the best, better than any face still out, and either
            // better than the best or the first in `min_interval_ms` (a face
            // that stays about as good is looked at a few times a second,
            // not every frame).
            let rested = c.last_ask_pts.is_none_or(|t| meta.pts_ms.saturating_sub(t) >= interval_ms);
            let candidate = c
                .best
                .as_ref()
                .is_none_or(|b| q > b.det_quality - margin && (q > b.det_quality + CLEAR_GAIN || rested))
                && q > c.asked_quality;
            // Judged here: without landmarks, when the stage could not take
            // the face (counted there), as a first best face to hold until
            // the stage answers, or (realtime mode) as a face good enough for
            // the track's first post, which must not wait for the stage.
            let first_post = self.realtime.is_some_and(|rt| c.posted == 0 && q >= rt.min_quality);
            let judge_now = first_post
                || match lm.as_deref_mut() {
                    None => true,
                    Some(l) if candidate => {
                        let asked = l.request(frame, id, c.part, det);
                        if asked {
                            c.pending += 1;
                            c.asked_quality = q;
                            c.last_ask_pts = Some(meta.pts_ms);
                        }
                        !asked || c.best.is_none()
                    }
                    Some(_) => c.best.is_none(),
                };
            if judge_now && c.best.as_ref().is_none_or(|b| q > b.quality) {
                // A full store keeps the best face the track already has
                // (counted by the store); the next improvement tries again.
                if let Some(face) = keep.keep(frame, &det.bbox) {
                    c.best = Some(Best {
                        face,
                        det: *det,
                        parts,
                        quality: q,
                        geometry: None,
                        points: None,
                        mesh_failed: false,
                        det_quality: q,
                    });
                }
            }
            if s.frames >= self.max_frames {
                let c = &mut self.live[idx];
                let part = c.part;
                if let Some(ev) = Self::close(self.camera, &self.validation, &mut self.counters, c, self.realtime) {
                    emit(ev);
                }
                let c = &mut self.live[idx];
                c.part = part + 1;
                c.stats = TrackStats::default();
                c.first_center = center;
                c.first_unix_ms = meta.captured_unix_ms;
                c.first_frame = meta.seq;
                c.first_pts_ms = meta.pts_ms;
                c.posted = 0;
                c.posted_quality = f32::NEG_INFINITY;
                c.best = None;
                // Results still coming are for the closed part: late.
                c.pending = 0;
                c.asked_quality = f32::NEG_INFINITY;
            } else if let Some(ev) = self.maybe_post(idx, meta.pts_ms) {
                emit(ev);
            }
        }
    }

    /// Closes the given tracks, validating each into at most one event.
    pub(crate) fn end_tracks(&mut self, ended: &[u32], emit: &mut impl FnMut(FaceEvent)) {
        for &id in ended.iter() {
            if let Some(i) = self.live.iter().position(|c| c.track_id == id) {
                let mut c = self.live.swap_remove(i);
                if let Some(ev) = Self::close(self.camera, &self.validation, &mut self.counters, &mut c, self.realtime)
                {
                    emit(ev);
                }
            }
        }
    }

    /// Realtime mode: the track's next post, if one is due now (stream
    /// time `pts_ms`).
    fn maybe_post(&mut self, idx: usize, pts_ms: u64) -> Option<FaceEvent> {
        let rt = self.realtime?;
        let c = &mut self.live[idx];
        let best = c.best.as_ref()?;
        let due = if c.posted == 0 {
            (best.quality >= rt.min_quality || pts_ms.saturating_sub(c.first_pts_ms) >= rt.max_wait_ms)
                && quality::validate(&self.validation, &c.stats).is_ok()
        } else {
            pts_ms.saturating_sub(c.last_post_pts) >= rt.interval_ms
                && best.quality >= c.posted_quality + rt.min_improvement
        };
        if !due {
            return None;
        }
        let ev = event(self.camera, c, best.clone(), c.posted, false, None, true);
        c.posted += 1;
        c.last_post_pts = pts_ms;
        c.posted_quality = ev.quality;
        self.counters.early_posts += 1;
        Some(ev)
    }

    fn close(
        camera: u8,
        v: &ValidationConfig,
        counters: &mut SelectCounters,
        c: &mut Candidate,
        realtime: Option<RealtimePolicy>,
    ) -> Option<FaceEvent> {
        let best = c.best.take()?;
        if let (Some(rt), true) = (realtime, c.posted > 0) {
            // Posted already: the final record carries a new face only if
            // it beats every post by the improvement margin.
            counters.events += 1;
            let better = best.quality >= c.posted_quality + rt.min_improvement
                && c.last_pts_ms.saturating_sub(c.last_post_pts) >= rt.interval_ms;
            let repeat = (!better).then(|| c.posted - 1);
            return Some(event(camera, c, best, c.posted, true, repeat, true));
        }
        match quality::validate(v, &c.stats) {
            Ok(()) => {
                counters.events += 1;
                Some(event(camera, c, best, c.posted, true, None, realtime.is_some()))
            }
            Err(r) => {
                match r {
                    Rejection::NotMoving => counters.rejected_movement += 1,
                    Rejection::LowConfidence => counters.rejected_confidence += 1,
                    Rejection::TooSmall => counters.rejected_size += 1,
                    Rejection::RarelyMoving => counters.rejected_moving_share += 1,
                    Rejection::NotAFace => counters.rejected_not_face += 1,
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

/// The best face still needs landmarks (or, with `gaze`, its irises read;
/// a face the mesh says is not a face needs no irises).
fn lacks(b: &Best, gaze: bool) -> bool {
    match &b.geometry {
        None => true,
        Some(g) => gaze && g.gaze.is_none() && g.presence > 0.0 && b.quality > 0.0,
    }
}

/// The event for `c`'s best face `best`.
fn event(
    camera: u8,
    c: &Candidate,
    best: Best,
    sequence: u32,
    is_final: bool,
    repeat_of: Option<u32>,
    realtime: bool,
) -> FaceEvent {
    let meta = best.face.meta;
    let mut merged_track_ids = heapless::Vec::new();
    if !c.merged.is_empty() {
        merged_track_ids = c.merged.clone();
        let _ = merged_track_ids.push(c.track_id);
    }
    FaceEvent {
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
        pose: match best.geometry {
            Some(g) => Some(HeadPose { yaw_deg: g.yaw_deg, pitch_deg: g.pitch_deg }),
            None => attention::head_pose(&best.det.keypoints),
        },
        attentive: false,
        face: best.face,
        merged_track_ids,
        sequence,
        is_final,
        repeat_of,
        realtime,
        geometry: best.geometry,
        points: best.points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{i420_len, FrameMeta, FramePool};

    const W: u32 = 640;
    const H: u32 = 360;

    fn frame(pool: &FramePool, seq: u64) -> FrameRef {
        let mut f = pool.acquire().expect("a free slot");
        for (i, b) in f.buffer_mut()[..i420_len(W, H)].iter_mut().enumerate() {
            *b = (i % 199) as u8;
        }
        *f.meta_mut() = FrameMeta { width: W, height: H, seq, captured_unix_ms: 1000 + seq * 40, ..Default::default() };
        f.freeze()
    }

    fn det(cx: f32) -> Detection {
        Detection { bbox: BBox::new(cx - 30.0, 140.0, cx + 30.0, 220.0), score: 0.9, keypoints: Default::default() }
    }

    /// Track `a` walks right for frames 0..40 and is given up (ended) at
    /// frame 100; track `b` starts at frame `b_start` at `b_x`.
    fn run(b_start: u64, b_x: f32) -> Vec<FaceEvent> {
        run_in(b_start, b_x, Some((W, H)))
    }

    /// The same, with the selector told `picture` as the frames' size.
    fn run_in(b_start: u64, b_x: f32, picture: Option<(u32, u32)>) -> Vec<FaceEvent> {
        run_with(b_start, b_x, 4.0, picture)
    }

    /// The same, track `b` moving `b_dx` pixels a frame.
    fn run_with(b_start: u64, b_x: f32, b_dx: f32, picture: Option<(u32, u32)>) -> Vec<FaceEvent> {
        let pool = FramePool::new(4, i420_len(W, H));
        let mut keep = KeepStore::new(8, 1, W, H);
        let mut sel =
            BestFaceSelector::new(0, QualityConfig::default(), ValidationConfig::default(), &Default::default());
        if let Some((w, h)) = picture {
            sel.set_picture(w, h);
        }
        let mut events = Vec::new();
        let lost_for = TrackerConfig::default().max_frames_lost as u64;
        for seq in 0..(b_start + 50).max(160) {
            let f = frame(&pool, seq);
            let mut dets = heapless::Vec::<Detection, 2>::new();
            let mut upd = FrameUpdate::default();
            if seq < 40 {
                let _ = dets.push(det(100.0 + 4.0 * seq as f32));
                let _ = upd.matched.push((1, dets.len() - 1));
            }
            if seq >= b_start && seq < b_start + 40 {
                let k = (seq - b_start) as f32;
                let _ = dets.push(det(b_x + b_dx * k));
                let _ = upd.matched.push((2, dets.len() - 1));
            }
            // Last seen on frame 39: the tracker removes it once lost longer.
            if seq == 40 + lost_for {
                let _ = upd.ended.push(1);
            }
            sel.observe(&mut keep, &f, &dets, &upd, |e| events.push(e));
        }
        sel.end_all(|e| events.push(e));
        events
    }

    #[test]
    fn a_lost_track_found_again_as_a_new_one_is_one_event() {
        // Track 1 was last seen at x 256 on frame 39; 30 frames later at 4
        // px a frame it would be at 376: track 2 starts there.
        let events = run(69, 376.0);
        assert_eq!(events.len(), 1, "one person, one event");
        let e = &events[0];
        assert_eq!(e.merged_track_ids.as_slice(), &[1, 2]);
        assert_eq!((e.track_id, e.first_frame, e.last_frame), (2, 0, 108));
        assert_eq!(e.stats.frames, 80, "both tracks' frames count");
    }

    #[test]
    fn a_new_track_elsewhere_or_too_late_is_a_new_person() {
        let far = run(69, 600.0);
        assert_eq!(far.len(), 2, "far from where track 1 was heading");
        assert!(far.iter().all(|e| e.merged_track_ids.is_empty()));
        // Just after the tracker gave track 1 up (lost longer than
        // max_frames_lost), where its path leads.
        let lost_for = TrackerConfig::default().max_frames_lost as u64;
        let late = run(41 + lost_for, 256.0 + 4.0 * (lost_for + 2) as f32);
        assert_eq!(late.len(), 2);
    }

    #[test]
    fn a_track_that_walked_out_of_the_picture_is_not_stitched() {
        // Track 1's path puts it at x 376 on frame 69: inside a 640 px
        // picture (stitched, above), but 36 px past the edge of a 300 px
        // one, more than half a face (40 px) out: whoever starts there
        // came in after track 1 left.
        let out = run_in(69, 376.0, Some((300, H)));
        assert_eq!(out.len(), 2, "two people at a door");
        assert!(out.iter().all(|e| e.merged_track_ids.is_empty()));
        // Without the picture's size the old rule holds (stitched).
        assert_eq!(run_in(69, 376.0, None).len(), 1);
    }

    #[test]
    fn a_new_track_walking_the_other_way_is_someone_else() {
        // Where track 1's path leads, but walking back: two people passing.
        let back = run_with(69, 376.0, -4.0, Some((W, H)));
        assert_eq!(back.len(), 2, "two people passing each other");
        assert!(back.iter().all(|e| e.merged_track_ids.is_empty()));
        // Standing there (no direction): still the same person found again.
        assert_eq!(run_with(69, 376.0, 0.0, Some((W, H))).len(), 1);
        // Walking on at half the pace: the same person.
        assert_eq!(run_with(69, 376.0, 2.0, Some((W, H))).len(), 1);
    }
}
