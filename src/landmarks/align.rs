//! Aligned crops for the landmark models, as MediaPipe makes them: a square
//! around the face (1.5x the detector's box, turned so the eyes are level)
//! or around an eye (2.3x its corner distance, along the eye), sampled from
//! the I420 frame into the model's RGB 0..1 planes; and the models' points
//! back to frame pixels.

use crate::detect::Detection;
use crate::pool::{yuv_to_rgb, I420};

/// A square region of the frame, turned by `angle` (radians, clockwise in
/// the picture, which has y down).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Roi {
    pub cx: f32,
    pub cy: f32,
    /// Side, frame pixels.
    pub size: f32,
    pub angle: f32,
    /// Mirror left-right (MediaPipe's iris model sees eye B mirrored).
    pub flip: bool,
}

/// The face square's size over the detector box's longer side.
pub const FACE_SCALE: f32 = 1.5;
/// The eye square's size over the eye's corner-to-corner distance.
pub(crate) const EYE_SCALE: f32 = 2.3;

impl Roi {
    /// The face region for the mesh model, from the detector's box and eyes.
    pub fn face(det: &Detection) -> Roi {
        let b = &det.bbox;
        let [le, re, ..] = det.keypoints;
        Roi {
            cx: (b.x1 + b.x2) * 0.5,
            cy: (b.y1 + b.y2) * 0.5,
            size: FACE_SCALE * b.width().max(b.height()).max(1.0),
            angle: (re[1] - le[1]).atan2(re[0] - le[0]),
            flip: false,
        }
    }

    /// An eye's region for the iris model, from its corners (the one on
    /// the picture's left first).
    pub(crate) fn eye(left: [f32; 3], right: [f32; 3], flip: bool) -> Roi {
        let (dx, dy) = (right[0] - left[0], right[1] - left[1]);
        Roi {
            cx: (left[0] + right[0]) * 0.5,
            cy: (left[1] + right[1]) * 0.5,
            size: EYE_SCALE * (dx * dx + dy * dy).sqrt().max(1.0),
            angle: dy.atan2(dx),
            flip,
        }
    }

    /// Frame position of the model-input position (u, v) (continuous,
    /// 0..side) of a `side`-pixel crop.
    #[inline]
    pub fn to_frame(&self, u: f32, v: f32, side: usize) -> (f32, f32) {
        let k = self.size / side as f32;
        let mut a = u * k - self.size * 0.5;
        if self.flip {
            a = -a;
        }
        let b = v * k - self.size * 0.5;
        let (s, c) = self.angle.sin_cos();
        (self.cx + a * c - b * s, self.cy + a * s + b * c)
    }

    /// A model point (crop pixels, depth in the same unit) in frame pixels.
    pub(crate) fn point_to_frame(&self, p: [f32; 3], side: usize) -> [f32; 3] {
        let (x, y) = self.to_frame(p[0], p[1], side);
        [x, y, p[2] * self.size / side as f32]
    }

