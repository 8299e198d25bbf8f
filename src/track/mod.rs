//! Multi-object tracking with ByteTrack (Zhang et al., 2022): a Kalman
//! filter per track and two-stage IoU matching, first against confident
//! detections, then against the low-score ones that plain trackers throw
//! away (occluded or blurred faces), with a buffer of lost tracks that can
//! be re-found. One `ByteTracker` per camera; fixed capacity, no allocation
//! per frame.
//!
//! Occlusions, after OC-SORT (Cao et al., CVPR 2023), because a face hidden
//! for a second or two comes back where its Kalman prediction is not (the
//! filter drifts on the velocity of the shrinking, half-hidden boxes):
//! - lost tracks are gated by size-normalised centre distance to where
//!   their *observations* say the face is now (last observed box plus the
//!   observed velocity over the last [`OBS_HISTORY`] observations), the
//!   gate widening with the frames lost, not by IoU with the prediction;
//! - observation-centric recovery: tracks that just lost their match try
//!   the remaining detections against their last observed box;
//! - observation-centric re-update: a track re-found after k frames has
//!   its filter re-run from its last observation along the straight line
//!   to the new one, so no drifted velocity survives.

pub mod assign;
pub mod kalman;
pub mod preview;
pub mod worker;

use crate::config::TrackerConfig;
use crate::detect::Detection;
use crate::geom::BBox;
use assign::Assigner;
use kalman::{KalmanState, Vec4};

/// Most live (tracked, tentative or lost) tracks per camera: derived from
/// the board profile's capacity (build.rs).
pub(crate) const MAX_TRACKS: usize = crate::board::MAX_TRACKS;
/// IoU a tentative track needs to be confirmed (ByteTrack's 0.7 distance).
const CONFIRM_IOU: f32 = 0.3;
/// Observations a track remembers for its observed velocity.
pub(crate) const OBS_HISTORY: usize = 8;
/// Lost-track gate, in face heights between the detection's centre and the
/// observed path: this much at first, growing per frame lost up to the cap.
const LOST_GATE_BASE: f32 = 0.6;
const LOST_GATE_PER_FRAME: f32 = 0.015;
const LOST_GATE_MAX: f32 = 1.5;
/// Across a moving face's path the gate grows at this share of the rate
/// along it: a walker hidden for a second arrives early or late on the
/// line it walked, hardly beside it.
const LOST_GATE_ACROSS_SHARE: f32 = 0.3;
/// Heading speed (face heights a frame) from which a lost track's gate is
/// an ellipse: an eighth of its height a second at 25 fps.
const LOST_GATE_MIN_SPEED: f32 = 0.005;
/// Weight of each observation in a track's heading (about the last 30).
const HEADING_RATE: f32 = 1.0 / 32.0;
/// Size change (height ratio) a re-found face may show.
const LOST_SIZE_RATIO: f32 = 1.6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackState {
    /// Matched on the last frame.
    Tracked,
    /// Not matched recently; kept for `max_frames_lost` frames.
    Lost,
}

#[derive(Clone, Copy, Debug)]
pub struct Track {
    pub id: u32,
    pub state: TrackState,
    /// Confirmed (matched on two frames, or born on the first frame).
    pub activated: bool,
    kf: KalmanState,
    /// The last observed (detected) box.
    pub last_obs: BBox,
    /// The last observed boxes and their frames: a ring, `obs_next` the
    /// slot the next one goes to.
    obs: [(BBox, u64); OBS_HISTORY],
    obs_len: usize,
    obs_next: usize,
    /// Width / height of the face when seen whole (slow average that
    /// ignores boxes clipped by an occluder or the frame edge).
    aspect: f32,
    /// Slow average of the observed centre's velocity (pixels a frame):
    /// the way the face has been walking, which the few boxes clipped by an
    /// occluder just before it hid cannot turn.
    heading: (f32, f32),
    /// Frame of the last match.
    pub last_frame: u64,
    pub start_frame: u64,
    pub hits: u32,
    pub score: f32,
}

