//! Detection regions (`detect_roi`) and face-size limits (`min_face_px`,
//! `max_face_px`) per camera. A wide camera's faces are small next to the
//! frame: letterboxing a 3840x2160 frame into 640x384 scales by 1/6, and a
//! 90-pixel face becomes 15. The detector sees only the region instead,
//! letterboxed at its own input size; what it finds is moved back into
//! full-frame coordinates, so tracks, events, zones and records never know.
//!
//! Tiles (`detect_tiles`) go further, as SAHI does for small objects: the
//! frame (or its region) is cut into overlapping tiles, each letterboxed on
//! its own, all in the same batched inference; their faces are merged in
//! frame coordinates. A face cut by a tile's inner edge is left to the
//! neighbour that holds it whole (the overlap is sized for that), and what
//! is left of a face seen twice is suppressed (NMS, then boxes lying mostly
//! inside a better one).
//!
//! Each part is copied out of the pool frame into a buffer the detect
//! thread keeps (grown once to the largest part, then reused): a row copy
//! per plane, far cheaper than the inference it feeds.

use super::{Detection, Detections};
use crate::geom::BBox;
use crate::pool::{i420_len, I420};

use crate::config::region::Part;
pub(crate) use crate::config::region::{RegionSpec, TileSpec};
pub(crate) use crate::limits::MAX_TILES;

/// The parts of a frame the detector sees, each letterboxed on its own;
/// empty = the whole frame, uncopied.
pub(crate) type Parts = heapless::Vec<Rect, MAX_TILES>;

/// A face this many pixels wide at the detector's input is found reliably
/// (CenterFace finds some from ~10; `auto` tiles aim higher).
pub(crate) const DETECTABLE_PX: f32 = 24.0;

impl TileSpec {
    /// Cuts `area` into tiles for a detector input of `input` pixels; an
    /// empty result means one part, `area` itself. `min_face` is the
    /// smallest face wanted (frame pixels), for `auto`; `max_face` the
    /// largest (0: unknown), for the overlap, which is returned too (the
    /// widest face whole in one tile).
    pub fn cut(&self, area: Rect, input: (u32, u32), min_face: f32, max_face: f32) -> (Parts, f32) {
        let (cols, rows) = match *self {
            TileSpec::Off => (1, 1),
            TileSpec::Grid(c, r) => (c, r),
            TileSpec::Auto => auto_grid(area, input, min_face),
        };
        let mut out = Parts::new();
        if cols * rows <= 1 {
            let _ = out.push(area);
            return (out, 0.0);
        }
        // Neighbours overlap by the largest face (or a quarter of a tile
        // when that is unknown or larger), so every face is whole in one.
        let span = |len: u32, n: u32| -> (u32, u32) {
            if n == 1 {
                return (len, 0);
            }
            let quarter = len as f32 / n as f32 / 4.0;
            let ov = if max_face > 0.0 { max_face.min(quarter * 2.0) } else { quarter };
            let tile = ((len as f32 + ov * (n - 1) as f32) / n as f32).ceil() as u32;
            let tile = (tile + 1) & !1;
            (tile.min(len & !1), ov as u32)
        };
        let (tw, ovx) = span(area.w, cols);
        let (th, ovy) = span(area.h, rows);
        let overlap = match (cols, rows) {
            (1, _) => ovy,
            (_, 1) => ovx,
            _ => ovx.min(ovy),
        } as f32;
        let start = |i: u32, n: u32, len: u32, tile: u32| -> u32 {
            if n == 1 {
                0
            } else {
                ((len - tile) as u64 * i as u64 / (n - 1) as u64) as u32 & !1
            }
        };
        for r in 0..rows {
            for c in 0..cols {
                let _ = out.push(Rect {
                    x: area.x + start(c, cols, area.w, tw),
                    y: area.y + start(r, rows, area.h, th),
                    w: tw,
                    h: th,
                });
            }
        }
        (out, overlap)
    }

