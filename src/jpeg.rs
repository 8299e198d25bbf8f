//! JPEG encoding through libjpeg-turbo's TurboJPEG API (Debian's
//! `libturbojpeg0-dev`, linked statically by build.rs so boards need no
//! extra library). Event crops are encoded straight from the pool's I420
//! planes: no RGB round trip, only a range-expansion table over the crop.
//!
//! Measured against the pure-Rust encoder this replaces in PERFORMANCE.md.
//! Decoding (USB cameras' MJPEG) lands in packed I420, video range, like
//! every other source.

use std::ffi::{c_char, c_int, c_uchar, c_ulong, c_void, CStr};
use std::ptr::NonNull;

use crate::geom::BBox;
use crate::pool::I420;

const TJSAMP_420: c_int = 2;
const TJPF_RGB: c_int = 0;
/// Never let TurboJPEG reallocate our buffer: it is sized with tjBufSize.
const TJFLAG_NOREALLOC: c_int = 1024;

// Linked by build.rs (static or shared, see there).
extern "C" {
    fn tjInitCompress() -> *mut c_void;
    fn tjDestroy(handle: *mut c_void) -> c_int;
    fn tjGetErrorStr2(handle: *mut c_void) -> *mut c_char;
    fn tjBufSize(width: c_int, height: c_int, subsamp: c_int) -> c_ulong;
    fn tjCompress2(
        handle: *mut c_void,
        src: *const c_uchar,
        width: c_int,
        pitch: c_int,
        height: c_int,
        pixel_format: c_int,
        jpeg_buf: *mut *mut c_uchar,
        jpeg_size: *mut c_ulong,
        subsamp: c_int,
        quality: c_int,
        flags: c_int,
    ) -> c_int;
    fn tjInitDecompress() -> *mut c_void;
    fn tjDecompressHeader3(
        handle: *mut c_void,
        jpeg: *const c_uchar,
        size: c_ulong,
        width: *mut c_int,
        height: *mut c_int,
        subsamp: *mut c_int,
        colorspace: *mut c_int,
    ) -> c_int;
    fn tjPlaneWidth(component: c_int, width: c_int, subsamp: c_int) -> c_int;
    fn tjPlaneHeight(component: c_int, height: c_int, subsamp: c_int) -> c_int;
    fn tjDecompressToYUVPlanes(
        handle: *mut c_void,
        jpeg: *const c_uchar,
        size: c_ulong,
        planes: *mut *mut c_uchar,
        width: c_int,
        strides: *mut c_int,
        height: c_int,
        flags: c_int,
    ) -> c_int;
    fn tjCompressFromYUVPlanes(
        handle: *mut c_void,
        planes: *const *const c_uchar,
        width: c_int,
        strides: *const c_int,
        height: c_int,
        subsamp: c_int,
        jpeg_buf: *mut *mut c_uchar,
        jpeg_size: *mut c_ulong,
        quality: c_int,
        flags: c_int,
    ) -> c_int;
}

