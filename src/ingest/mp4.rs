//! MP4 (ISO BMFF) files with one H.264 video track: just enough of the box
//! tree (stsd/avcC, stts, stsz, stsc, stco/co64) to walk the samples in
//! decode order, rewritten from length-prefixed NAL units to Annex B.

use super::{IngestError, Packet, PacketSource};
use crate::decode::Codec;

pub(crate) struct Mp4Source {
    data: Vec<u8>,
    /// SPS and PPS from avcC, as Annex B, sent in front of the first sample.
    params: Vec<u8>,
    /// (offset, size) of each sample, decode order.
    samples: Vec<(usize, usize)>,
    nal_len_size: usize,
    next: usize,
    sent_params: bool,
    fps: Option<f32>,
    buf: Vec<u8>,
    looping: bool,
    /// The file ends inside its sample data: samples kept / listed.
    truncated: Option<(usize, usize)>,
}

fn err(m: impl Into<String>) -> IngestError {
    IngestError::new(m.into())
}

fn be32(d: &[u8], at: usize) -> Result<u32, IngestError> {
    d.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(|| err("truncated box"))
}

fn be64(d: &[u8], at: usize) -> Result<u64, IngestError> {
    Ok(((be32(d, at)? as u64) << 32) | be32(d, at + 4)? as u64)
}

/// Iterates the child boxes in `d`: (type, body).
fn boxes(d: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), IngestError>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos + 8 > d.len() {
            return None;
        }
        let size = match be32(d, pos) {
            Ok(s) => s as usize,
            Err(e) => return Some(Err(e)),
        };
        let kind = [d[pos + 4], d[pos + 5], d[pos + 6], d[pos + 7]];
        let (hdr, size) = match size {
            1 => match be64(d, pos + 8) {
                Ok(s) => (16, s as usize),
                Err(e) => return Some(Err(e)),
            },
            0 => (8, d.len() - pos),
            s => (8, s),
        };
        if size < hdr || pos + size > d.len() {
            pos = d.len();
            return Some(Err(err(format!("box {:?} overruns the file", String::from_utf8_lossy(&kind)))));
        }
        let body = &d[pos + hdr..pos + size];
        pos += size;
        Some(Ok((kind, body)))
    })
}

fn child<'a>(d: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, IngestError> {
    for b in boxes(d) {
        let (k, body) = b?;
        if &k == kind {
            return Ok(Some(body));
        }
    }
    Ok(None)
}

fn need<'a>(d: &'a [u8], kind: &[u8; 4]) -> Result<&'a [u8], IngestError> {
    child(d, kind)?.ok_or_else(|| err(format!("missing `{}` box", String::from_utf8_lossy(kind))))
}