    /// Most parts a frame may be cut into (the detector's batch is sized
    /// for it).
    pub(crate) fn max_parts(&self) -> usize {
        match *self {
            TileSpec::Off => 1,
            TileSpec::Grid(c, r) => (c * r) as usize,
            TileSpec::Auto => MAX_TILES,
        }
    }
}

/// The fewest tiles (up to 4x4) at which a `min_face` face reaches
/// [`DETECTABLE_PX`] at the detector's input.
fn auto_grid(area: Rect, input: (u32, u32), min_face: f32) -> (u32, u32) {
    let scale_of = |w: f32, h: f32| (input.0 as f32 / w).min(input.1 as f32 / h);
    let wanted = DETECTABLE_PX / min_face.max(1.0);
    let mut best = (4, 4);
    for n in 1..=4u32 {
        // Columns and rows in the area's aspect, the tile close to the input's.
        for (c, r) in [(n, n), (n + 1, n), (n, n + 1)] {
            let (c, r) = (c.min(4), r.min(4));
            let (w, h) = (area.w as f32 / c as f32 * 1.25, area.h as f32 / r as f32 * 1.25);
            if scale_of(w.min(area.w as f32), h.min(area.h as f32)) >= wanted && c * r < best.0 * best.1 {
                best = (c, r);
            }
        }
    }
    if scale_of(area.w as f32, area.h as f32) >= wanted {
        (1, 1)
    } else {
        best
    }
}

