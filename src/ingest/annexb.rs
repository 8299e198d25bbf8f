//! H.264 Annex B elementary stream files: NAL units separated by start codes.

use super::{IngestError, Packet, PacketSource};

pub fn looks_like_annexb(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 0, 1]) || data.starts_with(&[0, 0, 1])
}

pub struct AnnexBSource {
    data: Vec<u8>,
    pos: usize,
    looping: bool,
}

impl AnnexBSource {
    pub fn new(data: Vec<u8>) -> Self {
        AnnexBSource { data, pos: 0, looping: false }
    }
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
        Ok(Some(Packet::h264(&self.data[start..end])))
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
}
