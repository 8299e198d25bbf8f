//! Video decoding into packed I420. H.264 with OpenH264 (built from the
//! source bundled in the `openh264` crate: no system library, cross-compiles
//! with plain cc); H.265 with libde265 (Debian `libde265-dev`) behind the
//! `h265` cargo feature; USB cameras' MJPEG with libjpeg-turbo and YUYV
//! (4:2:2 packed) by a plain conversion. Pictures are copied once, tightly
//! packed, into a frame-pool slot.

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

#[derive(Debug)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decode: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// The video codecs faceflow takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    /// One JPEG per frame (USB cameras).
    Mjpeg,
    /// Packed 4:2:2, Y0 U Y1 V (USB cameras), of the given size.
    Yuyv {
        width: u32,
        height: u32,
    },
}

impl Codec {
    pub fn as_str(&self) -> &'static str {
        match self {
            Codec::H264 => "H.264",
            Codec::H265 => "H.265",
            Codec::Mjpeg => "MJPEG",
            Codec::Yuyv { .. } => "YUYV",
        }
    }
}

/// A decoded 8-bit 4:2:0 picture borrowed from its decoder.
pub struct Picture<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    /// Bytes per row of y, u and v.
    pub strides: (usize, usize, usize),
    pub width: u32,
    pub height: u32,
}

impl Picture<'_> {
    /// Writes the picture as packed I420 into `dst` (at least `i420_len` bytes).
    pub fn copy_to(&self, dst: &mut [u8]) {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (dy, rest) = dst.split_at_mut(w * h);
        let (du, rest) = rest.split_at_mut(cw * ch);
        let dv = &mut rest[..cw * ch];
        let s = self.strides;
        for r in 0..h {
            dy[r * w..(r + 1) * w].copy_from_slice(&self.y[r * s.0..r * s.0 + w]);
        }
        for r in 0..ch {
            du[r * cw..(r + 1) * cw].copy_from_slice(&self.u[r * s.1..r * s.1 + cw]);
            dv[r * cw..(r + 1) * cw].copy_from_slice(&self.v[r * s.2..r * s.2 + cw]);
        }
    }
}

/// One camera's decoder, for the codec its stream carries.
pub enum VideoDecoder {
    H264(H264Decoder),
    #[cfg(feature = "h265")]
    H265(h265::H265Decoder),
    /// MJPEG and YUYV: converted into an owned I420 buffer.
    Raw(RawDecoder),
}

impl VideoDecoder {
    pub fn new(codec: Codec) -> Result<Self, DecodeError> {
        match codec {
            Codec::H264 => Ok(VideoDecoder::H264(H264Decoder::new()?)),
            Codec::Mjpeg | Codec::Yuyv { .. } => Ok(VideoDecoder::Raw(RawDecoder::new(codec)?)),
            #[cfg(feature = "h265")]
            Codec::H265 => Ok(VideoDecoder::H265(h265::H265Decoder::new()?)),
            #[cfg(not(feature = "h265"))]
            Codec::H265 => Err(DecodeError(
                "H.265 needs a build with the `h265` cargo feature (libde265: apt-get install libde265-dev)".into(),
            )),
        }
    }

    pub fn codec(&self) -> Codec {
        match self {
            VideoDecoder::H264(_) => Codec::H264,
            #[cfg(feature = "h265")]
            VideoDecoder::H265(_) => Codec::H265,
            VideoDecoder::Raw(r) => r.codec,
        }
    }

    /// Feeds one access unit (Annex B); returns a picture when one completes.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<Picture<'_>>, DecodeError> {
        match self {
            VideoDecoder::H264(d) => d.decode(data),
            #[cfg(feature = "h265")]
            VideoDecoder::H265(d) => d.decode(data),
            VideoDecoder::Raw(d) => d.decode(data).map(Some),
        }
    }

    /// Pictures still buffered at the end of the stream, one at a time.
    pub fn flush_one(&mut self) -> Option<Picture<'_>> {
        match self {
            VideoDecoder::H264(d) => d.flush_one(),
            #[cfg(feature = "h265")]
            VideoDecoder::H265(d) => d.flush_one(),
            VideoDecoder::Raw(_) => None,
        }
    }
}