/// Limited-range (video, BT.601: Y 16..235, C 16..240) to full-range (JFIF)
/// tables. Decoders read JPEG as full range; without this, crops from
/// x264/OpenH264 frames come out grey-black and washed out.
struct RangeTables {
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl RangeTables {
    const fn new() -> Self {
        let (mut luma, mut chroma) = ([0u8; 256], [0u8; 256]);
        let mut i = 0;
        while i < 256 {
            let y = (i as i32 - 16) * 255 * 2 / 219;
            let y = (y + 1) / 2;
            luma[i] = if y < 0 {
                0
            } else if y > 255 {
                255
            } else {
                y as u8
            };
            let c = 128 + ((i as i32 - 128) * 255 * 2 / 224 + if i >= 128 { 1 } else { -1 }) / 2;
            chroma[i] = if c < 0 {
                0
            } else if c > 255 {
                255
            } else {
                c as u8
            };
            i += 1;
        }
        RangeTables { luma, chroma }
    }
}

static RANGE: RangeTables = RangeTables::new();

/// Full range (JFIF) back to video range, for decoded MJPEG.
struct ToVideoRange {
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl ToVideoRange {
    const fn new() -> Self {
        let (mut luma, mut chroma) = ([0u8; 256], [0u8; 256]);
        let mut i = 0;
        while i < 256 {
            luma[i] = (16 + (i as i32 * 219 + 127) / 255) as u8;
            let c = 128 + ((i as i32 - 128) * 224 + if i >= 128 { 127 } else { -127 }) / 255;
            chroma[i] = c as u8;
            i += 1;
        }
        ToVideoRange { luma, chroma }
    }
}

static TO_VIDEO: ToVideoRange = ToVideoRange::new();

const TJSAMP_GRAY: c_int = 3;

/// What went wrong encoding or decoding a JPEG.
#[derive(Debug, Clone, PartialEq)]
pub enum JpegError {
    /// libturbojpeg could not make a handle (`tjInitCompress`/`tjInitDecompress`).
    Init(&'static str),
    /// libturbojpeg refused the data; its own message.
    Turbo(String),
    /// A header with a size no picture has.
    BadSize { width: i32, height: i32 },
    /// The region to encode has no pixel inside the picture.
    EmptyRegion { region: BBox, width: u32, height: u32 },
    /// An RGB buffer shorter than its size says.
    ShortBuffer { width: u32, height: u32, needed: usize, got: usize },
}

impl std::fmt::Display for JpegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JpegError::Init(call) => write!(f, "libturbojpeg: {call} failed"),
            JpegError::Turbo(msg) => write!(f, "libturbojpeg: {msg}"),
            JpegError::BadSize { width, height } => write!(f, "JPEG of {width}x{height}"),
            JpegError::EmptyRegion { region, width, height } => {
                write!(f, "region {region:?} is empty inside the {width}x{height} picture")
            }
            JpegError::ShortBuffer { width, height, needed, got } => {
                write!(f, "{width}x{height} RGB needs {needed} bytes, got {got}")
            }
        }
    }
}

impl std::error::Error for JpegError {}

/// One TurboJPEG decompressor and its reused planes (USB cameras' MJPEG).
pub(crate) struct JpegDecoder {
    handle: NonNull<c_void>,
    planes: [Vec<u8>; 3],
}

// SAFETY: the TurboJPEG handle is owned by this value and only used through
// &mut self, so from one thread at a time, which TurboJPEG allows.
unsafe impl Send for JpegDecoder {}

impl Drop for JpegDecoder {
    fn drop(&mut self) {
        // SAFETY: the handle tjInit* made, owned by self, destroyed once.
        unsafe { tjDestroy(self.handle.as_ptr()) };
    }
}

impl JpegDecoder {
    pub fn new() -> Result<Self, JpegError> {
        // SAFETY: no arguments; NULL (failure) is checked by NonNull::new.
        let handle = NonNull::new(unsafe { tjInitDecompress() }).ok_or(JpegError::Init("tjInitDecompress"))?;
        Ok(JpegDecoder { handle, planes: Default::default() })
    }

