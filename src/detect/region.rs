//! Detection regions (`detect_roi`) and face-size limits (`min_face_px`,
//! `max_face_px`) per camera. A wide camera's faces are small next to the
//! frame: letterboxing a 3840x2160 frame into 640x384 scales by 1/6, and a
//! 90-pixel face becomes 15. The detector sees only the region instead,
//! letterboxed at its own input size; what it finds is moved back into
//! full-frame coordinates, so tracks, events, zones and records never know.
//!
//! The region is copied out of the pool frame into a buffer the detect
//! thread keeps (grown once to the largest region, then reused): a row
//! copy per plane, far cheaper than the inference it saves.

use serde::Deserialize;

use super::Detection;
use crate::pool::{i420_len, I420};

/// One coordinate of `detect_roi`: pixels, or a share of the frame
/// written as a string ending in `%`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RegionValue {
    Pixels(f64),
    Percent(String),
}

/// `detect_roi = [x, y, w, h]`: the frame's part the detector sees.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Vec<RegionValue>")]
pub struct RegionSpec {
    /// x, y, width, height; each in pixels or as a share (0..1) of the
    /// frame's width or height.
    parts: [Part; 4],
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Px(f64),
    Share(f64),
}

impl TryFrom<Vec<RegionValue>> for RegionSpec {
    type Error = String;
    fn try_from(v: Vec<RegionValue>) -> Result<Self, String> {
        if v.len() != 4 {
            return Err(format!("must be [x, y, width, height], got {} values", v.len()));
        }
        let mut parts = [Part::Px(0.0); 4];
        for (i, (value, name)) in v.iter().zip(["x", "y", "width", "height"]).enumerate() {
            parts[i] = match value {
                RegionValue::Pixels(p) if p.is_finite() && *p >= 0.0 => Part::Px(*p),
                RegionValue::Pixels(p) => return Err(format!("{name} must be >= 0 pixels, got {p}")),
                RegionValue::Percent(s) => {
                    let pct = s
                        .trim()
                        .strip_suffix('%')
                        .and_then(|n| n.trim().parse::<f64>().ok())
                        .filter(|p| (0.0..=100.0).contains(p))
                        .ok_or_else(|| format!("{name} {s:?}: write pixels (a number) or a share like \"25%\""))?;
                    Part::Share(pct / 100.0)
                }
            };
        }
        for (i, name) in [(2, "width"), (3, "height")] {
            if matches!(parts[i], Part::Px(p) | Part::Share(p) if p == 0.0) {
                return Err(format!("{name} must be more than 0"));
            }
        }
        for (a, b, axis) in [(0, 2, "x + width"), (1, 3, "y + height")] {
            if let (Part::Share(s), Part::Share(l)) = (parts[a], parts[b]) {
                if s + l > 1.0 + 1e-9 {
                    return Err(format!("{axis} is past the frame's edge ({:.0}%)", (s + l) * 100.0));
                }
            }
        }
        Ok(RegionSpec { parts })
    }
}

/// A rectangle of a frame in pixels, even-aligned (4:2:0 chroma).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl RegionSpec {
    /// The region in a `width` x `height` frame: clipped to the frame,
    /// corners rounded to even pixels. None when nothing of it is inside.
    pub fn resolve(&self, width: u32, height: u32) -> Option<Rect> {
        let v = |p: Part, full: u32| match p {
            Part::Px(x) => x,
            Part::Share(s) => s * full as f64,
        };
        let even = |x: f64| ((x / 2.0).round() as i64 * 2).max(0) as u32;
        let x1 = even(v(self.parts[0], width)).min(width & !1);
        let y1 = even(v(self.parts[1], height)).min(height & !1);
        let x2 = even(v(self.parts[0], width) + v(self.parts[2], width)).min(width & !1);
        let y2 = even(v(self.parts[1], height) + v(self.parts[3], height)).min(height & !1);
        (x2 > x1 && y2 > y1).then_some(Rect { x: x1, y: y1, w: x2 - x1, h: y2 - y1 })
    }
}

impl Rect {
    pub fn is_whole(&self, width: u32, height: u32) -> bool {
        self.x == 0 && self.y == 0 && self.w == width && self.h == height
    }

    /// Copies this part of `frame` into `buf` (grown when too small: once
    /// per larger region) and returns it as a frame of its own.
    pub fn crop<'b>(&self, frame: &I420<'_>, buf: &'b mut Vec<u8>) -> I420<'b> {
        let len = i420_len(self.w, self.h);
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let (w, x, y) = (self.w as usize, self.x as usize, self.y as usize);
        let fw = frame.width as usize;
        let (yp, chroma) = buf[..len].split_at_mut(w * self.h as usize);
        for (r, row) in yp.chunks_exact_mut(w).enumerate() {
            let s = (y + r) * fw + x;
            row.copy_from_slice(&frame.y[s..s + w]);
        }
        let (cw, ch) = (w.div_ceil(2), (self.h as usize).div_ceil(2));
        let fcw = frame.chroma_stride();
        let (up, vp) = chroma.split_at_mut(cw * ch);
        for (src, dst) in [(frame.u, up), (frame.v, vp)] {
            for (r, row) in dst.chunks_exact_mut(cw).enumerate() {
                let s = (y / 2 + r) * fcw + x / 2;
                row.copy_from_slice(&src[s..s + cw]);
            }
        }
        I420::new(&buf[..len], self.w, self.h)
    }

