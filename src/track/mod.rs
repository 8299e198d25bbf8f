//! Multi-object tracking with ByteTrack (Zhang et al., 2022): a Kalman
//! filter per track and two-stage IoU matching, first against confident
//! detections, then against the low-score ones that plain trackers throw
//! away (occluded or blurred faces), with a buffer of lost tracks that can
//! be re-found. One `ByteTracker` per camera; fixed capacity, no allocation
//! per frame.

pub mod assign;
pub mod kalman;

use crate::config::TrackerConfig;
use crate::detect::Detection;
use crate::geom::BBox;
use assign::Assigner;
use kalman::{KalmanState, Vec4};

/// Most live (tracked, tentative or lost) tracks per camera.
pub const MAX_TRACKS: usize = 64;
/// IoU a tentative track needs to be confirmed (ByteTrack's 0.7 distance).
const CONFIRM_IOU: f32 = 0.3;

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
    /// Frame of the last match.
    pub last_frame: u64,
    pub start_frame: u64,
    pub hits: u32,
    pub score: f32,
}

impl Track {
    /// The filter's current box estimate.
    pub fn bbox(&self) -> BBox {
        let m = &self.kf.mean;
        let h = m[3] as f32;
        let w = (m[2] * m[3]) as f32;
        let (cx, cy) = (m[0] as f32, m[1] as f32);
        BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }
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
        }
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// A frame without detection (skipped): tracks coast on their filters.
    pub fn predict_only(&mut self) -> &FrameUpdate {
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
            let t = Track {
                id: self.next_id,
                state: TrackState::Tracked,
                activated: first_frame,
                kf: KalmanState::initiate(xyah(&det.bbox)),
                last_frame: self.frame,
                start_frame: self.frame,
                hits: 1,
                score: det.score,
            };
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
            let tb = self.tracks[ti].bbox();
            for (c, &di) in cols.iter().enumerate() {
                self.assigner.set(r, c, 1.0 - tb.iou(&dets[di].bbox));
            }
        }
        let mut pairs = heapless::Vec::<(usize, usize), MAX_TRACKS>::new();
        self.assigner.solve(rows.len(), cols.len(), limit, |r, c| {
            let _ = pairs.push((rows[r], cols[c]));
        });
        let frame = self.frame;
        for (ti, di) in pairs {
            let t = &mut self.tracks[ti];
            let d = &dets[di];
            t.kf.update(xyah(&d.bbox));
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

    #[test]
    fn track_ends_after_max_frames_lost() {
        let mut t = tracker();
        for f in 0..5 {
            t.update(&[face(100.0 + f as f32, 100.0, 0.9)]);
        }
        let mut ended_at = None;
        for f in 0..100 {
            if !t.update(&[]).ended.is_empty() {
                ended_at = Some(f);
                break;
            }
        }
        assert_eq!(ended_at, Some(60), "lost on the first empty frame, removed when lost > 60 frames");
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
