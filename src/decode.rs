//! H.264 decoding with OpenH264 (built from the source bundled in the
//! `openh264` crate: no system library, cross-compiles with plain cc).
//! Pictures are copied once, tightly packed, into a frame-pool slot.

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

#[derive(Debug)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "h264 decode: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

pub struct H264Decoder {
    dec: Decoder,
}

/// A decoded picture borrowed from the decoder.
pub struct Picture<'a> {
    yuv: openh264::decoder::DecodedYUV<'a>,
    pub width: u32,
    pub height: u32,
}

impl Picture<'_> {
    /// Writes the picture as packed I420 into `dst` (at least `i420_len` bytes).
    pub fn copy_to(&self, dst: &mut [u8]) {
        let (w, h) = (self.width as usize, self.height as usize);
        let (sy, su, sv) = (self.yuv.y(), self.yuv.u(), self.yuv.v());
        let strides = self.yuv.strides();
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (dy, rest) = dst.split_at_mut(w * h);
        let (du, rest) = rest.split_at_mut(cw * ch);
        let dv = &mut rest[..cw * ch];
        for r in 0..h {
            dy[r * w..(r + 1) * w].copy_from_slice(&sy[r * strides.0..r * strides.0 + w]);
        }
        for r in 0..ch {
            du[r * cw..(r + 1) * cw].copy_from_slice(&su[r * strides.1..r * strides.1 + cw]);
            dv[r * cw..(r + 1) * cw].copy_from_slice(&sv[r * strides.2..r * strides.2 + cw]);
        }
    }
}

impl H264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        Ok(H264Decoder { dec: Decoder::new().map_err(|e| DecodeError(e.to_string()))? })
    }

    /// Feeds one packet (one or more NAL units); returns a picture when one completes.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<Picture<'_>>, DecodeError> {
        match self.dec.decode(data) {
            Ok(Some(p)) => Ok(Some(to_picture(p))),
            Ok(None) => Ok(None),
            Err(e) => Err(DecodeError(e.to_string())),
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
    Picture { yuv: p, width: w as u32, height: h as u32 }
}
