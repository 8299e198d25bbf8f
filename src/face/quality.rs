//! Face quality score and event validation.
//!
//! Score = (6 frontality + 4 size + 3 confidence + 1 sharpness + 1 aspect) / 15,
//! each part in 0..=1, halved for a face cut by the picture border (its
//! keypoints are guesses and its crop is incomplete). With Face Mesh
//! landmarks (`landmarks`), frontality comes from the 3D head pose and an
//! eye-openness part joins with weight 2: (6 + 4 + 3 + 2 eyes + 1 + 1) / 17,
//! so a blink or half-closed eyes cost a best shot up to 2/17; a face the
//! mesh model says is not a face scores 0. Validation decides whether a finished track is worth
//! an event at all (static posters, tiny or doubtful faces are not).

use crate::config::{QualityConfig, ValidationConfig};
use crate::detect::{Detection, Keypoints};
use crate::geom::BBox;
use crate::pool::I420;

pub(crate) const W_FRONTALITY: f32 = 6.0;
pub(crate) const W_SIZE: f32 = 4.0;
pub(crate) const W_CONFIDENCE: f32 = 3.0;
pub(crate) const W_SHARPNESS: f32 = 1.0;
pub(crate) const W_ASPECT: f32 = 1.0;
/// Eye openness, only where Face Mesh landmarks were computed.
pub(crate) const W_EYES: f32 = 2.0;

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityParts {
    pub frontality: f32,
    pub size: f32,
    pub confidence: f32,
    pub sharpness: f32,
    pub aspect: f32,
    /// The face box touches the picture border.
    pub truncated: bool,
    /// Eye openness, from Face Mesh landmarks (None: scored from the
    /// detector's keypoints). Not in the spool's or JSON's
    /// `quality_parts`: records carry it in `mesh.eyes_part`.
    #[serde(skip)]
    pub eyes: Option<f32>,
}

/// Factor applied to the score of a face cut by the picture border.
pub(crate) const TRUNCATED_FACTOR: f32 = 0.5;

impl QualityParts {
    pub fn total(&self) -> f32 {
        let k = if self.truncated { TRUNCATED_FACTOR } else { 1.0 };
        let (eyes, w_eyes) = self.eyes.map_or((0.0, 0.0), |e| (W_EYES * e, W_EYES));
        k * (W_FRONTALITY * self.frontality
            + W_SIZE * self.size
            + W_CONFIDENCE * self.confidence
            + W_SHARPNESS * self.sharpness
            + W_ASPECT * self.aspect
            + eyes)
            / (W_FRONTALITY + W_SIZE + W_CONFIDENCE + W_SHARPNESS + W_ASPECT + w_eyes)
    }
}

/// How frontal a face is, from its 5 keypoints: the nose sits midway between
/// the eyes (yaw), between the eye line and the mouth line at its usual
/// height (pitch), and the eye line is level (roll).
pub fn frontality(kp: &Keypoints) -> f32 {
    let [le, re, nose, lm, rm] = *kp;
    let eye_dx = re[0] - le[0];
    let eye_dy = re[1] - le[1];
    let eye_dist = (eye_dx * eye_dx + eye_dy * eye_dy).sqrt();
    if eye_dist < 1e-3 {
        return 0.0;
    }
    let eye_mid = [(le[0] + re[0]) * 0.5, (le[1] + re[1]) * 0.5];
    let mouth_mid = [(lm[0] + rm[0]) * 0.5, (lm[1] + rm[1]) * 0.5];
    // Yaw: nose offset from the eye midpoint, in inter-eye distances.
    let yaw = ((nose[0] - eye_mid[0]) / eye_dist).abs();
    // Pitch: nose position between eye line (0) and mouth line (1); ~0.58 when
    // level (measured on CenterFace keypoints of the demo's frontal faces).
    let span = mouth_mid[1] - eye_mid[1];
    let pitch = if span > 1e-3 { ((nose[1] - eye_mid[1]) / span - 0.58).abs() } else { 1.0 };
    let roll = (eye_dy / eye_dist).abs();
    let f_yaw = (1.0 - 2.0 * yaw).clamp(0.0, 1.0);
    let f_pitch = (1.0 - 2.0 * pitch).clamp(0.0, 1.0);
    // Roll matters least: face alignment downstream undoes it.
    let f_roll = (1.0 - roll * roll).clamp(0.0, 1.0);
    f_yaw * f_pitch * f_roll
}

