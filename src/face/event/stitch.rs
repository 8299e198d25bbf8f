//! Track stitching: a track that ends lost (hidden longer than the tracker
//! could bridge) and a track that started within `max_frames_lost` frames
//! near where the first was heading are one person, and become one event
//! with the better best face and both ids in `merged_track_ids`.

use super::{BestFaceSelector, Candidate, FaceEvent, MAX_MERGED};

/// How far (in face heights) a new track may start from where the lost one
/// was heading, and how much its face size may differ.
const STITCH_GATE: f32 = 1.5;
const STITCH_SIZE_RATIO: f32 = 1.6;
/// Speed (face heights per frame) above which a track's direction counts:
/// slower, a face standing or swaying has no direction.
const MOVING: f32 = 0.01;

impl BestFaceSelector {
    /// Tracks the tracker gave up on: stitched into a later track when one
    /// fits, else closed into their events.
    pub(super) fn end_lost_tracks(&mut self, ended: &[u32], emit: &mut impl FnMut(FaceEvent)) {
        for &id in ended.iter() {
            let Some(i) = self.live.iter().position(|c| c.track_id == id) else { continue };
            let old = self.live.swap_remove(i);
            match self.stitch_target(&old) {
                Some(j) => {
                    self.counters.stitched += 1;
                    log::debug!(
                        "camera {} track {}: stitched to track {} (lost, then found as a new track)",
                        self.camera,
                        old.track_id,
                        self.live[j].track_id
                    );
                    merge_into(&mut self.live[j], old);
                }
                None => {
                    let mut old = old;
                    if let Some(ev) =
                        Self::close(self.camera, &self.validation, &mut self.counters, &mut old, self.realtime)
                    {
                        emit(ev);
                    }
                }
            }
        }
    }

    /// The live track that `old` (just ended, lost) most likely became: it
    /// started after `old` was last seen, within the stitch window, near
    /// where `old` was heading, with a face of about the same size. Not
    /// when `old`'s path had carried its face out of the picture by then:
    /// that person walked out, and whoever steps in at the same edge is
    /// someone else (at a door, people follow each other). Not when both
    /// move and the new one walks the other way: people do not turn back
    /// while hidden, but two people pass each other at the same spot (on a
    /// lossy stream the first one's track can end early, mid-picture,
    /// where its predicted path still meets the second's start).
    fn stitch_target(&self, old: &Candidate) -> Option<usize> {
        if old.merged.is_full() || old.best.is_none() {
            return None;
        }
        let v = velocity(old);
        let h = old.last_height.max(1.0);
        self.live
            .iter()
            .enumerate()
            .filter(|(_, c)| c.part == 0 && c.merged.len() + old.merged.len() < MAX_MERGED - 1)
            .filter(|(_, c)| c.first_frame > old.last_frame && c.first_frame - old.last_frame <= self.stitch_frames)
            .filter(|(_, c)| (1.0 / STITCH_SIZE_RATIO..=STITCH_SIZE_RATIO).contains(&(c.first_height / h)))
            .filter(|(_, c)| !opposite(v, velocity(c), MOVING * h))
            .map(|(j, c)| {
                let k = (c.first_frame - old.last_frame) as f32;
                let (px, py) = (old.last_center.0 + v.0 * k, old.last_center.1 + v.1 * k);
                let outside = self
                    .picture
                    .is_some_and(|(w, ph)| px < -h / 2.0 || py < -h / 2.0 || px > w + h / 2.0 || py > ph + h / 2.0);
                let d = ((c.first_center.0 - px).powi(2) + (c.first_center.1 - py).powi(2)).sqrt() / h;
                (j, if outside { f32::INFINITY } else { d })
            })
            .filter(|&(_, d)| d < STITCH_GATE)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(j, _)| j)
    }
}

/// A track's mean velocity (pixels per frame) from its first to its last sighting.
fn velocity(c: &Candidate) -> (f32, f32) {
    let span = c.last_frame.saturating_sub(c.first_frame).max(1) as f32;
    ((c.last_center.0 - c.first_center.0) / span, (c.last_center.1 - c.first_center.1) / span)
}

/// Both move faster than `min_speed` and more than a right angle apart.
fn opposite(a: (f32, f32), b: (f32, f32), min_speed: f32) -> bool {
    let (na, nb) = (a.0.hypot(a.1), b.0.hypot(b.1));
    na > min_speed && nb > min_speed && a.0 * b.0 + a.1 * b.1 < 0.0
}

/// `new` takes over `old` (the same person, found again): the earlier start,
/// the better best face, the counts of both, `old`'s id in its history.
fn merge_into(new: &mut Candidate, old: Candidate) {
    let old_better = match (&old.best, &new.best) {
        (Some(o), Some(n)) => o.quality > n.quality,
        (Some(_), None) => true,
        _ => false,
    };
    let mut ids = old.merged;
    let _ = ids.push(old.track_id);
    for &id in new.merged.iter() {
        let _ = ids.push(id);
    }
    new.merged = ids;
    new.first_unix_ms = old.first_unix_ms;
    new.first_frame = old.first_frame;
    new.first_center = old.first_center;
    new.first_height = old.first_height;
    let (s, o) = (&mut new.stats, &old.stats);
    s.frames += o.frames;
    s.moving_frames += o.moving_frames;
    s.movement_px = s.movement_px.max(o.movement_px);
    s.best_confidence = s.best_confidence.max(o.best_confidence);
    s.best_width = s.best_width.max(o.best_width);
    s.mesh_checked += o.mesh_checked;
    s.mesh_faces += o.mesh_faces;
    if old_better {
        new.best = old.best;
    }
}
