//! H.264 through OpenH264, built from the source bundled in the `openh264`
//! crate (no system library, cross-compiles with plain cc). Only for builds
//! without libav (`--no-default-features --features board-<name>,openh264`):
//! it cannot decode B-frames or H.265, and it is about half libavcodec's
//! speed (PERFORMANCE.md).

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use super::{DecodeError, Picture};

pub(crate) struct OpenH264Decoder {
    dec: Decoder,
}

impl OpenH264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        Ok(OpenH264Decoder { dec: Decoder::new().map_err(|e| DecodeError::new(format!("H.264 (OpenH264): {e}")))? })
    }

    /// Feeds one packet (one or more NAL units); returns a picture when one completes.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<Picture<'_>>, DecodeError> {
        match self.dec.decode(data) {
            Ok(Some(p)) => Ok(Some(to_picture(p))),
            Ok(None) => Ok(None),
            Err(e) => Err(DecodeError::new(format!("H.264 (OpenH264): {e}"))),
        }
    }

    /// Pictures still buffered at the end of the stream, one at a time.
    pub(crate) fn flush_one(&mut self) -> Option<Picture<'_>> {
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
    // SAFETY: the planes live in the decoder, borrowed for `'_` by
    // DecodedYUV (which only holds references to them): re-borrowing the
    // same pointer and length for that lifetime outlives the wrapper only.
    let (y, u, v) = unsafe {
        let ext = |s: &[u8]| std::slice::from_raw_parts(s.as_ptr(), s.len());
        (ext(p.y()), ext(p.u()), ext(p.v()))
    };
    Picture { y, u, v, strides, width: w as u32, height: h as u32, pts_ms: None }
}
