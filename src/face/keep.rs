//! The keep store: where each track's best face lives until its event
//! leaves, apart from the frame pool that capture needs.
//!
//! Holding the pool frame of every track's best face let a crowd (40 faces,
//! each best on its own frame) take every slot; capture then waited for a
//! slot that only new frames could free: a stall. A kept face is instead
//! two copies made when a track's best face improves, each in a store
//! allocated at start and sized by the board profile's capacity:
//!
//! - the face region (the box grown by [`CROP_MARGIN`] on every side) at
//!   full resolution, or at 1/2, 1/3, ... when it is wider than
//!   [`CROP_MAX`] (faces over ~250 px, which stay over 125 px);
//! - the whole frame at half resolution ("context"), made once per frame
//!   and shared by every track whose best face is on that frame.
//!
//! A best face scored with Face Mesh also keeps its landmarks (478 points,
//! 5.7 KB) in a third store of as many slots as there are crops.
//!
//! [`KeptFace::compose`] rebuilds a full-size frame for the event: the
//! context scaled back up, the face region pasted in at its own
//! resolution. So the event's face crop and FindFace's `roi` see the
//! original pixels; only the background away from the face is at half
//! resolution. Copies cost one 2x2 average of the frame per frame with an
//! improvement (about 1 ms at 1080p) and a region copy per improved track.

use crate::geom::BBox;
use crate::landmarks::Points;
use crate::pool::{i420_len, FrameMeta, FramePool, FrameRef, I420};

/// The kept face region is the box grown by this share of its size on each side.
pub(crate) const CROP_MARGIN: f32 = 0.5;
/// Largest kept region, luma pixels per side (larger ones are stored scaled down).
pub(crate) const CROP_MAX: u32 = 512;

/// A track's best face, held outside the frame pool.
#[derive(Clone, Debug)]
pub struct KeptFace {
    /// The original frame's metadata (size, sequence number, times).
    pub meta: FrameMeta,
    /// The whole frame at half resolution.
    pub context: FrameRef,
    /// The face region, `region` in frame pixels, divided by `crop_scale`.
    pub crop: FrameRef,
    /// x, y, width, height of the kept region in frame pixels (x and y even).
    pub region: (u32, u32, u32, u32),
    pub crop_scale: u32,
}

/// Both stores, owned by the track thread.
pub struct KeepStore {
    contexts: FramePool,
    crops: FramePool,
    points: FramePool,
    /// Per camera: the context made from the newest frame, for the tracks
    /// that improve on that same frame.
    last_context: Vec<Option<FrameRef>>,
    /// Improvements not kept because a store was empty (counted per camera).
    pub refused: Vec<u64>,
}

/// Bytes of one context slot for frames up to `max_w` x `max_h`.
pub(crate) fn context_bytes(max_w: u32, max_h: u32) -> usize {
    i420_len(max_w.div_ceil(2), max_h.div_ceil(2))
}

impl KeepStore {
    /// `faces` best faces at once over `cameras` cameras, frames up to
    /// `max_w` x `max_h`. Everything is allocated here.
    pub fn new(faces: usize, cameras: usize, max_w: u32, max_h: u32) -> Self {
        // One spare context per camera: the newest frame's, shared.
        KeepStore {
            contexts: FramePool::new(faces + cameras, context_bytes(max_w, max_h)),
            crops: FramePool::new(faces.max(1), i420_len(CROP_MAX, CROP_MAX)),
            points: FramePool::new(faces.max(1), POINTS_BYTES),
            last_context: (0..cameras).map(|_| None).collect(),
            refused: vec![0; cameras],
        }
    }

    /// The board profile's store: `board::KEEP_FACES` faces.
    pub(crate) fn for_board(cameras: usize) -> Self {
        Self::new(crate::board::KEEP_FACES, cameras, crate::board::MAX_FRAME_WIDTH, crate::board::MAX_FRAME_HEIGHT)
    }

    /// Faces that can be held at once.
    pub fn capacity(&self) -> usize {
        self.crops.capacity()
    }

    /// Slots in use (crops), for stats.
    pub(crate) fn in_use(&self) -> usize {
        self.crops.capacity() - self.crops.free_slots()
    }