impl Mp4Source {
    pub fn new(data: Vec<u8>) -> Result<Self, IngestError> {
        let moov = match child(&data, b"moov") {
            Ok(Some(m)) => m,
            Ok(None) => return Err(err("missing `moov` box (the index of the samples)")),
            Err(e) if e.context().contains("overruns the file") => {
                return Err(err(format!(
                    "the file is truncated: {} before the `moov` box, the index without which no frame can be found (a recording cut off before it was finished?)",
                    e.context()
                )))
            }
            Err(e) => return Err(e),
        };
        let mut found = None;
        for b in boxes(moov) {
            let (k, trak) = b?;
            if &k != b"trak" {
                continue;
            }
            let mdia = need(trak, b"mdia")?;
            let hdlr = need(mdia, b"hdlr")?;
            if hdlr.get(8..12) == Some(b"vide") {
                found = Some(mdia);
                break;
            }
        }
        let mdia = found.ok_or_else(|| err("no video track"))?;
        let mdhd = need(mdia, b"mdhd")?;
        let timescale = if mdhd.first() == Some(&1) { be32(mdhd, 20)? } else { be32(mdhd, 12)? };
        let stbl = need(need(mdia, b"minf")?, b"stbl")?;

        // stsd -> avc1 -> avcC
        let stsd = need(stbl, b"stsd")?;
        let entries = stsd.get(8..).ok_or_else(|| err("truncated stsd"))?;
        let (kind, avc1) = boxes(entries).next().ok_or_else(|| err("empty stsd"))??;
        if &kind != b"avc1" && &kind != b"avc3" {
            return Err(err(format!("video codec `{}` is not H.264 (avc1)", String::from_utf8_lossy(&kind))));
        }
        let avcc = need(avc1.get(78..).ok_or_else(|| err("truncated avc1"))?, b"avcC")?;
        let (nal_len_size, params) = parameter_sets(avcc)?;

        // Sample sizes.
        let stsz = need(stbl, b"stsz")?;
        let fixed = be32(stsz, 4)? as usize;
        let count = be32(stsz, 8)? as usize;
        let mut sizes = Vec::with_capacity(count);
        for i in 0..count {
            sizes.push(if fixed != 0 { fixed } else { be32(stsz, 12 + 4 * i)? as usize });
        }
        // Chunk offsets.
        let mut chunks = Vec::new();
        if let Some(stco) = child(stbl, b"stco")? {
            for i in 0..be32(stco, 4)? as usize {
                chunks.push(be32(stco, 8 + 4 * i)? as usize);
            }
        } else {
            let co64 = need(stbl, b"co64")?;
            for i in 0..be32(co64, 4)? as usize {
                chunks.push(be64(co64, 8 + 8 * i)? as usize);
            }
        }
        // Samples per chunk.
        let stsc = need(stbl, b"stsc")?;
        let runs: Vec<(usize, usize)> = (0..be32(stsc, 4)? as usize)
            .map(|i| Ok((be32(stsc, 8 + 12 * i)? as usize, be32(stsc, 12 + 12 * i)? as usize)))
            .collect::<Result<_, IngestError>>()?;
        let mut samples = Vec::with_capacity(count);
        let mut s = 0usize;
        for (ci, &off) in chunks.iter().enumerate() {
            let chunk_no = ci + 1;
            let per = runs.iter().rev().find(|(first, _)| *first <= chunk_no).map(|r| r.1).unwrap_or(0);
            let mut o = off;
            for _ in 0..per {
                if s >= sizes.len() {
                    break;
                }
                if o + sizes[s] > data.len() {
                    // Truncated: every sample before the cut is intact.
                    break;
                }
                samples.push((o, sizes[s]));
                o += sizes[s];
                s += 1;
            }
        }
        let fps = child(stbl, b"stts")?
            .and_then(|stts| be32(stts, 12).ok())
            .filter(|&delta| delta > 0 && timescale > 0)
            .map(|delta| timescale as f32 / delta as f32);
        let max = sizes.iter().copied().max().unwrap_or(0);
        Ok(Mp4Source {
            data,
            params,
            nal_len_size,
            next: 0,
            sent_params: false,
            fps,
            buf: Vec::with_capacity(max + 64),
            looping: false,
            truncated: (samples.len() < count).then_some((samples.len(), count)),
            samples,
        })
    }
}

impl PacketSource for Mp4Source {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, IngestError> {
        if self.next >= self.samples.len() && self.looping && !self.samples.is_empty() {
            // Start over; the decoder keeps the parameter sets it already has.
            self.next = 0;
        }
        let Some(&(off, size)) = self.samples.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let sample = &self.data[off..off + size];
        self.buf.clear();
        // The parameter sets travel in front of the first access unit (a
        // packet of parameter sets alone is no picture to libavcodec).
        if !std::mem::replace(&mut self.sent_params, true) {
            self.buf.extend_from_slice(&self.params);
        }
        let mut p = 0;
        let n = self.nal_len_size;
        while p + n <= sample.len() {
            let len = sample[p..p + n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
            p += n;
            let nal = sample
                .get(p..p + len)
                .ok_or_else(|| err(format!("sample {} has a NAL unit overrunning it", self.next - 1)))?;
            self.buf.extend_from_slice(&[0, 0, 0, 1]);
            self.buf.extend_from_slice(nal);
            p += len;
        }
        Ok(Some(Packet::access_unit(&self.buf, Codec::H264)))
    }
    fn fps(&self) -> Option<f32> {
        self.fps
    }
    fn set_looping(&mut self, on: bool) -> bool {
        self.looping = on;
        true
    }
    fn truncated(&self) -> Option<String> {
        self.truncated.map(|(kept, all)| {
            format!("the file is truncated: its index lists {all} frames, the data ends after {kept} of them")
        })
    }
}

/// An `avcC` box's NAL length size and its SPS/PPS as Annex B (start codes).
fn parameter_sets(avcc: &[u8]) -> Result<(usize, Vec<u8>), IngestError> {
    if avcc.len() < 7 {
        return Err(err("truncated avcC"));
    }
    let nal_len_size = (avcc[4] & 3) as usize + 1;
    let mut params = Vec::new();
    let mut p = 5usize;
    for set in 0..2 {
        let count = if set == 0 { avcc[p] & 0x1f } else { avcc[p] } as usize;
        p += 1;
        for _ in 0..count {
            let len = u16::from_be_bytes([avcc[p], *avcc.get(p + 1).ok_or_else(|| err("truncated avcC"))?]) as usize;
            p += 2;
            params.extend_from_slice(&[0, 0, 0, 1]);
            params.extend_from_slice(avcc.get(p..p + len).ok_or_else(|| err("truncated avcC"))?);
            p += len;
        }
        if p >= avcc.len() && set == 0 {
            return Err(err("truncated avcC"));
        }
    }
    Ok((nal_len_size, params))
}
