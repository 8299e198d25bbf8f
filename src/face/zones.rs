//! Per-camera polygon zones on tracks.
//!
//! * include: only faces whose anchor point lies inside one are sent;
//! * exclude: faces inside one are never sent;
//! * presence: each track's entering and leaving is an event, the exit
//!   carrying the dwell time.
//!
//! The anchor is the box's foot (bottom centre) or centre. Membership has
//! hysteresis: a track enters only once its anchor is `hysteresis_px`
//! inside the polygon and leaves only once it is that far outside, so a
//! face standing on the border does not flap.

use crate::config::{ZoneAnchor, ZoneConfig, ZoneKind};
use crate::geom::BBox;
use crate::track::MAX_TRACKS;

#[derive(Clone, Debug)]
pub struct Zone {
    pub name: String,
    pub kind: ZoneKind,
    pub points: Vec<[f32; 2]>,
}

impl Zone {
    pub(crate) fn from_config(z: &ZoneConfig) -> Self {
        Zone { name: z.name.clone(), kind: z.kind, points: z.points.clone() }
    }

    pub fn contains(&self, p: [f32; 2]) -> bool {
        // Even-odd ray casting.
        let mut inside = false;
        let n = self.points.len();
        for i in 0..n {
            let (a, b) = (self.points[i], self.points[(i + n - 1) % n]);
            if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
                inside = !inside;
            }
        }
        inside
    }

    /// Distance from `p` to the polygon's border.
    pub(crate) fn border_distance(&self, p: [f32; 2]) -> f32 {
        let n = self.points.len();
        (0..n)
            .map(|i| {
                let (a, b) = (self.points[i], self.points[(i + 1) % n]);
                let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
                let len2 = dx * dx + dy * dy;
                let t =
                    if len2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let (cx, cy) = (a[0] + t * dx - p[0], a[1] + t * dy - p[1]);
                (cx * cx + cy * cy).sqrt()
            })
            .fold(f32::INFINITY, f32::min)
    }

    /// Signed depth: positive inside, negative outside.
    pub fn depth(&self, p: [f32; 2]) -> f32 {
        let d = self.border_distance(p);
        if self.contains(p) {
            d
        } else {
            -d
        }
    }
}