/// Sharpness from the variance of a Laplacian over the face's luma, sampled
/// on a grid of at most 32x32 points so the cost does not grow with size.
pub fn sharpness(frame: &I420<'_>, b: &BBox) -> f32 {
    let (w, h) = (frame.width as i32, frame.height as i32);
    let (x1, y1) = (b.x1.max(0.0) as i32, b.y1.max(0.0) as i32);
    let (x2, y2) = ((b.x2 as i32).min(w - 1), (b.y2 as i32).min(h - 1));
    let step = (((x2 - x1).max(y2 - y1)) / 32).max(1);
    let (mut n, mut sum, mut sum2) = (0f32, 0f32, 0f32);
    let px = |x: i32, y: i32| frame.y[(y * w + x) as usize] as f32;
    let mut y = y1 + step;
    while y < y2 - step {
        let mut x = x1 + step;
        while x < x2 - step {
            let lap = 4.0 * px(x, y) - px(x - step, y) - px(x + step, y) - px(x, y - step) - px(x, y + step);
            n += 1.0;
            sum += lap;
            sum2 += lap * lap;
            x += step;
        }
        y += step;
    }
    if n < 4.0 {
        return 0.0;
    }
    let mean = sum / n;
    let var = (sum2 / n - mean * mean).max(0.0);
    var / (var + 400.0)
}

fn touches_border(b: &BBox, w: f32, h: f32) -> bool {
    b.x1 <= 1.0 || b.y1 <= 1.0 || b.x2 >= w - 1.0 || b.y2 >= h - 1.0
}

/// Scores one detection in its frame.
pub fn score(cfg: &QualityConfig, det: &Detection, frame: &I420<'_>) -> QualityParts {
    let w = det.bbox.width();
    let h = det.bbox.height().max(1.0);
    let aspect = w / h;
    QualityParts {
        frontality: frontality(&det.keypoints),
        size: (w / cfg.full_size_px).clamp(0.0, 1.0),
        confidence: det.score.clamp(0.0, 1.0),
        sharpness: sharpness(frame, &det.bbox),
        aspect: (1.0 - 2.0 * (aspect / cfg.ideal_aspect).ln().abs()).clamp(0.0, 1.0),
        truncated: touches_border(&det.bbox, frame.width as f32, frame.height as f32),
        eyes: None,
    }
}

/// What validation looks at, gathered over a track's life.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrackStats {
    pub frames: u32,
    pub moving_frames: u32,
    /// Largest distance of the face centre from where it was first seen.
    pub movement_px: f32,
    pub best_confidence: f32,
    pub best_width: f32,
    /// Faces Face Mesh checked, and those it found were faces.
    pub mesh_checked: u32,
    pub mesh_faces: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    NotMoving,
    LowConfidence,
    TooSmall,
    RarelyMoving,
    /// Face Mesh checked the track's faces and found none was a face.
    NotAFace,
}

impl Rejection {
    pub fn as_str(&self) -> &'static str {
        match self {
            Rejection::NotMoving => "min_movement_px",
            Rejection::LowConfidence => "min_confidence",
            Rejection::TooSmall => "min_box_width",
            Rejection::RarelyMoving => "min_moving_share",
            Rejection::NotAFace => "landmarks.min_presence",
        }
    }
}