/// Uncompressed or intra-only frames: each packet is one whole picture.
pub struct RawDecoder {
    codec: Codec,
    jpeg: Option<crate::jpeg::JpegDecoder>,
    i420: Vec<u8>,
}

impl RawDecoder {
    pub fn new(codec: Codec) -> Result<Self, DecodeError> {
        let jpeg = match codec {
            Codec::Mjpeg => Some(crate::jpeg::JpegDecoder::new().map_err(DecodeError)?),
            _ => None,
        };
        Ok(RawDecoder { codec, jpeg, i420: Vec::new() })
    }

    pub fn decode(&mut self, data: &[u8]) -> Result<Picture<'_>, DecodeError> {
        let (w, h) = match (self.codec, self.jpeg.as_mut()) {
            (Codec::Mjpeg, Some(j)) => {
                j.decode_to_i420(data, &mut self.i420).map_err(|e| DecodeError(format!("MJPEG: {e}")))?
            }
            (Codec::Yuyv { width, height }, _) => {
                yuyv_to_i420(data, width, height, &mut self.i420)?;
                (width, height)
            }
            _ => return Err(DecodeError(format!("{} is not a raw format", self.codec.as_str()))),
        };
        let (wu, hu) = (w as usize, h as usize);
        let (cw, ch) = (wu.div_ceil(2), hu.div_ceil(2));
        let (y, rest) = self.i420.split_at(wu * hu);
        let (u, v) = rest.split_at(cw * ch);
        Ok(Picture { y, u, v, strides: (wu, cw, cw), width: w, height: h })
    }
}

/// YUYV (Y0 U Y1 V per pixel pair, 4:2:2) to packed I420: luma copied,
/// chroma averaged over each pair of rows.
pub fn yuyv_to_i420(src: &[u8], width: u32, height: u32, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || !w.is_multiple_of(2) || src.len() < w * h * 2 {
        return Err(DecodeError(format!("YUYV {width}x{height} needs {} bytes, got {}", w * h * 2, src.len())));
    }
    let (cw, ch) = (w / 2, h.div_ceil(2));
    out.clear();
    out.resize(w * h + 2 * cw * ch, 0);
    let (y, rest) = out.split_at_mut(w * h);
    let (u, v) = rest.split_at_mut(cw * ch);
    for (r, row) in src.chunks_exact(w * 2).take(h).enumerate() {
        for (x, px) in row.chunks_exact(2).enumerate() {
            y[r * w + x] = px[0];
        }
    }
    for cy in 0..ch {
        let r0 = &src[(2 * cy) * w * 2..(2 * cy + 1) * w * 2];
        let r1 = if 2 * cy + 1 < h { &src[(2 * cy + 1) * w * 2..(2 * cy + 2) * w * 2] } else { r0 };
        for cx in 0..cw {
            let i = cx * 4;
            u[cy * cw + cx] = (r0[i + 1] as u16 + r1[i + 1] as u16).div_ceil(2) as u8;
            v[cy * cw + cx] = (r0[i + 3] as u16 + r1[i + 3] as u16).div_ceil(2) as u8;
        }
    }
    Ok(())
}

pub struct H264Decoder {
    dec: Decoder,
}

impl H264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        Ok(H264Decoder { dec: Decoder::new().map_err(|e| DecodeError(format!("H.264: {e}")))? })
    }

    /// Feeds one packet (one or more NAL units); returns a picture when one completes.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<Picture<'_>>, DecodeError> {
        match self.dec.decode(data) {
            Ok(Some(p)) => Ok(Some(to_picture(p))),
            Ok(None) => Ok(None),
            Err(e) => Err(DecodeError(format!("H.264: {e}"))),
        }
    }

    /// Pictures still buffered at the end of the stream, one at a time.
    pub fn flush_one(&mut self) -> Option<Picture<'_>> {
        // openh264 hands them out as a Vec; the end of a stream is not the hot path.
        let mut all = self.dec.flush_remaining().ok()?;
        if all.is_empty() {
            None
        } else {
            Some(to_picture(all.remove(0)))
        }
    }
}