    /// Decodes `jpeg` into packed I420 (video range) in `out`; returns its size.
    /// Any chroma subsampling is resampled to 4:2:0; greyscale gets neutral chroma.
    pub(crate) fn decode_to_i420(&mut self, jpeg: &[u8], out: &mut Vec<u8>) -> Result<(u32, u32), JpegError> {
        let h = self.handle.as_ptr();
        // SAFETY: tjGetErrorStr2 returns a NUL-terminated string TurboJPEG
        // owns (per handle, or static), valid until the next call on `h`.
        let err = || JpegError::Turbo(unsafe { CStr::from_ptr(tjGetErrorStr2(h)) }.to_string_lossy().into_owned());
        let (mut w, mut ht, mut sub, mut cs) = (0, 0, 0, 0);
        // SAFETY: a live handle, `jpeg.len()` readable bytes, four out-ints.
        if unsafe { tjDecompressHeader3(h, jpeg.as_ptr(), jpeg.len() as c_ulong, &mut w, &mut ht, &mut sub, &mut cs) }
            != 0
        {
            return Err(err());
        }
        if w <= 0 || ht <= 0 {
            return Err(JpegError::BadSize { width: w, height: ht });
        }
        let ncomp = if sub == TJSAMP_GRAY { 1 } else { 3 };
        let mut dims = [(0usize, 0usize); 3];
        let mut ptrs = [std::ptr::null_mut::<c_uchar>(); 3];
        let mut strides = [0 as c_int; 3];
        for c in 0..ncomp {
            // SAFETY: pure functions of their integer arguments.
            let (pw, ph) = unsafe { (tjPlaneWidth(c as c_int, w, sub), tjPlaneHeight(c as c_int, ht, sub)) };
            dims[c] = (pw as usize, ph as usize);
            self.planes[c].resize(pw as usize * ph as usize, 0);
            ptrs[c] = self.planes[c].as_mut_ptr();
            strides[c] = pw;
        }
        // Greyscale has one plane; TurboJPEG reads only that pointer then.
        // SAFETY: a live handle; each plane `c` holds strides[c] x height
        // bytes, the size tjPlaneWidth/Height gave for this header.
        if unsafe {
            tjDecompressToYUVPlanes(
                h,
                jpeg.as_ptr(),
                jpeg.len() as c_ulong,
                ptrs.as_mut_ptr(),
                w,
                strides.as_mut_ptr(),
                ht,
                0,
            )
        } != 0
        {
            return Err(err());
        }
        let (w, ht) = (w as usize, ht as usize);
        let (cw, ch) = (w.div_ceil(2), ht.div_ceil(2));
        out.clear();
        // Luma rows are dims[0].0 apart: the width padded to the sampling.
        for row in self.planes[0].chunks(dims[0].0).take(ht) {
            out.extend(row[..w].iter().map(|&v| TO_VIDEO.luma[v as usize]));
        }
        for (plane, &(pw, ph)) in self.planes.iter().zip(dims.iter()).skip(1) {
            if ncomp == 1 {
                out.extend(std::iter::repeat_n(128u8, cw * ch));
                continue;
            }
            // Nearest-sample resampling to 4:2:0 (exact for 4:2:0 itself).
            for y in 0..ch {
                let sy = (y * ph / ch).min(ph - 1);
                out.extend((0..cw).map(|x| TO_VIDEO.chroma[plane[sy * pw + (x * pw / cw).min(pw - 1)] as usize]));
            }
        }
        Ok((w as u32, ht as u32))
    }
}

/// One TurboJPEG compressor and its reused buffers; one per encoding thread.
pub struct JpegEncoder {
    handle: NonNull<c_void>,
    planes: [Vec<u8>; 3],
}

// SAFETY: the TurboJPEG handle is owned by this value and only used through
// &mut self, so from one thread at a time, which TurboJPEG allows.
unsafe impl Send for JpegEncoder {}

impl Drop for JpegEncoder {
    fn drop(&mut self) {
        // SAFETY: the handle tjInit* made, owned by self, destroyed once.
        unsafe { tjDestroy(self.handle.as_ptr()) };
    }
}

impl JpegEncoder {
    pub fn new() -> Result<Self, JpegError> {
        // SAFETY: no arguments; NULL (failure) is checked by NonNull::new.
        let handle = NonNull::new(unsafe { tjInitCompress() }).ok_or(JpegError::Init("tjInitCompress"))?;
        Ok(JpegEncoder { handle, planes: Default::default() })
    }

    fn error(&self) -> JpegError {
        // SAFETY: tjGetErrorStr2 returns a NUL-terminated string TurboJPEG
        // owns, valid until the next call on the handle (copied below).
        let msg = unsafe { CStr::from_ptr(tjGetErrorStr2(self.handle.as_ptr())) };
        JpegError::Turbo(msg.to_string_lossy().into_owned())
    }