    /// Copies the face at `bbox` of `frame` (and the frame's context, once
    /// per frame) into the stores. `None` when a store is full: counted,
    /// and the track keeps the best face it already has.
    pub fn keep(&mut self, frame: &FrameRef, bbox: &BBox) -> Option<KeptFace> {
        let meta = *frame.meta();
        let cam = meta.camera as usize;
        let pic = frame.planes();
        let region = face_region(bbox, meta.width, meta.height);
        let crop_scale = region.2.max(region.3).div_ceil(CROP_MAX).max(1);
        let Some(mut crop) = self.crops.acquire() else {
            self.refuse(cam);
            return None;
        };
        let context = match self.last_context.get(cam).and_then(|c| c.as_ref()) {
            Some(c) if c.meta().seq == meta.seq && c.meta().captured_mono_ns == meta.captured_mono_ns => c.clone(),
            _ => {
                let Some(mut ctx) = self.contexts.acquire() else {
                    self.refuse(cam);
                    return None;
                };
                let (cw, ch) = downscale(&pic, (0, 0, meta.width, meta.height), 2, ctx.buffer_mut());
                *ctx.meta_mut() = FrameMeta { width: cw, height: ch, ..meta };
                let ctx = ctx.freeze();
                if let Some(slot) = self.last_context.get_mut(cam) {
                    *slot = Some(ctx.clone());
                }
                ctx
            }
        };
        let (w, h) = downscale(&pic, region, crop_scale, crop.buffer_mut());
        *crop.meta_mut() = FrameMeta { width: w, height: h, ..meta };
        Some(KeptFace { meta, context, crop: crop.freeze(), region, crop_scale })
    }

    /// Copies a best face's landmarks into the store (None when full:
    /// counted like a refused face; the event then carries no points).
    pub(crate) fn keep_points(&mut self, camera: usize, points: &Points) -> Option<FrameRef> {
        let Some(mut slot) = self.points.acquire() else {
            self.refuse(camera);
            return None;
        };
        for (dst, v) in slot.buffer_mut().chunks_exact_mut(4).zip(points.iter().flatten()) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        Some(slot.freeze())
    }

    fn refuse(&mut self, cam: usize) {
        if let Some(n) = self.refused.get_mut(cam) {
            *n += 1;
        }
    }

    /// Lets the newest context of `camera` go (its stream ended).
    pub(crate) fn forget_camera(&mut self, camera: usize) {
        if let Some(c) = self.last_context.get_mut(camera) {
            *c = None;
        }
    }
}

const POINTS_BYTES: usize = crate::landmarks::POINTS * 3 * 4;

/// The landmarks a [`KeepStore::keep_points`] slot holds.
pub(crate) fn read_points(slot: &FrameRef) -> Vec<[f32; 3]> {
    let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    slot.bytes()[..POINTS_BYTES].chunks_exact(12).map(|c| [f(&c[0..4]), f(&c[4..8]), f(&c[8..12])]).collect()
}

/// The kept region for a face box: grown by [`CROP_MARGIN`], inside the
/// frame, x and y even so chroma lines up.
pub(crate) fn face_region(bbox: &BBox, width: u32, height: u32) -> (u32, u32, u32, u32) {
    let (mx, my) = (bbox.width() * CROP_MARGIN, bbox.height() * CROP_MARGIN);
    let clamp = |v: f32, hi: u32| v.max(0.0).min(hi as f32);
    let x0 = (clamp(bbox.x1 - mx, width) as u32) & !1;
    let y0 = (clamp(bbox.y1 - my, height) as u32) & !1;
    let x1 = (clamp(bbox.x2 + mx, width).ceil() as u32).clamp(x0, width);
    let y1 = (clamp(bbox.y2 + my, height).ceil() as u32).clamp(y0, height);
    (x0, y0, (x1 - x0).max(1).min(width - x0), (y1 - y0).max(1).min(height - y0))
}