impl Track {
    /// Carries the track into a picture scaled by `sx` across, `sy` down.
    fn rescale(&mut self, sx: f32, sy: f32) {
        self.kf.rescale(sx as f64, sy as f64);
        self.last_obs = self.last_obs.scaled(sx, sy);
        for (b, _) in self.obs.iter_mut() {
            *b = b.scaled(sx, sy);
        }
        self.aspect *= sx / sy;
        self.heading = (self.heading.0 * sx, self.heading.1 * sy);
    }

    /// Where the observations put the whole face at `frame`.
    ///
    /// A face walking behind something keeps one true edge (the trailing
    /// one) while the other is stuck at the occluder, so the centre of its
    /// boxes slows down: a velocity from centres would say the face stopped.
    /// So each axis moves by the velocity of its faster edge when both edges
    /// go the same way (or one stands still), by the centre's when they part
    /// (a face coming closer), anchored at that edge, and the box is given
    /// the width of the whole face (`aspect` x height).
    pub(crate) fn observed_box_at(&self, frame: u64) -> BBox {
        if self.obs_len == 0 {
            return self.last_obs;
        }
        let oldest = if self.obs_len == OBS_HISTORY { self.obs_next } else { 0 };
        let (a, fa) = self.obs[oldest];
        let (b, fb) = self.newest_obs();
        let dt = fb.saturating_sub(fa).max(1) as f32;
        let k = frame.saturating_sub(fb) as f32;
        let h = b.height().max(1.0);
        let w = b.width().max(self.aspect * h);
        let axis = |lo0: f32, hi0: f32, lo1: f32, hi1: f32, size: f32| -> (f32, f32) {
            let (vlo, vhi) = ((lo1 - lo0) / dt, (hi1 - hi0) / dt);
            // An edge held by an occluder (or the frame's edge) jitters
            // around zero: it counts as standing, not as moving the other way.
            let standing = |v: f32, other: f32| v.abs() < 0.5f32.max(0.25 * other.abs());
            if vlo * vhi >= 0.0 || standing(vlo, vhi) || standing(vhi, vlo) {
                if vlo.abs() >= vhi.abs() {
                    let lo = lo1 + vlo * k;
                    (lo, lo + size)
                } else {
                    let hi = hi1 + vhi * k;
                    (hi - size, hi)
                }
            } else {
                let c = (lo1 + hi1) / 2.0 + (vlo + vhi) / 2.0 * k;
                (c - size / 2.0, c + size / 2.0)
            }
        };
        let (x1, x2) = axis(a.x1, a.x2, b.x1, b.x2, w);
        let (y1, y2) = axis(a.y1, a.y2, b.y1, b.y2, h);
        BBox::new(x1, y1, x2, y2)
    }

    /// The newest observed box and its frame (`obs_len` > 0).
    fn newest_obs(&self) -> (BBox, u64) {
        self.obs[(self.obs_next + OBS_HISTORY - 1) % OBS_HISTORY]
    }

    fn observe(&mut self, b: &BBox, frame: u64) {
        if self.obs_len > 0 {
            let (_, prev_frame) = self.newest_obs();
            let dt = frame.saturating_sub(prev_frame).max(1) as f32;
            let ((x0, y0), (x1, y1)) = (self.last_obs.center(), b.center());
            let v = ((x1 - x0) / dt, (y1 - y0) / dt);
            self.heading.0 += HEADING_RATE * (v.0 - self.heading.0);
            self.heading.1 += HEADING_RATE * (v.1 - self.heading.1);
        }
        self.obs[self.obs_next] = (*b, frame);
        self.obs_next = (self.obs_next + 1) % OBS_HISTORY;
        self.obs_len = (self.obs_len + 1).min(OBS_HISTORY);
        let a = b.width() / b.height().max(1.0);
        if self.aspect <= 0.0 {
            self.aspect = a;
        } else if (a - self.aspect).abs() < 0.15 * self.aspect {
            self.aspect += 0.1 * (a - self.aspect);
        }
        self.last_obs = *b;
    }

    /// The filter's current box estimate.
    pub fn bbox(&self) -> BBox {
        let m = &self.kf.mean;
        let h = m[3] as f32;
        let w = (m[2] * m[3]) as f32;
        let (cx, cy) = (m[0] as f32, m[1] as f32);
        BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }
}

