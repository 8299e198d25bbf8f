//! USB cameras' uncompressed and intra-only formats: MJPEG through
//! libjpeg-turbo and YUYV (4:2:2 packed) by a plain conversion. Every
//! packet is one whole picture.

use super::{Codec, DecodeError, Picture};

/// Uncompressed or intra-only frames: each packet is one whole picture.
pub(crate) struct RawDecoder {
    codec: Codec,
    jpeg: Option<crate::jpeg::JpegDecoder>,
    i420: Vec<u8>,
}

impl RawDecoder {
    pub fn new(codec: Codec) -> Result<Self, DecodeError> {
        let jpeg = match codec {
            Codec::Mjpeg => Some(crate::jpeg::JpegDecoder::new().map_err(|e| DecodeError::new(e.to_string()))?),
            _ => None,
        };
        Ok(RawDecoder { codec, jpeg, i420: Vec::new() })
    }

    pub fn decode(&mut self, data: &[u8]) -> Result<Picture<'_>, DecodeError> {
        let (w, h) = match (self.codec, self.jpeg.as_mut()) {
            (Codec::Mjpeg, Some(j)) => {
                j.decode_to_i420(data, &mut self.i420).map_err(|e| DecodeError::new(format!("MJPEG: {e}")))?
            }
            (Codec::Yuyv { width, height }, _) => {
                yuyv_to_i420(data, width, height, &mut self.i420)?;
                (width, height)
            }
            _ => return Err(DecodeError::new(format!("{} is not a raw format", self.codec.as_str()))),
        };
        let (wu, hu) = (w as usize, h as usize);
        let (cw, ch) = (wu.div_ceil(2), hu.div_ceil(2));
        let (y, rest) = self.i420.split_at(wu * hu);
        let (u, v) = rest.split_at(cw * ch);
        Ok(Picture { y, u, v, strides: (wu, cw, cw), width: w, height: h, pts_ms: None })
    }
}

/// YUYV (Y0 U Y1 V per pixel pair, 4:2:2) to packed I420: luma copied,
/// chroma averaged over each pair of rows.
pub(crate) fn yuyv_to_i420(src: &[u8], width: u32, height: u32, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || !w.is_multiple_of(2) || src.len() < w * h * 2 {
        return Err(DecodeError::new(format!("YUYV {width}x{height} needs {} bytes, got {}", w * h * 2, src.len())));
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
        assert!(yuyv_to_i420(&src[..10], 4, 2, &mut out).unwrap_err().to_string().contains("needs 16 bytes"));
    }

    #[test]
    fn raw_decoder_gives_pictures_for_yuyv_and_mjpeg() {
        let mut d = RawDecoder::new(Codec::Yuyv { width: 4, height: 2 }).unwrap();
        let src = [16u8, 128, 16, 128, 16, 128, 16, 128, 235, 128, 235, 128, 235, 128, 235, 128];
        let pic = d.decode(&src).unwrap();
        assert_eq!((pic.width, pic.height, pic.y[4]), (4, 2, 235));
        let mut d = RawDecoder::new(Codec::Mjpeg).unwrap();
        assert!(d.decode(b"\xff\xd8garbage").is_err(), "a broken JPEG is an error, not a crash");
    }
}
