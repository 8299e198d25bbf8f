//! RTP payloads of H.264 (RFC 6184) and H.265 (RFC 7798) back into Annex B
//! access units, keeping what survives packet loss.
//!
//! retina's own depacketizer drops a whole access unit when one of its
//! packets is lost, which suits recording but not a decoder: with a long
//! GOP the lost unit is often the key frame (the largest picture, the one
//! most likely to lose a packet), and nothing decodes until the next one,
//! seconds later. This one does what FFmpeg's RTP client does: every NAL
//! unit that arrived goes to the decoder, a fragmented NAL unit is cut at
//! its first gap (the bits after a gap cannot be parsed), and libavcodec
//! conceals the missing slices. Units are delimited by the marker bit or a
//! new RTP timestamp, so a lost marker costs no frame.
//!
//! No allocation once warm: units are built in buffers that keep their
//! capacity and are swapped, not copied, out to the caller.

use crate::decode::Codec;

/// One RTP packet as the depacketizer needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpPacket<'a> {
    /// RTP timestamp, extended past wrap-around (retina's).
    pub timestamp: i64,
    /// The same in milliseconds since the stream began.
    pub pts_ms: u64,
    pub mark: bool,
    /// Packets lost just before this one (sequence-number gap).
    pub loss: u16,
    pub payload: &'a [u8],
}

/// A finished access unit's description (its bytes are given by [`Depacketizer::pop`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UnitInfo {
    pub timestamp: i64,
    pub pts_ms: u64,
    /// Packets lost inside or just before this unit: it may decode damaged.
    pub loss: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fragment {
    /// No fragmented NAL unit in progress.
    None,
    /// A fragmented NAL unit whose start and every piece since arrived.
    Open,
    /// A piece went missing: the rest of this NAL unit is discarded.
    Broken,
}

const START: [u8; 4] = [0, 0, 0, 1];

pub(crate) struct Depacketizer {
    h265: bool,
    cur: Vec<u8>,
    cur_info: Option<UnitInfo>,
    fragment: Fragment,
    /// Finished units waiting for `pop` (at most two: one push can end the
    /// previous unit by a new timestamp and its own by the marker bit).
    ready: [(Vec<u8>, UnitInfo); 2],
    ready_head: usize,
    ready_len: usize,
    /// Payloads of a kind this depacketizer does not take (STAP-B, MTAP,
    /// FU-B, PACI), skipped.
    pub unsupported: u64,
}

impl Depacketizer {
    /// For H.264 or H.265; `None` for any other codec.
    pub fn new(codec: Codec) -> Option<Self> {
        let h265 = match codec {
            Codec::H264 => false,
            Codec::H265 => true,
            _ => return None,
        };
        Some(Depacketizer {
            h265,
            cur: Vec::with_capacity(256 * 1024),
            cur_info: None,
            fragment: Fragment::None,
            ready: [(Vec::with_capacity(256 * 1024), UnitInfo::default()), (Vec::new(), UnitInfo::default())],
            ready_head: 0,
            ready_len: 0,
            unsupported: 0,
        })
    }

    /// Takes one packet. Finished units are then taken with [`Self::pop`]
    /// (call it until it returns `None` before the next push).
    pub fn push(&mut self, pkt: &RtpPacket<'_>) {
        debug_assert_eq!(self.ready_len, 0, "pop every finished unit before pushing");
        if let Some(info) = self.cur_info {
            if info.timestamp != pkt.timestamp {
                // A new picture began without the old one's marker (lost,
                // or a sender that omits it): the old one is done.
                self.finish();
            }
        }
        let info = self.cur_info.get_or_insert(UnitInfo { timestamp: pkt.timestamp, pts_ms: pkt.pts_ms, loss: 0 });
        info.loss += u32::from(pkt.loss);
        if pkt.loss > 0 && self.fragment == Fragment::Open {
            self.fragment = Fragment::Broken;
        }
        if self.h265 {
            self.push_h265(pkt.payload);
        } else {
            self.push_h264(pkt.payload);
        }
        if pkt.mark {
            self.finish();
        }
    }

    /// The next finished unit, swapped into `buf` (whose old contents are
    /// dropped and whose capacity is reused).
    pub fn pop(&mut self, buf: &mut Vec<u8>) -> Option<UnitInfo> {
        if self.ready_len == 0 {
            return None;
        }
        let slot = &mut self.ready[self.ready_head];
        std::mem::swap(buf, &mut slot.0);
        slot.0.clear();
        let info = slot.1;
        self.ready_head = (self.ready_head + 1) % 2;
        self.ready_len -= 1;
        Some(info)
    }