/// For a lost track and a detection: `Some(0..1)` (0 on the observed path,
/// 1 at the gate's edge) when the detection is within the gate of where the
/// track's observations put the face now (`Track::observed_box_at`), in
/// face heights, and its size is plausible; `None` outside. For a face
/// that was moving the gate is an ellipse along its path: it grows with
/// the frames lost along the path, much less across it. A detection
/// clipped by the occluder it comes out of is measured by its true edge, so
/// the visible part of a face counts.
///
/// A track whose observed path has carried the face wholly out of the
/// picture (`picture` = frame width and height, when known) walked out: it
/// is not found again, so someone stepping in at the same edge moments
/// later is a new person, not the one who left.
fn lost_gate(t: &Track, det: &BBox, frame: u64, picture: Option<(f32, f32)>) -> Option<f32> {
    let h = t.last_obs.height().max(1.0);
    let ratio = det.height() / h;
    if !(1.0 / LOST_SIZE_RATIO..=LOST_SIZE_RATIO).contains(&ratio) {
        return None;
    }
    let p = t.observed_box_at(frame);
    if let Some((w, ph)) = picture {
        if p.x2 <= 0.0 || p.y2 <= 0.0 || p.x1 >= w || p.y1 >= ph {
            return None;
        }
    }
    let (px, py) = p.center();
    // Along x, centre to centre when the widths agree; when the detection
    // is narrower (clipped by the occluder it comes out of, or the frame
    // edge), one of its edges is still true: the nearer pair of edges.
    let (dx, dy) = det.center();
    let ex = if det.width() < 0.8 * p.width() {
        let (l, r) = (det.x1 - p.x1, det.x2 - p.x2);
        if l.abs() <= r.abs() {
            l
        } else {
            r
        }
    } else {
        dx - px
    };
    let lost = frame.saturating_sub(t.last_frame) as f32;
    let along_gate = (LOST_GATE_BASE + LOST_GATE_PER_FRAME * lost).min(LOST_GATE_MAX);
    // A face that was walking somewhere is looked for along the line it
    // walked: the error along its heading is measured from the predicted
    // box, growing as above; across it, from the line through its last
    // observation, with a gate that grows slower (an ellipse). The line,
    // not the predicted box, because a face's last boxes before it hides
    // shrink and jitter, which bends the prediction off its line. A face
    // that stood still may have gone anywhere (a circle).
    let speed = (t.heading.0 * t.heading.0 + t.heading.1 * t.heading.1).sqrt();
    let d = if speed < LOST_GATE_MIN_SPEED * h {
        (ex * ex + (dy - py).powi(2)).sqrt() / h / along_gate
    } else {
        let (ux, uy) = (t.heading.0 / speed, t.heading.1 / speed);
        let along = (ex * ux + (dy - py) * uy) / h;
        let (lx, ly) = t.last_obs.center();
        let across = ((px + ex - lx) * uy - (dy - ly) * ux) / h;
        let across_gate = (LOST_GATE_BASE + LOST_GATE_ACROSS_SHARE * LOST_GATE_PER_FRAME * lost).min(LOST_GATE_MAX);
        ((along / along_gate).powi(2) + (across / across_gate).powi(2)).sqrt()
    };
    (d < 1.0).then_some(d)
}

fn xyah(b: &BBox) -> Vec4 {
    let (cx, cy) = b.center();
    let h = b.height().max(1.0);
    [cx as f64, cy as f64, (b.width() / h) as f64, h as f64]
}

/// What one frame did to the tracks.
#[derive(Default, Debug)]
pub struct FrameUpdate {
    /// (track id, detection index) for every detection a confirmed track took.
    pub matched: heapless::Vec<(u32, usize), MAX_TRACKS>,
    /// Confirmed tracks that ended on this frame (lost for too long).
    pub ended: heapless::Vec<u32, MAX_TRACKS>,
}

pub struct ByteTracker {
    cfg: TrackerConfig,
    min_score: f32,
    tracks: heapless::Vec<Track, MAX_TRACKS>,
    frame: u64,
    next_id: u32,
    assigner: Assigner,
    out: FrameUpdate,
    /// Tracks refused because the table was full (counted, never silent).
    pub overflow: u64,
    /// The frames' width and height, once told (`set_picture`).
    picture: Option<(f32, f32)>,
}