/// Merges the faces of a frame's tiles (already in frame pixels), best
/// score first: a box lying mostly inside a kept one, or holding one
/// mostly inside itself (a face's part seen by one tile, the whole face by
/// its neighbour), is folded into it (the union box, the larger box's
/// keypoints); one overlapping a kept box by more than `iou` is dropped
/// (NMS).
pub(crate) fn merge_tiles(dets: &mut Detections, iou: f32) {
    dets.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = 0;
    for i in 0..dets.len() {
        let cand = dets[i];
        let nested = |k: &Detection| {
            let smaller = k.bbox.area().min(cand.bbox.area());
            smaller > 0.0 && k.bbox.intersection(&cand.bbox) / smaller > 0.6
        };
        if let Some(k) = dets[..kept].iter_mut().find(|k| nested(k)) {
            if cand.bbox.area() > k.bbox.area() {
                k.keypoints = cand.keypoints;
            }
            k.bbox = BBox::new(
                k.bbox.x1.min(cand.bbox.x1),
                k.bbox.y1.min(cand.bbox.y1),
                k.bbox.x2.max(cand.bbox.x2),
                k.bbox.y2.max(cand.bbox.y2),
            );
        } else if dets[..kept].iter().all(|k| k.bbox.iou(&cand.bbox) <= iou) {
            dets[kept] = cand;
            kept += 1;
        }
    }
    dets.truncate(kept);
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
    pub(crate) fn resolve(&self, width: u32, height: u32) -> Option<Rect> {
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

    /// Whether `d` (frame pixels) touches one of this tile's edges that lie
    /// inside `area`: the face goes on in the neighbouring tile.
    pub fn cuts(&self, area: &Rect, d: &Detection, margin: f32) -> bool {
        let b = &d.bbox;
        (self.x > area.x && b.x1 <= self.x as f32 + margin)
            || (self.y > area.y && b.y1 <= self.y as f32 + margin)
            || (self.x + self.w < area.x + area.w && b.x2 >= (self.x + self.w) as f32 - margin)
            || (self.y + self.h < area.y + area.h && b.y2 >= (self.y + self.h) as f32 - margin)
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
pub(crate) struct FaceSize {
    pub min: f32,
    pub max: f32,
}

impl FaceSize {
    pub(crate) fn admits(&self, d: &Detection) -> bool {
        let w = d.bbox.x2 - d.bbox.x1;
        w >= self.min && (self.max <= 0.0 || w <= self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

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

    #[test]
    fn tiles_cover_the_area_with_overlapping_seams() {
        let area = Rect { x: 0, y: 0, w: 3840, h: 2160 };
        let (parts, overlap) = TileSpec::Grid(4, 3).cut(area, (416, 320), 0.0, 0.0);
        assert_eq!(parts.len(), 12);
        assert!(overlap >= 100.0, "{overlap}");
        for t in parts.iter() {
            assert!(t.x % 2 == 0 && t.y % 2 == 0 && t.w % 2 == 0 && t.h % 2 == 0, "{t:?}");
            assert!(t.x + t.w <= 3840 && t.y + t.h <= 2160, "{t:?}");
        }
        // Every pixel is in some tile, and every seam is overlapped by at
        // least `overlap` pixels: a face that wide is whole in one tile.
        for (x, y) in [(0, 0), (3839, 2159), (1919, 1079), (960, 719), (2880, 1440)] {
            assert!(parts.iter().any(|t| x >= t.x && x < t.x + t.w && y >= t.y && y < t.y + t.h), "({x},{y})");
        }
        let (a, b) = (parts[0], parts[1]);
        assert!(a.x + a.w >= b.x + overlap as u32, "{a:?} {b:?} overlap {overlap}");
        // A region is tiled inside itself; the largest face sets the overlap.
        let region = Rect { x: 1000, y: 500, w: 1600, h: 900 };
        let (parts, overlap) = TileSpec::Grid(2, 1).cut(region, (416, 320), 0.0, 120.0);
        assert_eq!(overlap, 120.0);
        assert_eq!((parts[0].x, parts[1].x + parts[1].w), (1000, 2600));
        assert!(parts.iter().all(|t| t.y == 500 && t.h == 900));
    }

    #[test]
    fn auto_tiles_follow_the_smallest_face_wanted() {
        let uhd = Rect { x: 0, y: 0, w: 3840, h: 2160 };
        // 60 px faces in 4K: one letterbox makes them 6.5 px; tiles needed.
        let n = TileSpec::Auto.cut(uhd, (416, 320), 60.0, 0.0).0.len();
        assert!(n > 1, "{n}");
        // 300 px faces need no tiles; 40 px ones need more than 60 px ones.
        assert_eq!(TileSpec::Auto.cut(uhd, (416, 320), 300.0, 0.0).0.len(), 1);
        assert!(TileSpec::Auto.cut(uhd, (416, 320), 40.0, 0.0).0.len() >= n);
        assert_eq!(TileSpec::Off.cut(uhd, (416, 320), 40.0, 0.0).0.len(), 1);
    }

    #[test]
    fn a_face_cut_by_a_seam_is_left_to_the_tile_holding_it_whole() {
        let area = Rect { x: 0, y: 0, w: 2000, h: 1000 };
        let (parts, _) = TileSpec::Grid(2, 1).cut(area, (416, 320), 0.0, 200.0);
        let (left, right) = (parts[0], parts[1]);
        let face = |x1: f32, x2: f32, score: f32| Detection {
            bbox: BBox::new(x1, 400.0, x2, 500.0),
            score,
            keypoints: [[0.0; 2]; 5],
        };
        // The face spans the left tile's right edge: cut there, whole in the right tile.
        let cut = face(left.x as f32 + left.w as f32 - 60.0, left.x as f32 + left.w as f32, 0.8);
        assert!(left.cuts(&area, &cut, 2.0));
        assert!(!right.cuts(&area, &face(right.x as f32 + 20.0, right.x as f32 + 120.0, 0.9), 2.0));
        // The frame's own edges are not seams.
        assert!(!left.cuts(&area, &face(0.0, 80.0, 0.9), 2.0));
        // A part of a face seen next to the whole one is folded into it,
        // even when the part scored better: one face, the whole box.
        let mut d = Detections::new();
        d.push(face(1000.0, 1100.0, 0.7)).unwrap();
        d.push(face(1000.0, 1045.0, 0.9)).unwrap();
        d.push(face(1500.0, 1600.0, 0.8)).unwrap();
        merge_tiles(&mut d, 0.4);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].score, d[1].score), (0.9, 0.8));
        assert_eq!(d[0].bbox, BBox::new(1000.0, 400.0, 1100.0, 500.0));
    }
}
