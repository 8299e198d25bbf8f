//! Constant-velocity Kalman filter in (cx, cy, aspect, height) space, as in
//! ByteTrack and DeepSORT, on fixed-size arrays (no allocation).

// Matrix algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

pub(crate) type Vec8 = [f64; 8];
pub(crate) type Mat8 = [[f64; 8]; 8];
pub(crate) type Vec4 = [f64; 4];
type Mat4 = [[f64; 4]; 4];

const STD_POSITION: f64 = 1.0 / 20.0;
const STD_VELOCITY: f64 = 1.0 / 160.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct KalmanState {
    pub mean: Vec8,
    pub cov: Mat8,
}

fn diag8(v: &Vec8) -> Mat8 {
    let mut m = [[0.0; 8]; 8];
    for i in 0..8 {
        m[i][i] = v[i];
    }
    m
}

impl KalmanState {
    /// The same state in a picture scaled by `sx` across and `sy` down (a
    /// camera that changed resolution): positions and their velocities
    /// scale, the aspect (w/h) by `sx / sy`, and the covariance with them.
    pub(crate) fn rescale(&mut self, sx: f64, sy: f64) {
        let s = [sx, sy, sx / sy, sy, sx, sy, sx / sy, sy];
        for i in 0..8 {
            self.mean[i] *= s[i];
            for j in 0..8 {
                self.cov[i][j] *= s[i] * s[j];
            }
        }
    }

    /// Starts a track from a measurement (cx, cy, a, h), velocity unknown.
    pub(crate) fn initiate(z: Vec4) -> Self {
        let h = z[3];
        let std = [
            2.0 * STD_POSITION * h,
            2.0 * STD_POSITION * h,
            1e-2,
            2.0 * STD_POSITION * h,
            10.0 * STD_VELOCITY * h,
            10.0 * STD_VELOCITY * h,
            1e-5,
            10.0 * STD_VELOCITY * h,
        ];
        let var = std.map(|s| s * s);
        KalmanState { mean: [z[0], z[1], z[2], z[3], 0.0, 0.0, 0.0, 0.0], cov: diag8(&var) }
    }

    /// One step ahead. `tracked` = false freezes height velocity, as
    /// ByteTrack does for lost tracks.
    pub(crate) fn predict(&mut self, tracked: bool) {
        if !tracked {
            self.mean[7] = 0.0;
        }
        let h = self.mean[3];
        let sp = STD_POSITION * h;
        let sv = STD_VELOCITY * h;
        let q = [sp * sp, sp * sp, 1e-4, sp * sp, sv * sv, sv * sv, 1e-10, sv * sv];
        for i in 0..4 {
            self.mean[i] += self.mean[i + 4];
        }
        // cov = F cov F^T + Q with F = [[I, I], [0, I]].
        let c = self.cov;
        let mut fc = c;
        for i in 0..4 {
            for j in 0..8 {
                fc[i][j] = c[i][j] + c[i + 4][j];
            }
        }
        let mut out = fc;
        for i in 0..8 {
            for j in 0..4 {
                out[i][j] = fc[i][j] + fc[i][j + 4];
            }
        }
        for (i, qi) in q.iter().enumerate() {
            out[i][i] += qi;
        }
        self.cov = out;
    }

    /// Folds in a measurement (cx, cy, a, h).
    pub fn update(&mut self, z: Vec4) {
        let h = self.mean[3];
        let r = [STD_POSITION * h, STD_POSITION * h, 1e-1, STD_POSITION * h].map(|s| s * s);
        // S = H P H^T + R (H selects the first 4 components).
        let mut s: Mat4 = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                s[i][j] = self.cov[i][j];
            }
            s[i][i] += r[i];
        }
        let Some(si) = invert4(&s) else { return };
        // K = P H^T S^-1  (8x4)
        let mut k = [[0.0; 4]; 8];
        for i in 0..8 {
            for j in 0..4 {
                k[i][j] = (0..4).map(|m| self.cov[i][m] * si[m][j]).sum();
            }
        }
        let y = [z[0] - self.mean[0], z[1] - self.mean[1], z[2] - self.mean[2], z[3] - self.mean[3]];
        for i in 0..8 {
            self.mean[i] += (0..4).map(|j| k[i][j] * y[j]).sum::<f64>();
        }
        // P = P - K H P  (H P = first 4 rows of P)
        let p = self.cov;
        for i in 0..8 {
            for j in 0..8 {
                self.cov[i][j] = p[i][j] - (0..4).map(|m| k[i][m] * p[m][j]).sum::<f64>();
            }
        }
    }
}

fn invert4(m: &Mat4) -> Option<Mat4> {
    let mut a = *m;
    let mut inv: Mat4 = [[0.0; 4]; 4];
    for (i, row) in inv.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for col in 0..4 {
        let piv = (col..4).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        inv.swap(col, piv);
        let d = a[col][col];
        for j in 0..4 {
            a[col][j] /= d;
            inv[col][j] /= d;
        }
        for r in 0..4 {
            if r != col {
                let f = a[r][col];
                for j in 0..4 {
                    a[r][j] -= f * a[col][j];
                    inv[r][j] -= f * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rescaling_moves_the_box_and_its_spread_with_the_picture() {
        let mut k = KalmanState::initiate([100.0, 50.0, 0.75, 80.0]);
        k.mean[4] = 4.0;
        let before = k;
        k.rescale(2.0, 1.5);
        assert_eq!(&k.mean[..5], &[200.0, 75.0, 0.75 * 2.0 / 1.5, 120.0, 8.0]);
        assert!((k.cov[0][0] - before.cov[0][0] * 4.0).abs() < 1e-9);
        assert!((k.cov[3][3] - before.cov[3][3] * 2.25).abs() < 1e-9);
    }

    use super::*;

    #[test]
    fn learns_constant_velocity() {
        let mut kf = KalmanState::initiate([100.0, 50.0, 0.8, 60.0]);
        for t in 1..30 {
            kf.predict(true);
            kf.update([100.0 + 3.0 * t as f64, 50.0 - 1.0 * t as f64, 0.8, 60.0]);
        }
        assert!((kf.mean[4] - 3.0).abs() < 0.2, "vx {}", kf.mean[4]);
        assert!((kf.mean[5] + 1.0).abs() < 0.2, "vy {}", kf.mean[5]);
        kf.predict(true);
        assert!((kf.mean[0] - (100.0 + 3.0 * 30.0)).abs() < 2.0);
    }

    #[test]
    fn inverse_is_inverse() {
        let m = [[4.0, 1.0, 0.0, 0.5], [1.0, 3.0, 0.2, 0.0], [0.0, 0.2, 2.0, 0.1], [0.5, 0.0, 0.1, 5.0]];
        let inv = invert4(&m).unwrap();
        for i in 0..4 {
            for j in 0..4 {
                let v: f64 = (0..4).map(|k| m[i][k] * inv[k][j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-9);
            }
        }
    }
}