impl ByteTracker {
    pub fn new(cfg: TrackerConfig, min_score: f32) -> Self {
        ByteTracker {
            cfg,
            min_score,
            tracks: heapless::Vec::new(),
            frame: 0,
            next_id: 1,
            assigner: Assigner::default(),
            out: FrameUpdate::default(),
            overflow: 0,
            picture: None,
        }
    }

    /// The size of the frames this tracker follows faces in: a lost track
    /// whose path has left the picture is no longer found again. When it
    /// changes (a camera reconfigured mid-stream), every track is carried
    /// into the new picture's pixels, so the people in view keep their
    /// tracks; returns whether it changed.
    pub(crate) fn set_picture(&mut self, width: u32, height: u32) -> bool {
        let new = (width as f32, height as f32);
        let changed = self.picture.is_some_and(|old| old != new && old.0 > 0.0 && old.1 > 0.0);
        if let (true, Some(old)) = (changed, self.picture) {
            let (sx, sy) = (new.0 / old.0, new.1 / old.1);
            for t in self.tracks.iter_mut() {
                t.rescale(sx, sy);
            }
        }
        self.picture = Some(new);
        changed
    }

    /// The frames' size last told (`set_picture`).
    pub fn picture(&self) -> Option<(f32, f32)> {
        self.picture
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// What the last `update`, `predict_only` or `finish` returned.
    pub(crate) fn last_update(&self) -> &FrameUpdate {
        &self.out
    }

    /// A frame without detection (skipped): tracks coast on their filters.
    pub(crate) fn predict_only(&mut self) -> &FrameUpdate {
        self.frame += 1;
        self.out.matched.clear();
        self.out.ended.clear();
        for t in self.tracks.iter_mut() {
            if t.activated {
                t.kf.predict(t.state == TrackState::Tracked);
            }
        }
        self.remove_expired();
        &self.out
    }

    /// Ends every track (stream over); returns the confirmed ones.
    pub fn finish(&mut self) -> &FrameUpdate {
        self.out.matched.clear();
        self.out.ended.clear();
        for t in self.tracks.iter().filter(|t| t.activated) {
            let _ = self.out.ended.push(t.id);
        }
        self.tracks.clear();
        &self.out
    }

    /// One frame with detections.
    pub fn update(&mut self, dets: &[Detection]) -> &FrameUpdate {
        self.frame += 1;
        self.out.matched.clear();
        self.out.ended.clear();
        let dets = &dets[..dets.len().min(assign::MAX)];
        let high = self.cfg.high_score;
        let mut det_used = [false; assign::MAX];
        let mut track_used = [false; MAX_TRACKS];

        // Pool = confirmed tracked + lost; predict them.
        for t in self.tracks.iter_mut() {
            if t.activated {
                t.kf.predict(t.state == TrackState::Tracked);
            }
        }

        // Stage 1: pool vs high-score detections.
        let pool: heapless::Vec<usize, MAX_TRACKS> =
            (0..self.tracks.len()).filter(|&i| self.tracks[i].activated).collect();
        let highs: heapless::Vec<usize, { assign::MAX }> = (0..dets.len()).filter(|&d| dets[d].score >= high).collect();
        self.match_stage(&pool, &highs, dets, 1.0 - self.cfg.match_iou, &mut track_used, &mut det_used);

        // Stage 2: still-unmatched *tracked* tracks vs low-score detections.
        let rest: heapless::Vec<usize, MAX_TRACKS> =
            pool.iter().copied().filter(|&i| !track_used[i] && self.tracks[i].state == TrackState::Tracked).collect();
        let lows: heapless::Vec<usize, { assign::MAX }> =
            (0..dets.len()).filter(|&d| dets[d].score < high && dets[d].score >= self.min_score).collect();
        self.match_stage(&rest, &lows, dets, 1.0 - self.cfg.low_match_iou, &mut track_used, &mut det_used);

        // Stage 2b (observation-centric recovery): tracks that just lost
        // their match vs the confident detections left, by IoU with the
        // last observed box (a face that stopped or turned).
        let unmatched: heapless::Vec<usize, MAX_TRACKS> = rest.iter().copied().filter(|&i| !track_used[i]).collect();
        let highs_free: heapless::Vec<usize, { assign::MAX }> =
            highs.iter().copied().filter(|&d| !det_used[d]).collect();
        self.recovery_stage(&unmatched, &highs_free, dets, &mut track_used, &mut det_used);
        for &i in rest.iter() {
            if !track_used[i] {
                self.tracks[i].state = TrackState::Lost;
            }
        }

        // Stage 3: tentative tracks vs remaining high-score detections.
        let tentative: heapless::Vec<usize, MAX_TRACKS> =
            (0..self.tracks.len()).filter(|&i| !self.tracks[i].activated).collect();
        let highs_left: heapless::Vec<usize, { assign::MAX }> =
            highs.iter().copied().filter(|&d| !det_used[d]).collect();
        self.match_stage(&tentative, &highs_left, dets, 1.0 - CONFIRM_IOU, &mut track_used, &mut det_used);
        let mut drop_tentative = [false; MAX_TRACKS];
        for &i in tentative.iter() {
            if !track_used[i] {
                drop_tentative[i] = true;
            }
        }

        // Stage 4: births from confident unmatched detections.
        let first_frame = self.frame == 1;
        let mut keep = heapless::Vec::<Track, MAX_TRACKS>::new();
        for (i, t) in self.tracks.iter().enumerate() {
            if !drop_tentative[i] {
                let _ = keep.push(*t);
            }
        }
        self.tracks = keep;
        for (d, det) in dets.iter().enumerate() {
            if det_used[d] || det.score < self.cfg.new_track_score {
                continue;
            }
            let kf = KalmanState::initiate(xyah(&det.bbox));
            let mut t = Track {
                id: self.next_id,
                state: TrackState::Tracked,
                activated: first_frame,
                kf,
                last_obs: det.bbox,
                obs: [(det.bbox, 0); OBS_HISTORY],
                obs_len: 0,
                obs_next: 0,
                aspect: 0.0,
                heading: (0.0, 0.0),
                last_frame: self.frame,
                start_frame: self.frame,
                hits: 1,
                score: det.score,
            };
            t.observe(&det.bbox, self.frame);
            if self.tracks.push(t).is_err() {
                self.overflow += 1;
                continue;
            }
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if first_frame {
                let _ = self.out.matched.push((t.id, d));
            }
        }
        self.remove_expired();
        &self.out
    }

    fn match_stage(
        &mut self,
        rows: &[usize],
        cols: &[usize],
        dets: &[Detection],
        limit: f32,
        track_used: &mut [bool; MAX_TRACKS],
        det_used: &mut [bool; assign::MAX],
    ) {
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        for (r, &ti) in rows.iter().enumerate() {
            let t = &self.tracks[ti];
            let tb = t.bbox();
            for (c, &di) in cols.iter().enumerate() {
                let mut cost = 1.0 - tb.iou(&dets[di].bbox);
                if t.state == TrackState::Lost {
                    if let Some(g) = lost_gate(t, &dets[di].bbox, self.frame, self.picture) {
                        // Inside the gate: as good as the IoU limit scaled
                        // by how far inside (0 at the path, `limit` at the edge).
                        cost = cost.min(g * limit * 0.999);
                    }
                }
                self.assigner.set(r, c, cost);
            }
        }
        let mut pairs = heapless::Vec::<(usize, usize), MAX_TRACKS>::new();
        self.assigner.solve(rows.len(), cols.len(), limit, |r, c| {
            let _ = pairs.push((rows[r], cols[c]));
        });
        let frame = self.frame;
        for (ti, di) in pairs {
            let d = &dets[di];
            self.take(ti, di, d, frame, track_used, det_used);
        }
    }

    /// Track `ti` takes detection `di` on `frame`: the filter is updated
    /// (re-run from the last observation after a gap), the observation kept.
    fn take(
        &mut self,
        ti: usize,
        di: usize,
        d: &Detection,
        frame: u64,
        track_used: &mut [bool; MAX_TRACKS],
        det_used: &mut [bool; assign::MAX],
    ) {
        let t = &mut self.tracks[ti];
        let gap = frame.saturating_sub(t.last_frame);
        if gap > 1 && t.activated {
            // Observation-centric re-update: a filter started at the last
            // observation, fed the straight line to this one (no state
            // copied per frame: the gap's own path is what it learns from).
            let (z0, z1) = (xyah(&t.last_obs), xyah(&d.bbox));
            let mut kf = KalmanState::initiate(z0);
            for i in 1..gap {
                let a = i as f64 / gap as f64;
                kf.predict(true);
                kf.update(std::array::from_fn(|j| z0[j] + (z1[j] - z0[j]) * a));
            }
            kf.predict(true);
            kf.update(z1);
            t.kf = kf;
        } else {
            t.kf.update(xyah(&d.bbox));
        }
        t.observe(&d.bbox, frame);
        {
            t.state = TrackState::Tracked;
            t.activated = true;
            t.last_frame = frame;
            t.hits += 1;
            t.score = d.score;
            track_used[ti] = true;
            det_used[di] = true;
            let _ = self.out.matched.push((t.id, di));
        }
    }

    /// Observation-centric recovery: `rows` (tracks unmatched this frame) vs
    /// `cols` by IoU with each track's last observed box.
    fn recovery_stage(
        &mut self,
        rows: &[usize],
        cols: &[usize],
        dets: &[Detection],
        track_used: &mut [bool; MAX_TRACKS],
        det_used: &mut [bool; assign::MAX],
    ) {
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        for (r, &ti) in rows.iter().enumerate() {
            let ob = self.tracks[ti].last_obs;
            for (c, &di) in cols.iter().enumerate() {
                self.assigner.set(r, c, 1.0 - ob.iou(&dets[di].bbox));
            }
        }
        let mut pairs = heapless::Vec::<(usize, usize), MAX_TRACKS>::new();
        self.assigner.solve(rows.len(), cols.len(), 1.0 - self.cfg.match_iou, |r, c| {
            let _ = pairs.push((rows[r], cols[c]));
        });
        let frame = self.frame;
        for (ti, di) in pairs {
            self.take(ti, di, &dets[di], frame, track_used, det_used);
        }
    }

    fn remove_expired(&mut self) {
        let max_lost = self.cfg.max_frames_lost as u64;
        let frame = self.frame;
        let out = &mut self.out;
        self.tracks.retain(|t| {
            let expired = t.state == TrackState::Lost && frame - t.last_frame > max_lost;
            if expired && t.activated {
                let _ = out.ended.push(t.id);
            }
            !expired
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(cx: f32, cy: f32, score: f32) -> Detection {
        Detection { bbox: BBox::new(cx - 30.0, cy - 40.0, cx + 30.0, cy + 40.0), score, keypoints: Default::default() }
    }

    fn tracker() -> ByteTracker {
        ByteTracker::new(TrackerConfig::default(), 0.1)
    }

    fn id_of(u: &FrameUpdate, det: usize) -> Option<u32> {
        u.matched.iter().find(|(_, d)| *d == det).map(|(id, _)| *id)
    }

    #[test]
    fn id_survives_a_30_frame_occlusion() {
        let mut t = tracker();
        let mut id = None;
        for f in 0..40 {
            let u = t.update(&[face(100.0 + 4.0 * f as f32, 200.0, 0.9)]);
            if f > 1 {
                id = id.or(id_of(u, 0));
                assert_eq!(id_of(u, 0), id, "frame {f}");
            }
        }
        for _ in 0..30 {
            let u = t.update(&[]);
            assert!(u.ended.is_empty(), "track must wait out the occlusion");
        }
        for f in 70..80 {
            let u = t.update(&[face(100.0 + 4.0 * f as f32, 200.0, 0.9)]);
            assert_eq!(id_of(u, 0), id, "same id after occlusion, frame {f}");
        }
    }

    /// A face walking behind a pole: its box shrinks against the pole's
    /// edge for a few frames (the visible part), it is hidden for 50
    /// frames, then it grows back out of the other edge. The same track
    /// must take it again.
    #[test]
    fn id_survives_walking_behind_a_pole_with_shrinking_boxes() {
        let mut t = tracker();
        let (pole_l, pole_r) = (300.0, 420.0);
        let mut id = None;
        let mut ids = std::collections::BTreeSet::new();
        for f in 0..140 {
            let cx = 100.0 + 4.0 * f as f32;
            let (x1, x2) = (cx - 30.0, cx + 30.0);
            // The visible part of the face, if any is wide enough to detect.
            let (vx1, vx2) = if x2 <= pole_l || x1 >= pole_r {
                (x1, x2)
            } else if x1 < pole_l {
                (x1, pole_l)
            } else if x2 > pole_r {
                (pole_r, x2)
            } else {
                (0.0, 0.0)
            };
            let dets: heapless::Vec<Detection, 1> = if vx2 - vx1 >= 20.0 {
                heapless::Vec::from_slice(&[Detection {
                    bbox: BBox::new(vx1, 160.0, vx2, 240.0),
                    score: 0.9,
                    keypoints: Default::default(),
                }])
                .unwrap()
            } else {
                heapless::Vec::new()
            };
            let u = t.update(&dets);
            if let Some(i) = id_of(u, 0) {
                ids.insert(i);
                id = id.or(Some(i));
            }
        }
        assert_eq!(ids.len(), 1, "one track through the occlusion: {ids:?}");
        assert!(id.is_some());
    }

    /// Two faces walking while the camera switches from 640x480 to
    /// 1280x720 (x2 across, x1.5 down): told the new size, the tracker
    /// carries both tracks over and each keeps its id; a tracker that kept
    /// the old pixels would lose them both.
    #[test]
    fn tracks_keep_their_ids_through_a_change_of_frame_size() {
        let run = |rescale: bool| {
            let mut t = tracker();
            t.set_picture(640, 480);
            let at = |f: u32, sx: f32, sy: f32| {
                let (a, b) = (100.0 + 4.0 * f as f32, 400.0 - 3.0 * f as f32);
                [face(a, 150.0, 0.9), face(b, 300.0, 0.9)].map(|d| Detection { bbox: d.bbox.scaled(sx, sy), ..d })
            };
            let mut before = Vec::new();
            for f in 0..20 {
                let u = t.update(&at(f, 1.0, 1.0));
                before = vec![id_of(u, 0), id_of(u, 1)];
            }
            if rescale {
                assert!(t.set_picture(1280, 720), "a new size is a change");
                assert!(!t.set_picture(1280, 720), "the same size again is not");
            }
            let u = t.update(&at(20, 2.0, 1.5));
            (before, vec![id_of(u, 0), id_of(u, 1)])
        };
        let (before, after) = run(true);
        assert!(before.iter().all(Option::is_some), "{before:?}");
        assert_eq!(before, after, "same people, same ids");
        let (before, after) = run(false);
        assert_ne!(before, after, "without the rescale, the boxes no longer overlap their tracks");
    }

    /// A face walks out of a 300 px wide picture at its right edge; 21
    /// frames later a face steps in there (its box clipped by the edge).
    /// Told the picture's size, the tracker knows the first one left:
    /// the newcomer gets a new id. Not told, the lost gate takes it back.
    #[test]
    fn a_face_that_walked_out_of_the_picture_is_not_found_again() {
        let ids_with = |picture: Option<(u32, u32)>| {
            let mut t = tracker();
            if let Some((w, h)) = picture {
                t.set_picture(w, h);
            }
            let mut first = None;
            for f in 0..50 {
                let u = t.update(&[face(100.0 + 4.0 * f as f32, 200.0, 0.9)]);
                first = first.or(id_of(u, 0));
            }
            for _ in 0..20 {
                t.update(&[]);
            }
            let entering =
                Detection { bbox: BBox::new(290.0, 160.0, 300.0, 240.0), score: 0.9, keypoints: Default::default() };
            let mut later = id_of(t.update(&[entering]), 0);
            // It walks in, leftwards: whatever id it has once confirmed.
            for k in 0..8 {
                later = id_of(t.update(&[face(266.0 - 4.0 * k as f32, 200.0, 0.9)]), 0).or(later);
            }
            (first, later)
        };
        let (left, back) = ids_with(None);
        assert!(left.is_some() && back == left, "without the picture's size: taken back ({left:?}, {back:?})");
        let (left, newcomer) = ids_with(Some((300, 400)));
        assert!(
            left.is_some() && newcomer.is_some() && newcomer != left,
            "told the size: a new person ({left:?}, {newcomer:?})"
        );
    }

    /// Two walkers in rows one face height apart (the occlusion video's
    /// pole): the lower one is hidden for 30 frames; a face then steps out
    /// on the upper row where the hidden one would be. It is someone else,
    /// not the hidden walker drifted upwards; a face on the hidden one's
    /// own row, ahead of where it was predicted, is the walker.
    #[test]
    fn a_hidden_walker_is_not_found_again_beside_its_path() {
        let run = |reappear_y: f32, ahead: f32| {
            let mut t = tracker();
            let mut first = None;
            for f in 0..30 {
                first = first.or(id_of(t.update(&[face(100.0 + 3.0 * f as f32, 300.0, 0.9)]), 0));
            }
            for _ in 0..30 {
                t.update(&[]);
            }
            // 60 frames after the start the path is at x = 280.
            let u = t.update(&[face(280.0 + ahead, reappear_y, 0.9)]);
            (first, id_of(u, 0))
        };
        let (walker, upper) = run(300.0 - 80.0, 0.0);
        assert!(walker.is_some() && upper != walker, "a face a row above is not the walker ({walker:?}, {upper:?})");
        let (walker, back) = run(300.0, 70.0);
        assert!(walker.is_some() && back == walker, "on its row, early: the walker ({walker:?}, {back:?})");
    }

    #[test]
    fn track_ends_after_max_frames_lost() {
        let mut t = tracker();
        for f in 0..5 {
            t.update(&[face(100.0 + f as f32, 100.0, 0.9)]);
        }
        let mut ended_at = None;
        for f in 0..200 {
            if !t.update(&[]).ended.is_empty() {
                ended_at = Some(f);
                break;
            }
        }
        let max = TrackerConfig::default().max_frames_lost;
        assert_eq!(ended_at, Some(max), "lost on the first empty frame, removed when lost > {max} frames");
    }

    #[test]
    fn two_crossing_faces_keep_their_ids() {
        let mut t = tracker();
        let (mut a, mut b) = (None, None);
        for f in 0..80 {
            let x = f as f32 * 5.0;
            // A goes right, B goes left, crossing around frame 40 with a small vertical offset.
            let da = face(100.0 + x, 200.0, 0.9);
            let db = face(500.0 - x, 230.0, 0.85);
            let u = t.update(&[da, db]);
            if f < 2 {
                continue;
            }
            let (ia, ib) = (id_of(u, 0), id_of(u, 1));
            a = a.or(ia);
            b = b.or(ib);
            // Mid-crossing a face may be taken by nobody for a frame, never by the other id.
            if let Some(ia) = ia {
                assert_eq!(Some(ia), a, "A's id at frame {f}");
            }
            if let Some(ib) = ib {
                assert_eq!(Some(ib), b, "B's id at frame {f}");
            }
        }
        assert_ne!(a, b);
        assert!(a.is_some() && b.is_some());
    }

    #[test]
    fn low_score_detections_extend_but_never_start_tracks() {
        let mut t = tracker();
        assert!(t.update(&[face(100.0, 100.0, 0.3)]).matched.is_empty());
        assert!(t.tracks().is_empty(), "a low-score detection starts nothing");
        for f in 0..3 {
            t.update(&[face(100.0 + f as f32, 100.0, 0.9)]);
        }
        let id = t.tracks()[0].id;
        let u = t.update(&[face(104.0, 100.0, 0.3)]);
        assert_eq!(id_of(u, 0), Some(id), "second stage keeps the track on a low-score box");
    }

    #[test]
    fn skipped_frames_coast_on_prediction() {
        let mut t = tracker();
        for f in 0..10 {
            t.update(&[face(100.0 + 6.0 * f as f32, 100.0, 0.9)]);
        }
        for _ in 0..5 {
            t.predict_only();
        }
        let (cx, _) = t.tracks()[0].bbox().center();
        assert!((cx - (100.0 + 6.0 * 14.0)).abs() < 6.0, "predicted cx {cx}");
        let id = t.tracks()[0].id;
        let u = t.update(&[face(100.0 + 6.0 * 15.0, 100.0, 0.9)]);
        assert_eq!(id_of(u, 0), Some(id));
    }
}