    /// Encodes `region` (clipped to the picture, grown to even coordinates
    /// for 4:2:0) of `pic` at `quality` into `out`.
    pub fn encode_i420(
        &mut self,
        pic: &I420<'_>,
        region: &BBox,
        quality: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), JpegError> {
        let r = region.clip(pic.width as f32, pic.height as f32);
        let (pw, ph) = (pic.width as usize, pic.height as usize);
        let x1 = (r.x1.max(0.0).floor() as usize) & !1;
        let y1 = (r.y1.max(0.0).floor() as usize) & !1;
        let x2 = (r.x2.ceil() as usize).min(pw);
        let y2 = (r.y2.ceil() as usize).min(ph);
        if x2 <= x1 || y2 <= y1 {
            return Err(JpegError::EmptyRegion { region: *region, width: pic.width, height: pic.height });
        }
        let (w, h) = (x2 - x1, y2 - y1);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let cs = pic.chroma_stride();
        let [py, pu, pv] = &mut self.planes;
        py.clear();
        for row in pic.y[y1 * pw..].chunks(pw).take(h) {
            py.extend(row[x1..x1 + w].iter().map(|&v| RANGE.luma[v as usize]));
        }
        for (dst, src) in [(&mut *pu, pic.u), (&mut *pv, pic.v)] {
            dst.clear();
            for row in src[(y1 / 2) * cs..].chunks(cs).take(ch) {
                dst.extend(row[x1 / 2..x1 / 2 + cw].iter().map(|&v| RANGE.chroma[v as usize]));
            }
        }
        let planes = [py.as_ptr(), pu.as_ptr(), pv.as_ptr()];
        let strides = [w as c_int, cw as c_int, cw as c_int];
        // SAFETY: a pure function of its integer arguments.
        let cap = unsafe { tjBufSize(w as c_int, h as c_int, TJSAMP_420) } as usize;
        out.clear();
        out.resize(cap, 0);
        let mut buf = out.as_mut_ptr();
        let mut size = cap as c_ulong;
        // TJFLAG_NOREALLOC: TurboJPEG writes into `out` and never frees it.
        // SAFETY: a live handle; the planes hold h x w and ch x cw bytes at
        // those strides; `buf` has `cap` = tjBufSize bytes, the most it writes.
        let rc = unsafe {
            tjCompressFromYUVPlanes(
                self.handle.as_ptr(),
                planes.as_ptr(),
                w as c_int,
                strides.as_ptr(),
                h as c_int,
                TJSAMP_420,
                &mut buf,
                &mut size,
                quality.clamp(1, 100) as c_int,
                TJFLAG_NOREALLOC,
            )
        };
        if rc != 0 {
            out.clear();
            return Err(self.error());
        }
        out.truncate(size as usize);
        Ok(())
    }

    /// Encodes packed RGB (`width * height * 3` bytes) at `quality`.
    pub(crate) fn encode_rgb(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        quality: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), JpegError> {
        let (w, h) = (width as usize, height as usize);
        if w == 0 || h == 0 || rgb.len() < w * h * 3 {
            return Err(JpegError::ShortBuffer { width, height, needed: w * h * 3, got: rgb.len() });
        }
        // SAFETY: a pure function of its integer arguments.
        let cap = unsafe { tjBufSize(w as c_int, h as c_int, TJSAMP_420) } as usize;
        out.clear();
        out.resize(cap, 0);
        let mut buf = out.as_mut_ptr();
        let mut size = cap as c_ulong;
        // TJFLAG_NOREALLOC: TurboJPEG writes into `out` and never frees it.
        // SAFETY: a live handle; `rgb` holds h rows of w*3 bytes (checked);
        // `buf` has `cap` = tjBufSize bytes, the most it writes.
        let rc = unsafe {
            tjCompress2(
                self.handle.as_ptr(),
                rgb.as_ptr(),
                w as c_int,
                (w * 3) as c_int,
                h as c_int,
                TJPF_RGB,
                &mut buf,
                &mut size,
                TJSAMP_420,
                quality.clamp(1, 100) as c_int,
                TJFLAG_NOREALLOC,
            )
        };
        if rc != 0 {
            out.clear();
            return Err(self.error());
        }
        out.truncate(size as usize);
        Ok(())
    }
}