fn to_picture(p: openh264::decoder::DecodedYUV<'_>) -> Picture<'_> {
    let (w, h) = p.dimensions();
    let strides = p.strides();
    // The planes live in the decoder; DecodedYUV only borrows them.
    let (y, u, v) = unsafe {
        let ext = |s: &[u8]| std::slice::from_raw_parts(s.as_ptr(), s.len());
        (ext(p.y()), ext(p.u()), ext(p.v()))
    };
    Picture { y, u, v, strides, width: w as u32, height: h as u32 }
}

#[cfg(feature = "h265")]
pub mod h265 {
    //! libde265 through its C API (a dozen functions; linked by build.rs).

    use super::{DecodeError, Picture};
    use std::ffi::{c_char, c_int, c_void, CStr};

    #[repr(C)]
    struct Ctx {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    struct Image {
        _opaque: [u8; 0],
    }

    const DE265_OK: c_int = 0;
    const DE265_ERROR_IMAGE_BUFFER_FULL: c_int = 9;
    const DE265_ERROR_WAITING_FOR_INPUT_DATA: c_int = 13;
    const DE265_CHROMA_420: c_int = 1;

    extern "C" {
        fn de265_new_decoder() -> *mut Ctx;
        fn de265_free_decoder(ctx: *mut Ctx) -> c_int;
        fn de265_push_data(ctx: *mut Ctx, data: *const c_void, len: c_int, pts: i64, user: *mut c_void) -> c_int;
        fn de265_push_end_of_frame(ctx: *mut Ctx);
        fn de265_flush_data(ctx: *mut Ctx) -> c_int;
        fn de265_decode(ctx: *mut Ctx, more: *mut c_int) -> c_int;
        fn de265_peek_next_picture(ctx: *mut Ctx) -> *const Image;
        fn de265_release_next_picture(ctx: *mut Ctx);
        fn de265_get_image_width(img: *const Image, channel: c_int) -> c_int;
        fn de265_get_image_height(img: *const Image, channel: c_int) -> c_int;
        fn de265_get_chroma_format(img: *const Image) -> c_int;
        fn de265_get_bits_per_pixel(img: *const Image, channel: c_int) -> c_int;
        fn de265_get_image_plane(img: *const Image, channel: c_int, stride: *mut c_int) -> *const u8;
        fn de265_get_error_text(err: c_int) -> *const c_char;
        fn de265_isOK(err: c_int) -> c_int;
    }

    pub struct H265Decoder {
        ctx: *mut Ctx,
        /// A picture handed out by the last call, released on the next one.
        holding: bool,
    }

    // The context is only touched through &mut self, from one thread.
    unsafe impl Send for H265Decoder {}

    impl Drop for H265Decoder {
        fn drop(&mut self) {
            unsafe { de265_free_decoder(self.ctx) };
        }
    }

    fn text(err: c_int) -> String {
        unsafe { CStr::from_ptr(de265_get_error_text(err)) }.to_string_lossy().into_owned()
    }

    impl H265Decoder {
        pub fn new() -> Result<Self, DecodeError> {
            let ctx = unsafe { de265_new_decoder() };
            if ctx.is_null() {
                return Err(DecodeError("H.265: libde265 could not create a decoder".into()));
            }
            Ok(H265Decoder { ctx, holding: false })
        }

        fn release(&mut self) {
            if self.holding {
                unsafe { de265_release_next_picture(self.ctx) };
                self.holding = false;
            }
        }

        /// Runs the decoder until it wants input; the next output picture, if any.
        fn pump(&mut self) -> Result<Option<Picture<'_>>, DecodeError> {
            loop {
                if !unsafe { de265_peek_next_picture(self.ctx) }.is_null() {
                    break;
                }
                let mut more: c_int = 0;
                let err = unsafe { de265_decode(self.ctx, &mut more) };
                if err == DE265_ERROR_WAITING_FOR_INPUT_DATA || (err == DE265_OK && more == 0) {
                    break;
                }
                if err == DE265_ERROR_IMAGE_BUFFER_FULL {
                    continue;
                }
                if unsafe { de265_isOK(err) } == 0 {
                    return Err(DecodeError(format!("H.265: {}", text(err))));
                }
            }
            let img = unsafe { de265_peek_next_picture(self.ctx) };
            if img.is_null() {
                return Ok(None);
            }
            self.holding = true;
            unsafe {
                if de265_get_chroma_format(img) != DE265_CHROMA_420 || de265_get_bits_per_pixel(img, 0) != 8 {
                    return Err(DecodeError("H.265: only 8-bit 4:2:0 streams are supported".into()));
                }
                let (w, h) = (de265_get_image_width(img, 0), de265_get_image_height(img, 0));
                let ch = de265_get_image_height(img, 1) as usize;
                let (mut sy, mut su, mut sv) = (0, 0, 0);
                let py = de265_get_image_plane(img, 0, &mut sy);
                let pu = de265_get_image_plane(img, 1, &mut su);
                let pv = de265_get_image_plane(img, 2, &mut sv);
                if py.is_null() || pu.is_null() || pv.is_null() || w <= 0 || h <= 0 {
                    return Err(DecodeError("H.265: libde265 returned an empty picture".into()));
                }
                Ok(Some(Picture {
                    y: std::slice::from_raw_parts(py, sy as usize * h as usize),
                    u: std::slice::from_raw_parts(pu, su as usize * ch),
                    v: std::slice::from_raw_parts(pv, sv as usize * ch),
                    strides: (sy as usize, su as usize, sv as usize),
                    width: w as u32,
                    height: h as u32,
                }))
            }
        }

        /// Feeds one access unit (Annex B); returns a picture when one is ready.
        pub fn decode(&mut self, data: &[u8]) -> Result<Option<Picture<'_>>, DecodeError> {
            self.release();
            let err = unsafe {
                de265_push_data(self.ctx, data.as_ptr().cast(), data.len() as c_int, 0, std::ptr::null_mut())
            };
            if unsafe { de265_isOK(err) } == 0 {
                return Err(DecodeError(format!("H.265: {}", text(err))));
            }
            unsafe { de265_push_end_of_frame(self.ctx) };
            self.pump()
        }

        pub fn flush_one(&mut self) -> Option<Picture<'_>> {
            self.release();
            unsafe { de265_flush_data(self.ctx) };
            self.pump().ok().flatten()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_converts_to_i420_with_row_averaged_chroma() {
        // 4x2: Y = 10,20,30,40 / 50,60,70,80; U,V differ per row.
        let src = [10u8, 100, 20, 200, 30, 110, 40, 210, 50, 102, 60, 202, 70, 112, 80, 212];
        let mut out = Vec::new();
        yuyv_to_i420(&src, 4, 2, &mut out).unwrap();
        assert_eq!(&out[..8], &[10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!(&out[8..10], &[101, 111], "U averaged over the two rows");
        assert_eq!(&out[10..12], &[201, 211], "V averaged over the two rows");
        assert!(yuyv_to_i420(&src[..10], 4, 2, &mut out).unwrap_err().0.contains("needs 16 bytes"));
    }

    #[test]
    fn raw_decoder_gives_pictures_for_yuyv_and_mjpeg() {
        let mut d = VideoDecoder::new(Codec::Yuyv { width: 4, height: 2 }).unwrap();
        let src = [16u8, 128, 16, 128, 16, 128, 16, 128, 235, 128, 235, 128, 235, 128, 235, 128];
        let pic = d.decode(&src).unwrap().expect("one picture per packet");
        assert_eq!((pic.width, pic.height, pic.y[4]), (4, 2, 235));
        assert_eq!(d.codec(), Codec::Yuyv { width: 4, height: 2 });
        let mut d = VideoDecoder::new(Codec::Mjpeg).unwrap();
        assert!(d.decode(b"\xff\xd8garbage").is_err(), "a broken JPEG is an error, not a crash");
    }
}