pub fn validate(cfg: &ValidationConfig, s: &TrackStats) -> Result<(), Rejection> {
    if s.mesh_checked > 0 && s.mesh_faces == 0 {
        return Err(Rejection::NotAFace);
    }
    if s.best_confidence < cfg.min_confidence {
        return Err(Rejection::LowConfidence);
    }
    if s.best_width < cfg.min_box_width {
        return Err(Rejection::TooSmall);
    }
    if s.movement_px < cfg.min_movement_px {
        return Err(Rejection::NotMoving);
    }
    let share = if s.frames > 1 { s.moving_frames as f32 / (s.frames - 1) as f32 } else { 0.0 };
    if share < cfg.min_moving_share {
        return Err(Rejection::RarelyMoving);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(yaw_shift: f32) -> Keypoints {
        [[40.0, 50.0], [80.0, 50.0], [60.0 + yaw_shift, 73.2], [45.0, 90.0], [75.0, 90.0]]
    }

    #[test]
    fn frontal_beats_turned() {
        let f0 = frontality(&kp(0.0));
        let f1 = frontality(&kp(8.0));
        let f2 = frontality(&kp(18.0));
        assert!(f0 > 0.9, "{f0}");
        assert!(f0 > f1 && f1 > f2, "{f0} {f1} {f2}");
        assert_eq!(frontality(&[[0.0; 2]; 5]), 0.0);
    }

    #[test]
    fn quality_orders_faces_as_a_person_would() {
        let cfg = QualityConfig::default();
        // A textured luma picture so sharpness is defined.
        let (w, h) = (200u32, 200u32);
        let mut buf: Vec<u8> = (0..w * h).map(|i| if (i % w / 3 + i / w / 3) % 2 == 0 { 60 } else { 190 }).collect();
        buf.extend(std::iter::repeat_n(128u8, (w * h / 2) as usize));
        let frame = I420::new(&buf, w, h);
        let det = |size: f32, score: f32, yaw: f32| {
            let k = size / 120.0;
            let mut keypoints = kp(yaw);
            for p in keypoints.iter_mut() {
                p[0] *= k;
                p[1] *= k;
            }
            Detection { bbox: BBox::new(20.0, 20.0, 20.0 + size * 0.78, 20.0 + size), score, keypoints }
        };
        let big_frontal = score(&cfg, &det(140.0, 0.95, 0.0), &frame).total();
        let small_frontal = score(&cfg, &det(50.0, 0.95, 0.0), &frame).total();
        let big_turned = score(&cfg, &det(140.0, 0.95, 15.0), &frame).total();
        let big_doubtful = score(&cfg, &det(140.0, 0.55, 0.0), &frame).total();
        assert!(big_frontal > small_frontal, "size counts");
        assert!(big_frontal > big_turned, "frontality counts");
        assert!(big_frontal > big_doubtful, "confidence counts");
        assert!(big_turned < small_frontal, "frontality (w6) outweighs size (w4) here");
        let mut cut = det(140.0, 0.95, 0.0);
        // The same face moved against the right border of the 200 px picture.
        let shift = 200.0 - cut.bbox.x2;
        cut.bbox.x1 += shift;
        cut.bbox.x2 += shift;
        let cut = score(&cfg, &cut, &frame);
        assert!(cut.truncated);
        assert!(
            cut.total() < 0.6 * big_frontal,
            "a face cut by the border loses about half its score: {cut:?} {} vs {big_frontal}",
            cut.total()
        );
    }

    #[test]
    fn blur_lowers_sharpness() {
        let (w, h) = (64u32, 64u32);
        let sharp: Vec<u8> = (0..w * h).map(|i| if (i % w + i / w) % 2 == 0 { 30 } else { 220 }).collect();
        let flat = vec![128u8; (w * h) as usize];
        let mut a = sharp.clone();
        a.extend(std::iter::repeat_n(128u8, (w * h / 2) as usize));
        let mut b = flat.clone();
        b.extend(std::iter::repeat_n(128u8, (w * h / 2) as usize));
        let bx = BBox::new(0.0, 0.0, 64.0, 64.0);
        assert!(sharpness(&I420::new(&a, w, h), &bx) > 0.9);
        assert_eq!(sharpness(&I420::new(&b, w, h), &bx), 0.0);
    }

    #[test]
    fn validation_names_the_failing_rule() {
        let cfg = ValidationConfig::default();
        let good = TrackStats {
            frames: 50,
            moving_frames: 40,
            movement_px: 200.0,
            best_confidence: 0.9,
            best_width: 80.0,
            ..Default::default()
        };
        assert_eq!(validate(&cfg, &good), Ok(()));
        assert_eq!(validate(&cfg, &TrackStats { movement_px: 2.0, ..good }), Err(Rejection::NotMoving));
        assert_eq!(validate(&cfg, &TrackStats { best_confidence: 0.4, ..good }), Err(Rejection::LowConfidence));
        assert_eq!(validate(&cfg, &TrackStats { best_width: 10.0, ..good }), Err(Rejection::TooSmall));
        assert_eq!(validate(&cfg, &TrackStats { moving_frames: 2, ..good }), Err(Rejection::RarelyMoving));
        assert_eq!(validate(&cfg, &TrackStats { mesh_checked: 5, ..good }), Err(Rejection::NotAFace));
        assert_eq!(validate(&cfg, &TrackStats { mesh_checked: 5, mesh_faces: 1, ..good }), Ok(()));
    }
}