    /// A detection in this region's pixels, in the frame's.
    pub fn to_frame(&self, d: &mut Detection) {
        let (dx, dy) = (self.x as f32, self.y as f32);
        d.bbox.x1 += dx;
        d.bbox.x2 += dx;
        d.bbox.y1 += dy;
        d.bbox.y2 += dy;
        for k in d.keypoints.iter_mut() {
            k[0] += dx;
            k[1] += dy;
        }
    }
}

/// Faces narrower than `min` or wider than `max` pixels (0: no limit)
/// never reach the tracker.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaceSize {
    pub min: f32,
    pub max: f32,
}

impl FaceSize {
    pub fn admits(&self, d: &Detection) -> bool {
        let w = d.bbox.x2 - d.bbox.x1;
        w >= self.min && (self.max <= 0.0 || w <= self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::BBox;

    fn spec(toml_array: &str) -> Result<RegionSpec, String> {
        #[derive(Deserialize)]
        struct T {
            r: RegionSpec,
        }
        toml::from_str::<T>(&format!("r = {toml_array}")).map(|t| t.r).map_err(|e| e.to_string())
    }

    #[test]
    fn regions_in_pixels_or_percent_resolve_even_and_clipped() {
        let r = spec("[100, 51, 1001, 600]").unwrap();
        assert_eq!(r.resolve(3840, 2160), Some(Rect { x: 100, y: 52, w: 1002, h: 600 }));
        let r = spec(r#"["25%", "50%", "50%", "50%"]"#).unwrap();
        assert_eq!(r.resolve(3840, 2160), Some(Rect { x: 960, y: 1080, w: 1920, h: 1080 }));
        // Mixed, and clipped by a smaller frame (a camera that changed size).
        let r = spec(r#"[1000, "10%", 4000, "80%"]"#).unwrap();
        assert_eq!(r.resolve(1920, 1080), Some(Rect { x: 1000, y: 108, w: 920, h: 864 }));
        assert_eq!(spec("[3000, 0, 100, 100]").unwrap().resolve(1920, 1080), None);
    }

    #[test]
    fn bad_regions_say_what_is_wrong() {
        assert!(spec("[1, 2, 3]").unwrap_err().contains("[x, y, width, height]"));
        assert!(spec(r#"["10", 0, 5, 5]"#).unwrap_err().contains("\"25%\""));
        assert!(spec(r#"["60%", 0, "50%", 5]"#).unwrap_err().contains("past the frame's edge"));
        assert!(spec("[0, 0, 0, 5]").unwrap_err().contains("width must be more than 0"));
        assert!(spec("[-4, 0, 5, 5]").unwrap_err().contains("x must be >= 0"));
    }

    #[test]
    fn a_crop_holds_the_regions_pixels_and_detections_move_back() {
        let (w, h) = (8u32, 6u32);
        let mut frame = vec![0u8; i420_len(w, h)];
        for (i, p) in frame.iter_mut().enumerate() {
            *p = i as u8;
        }
        let f = I420::new(&frame, w, h);
        let rect = Rect { x: 2, y: 2, w: 4, h: 4 };
        let mut buf = Vec::new();
        let c = rect.crop(&f, &mut buf);
        assert_eq!((c.width, c.height), (4, 4));
        for yy in 0..4 {
            for xx in 0..4 {
                assert_eq!(c.y[yy * 4 + xx], f.y[(yy + 2) * 8 + xx + 2]);
            }
        }
        for yy in 0..2 {
            for xx in 0..2 {
                assert_eq!(c.u[yy * 2 + xx], f.u[(yy + 1) * 4 + xx + 1]);
                assert_eq!(c.v[yy * 2 + xx], f.v[(yy + 1) * 4 + xx + 1]);
            }
        }
        let mut d = Detection { bbox: BBox::new(1.0, 1.0, 3.0, 3.0), score: 0.9, keypoints: [[2.0, 2.0]; 5] };
        rect.to_frame(&mut d);
        assert_eq!(d.bbox, BBox::new(3.0, 3.0, 5.0, 5.0));
        assert_eq!(d.keypoints[4], [4.0, 4.0]);
        let size = FaceSize { min: 2.0, max: 0.0 };
        assert!(size.admits(&d));
        assert!(!FaceSize { min: 3.0, max: 0.0 }.admits(&d));
        assert!(!FaceSize { min: 0.0, max: 1.5 }.admits(&d));
    }
}