    fn finish(&mut self) {
        let Some(info) = self.cur_info.take() else { return };
        self.fragment = Fragment::None;
        if self.cur.is_empty() {
            return; // only damaged fragments: nothing to decode
        }
        let at = (self.ready_head + self.ready_len) % 2;
        debug_assert!(self.ready_len < 2);
        let slot = &mut self.ready[at];
        std::mem::swap(&mut slot.0, &mut self.cur);
        slot.1 = info;
        self.ready_len += 1;
    }

    fn nal(&mut self, nal: &[u8]) {
        if self.fragment != Fragment::None {
            // A whole NAL unit after a fragmented one that never ended.
            self.fragment = Fragment::None;
        }
        if !nal.is_empty() {
            self.cur.extend_from_slice(&START);
            self.cur.extend_from_slice(nal);
        }
    }

    /// Aggregation packet body: 16-bit sizes, each followed by a NAL unit.
    fn aggregate(&mut self, mut rest: &[u8]) {
        while rest.len() > 2 {
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let Some(nal) = rest.get(2..2 + len) else {
                self.unsupported += 1; // a size past the packet: damaged
                return;
            };
            self.nal(nal);
            rest = &rest[2 + len..];
        }
    }

    /// A fragment: `header` is the rebuilt NAL header of its unit, `body` the piece.
    fn fragment(&mut self, start: bool, end: bool, header: &[u8], body: &[u8]) {
        if start {
            self.cur.extend_from_slice(&START);
            self.cur.extend_from_slice(header);
            self.cur.extend_from_slice(body);
            self.fragment = Fragment::Open;
        } else if self.fragment == Fragment::Open {
            self.cur.extend_from_slice(body);
        } else {
            // Its start was lost (no slice header: useless) or a piece
            // before it was: discard until the next unit starts.
            self.fragment = Fragment::Broken;
        }
        if end && self.fragment == Fragment::Open {
            self.fragment = Fragment::None;
        }
    }

    fn push_h264(&mut self, p: &[u8]) {
        let Some(&b0) = p.first() else { return };
        match b0 & 0x1f {
            1..=23 => self.nal(p),
            24 => self.aggregate(&p[1..]),
            28 if p.len() >= 2 => {
                let fu = p[1];
                let header = [(b0 & 0xe0) | (fu & 0x1f)];
                self.fragment(fu & 0x80 != 0, fu & 0x40 != 0, &header, &p[2..]);
            }
            _ => self.unsupported += 1,
        }
    }

    fn push_h265(&mut self, p: &[u8]) {
        if p.len() < 2 {
            return;
        }
        match (p[0] >> 1) & 0x3f {
            0..=47 => self.nal(p),
            48 => self.aggregate(&p[2..]),
            49 if p.len() >= 3 => {
                let fu = p[2];
                let header = [(p[0] & 0x81) | ((fu & 0x3f) << 1), p[1]];
                self.fragment(fu & 0x80 != 0, fu & 0x40 != 0, &header, &p[3..]);
            }
            _ => self.unsupported += 1,
        }
    }
}