    /// Samples the region into `out` (3 planes of `side` x `side`, RGB
    /// 0..=1): bilinear luma, nearest chroma; outside the frame is black.
    pub fn sample(&self, frame: &I420<'_>, side: usize, out: &mut [f32]) {
        let plane = side * side;
        assert!(out.len() >= 3 * plane, "crop buffer too small");
        let (w, h) = (frame.width as i32, frame.height as i32);
        let cs = frame.chroma_stride();
        // Step per output pixel along u and v, in frame pixels.
        let (x0, y0) = self.to_frame(0.5, 0.5, side);
        let (x1, y1) = self.to_frame(1.5, 0.5, side);
        let (x2, y2) = self.to_frame(0.5, 1.5, side);
        let (du, dv) = ((x1 - x0, y1 - y0), (x2 - x0, y2 - y0));
        let luma = |x: i32, y: i32| frame.y[(y * w + x) as usize] as i32;
        for v in 0..side {
            let (mut fx, mut fy) = (x0 + dv.0 * v as f32, y0 + dv.1 * v as f32);
            for u in 0..side {
                let i = v * side + u;
                // Pixel centres are at +0.5.
                let (sx, sy) = (fx - 0.5, fy - 0.5);
                fx += du.0;
                fy += du.1;
                if sx < 0.0 || sy < 0.0 || sx > (w - 1) as f32 || sy > (h - 1) as f32 {
                    out[i] = 0.0;
                    out[plane + i] = 0.0;
                    out[2 * plane + i] = 0.0;
                    continue;
                }
                let (ix, iy) = (sx as i32, sy as i32);
                let (ax, ay) = (sx - ix as f32, sy - iy as f32);
                let (jx, jy) = ((ix + 1).min(w - 1), (iy + 1).min(h - 1));
                let top = luma(ix, iy) as f32 * (1.0 - ax) + luma(jx, iy) as f32 * ax;
                let bot = luma(ix, jy) as f32 * (1.0 - ax) + luma(jx, jy) as f32 * ax;
                let yy = (top * (1.0 - ay) + bot * ay + 0.5) as i32;
                let ci = (iy as usize / 2) * cs + ix as usize / 2;
                let [r, g, b] = yuv_to_rgb(yy, frame.u[ci] as i32, frame.v[ci] as i32);
                out[i] = r as f32 * (1.0 / 255.0);
                out[plane + i] = g as f32 * (1.0 / 255.0);
                out[2 * plane + i] = b as f32 * (1.0 / 255.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::BBox;

    #[test]
    fn points_round_trip_through_a_turned_flipped_crop() {
        for flip in [false, true] {
            let roi = Roi { cx: 200.0, cy: 150.0, size: 90.0, angle: 0.3, flip };
            // The crop's centre is the region's centre; its corners are
            // `size` apart along the turned axes.
            let (cx, cy) = roi.to_frame(32.0, 32.0, 64);
            assert!((cx - 200.0).abs() < 1e-3 && (cy - 150.0).abs() < 1e-3);
            let (ax, ay) = roi.to_frame(0.0, 32.0, 64);
            let (bx, by) = roi.to_frame(64.0, 32.0, 64);
            assert!((((bx - ax).powi(2) + (by - ay).powi(2)).sqrt() - 90.0).abs() < 1e-3);
            // Mirrored, the crop's left edge is the region's right.
            let want = if flip { 0.3 - std::f32::consts::PI } else { 0.3 };
            assert!(((by - ay).atan2(bx - ax) - want).abs() < 1e-3);
            let p = roi.point_to_frame([10.0, 20.0, 6.4], 64);
            assert!((p[2] - 9.0).abs() < 1e-4);
        }
    }

    #[test]
    fn face_roi_is_level_with_the_eyes_and_samples_the_frame() {
        let det = Detection {
            bbox: BBox { x1: 40.0, y1: 30.0, x2: 80.0, y2: 80.0 },
            score: 0.9,
            keypoints: [[50.0, 50.0], [70.0, 60.0], [60.0, 60.0], [52.0, 70.0], [68.0, 72.0]],
        };
        let roi = Roi::face(&det);
        assert_eq!(roi.size, 75.0);
        assert!((roi.angle - (10.0f32).atan2(20.0)).abs() < 1e-6);
        // A frame whose left half is dark and right half bright: the crop
        // keeps that (turned by only 27 degrees).
        let (w, h) = (128u32, 128u32);
        let mut buf = vec![128u8; (w * h * 3 / 2) as usize];
        for y in 0..h as usize {
            for x in 0..w as usize {
                buf[y * w as usize + x] = if x < 60 { 30 } else { 220 };
            }
        }
        let pic = I420::new(&buf, w, h);
        let mut out = vec![0.0f32; 3 * 32 * 32];
        roi.sample(&pic, 32, &mut out);
        let (l, r) = (out[16 * 32 + 2], out[16 * 32 + 29]);
        assert!(l < 0.2 && r > 0.8, "{l} {r}");
    }
}