/// The face box grown by `margin` of its size on every side: a crop that
/// keeps the whole head, as recognition servers prefer.
pub fn face_crop_region(b: &BBox, margin: f32) -> BBox {
    let (mw, mh) = (b.width() * margin, b.height() * margin);
    BBox::new(b.x1 - mw, b.y1 - mh, b.x2 + mw, b.y2 + mh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sof_size(jpg: &[u8]) -> (u16, u16) {
        let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline SOF");
        let h = u16::from_be_bytes([jpg[sof + 5], jpg[sof + 6]]);
        let w = u16::from_be_bytes([jpg[sof + 7], jpg[sof + 8]]);
        (w, h)
    }

    #[test]
    fn encodes_a_clipped_even_aligned_region_of_an_i420_picture() {
        let (w, h) = (64u32, 48u32);
        let mut buf = vec![120u8; (w * h) as usize];
        buf.extend(std::iter::repeat_n(128u8, (w * h / 2) as usize));
        let pic = I420::new(&buf, w, h);
        let mut enc = JpegEncoder::new().unwrap();
        let mut out = Vec::new();
        enc.encode_i420(&pic, &BBox::new(-5.0, 11.0, 30.0, 40.0), 90, &mut out).unwrap();
        assert_eq!(&out[..2], &[0xFF, 0xD8], "SOI marker");
        assert_eq!(&out[out.len() - 2..], &[0xFF, 0xD9], "EOI marker");
        // x from 0 (clipped), y from 10 (11 rounded down to even).
        assert_eq!(sof_size(&out), (30, 30));
        let empty = enc.encode_i420(&pic, &BBox::new(70.0, 0.0, 80.0, 10.0), 90, &mut out);
        assert!(matches!(empty, Err(JpegError::EmptyRegion { .. })), "{empty:?}");
    }

    #[test]
    fn encodes_rgb_and_rejects_a_short_buffer() {
        let rgb: Vec<u8> = (0..32 * 16 * 3).map(|i| (i % 251) as u8).collect();
        let mut enc = JpegEncoder::new().unwrap();
        let mut out = Vec::new();
        enc.encode_rgb(&rgb, 32, 16, 75, &mut out).unwrap();
        assert_eq!(sof_size(&out), (32, 16));
        assert!(enc.encode_rgb(&rgb, 64, 16, 75, &mut out).is_err());
    }

    #[test]
    fn jpeg_round_trip_through_i420_keeps_the_picture() {
        // A 64x48 gradient, encoded then decoded: sizes match, pixels close.
        let (w, h) = (64u32, 48u32);
        let mut buf: Vec<u8> = (0..w * h).map(|i| 16 + ((i % w) * 3) as u8).collect();
        buf.extend((0..(w * h / 2)).map(|i| 100 + (i % 40) as u8));
        let pic = I420::new(&buf, w, h);
        let mut enc = JpegEncoder::new().unwrap();
        let mut jpg = Vec::new();
        enc.encode_i420(&pic, &BBox::new(0.0, 0.0, w as f32, h as f32), 95, &mut jpg).unwrap();
        let mut dec = JpegDecoder::new().unwrap();
        let mut out = Vec::new();
        assert_eq!(dec.decode_to_i420(&jpg, &mut out).unwrap(), (w, h));
        assert_eq!(out.len(), buf.len());
        let worst = out.iter().zip(&buf).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
        assert!(worst <= 6, "round trip error {worst}");
        let cut = dec.decode_to_i420(&jpg[..jpg.len() / 3], &mut out);
        assert!(cut.is_err(), "a JPEG cut to a third decoded: {cut:?}");
        assert!(dec.decode_to_i420(b"not a jpeg", &mut out).is_err());
    }

    #[test]
    fn an_odd_width_jpeg_decodes_row_by_row() {
        // 4:2:0 pads the luma plane to an even width: 33 columns are 34 in
        // TurboJPEG's plane, and reading it as 33 wide would shear the rows.
        // Each row is one grey level, so a sheared read mixes levels.
        let (w, h) = (33u32, 17u32);
        let rgb: Vec<u8> = (0..h).flat_map(|y| std::iter::repeat_n((y * 14) as u8, (w * 3) as usize)).collect();
        let mut jpg = Vec::new();
        JpegEncoder::new().unwrap().encode_rgb(&rgb, w, h, 98, &mut jpg).unwrap();
        let mut out = Vec::new();
        assert_eq!(JpegDecoder::new().unwrap().decode_to_i420(&jpg, &mut out).unwrap(), (w, h));
        assert_eq!(out.len(), crate::pool::i420_len(w, h));
        for y in 0..h as usize {
            let row = &out[y * w as usize..(y + 1) * w as usize];
            let (lo, hi) = (row.iter().min().unwrap(), row.iter().max().unwrap());
            assert!(hi - lo <= 3, "row {y} mixes levels {lo}..{hi}: {row:?}");
        }
    }

    #[test]
    fn video_range_maps_onto_full_range() {
        assert_eq!((RANGE.luma[16], RANGE.luma[235], RANGE.luma[0], RANGE.luma[255]), (0, 255, 0, 255));
        assert_eq!((RANGE.chroma[16], RANGE.chroma[128], RANGE.chroma[240]), (0, 128, 255));
        assert!(RANGE.luma.windows(2).all(|p| p[0] <= p[1]), "monotonic");
    }
}