/// Averages `s` x `s` blocks of the `region` (x, y, w, h; x and y even) of
/// `src` into packed I420 in `dst`; returns the size written. `s = 1` copies.
pub(crate) fn downscale(src: &I420<'_>, region: (u32, u32, u32, u32), s: u32, dst: &mut [u8]) -> (u32, u32) {
    let (x, y, w, h) = region;
    let (dw, dh) = (w.div_ceil(s), h.div_ceil(s));
    let (dwu, dhu) = (dw as usize, dh as usize);
    let (dcw, dch) = (dwu.div_ceil(2), dhu.div_ceil(2));
    let (dy, rest) = dst.split_at_mut(dwu * dhu);
    let (du, rest) = rest.split_at_mut(dcw * dch);
    let dv = &mut rest[..dcw * dch];
    let sw = src.width as usize;
    let scw = src.chroma_stride();
    let sch = (src.height as usize).div_ceil(2);
    plane_down(src.y, sw, src.height as usize, (x as usize, y as usize), (w as usize, h as usize), s as usize, dy, dwu);
    let (cx, cy) = (x as usize / 2, y as usize / 2);
    let (cw, ch) = (((x + w) as usize).div_ceil(2) - cx, ((y + h) as usize).div_ceil(2) - cy);
    for (sp, dp) in [(src.u, &mut *du), (src.v, &mut *dv)] {
        plane_down(sp, scw, sch, (cx, cy), (cw, ch), s as usize, dp, dcw);
    }
    (dw, dh)
}

/// One plane: `s` x `s` box average of the `size` region at `at` (clamped
/// to the plane) into `dst` rows of `dst_stride`, as many as fit.
#[allow(clippy::too_many_arguments)]
fn plane_down(
    src: &[u8],
    stride: usize,
    rows: usize,
    at: (usize, usize),
    size: (usize, usize),
    s: usize,
    dst: &mut [u8],
    dst_stride: usize,
) {
    let (x0, y0) = at;
    let (w, h) = (size.0.min(stride.saturating_sub(x0)), size.1.min(rows.saturating_sub(y0)));
    let out_rows = dst.len() / dst_stride.max(1);
    if s == 1 {
        for r in 0..h.min(out_rows) {
            let from = (y0 + r) * stride + x0;
            let n = w.min(dst_stride);
            dst[r * dst_stride..r * dst_stride + n].copy_from_slice(&src[from..from + n]);
        }
        return;
    }
    if s == 2 && w > 0 && h > 0 {
        // The context of every frame with an improvement: kept tight.
        for (oy, drow) in dst.chunks_exact_mut(dst_stride).enumerate().take(h.div_ceil(2)) {
            let r0 = y0 + 2 * oy;
            let r1 = (r0 + 1).min(y0 + h - 1);
            let a = &src[r0 * stride + x0..r0 * stride + x0 + w];
            let b = &src[r1 * stride + x0..r1 * stride + x0 + w];
            for ((d, pa), pb) in drow.iter_mut().zip(a.chunks_exact(2)).zip(b.chunks_exact(2)) {
                *d = ((pa[0] as u16 + pa[1] as u16 + pb[0] as u16 + pb[1] as u16 + 2) / 4) as u8;
            }
            if w % 2 == 1 {
                drow[w / 2] = (a[w - 1] as u16 + b[w - 1] as u16).div_ceil(2) as u8;
            }
        }
        return;
    }
    for (oy, drow) in dst.chunks_exact_mut(dst_stride).enumerate().take(h.div_ceil(s)) {
        let ry0 = y0 + oy * s;
        let ry1 = (ry0 + s).min(y0 + h);
        for (ox, d) in drow.iter_mut().enumerate().take(w.div_ceil(s)) {
            let rx0 = x0 + ox * s;
            let rx1 = (rx0 + s).min(x0 + w);
            let mut sum = 0u32;
            for ry in ry0..ry1 {
                let row = &src[ry * stride..];
                for &p in &row[rx0..rx1] {
                    sum += p as u32;
                }
            }
            let n = ((ry1 - ry0) * (rx1 - rx0)) as u32;
            *d = ((sum + n / 2) / n.max(1)) as u8;
        }
    }
}

