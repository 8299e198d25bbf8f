//! JPEG encoding of a frame region from I420, off the hot path (sink
//! thread only). Pure-Rust `jpeg-encoder`: no system library, so every
//! board cross-compiles the same way.

use crate::geom::BBox;
use crate::pool::I420;

/// Reused buffers for one encoding thread.
#[derive(Default)]
pub struct JpegEncoder {
    rgb: Vec<u8>,
}

impl JpegEncoder {
    /// Encodes `region` (clipped to the picture) of `pic` at `quality`.
    pub fn encode(&mut self, pic: &I420<'_>, region: &BBox, quality: u8, out: &mut Vec<u8>) -> Result<(), String> {
        let r = region.clip(pic.width as f32, pic.height as f32);
        let (x1, y1) = (r.x1.floor() as usize, r.y1.floor() as usize);
        let (x2, y2) = (r.x2.ceil() as usize, r.y2.ceil() as usize);
        let (w, h) = (x2.saturating_sub(x1).max(1), y2.saturating_sub(y1).max(1));
        if x1 + w > pic.width as usize || y1 + h > pic.height as usize || w > u16::MAX as usize || h > u16::MAX as usize
        {
            return Err(format!("region {region:?} outside the {}x{} picture", pic.width, pic.height));
        }
        self.rgb.clear();
        self.rgb.reserve(w * h * 3);
        for y in y1..y1 + h {
            for x in x1..x1 + w {
                self.rgb.extend_from_slice(&pic.rgb_at(x, y));
            }
        }
        out.clear();
        let enc = jpeg_encoder::Encoder::new(&mut *out, quality);
        enc.encode(&self.rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb).map_err(|e| e.to_string())
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

    #[test]
    fn encodes_a_real_jpeg_of_the_right_size() {
        let (w, h) = (64u32, 48u32);
        let mut buf = vec![120u8; (w * h) as usize];
        buf.extend(std::iter::repeat_n(128u8, (w * h / 2) as usize));
        let pic = I420::new(&buf, w, h);
        let mut enc = JpegEncoder::default();
        let mut out = Vec::new();
        enc.encode(&pic, &BBox::new(-5.0, 10.0, 30.0, 40.0), 90, &mut out).unwrap();
        assert_eq!(&out[..2], &[0xFF, 0xD8], "SOI marker");
        assert_eq!(&out[out.len() - 2..], &[0xFF, 0xD9], "EOI marker");
        // SOF0 carries height then width.
        let sof = out.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline SOF");
        let hh = u16::from_be_bytes([out[sof + 5], out[sof + 6]]);
        let ww = u16::from_be_bytes([out[sof + 7], out[sof + 8]]);
        assert_eq!((ww, hh), (30, 30));
    }
}