/// Parameter sets (SPS, PPS; VPS for H.265) as Annex B, for the decoder
/// before the first unit: an RTSP camera states them in its SDP and may
/// repeat them in-band only at key frames.
pub(crate) fn annexb_parameter_sets(sets: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in sets.iter().filter(|s| !s.is_empty()) {
        out.extend_from_slice(&START);
        out.extend_from_slice(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(timestamp: i64, mark: bool, loss: u16, payload: &[u8]) -> RtpPacket<'_> {
        RtpPacket { timestamp, pts_ms: timestamp as u64 / 90, mark, loss, payload }
    }

    fn drain(d: &mut Depacketizer) -> Vec<(Vec<u8>, UnitInfo)> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(info) = d.pop(&mut buf) {
            out.push((buf.clone(), info));
        }
        out
    }

    /// An IDR slice of 9 bytes split in three FU-A pieces.
    fn fu_a(start: bool, end: bool, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60 | 28, (start as u8) << 7 | (end as u8) << 6 | 5];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn single_nal_stap_a_and_fu_a_make_annexb_units_at_the_marker() {
        let mut d = Depacketizer::new(Codec::H264).unwrap();
        // STAP-A with SPS (0x67 ..) and PPS (0x68 ..).
        d.push(&pkt(100, false, 0, &[24, 0, 2, 0x67, 1, 0, 2, 0x68, 2]));
        assert!(drain(&mut d).is_empty());
        d.push(&pkt(100, false, 0, &fu_a(true, false, &[1, 2, 3])));
        d.push(&pkt(100, false, 0, &fu_a(false, false, &[4, 5, 6])));
        d.push(&pkt(100, true, 0, &fu_a(false, true, &[7, 8, 9])));
        let units = drain(&mut d);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].0, [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(units[0].1, UnitInfo { timestamp: 100, pts_ms: 1, loss: 0 });
        // A P slice in one packet.
        d.push(&pkt(103600, true, 0, &[0x41, 0x9a, 0x01]));
        assert_eq!(drain(&mut d)[0].0, [0, 0, 0, 1, 0x41, 0x9a, 0x01]);
    }

    #[test]
    fn a_lost_piece_truncates_its_nal_unit_and_keeps_the_rest_of_the_picture() {
        let mut d = Depacketizer::new(Codec::H264).unwrap();
        d.push(&pkt(7, false, 0, &fu_a(true, false, &[1, 2, 3])));
        // The middle piece is lost: what follows the gap is discarded.
        d.push(&pkt(7, false, 1, &fu_a(false, false, &[7, 8, 9])));
        d.push(&pkt(7, false, 0, &fu_a(false, true, &[10, 11])));
        // A second slice of the same picture, whole.
        d.push(&pkt(7, true, 0, &[0x65, 0x88, 0x20]));
        let units = drain(&mut d);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].0, [0, 0, 0, 1, 0x65, 1, 2, 3, 0, 0, 0, 1, 0x65, 0x88, 0x20]);
        assert_eq!(units[0].1.loss, 1);
    }

    #[test]
    fn a_lost_start_discards_its_fragments_and_a_lost_marker_ends_at_the_next_timestamp() {
        let mut d = Depacketizer::new(Codec::H264).unwrap();
        d.push(&pkt(1, false, 0, &[0x41, 1]));
        assert!(drain(&mut d).is_empty());
        // The marker packet of ts 1 and the FU start of ts 2 are lost.
        d.push(&pkt(2, false, 2, &fu_a(false, false, &[5, 5])));
        let mut units = drain(&mut d);
        d.push(&pkt(2, true, 0, &fu_a(false, true, &[6, 6])));
        units.extend(drain(&mut d));
        assert_eq!(units.len(), 1, "ts 2 had nothing decodable: {units:?}");
        assert_eq!(units[0].0, [0, 0, 0, 1, 0x41, 1]);
        assert_eq!(units[0].1, UnitInfo { timestamp: 1, pts_ms: 0, loss: 0 });
        // Both units finished by one push: the old by the new timestamp,
        // the new by its marker.
        d.push(&pkt(3, false, 0, &[0x41, 3]));
        assert!(drain(&mut d).is_empty());
        d.push(&pkt(4, true, 0, &[0x41, 4]));
        let units = drain(&mut d);
        assert_eq!(units.iter().map(|u| u.1.timestamp).collect::<Vec<_>>(), [3, 4]);
    }

    #[test]
    fn h265_aggregation_and_fragmentation_units() {
        let mut d = Depacketizer::new(Codec::H265).unwrap();
        // AP (type 48) with VPS (type 32) and SPS (type 33).
        d.push(&pkt(9, false, 0, &[48 << 1, 1, 0, 3, 0x40, 1, 0xaa, 0, 3, 0x42, 1, 0xbb]));
        // FU (type 49) of an IDR_W_RADL (type 19) slice, in two pieces.
        d.push(&pkt(9, false, 0, &[49 << 1, 1, 0x80 | 19, 1, 2]));
        d.push(&pkt(9, true, 0, &[49 << 1, 1, 0x40 | 19, 3]));
        let units = drain(&mut d);
        assert_eq!(units[0].0, [0, 0, 0, 1, 0x40, 1, 0xaa, 0, 0, 0, 1, 0x42, 1, 0xbb, 0, 0, 0, 1, 19 << 1, 1, 1, 2, 3]);
    }

    #[test]
    fn buffers_are_reused_once_warm() {
        let mut d = Depacketizer::new(Codec::H264).unwrap();
        let mut buf = Vec::with_capacity(256 * 1024);
        let body = vec![7u8; 1000];
        for ts in 0..4i64 {
            d.push(&pkt(ts, true, 0, &fu_a(true, true, &body)));
            assert!(d.pop(&mut buf).is_some());
        }
        let caps = (buf.capacity(), d.cur.capacity(), d.ready[0].0.capacity(), d.ready[1].0.capacity());
        for ts in 4..50i64 {
            d.push(&pkt(ts, true, 0, &fu_a(true, true, &body)));
            assert!(d.pop(&mut buf).is_some());
        }
        let mut now = [buf.capacity(), d.cur.capacity(), d.ready[0].0.capacity(), d.ready[1].0.capacity()];
        let mut before = [caps.0, caps.1, caps.2, caps.3];
        now.sort_unstable();
        before.sort_unstable();
        assert_eq!(now, before, "buffers swap, none grows or is made anew");
    }

    #[test]
    fn parameter_sets_become_annexb() {
        assert_eq!(annexb_parameter_sets(&[&[0x67, 1], &[], &[0x68]]), [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68]);
    }
}