/// Writes `src` (w x h plane) scaled up by `s` into the `dst` plane (dw x dh)
/// at (x0, y0), nearest neighbour, clipped to `dst`.
#[allow(clippy::too_many_arguments)]
fn plane_up(
    src: &[u8],
    sw: usize,
    sh: usize,
    s: usize,
    dst: &mut [u8],
    dw: usize,
    dh: usize,
    at: (usize, usize),
    size: (usize, usize),
) {
    let (x0, y0) = at;
    let (w, h) = (size.0.min(dw.saturating_sub(x0)), size.1.min(dh.saturating_sub(y0)));
    for r in 0..h {
        let sr = (r / s).min(sh.saturating_sub(1));
        let srow = &src[sr * sw..sr * sw + sw];
        let drow = &mut dst[(y0 + r) * dw + x0..(y0 + r) * dw + x0 + w];
        if s == 1 {
            drow.copy_from_slice(&srow[..w]);
        } else {
            for (c, d) in drow.iter_mut().enumerate() {
                *d = srow[(c / s).min(sw - 1)];
            }
        }
    }
}

impl KeptFace {
    /// Rebuilds the full-size frame into `out` (packed I420, grown once to
    /// the largest frame size): the context scaled up, the kept face region
    /// pasted in. Returns the picture over `out`.
    pub(crate) fn compose<'a>(&self, out: &'a mut Vec<u8>) -> I420<'a> {
        let (w, h) = (self.meta.width as usize, self.meta.height as usize);
        let len = i420_len(self.meta.width, self.meta.height);
        if out.len() < len {
            out.resize(len, 0);
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        {
            let (dy, rest) = out[..len].split_at_mut(w * h);
            let (du, dv) = rest.split_at_mut(cw * ch);
            let ctx = self.context.planes();
            let (xw, xh) = (ctx.width as usize, ctx.height as usize);
            let (xcw, xch) = (xw.div_ceil(2), xh.div_ceil(2));
            plane_up(ctx.y, xw, xh, 2, dy, w, h, (0, 0), (w, h));
            plane_up(ctx.u, xcw, xch, 2, du, cw, ch, (0, 0), (cw, ch));
            plane_up(ctx.v, xcw, xch, 2, dv, cw, ch, (0, 0), (cw, ch));
            let crop = self.crop.planes();
            let (pw, ph) = (crop.width as usize, crop.height as usize);
            let (pcw, pch) = (pw.div_ceil(2), ph.div_ceil(2));
            let (x, y, rw, rh) = self.region;
            let (x, y, rw, rh) = (x as usize, y as usize, rw as usize, rh as usize);
            let s = self.crop_scale as usize;
            plane_up(crop.y, pw, ph, s, dy, w, h, (x, y), (rw, rh));
            let (rcw, rch) = ((x + rw).div_ceil(2) - x / 2, (y + rh).div_ceil(2) - y / 2);
            plane_up(crop.u, pcw, pch, s, du, cw, ch, (x / 2, y / 2), (rcw, rch));
            plane_up(crop.v, pcw, pch, s, dv, cw, ch, (x / 2, y / 2), (rcw, rch));
        }
        I420::new(&out[..len], self.meta.width, self.meta.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame whose every pixel differs (a gradient with texture), in a pool.
    fn frame(pool: &FramePool, w: u32, h: u32, seq: u64) -> FrameRef {
        let mut f = pool.acquire().unwrap();
        let len = i420_len(w, h);
        for (i, b) in f.buffer_mut()[..len].iter_mut().enumerate() {
            *b = ((i * 7 + (i / w as usize) * 13) % 251) as u8;
        }
        *f.meta_mut() = FrameMeta { width: w, height: h, seq, camera: 0, ..Default::default() };
        f.freeze()
    }

    #[test]
    fn the_face_region_comes_back_pixel_exact_and_the_rest_at_half_resolution() {
        let pool = FramePool::new(2, i420_len(320, 240));
        let f = frame(&pool, 320, 240, 5);
        let mut keep = KeepStore::new(4, 1, 320, 240);
        let bbox = BBox::new(100.0, 60.0, 160.0, 140.0);
        let k = keep.keep(&f, &bbox).unwrap();
        assert_eq!(k.crop_scale, 1);
        assert_eq!(k.region, (70, 20, 120, 160), "box grown by half its size on each side");
        let mut out = Vec::new();
        let pic = k.compose(&mut out);
        let orig = f.planes();
        let (x, y, w, h) = k.region;
        for r in y..y + h {
            for c in x..x + w {
                let i = (r * 320 + c) as usize;
                assert_eq!(pic.y[i], orig.y[i], "luma at ({c},{r}) inside the face region");
            }
        }
        // Outside: the 2x2 average of the original.
        let avg = (orig.y[0] as u32 + orig.y[1] as u32 + orig.y[320] as u32 + orig.y[321] as u32 + 2) / 4;
        assert_eq!(pic.y[0] as u32, avg);
        assert_eq!((pic.width, pic.height), (320, 240));
    }

    #[test]
    fn the_pool_frame_is_not_held_and_tracks_on_one_frame_share_its_context() {
        let pool = FramePool::new(1, i420_len(320, 240));
        let f = frame(&pool, 320, 240, 1);
        let mut keep = KeepStore::new(3, 1, 320, 240);
        let a = keep.keep(&f, &BBox::new(10.0, 10.0, 50.0, 60.0)).unwrap();
        let b = keep.keep(&f, &BBox::new(200.0, 100.0, 260.0, 180.0)).unwrap();
        assert_eq!(a.context.slot(), b.context.slot(), "one context per frame");
        drop(f);
        assert_eq!(pool.free_slots(), 1, "kept faces hold no pool slot");
        assert_eq!(keep.in_use(), 2);
        let f2 = frame(&pool, 320, 240, 2);
        let c = keep.keep(&f2, &BBox::new(10.0, 10.0, 50.0, 60.0)).unwrap();
        assert_ne!(c.context.slot(), a.context.slot(), "a new frame, a new context");
        assert!(keep.keep(&f2, &BBox::new(100.0, 10.0, 150.0, 60.0)).is_none(), "store of 3 is full");
        assert_eq!(keep.refused, vec![1]);
        drop((a, b));
        assert!(keep.keep(&f2, &BBox::new(100.0, 10.0, 150.0, 60.0)).is_some(), "slots come back");
    }

    #[test]
    fn a_face_larger_than_the_crop_is_kept_scaled_and_composes_to_full_size() {
        let pool = FramePool::new(1, i420_len(1920, 1080));
        let f = frame(&pool, 1920, 1080, 1);
        let mut keep = KeepStore::new(1, 1, 1920, 1088);
        let k = keep.keep(&f, &BBox::new(700.0, 200.0, 1100.0, 700.0)).unwrap();
        assert_eq!(k.crop_scale, 2, "a 1000 px region is kept at 1/2");
        assert!(k.crop.meta().width <= CROP_MAX && k.crop.meta().height <= CROP_MAX);
        let mut out = Vec::new();
        let pic = k.compose(&mut out);
        assert_eq!((pic.width, pic.height), (1920, 1080));
        // Inside the region each pixel is the 2x2 average of the original
        // block it lies in (the region starts at an even x and y).
        let (x0, y0, _, _) = k.region;
        let orig = f.planes();
        let (bx, by) = (x0 + (900 - x0) / 2 * 2, y0 + (450 - y0) / 2 * 2);
        let at = |x: u32, y: u32| orig.y[(y * 1920 + x) as usize] as u32;
        let avg = (at(bx, by) + at(bx + 1, by) + at(bx, by + 1) + at(bx + 1, by + 1) + 2) / 4;
        assert_eq!(pic.y[450 * 1920 + 900] as u32, avg);
    }

    #[test]
    fn odd_sizes_and_edge_boxes_stay_inside_the_frame() {
        let pool = FramePool::new(1, i420_len(641, 361));
        let f = frame(&pool, 641, 361, 1);
        let mut keep = KeepStore::new(2, 1, 642, 362);
        for b in [BBox::new(-20.0, -10.0, 30.0, 40.0), BBox::new(600.0, 320.0, 660.0, 380.0)] {
            let k = keep.keep(&f, &b).unwrap();
            let (x, y, w, h) = k.region;
            assert!(x + w <= 641 && y + h <= 361, "{:?}", k.region);
            let mut out = Vec::new();
            let pic = k.compose(&mut out);
            assert_eq!(pic.y.len(), 641 * 361);
        }
    }
}