pub(crate) fn anchor(b: &BBox, a: ZoneAnchor) -> [f32; 2] {
    let (cx, cy) = b.center();
    match a {
        ZoneAnchor::Center => [cx, cy],
        ZoneAnchor::Foot => [cx, b.y2],
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossing {
    Enter,
    Exit,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZoneEvent {
    pub camera: u8,
    pub zone: u8,
    pub track_id: u32,
    pub crossing: Crossing,
    pub unix_ms: u64,
    pub frame: u64,
    /// Time inside, for exits.
    pub dwell_ms: u64,
    /// The face box at the crossing (zero when the track ended unseen).
    pub bbox: BBox,
}

#[derive(Clone, Copy)]
struct Presence {
    track_id: u32,
    zone: u8,
    /// Stream time (pts) of the enter and of the last sighting: dwell is
    /// video time, right for files read faster than real time too.
    since_pts: u64,
    last_pts: u64,
}

/// Zones of one camera and which tracks are inside its presence zones.
pub(crate) struct CameraZones {
    pub camera: u8,
    pub zones: Vec<Zone>,
    pub anchor: ZoneAnchor,
    pub hysteresis_px: f32,
    inside: heapless::Vec<Presence, { MAX_TRACKS * 4 }>,
}

impl CameraZones {
    pub fn new(camera: u8, zones: Vec<Zone>, anchor: ZoneAnchor, hysteresis_px: f32) -> Self {
        CameraZones { camera, zones, anchor, hysteresis_px, inside: heapless::Vec::new() }
    }

    /// The camera's picture was scaled by `sx` across, `sy` down (a new
    /// resolution): the zones, drawn on the old picture, cover the same
    /// part of the scene in the new one.
    pub(crate) fn rescale(&mut self, sx: f32, sy: f32) {
        for z in self.zones.iter_mut() {
            for p in z.points.iter_mut() {
                *p = [p[0] * sx, p[1] * sy];
            }
        }
        self.hysteresis_px *= (sx * sy).sqrt();
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Whether a face with this box may be sent (include/exclude zones).
    pub(crate) fn admits(&self, b: &BBox) -> bool {
        let p = anchor(b, self.anchor);
        let mut has_include = false;
        let mut in_include = false;
        for z in &self.zones {
            match z.kind {
                ZoneKind::Exclude if z.contains(p) => return false,
                ZoneKind::Include => {
                    has_include = true;
                    in_include |= z.contains(p);
                }
                _ => {}
            }
        }
        !has_include || in_include
    }

    /// A track was seen at `b` (wall time `unix_ms`, stream time `pts_ms`);
    /// presence changes go to `emit`.
    pub(crate) fn observe(
        &mut self,
        track_id: u32,
        b: &BBox,
        unix_ms: u64,
        pts_ms: u64,
        frame: u64,
        mut emit: impl FnMut(ZoneEvent),
    ) {
        let p = anchor(b, self.anchor);
        for s in self.inside.iter_mut().filter(|s| s.track_id == track_id) {
            s.last_pts = pts_ms;
        }
        for (zi, z) in self.zones.iter().enumerate() {
            if z.kind != ZoneKind::Presence {
                continue;
            }
            let depth = z.depth(p);
            let pos = self.inside.iter().position(|s| s.track_id == track_id && s.zone as usize == zi);
            match pos {
                None if depth >= self.hysteresis_px => {
                    if self
                        .inside
                        .push(Presence { track_id, zone: zi as u8, since_pts: pts_ms, last_pts: pts_ms })
                        .is_ok()
                    {
                        emit(ZoneEvent {
                            camera: self.camera,
                            zone: zi as u8,
                            track_id,
                            crossing: Crossing::Enter,
                            unix_ms,
                            frame,
                            dwell_ms: 0,
                            bbox: *b,
                        });
                    } else {
                        // Cannot happen with MAX_TRACKS tracks and <= 4 presence
                        // zones each; say so loudly rather than lose the enter.
                        log::warn!(
                            "camera {}: presence table full, enter of track {track_id} not recorded",
                            self.camera
                        );
                    }
                }
                Some(i) if depth <= -self.hysteresis_px => {
                    let s = self.inside.swap_remove(i);
                    emit(ZoneEvent {
                        camera: self.camera,
                        zone: zi as u8,
                        track_id,
                        crossing: Crossing::Exit,
                        unix_ms,
                        frame,
                        dwell_ms: pts_ms.saturating_sub(s.since_pts),
                        bbox: *b,
                    });
                }
                _ => {}
            }
        }
    }

    /// The track is gone: it leaves every zone it was in, having dwelt there
    /// until its last sighting.
    pub(crate) fn track_ended(&mut self, track_id: u32, unix_ms: u64, frame: u64, mut emit: impl FnMut(ZoneEvent)) {
        while let Some(i) = self.inside.iter().position(|s| s.track_id == track_id) {
            let s = self.inside.swap_remove(i);
            emit(ZoneEvent {
                camera: self.camera,
                zone: s.zone,
                track_id,
                crossing: Crossing::Exit,
                unix_ms,
                frame,
                dwell_ms: s.last_pts.saturating_sub(s.since_pts),
                bbox: BBox::default(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(kind: ZoneKind) -> Zone {
        Zone { name: "z".into(), kind, points: vec![[100.0, 100.0], [300.0, 100.0], [300.0, 300.0], [100.0, 300.0]] }
    }

    fn face_at(x: f32, y: f32) -> BBox {
        BBox::new(x - 20.0, y - 25.0, x + 20.0, y + 25.0)
    }

    #[test]
    fn point_in_polygon_and_depth() {
        let z = square(ZoneKind::Presence);
        assert!(z.contains([150.0, 150.0]));
        assert!(!z.contains([50.0, 150.0]));
        assert!((z.depth([150.0, 200.0]) - 50.0).abs() < 1e-3);
        assert!((z.depth([90.0, 200.0]) + 10.0).abs() < 1e-3);
        // A concave L shape.
        let l = Zone {
            name: "l".into(),
            kind: ZoneKind::Include,
            points: vec![[0.0, 0.0], [100.0, 0.0], [100.0, 40.0], [40.0, 40.0], [40.0, 100.0], [0.0, 100.0]],
        };
        assert!(l.contains([20.0, 80.0]));
        assert!(!l.contains([80.0, 80.0]), "the notch is outside");
    }

    #[test]
    fn one_enter_and_one_exit_per_crossing_with_dwell() {
        let mut cz = CameraZones::new(0, vec![square(ZoneKind::Presence)], ZoneAnchor::Center, 5.0);
        let mut ev = Vec::new();
        // Walk left to right across the zone, 2 px per frame, 40 ms per frame.
        for f in 0..200u64 {
            let x = 20.0 + 2.0 * f as f32;
            cz.observe(7, &face_at(x, 200.0), 1_000_000 + f * 40, f * 40, f, |e| ev.push(e));
        }
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0].crossing, Crossing::Enter);
        assert_eq!(ev[1].crossing, Crossing::Exit);
        // Enter at x >= 105 (f=43), exit at x >= 305 (f=143): 100 frames = 4 s.
        assert_eq!(ev[0].frame, 43);
        assert_eq!(ev[1].frame, 143);
        assert_eq!(ev[1].dwell_ms, 4000);
    }

    #[test]
    fn jitter_on_the_border_does_not_flap() {
        let mut cz = CameraZones::new(0, vec![square(ZoneKind::Presence)], ZoneAnchor::Center, 5.0);
        let mut ev = Vec::new();
        for f in 0..100u64 {
            // +-4 px around the left border: inside the hysteresis band.
            let x = 100.0 + if f % 2 == 0 { 4.0 } else { -4.0 };
            cz.observe(1, &face_at(x, 200.0), f * 40, f * 40, f, |e| ev.push(e));
        }
        assert!(ev.is_empty(), "{ev:?}");
        // Deeper jitter (+-8 px) crosses the band: enters and leaves, always in pairs.
        for f in 100..110u64 {
            let x = 100.0 + if f % 2 == 0 { 8.0 } else { -8.0 };
            cz.observe(1, &face_at(x, 200.0), f * 40, f * 40, f, |e| ev.push(e));
        }
        assert_eq!(ev.len(), 10);
        assert!(ev.windows(2).all(|w| w[0].crossing != w[1].crossing));
    }

    #[test]
    fn ended_tracks_leave_their_zones() {
        let mut cz = CameraZones::new(2, vec![square(ZoneKind::Presence)], ZoneAnchor::Foot, 0.0);
        let mut ev = Vec::new();
        cz.observe(3, &face_at(200.0, 200.0), 1000, 1000, 10, |e| ev.push(e));
        cz.observe(3, &face_at(210.0, 200.0), 3000, 3000, 60, |e| ev.push(e));
        cz.track_ended(3, 3500, 70, |e| ev.push(e));
        assert_eq!(ev.len(), 2);
        assert_eq!((ev[1].crossing, ev[1].dwell_ms, ev[1].camera), (Crossing::Exit, 2000, 2), "dwell until last seen");
        cz.track_ended(3, 4000, 80, |e| ev.push(e));
        assert_eq!(ev.len(), 2, "exactly once");
    }

    #[test]
    fn include_and_exclude_filter_faces() {
        let inc = CameraZones::new(0, vec![square(ZoneKind::Include)], ZoneAnchor::Center, 0.0);
        assert!(inc.admits(&face_at(200.0, 200.0)));
        assert!(!inc.admits(&face_at(50.0, 200.0)));
        let exc = CameraZones::new(0, vec![square(ZoneKind::Exclude)], ZoneAnchor::Center, 0.0);
        assert!(!exc.admits(&face_at(200.0, 200.0)));
        assert!(exc.admits(&face_at(50.0, 200.0)));
        let none = CameraZones::new(0, vec![], ZoneAnchor::Center, 0.0);
        assert!(none.admits(&face_at(5.0, 5.0)));
        // Foot anchor: the box's bottom centre decides.
        let foot = CameraZones::new(0, vec![square(ZoneKind::Include)], ZoneAnchor::Foot, 0.0);
        assert!(!foot.admits(&face_at(200.0, 290.0)), "foot at y=315 is outside");
    }
}
