//! H.264 and H.265 Annex B elementary stream files: NAL units separated by
//! start codes, handed to the decoder one NAL unit at a time (its parser
//! finds the access units). The codec is told from the NAL headers.

use super::{IngestError, Packet, PacketSource};
use crate::decode::Codec;

pub fn looks_like_annexb(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 0, 1]) || data.starts_with(&[0, 0, 1])
}

pub struct AnnexBSource {
    data: Vec<u8>,
    pos: usize,
    looping: bool,
    codec: Codec,
}

impl AnnexBSource {
    pub fn new(data: Vec<u8>) -> Self {
        let codec = sniff_codec(&data);
        AnnexBSource { data, pos: 0, looping: false, codec }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }
}

/// H.265 if one of the first NAL units has an H.265 parameter-set or
/// delimiter header (type 32..=35, layer 0, temporal id 0: two bytes `0x40..0x46,
/// 0x01`); H.264 otherwise (an H.264 header's second byte is a profile,
/// slice or SEI byte, never 0x01 after those types).
pub(crate) fn sniff_codec(data: &[u8]) -> Codec {
    let mut pos = 0;
    for _ in 0..8 {
        let Some(s) = next_start(data, pos) else { break };
        let body = s + if data[s + 2] == 1 { 3 } else { 4 };
        if let (Some(&b0), Some(&b1)) = (data.get(body), data.get(body + 1)) {
            let kind = (b0 >> 1) & 0x3f;
            if b0 & 0x81 == 0 && b1 == 0x01 && (32..=35).contains(&kind) {
                return Codec::H265;
            }
        }
        pos = body;
    }
    Codec::H264
}

/// Offset of the next start code (00 00 01 or 00 00 00 01) at or after `from`.
fn next_start(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 {
            if data[i + 2] == 1 {
                return Some(if i > 0 && data[i - 1] == 0 { i - 1 } else { i });
            }
            if data[i + 2] == 0 {
                i += 1;
                continue;
            }
        }
        i += 1;
    }
    None
}

impl PacketSource for AnnexBSource {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, IngestError> {
        let start = match next_start(&self.data, self.pos) {
            Some(s) => s,
            // At the end: start over when looping (and the stream is not empty).
            None if self.looping && self.pos > 0 => match next_start(&self.data, 0) {
                Some(s) => s,
                None => return Ok(None),
            },
            None => return Ok(None),
        };
        // Skip this start code before looking for the next one.
        let body = start + if self.data[start + 2] == 1 { 3 } else { 4 };
        let end = next_start(&self.data, body).unwrap_or(self.data.len());
        self.pos = end;
        Ok(Some(Packet::nal_units(&self.data[start..end], self.codec)))
    }
    fn fps(&self) -> Option<f32> {
        None
    }
    fn set_looping(&mut self, on: bool) -> bool {
        self.looping = on;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_both_start_code_lengths() {
        let data = vec![0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 6];
        let mut s = AnnexBSource::new(data);
        let mut got = vec![];
        while let Some(p) = s.next_packet().unwrap() {
            got.push(p.data.to_vec());
        }
        assert_eq!(got, vec![vec![0, 0, 0, 1, 0x67, 1, 2], vec![0, 0, 1, 0x68, 3], vec![0, 0, 0, 1, 0x65, 4, 5, 6]]);
        assert!(s.set_looping(true));
        let again: Vec<Vec<u8>> = (0..4).map(|_| s.next_packet().unwrap().unwrap().data.to_vec()).collect();
        assert_eq!(again[0], got[0], "starts over at the end");
        assert_eq!(again[3], got[0]);
    }

    #[test]
    fn tells_h265_from_h264_by_the_nal_headers() {
        // x264's SPS (0x67, profile 100) and PPS.
        let h264 = [0u8, 0, 0, 1, 0x67, 100, 0, 40, 0, 0, 0, 1, 0x68, 0xee];
        // x265's: VPS (0x40 0x01), SPS (0x42 0x01), PPS (0x44 0x01).
        let h265 = [0u8, 0, 0, 1, 0x40, 0x01, 0x0c, 0, 0, 0, 1, 0x42, 0x01, 1, 0, 0, 1, 0x44, 0x01, 0xc1];
        assert_eq!(sniff_codec(&h264), Codec::H264);
        assert_eq!(sniff_codec(&h265), Codec::H265);
        // An H.264 AUD (0x09) then SPS with nal_ref_idc 2 (0x47): still H.264.
        let aud = [0u8, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x47, 77, 0, 30];
        assert_eq!(sniff_codec(&aud), Codec::H264);
        assert_eq!(AnnexBSource::new(h265.to_vec()).next_packet().unwrap().unwrap().codec, Codec::H265);
    }
}
