//! Attention: head yaw and pitch estimated from the 5 facial keypoints, and
//! whether the person faces the camera ("on screen").
//!
//! Method (a weak-perspective head model): turning the head by yaw θ moves
//! the nose tip sideways from the eye midpoint by `d·sin θ` while the eyes'
//! projected distance shrinks to `IOD·cos θ`; with the nose depth `d` about
//! 0.6 inter-ocular distances, `θ = atan(offset / (0.6 · eye distance))`.
//! Pitch is read the same way from the nose's height between the eye line
//! and the mouth line, relative to its level-head position (0.58).
//!
//! Limits: 5 points and a generic head; expect ±10° error, more beyond
//! ±45° (where the far eye is guessed by the detector) and on faces under
//! ~40 px. Pitch is the less reliable of the two. It answers "roughly
//! facing the camera", not gaze: eyes can look away from a frontal head.

use crate::detect::Keypoints;

const NOSE_DEPTH_IOD: f32 = 0.6;
const LEVEL_NOSE_HEIGHT: f32 = 0.58;
/// Change in the nose-height ratio per radian of pitch (same head model).
const PITCH_GAIN: f32 = 0.9;

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeadPose {
    /// Degrees, positive = nose toward the picture's right.
    pub yaw_deg: f32,
    /// Degrees, positive = nose down.
    pub pitch_deg: f32,
}

pub(crate) fn head_pose(kp: &Keypoints) -> Option<HeadPose> {
    let [le, re, nose, lm, rm] = *kp;
    let (dx, dy) = (re[0] - le[0], re[1] - le[1]);
    let eye_dist = (dx * dx + dy * dy).sqrt();
    if eye_dist < 2.0 {
        return None;
    }
    // Work in the eye line's frame so head roll does not read as yaw.
    let (ux, uy) = (dx / eye_dist, dy / eye_dist);
    let mid = [(le[0] + re[0]) * 0.5, (le[1] + re[1]) * 0.5];
    let mouth = [(lm[0] + rm[0]) * 0.5, (lm[1] + rm[1]) * 0.5];
    let rel = |p: [f32; 2]| {
        let (x, y) = (p[0] - mid[0], p[1] - mid[1]);
        (x * ux + y * uy, -x * uy + y * ux)
    };
    let (nose_x, nose_y) = rel(nose);
    let (_, mouth_y) = rel(mouth);
    let yaw = (nose_x / (NOSE_DEPTH_IOD * eye_dist)).atan();
    let pitch =
        if mouth_y > 1.0 { ((nose_y / mouth_y - LEVEL_NOSE_HEIGHT) / PITCH_GAIN).clamp(-1.0, 1.0).asin() } else { 0.0 };
    Some(HeadPose { yaw_deg: yaw.to_degrees(), pitch_deg: pitch.to_degrees() })
}

/// Facing the camera: both angles within their limits.
pub(crate) fn on_screen(p: &HeadPose, max_yaw_deg: f32, max_pitch_deg: f32) -> bool {
    p.yaw_deg.abs() <= max_yaw_deg && p.pitch_deg.abs() <= max_pitch_deg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keypoints of a generic head of inter-ocular distance 40 px turned by `yaw` degrees.
    fn head(yaw: f32, roll: f32) -> Keypoints {
        let t = yaw.to_radians();
        let iod = 40.0;
        let pts = [
            [-iod / 2.0 * t.cos(), 0.0],
            [iod / 2.0 * t.cos(), 0.0],
            [NOSE_DEPTH_IOD * iod * t.sin(), 0.58 * 36.0],
            [-15.0 * t.cos(), 36.0],
            [15.0 * t.cos(), 36.0],
        ];
        let r = roll.to_radians();
        pts.map(|[x, y]| [100.0 + x * r.cos() - y * r.sin(), 100.0 + x * r.sin() + y * r.cos()])
    }

    #[test]
    fn recovers_yaw_and_ignores_roll() {
        for yaw in [-50.0f32, -30.0, -10.0, 0.0, 15.0, 35.0, 60.0] {
            for roll in [0.0f32, 20.0, -25.0] {
                let p = head_pose(&head(yaw, roll)).unwrap();
                assert!((p.yaw_deg - yaw).abs() < 1.0, "yaw {yaw} roll {roll}: {p:?}");
                assert!(p.pitch_deg.abs() < 1.0, "{p:?}");
            }
        }
    }

    #[test]
    fn frontal_is_on_screen_turned_is_not() {
        let lim = (25.0, 20.0);
        assert!(on_screen(&head_pose(&head(0.0, 0.0)).unwrap(), lim.0, lim.1));
        assert!(on_screen(&head_pose(&head(20.0, 10.0)).unwrap(), lim.0, lim.1));
        assert!(!on_screen(&head_pose(&head(35.0, 0.0)).unwrap(), lim.0, lim.1));
        assert!(!on_screen(&head_pose(&head(-40.0, 0.0)).unwrap(), lim.0, lim.1));
        let mut down = head(0.0, 0.0);
        down[2][1] += 20.0; // nose far down toward the mouth line: head tilted down
        assert!(!on_screen(&head_pose(&down).unwrap(), lim.0, lim.1));
        assert!(head_pose(&[[0.0; 2]; 5]).is_none());
    }
}
