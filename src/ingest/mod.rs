//! Ingest: where encoded video comes from. A [`PacketSource`] yields access
//! units with their codec and, for live streams, their presentation time;
//! the capture thread (`ingest::capture`) decodes them into the frame pool.
//! Files (`container`: whatever libavformat reads; `annexb` and `mp4` in
//! builds without FFmpeg) and live cameras (`live` for reconnects and
//! stalls, `rtsp` for the protocol, `rtp` for its payloads) are sources
//! alike.

pub mod annexb;
pub mod capture;
#[cfg(feature = "libav")]
pub mod container;
pub mod live;
pub mod mp4;
pub mod rtp;
pub mod rtsp;
#[cfg(feature = "v4l2")]
pub mod v4l2;

use std::path::Path;

use crate::decode::Codec;

/// Encoded video (Annex B, with start codes): one access unit, or, from an
/// Annex B file, one NAL unit at a time.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub data: &'a [u8],
    pub codec: Codec,
    /// `data` is exactly one access unit (or only parameter sets): decoded
    /// at once. Otherwise a run of NAL units the decoder's parser assembles.
    pub whole_unit: bool,
    /// Presentation time in stream milliseconds (RTP timestamp for live
    /// streams); `None` = derive it from the frame rate.
    pub pts_ms: Option<u64>,
    /// First packet after a (re)connect: the decoder starts afresh.
    pub fresh: bool,
    /// What a new decoder for this stream is told first: the container's
    /// codec configuration, or the parameter sets an RTSP camera's SDP
    /// states, in Annex B; empty when the stream carries them in-band.
    pub extradata: &'a [u8],
}

impl<'a> Packet<'a> {
    /// One whole access unit, no timestamp.
    pub(crate) fn access_unit(data: &'a [u8], codec: Codec) -> Self {
        Packet { data, codec, whole_unit: true, pts_ms: None, fresh: false, extradata: &[] }
    }
    /// Some NAL units of a stream, not necessarily a whole access unit.
    pub(crate) fn nal_units(data: &'a [u8], codec: Codec) -> Self {
        Packet { data, codec, whole_unit: false, pts_ms: None, fresh: false, extradata: &[] }
    }
}

crate::error::context_error!(
    /// A source that could not be opened or read: the file, camera or
    /// device, and why.
    IngestError,
    ""
);

pub trait PacketSource: Send {
    /// The next packet, or `None` at the end of the stream.
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, IngestError>;
    /// Frames per second the stream declares, if it does.
    fn fps(&self) -> Option<f32>;
    /// Start over at the end instead of ending (demos, soak runs); false if
    /// the source cannot.
    fn set_looping(&mut self, _on: bool) -> bool {
        false
    }
    /// What is missing when the file is known to be cut short (its intact
    /// frames are still given).
    fn truncated(&self) -> Option<String> {
        None
    }
    /// A live camera: never paced, never waited for (frames are dropped and
    /// counted when the pipeline is full).
    fn is_live(&self) -> bool {
        false
    }
}

/// Opens a recording: any container and video codec FFmpeg reads.
#[cfg(feature = "libav")]
pub fn open_file(path: &Path) -> Result<Box<dyn PacketSource>, IngestError> {
    Ok(Box::new(container::ContainerSource::open(path)?))
}

/// Opens a file by its content: MP4 (an `ftyp` box) or an Annex B H.264 or
/// H.265 elementary stream (builds without FFmpeg).
#[cfg(not(feature = "libav"))]
pub fn open_file(path: &Path) -> Result<Box<dyn PacketSource>, IngestError> {
    let data = std::fs::read(path).map_err(|e| IngestError::caused(path.display().to_string(), e))?;
    if data.len() >= 8 && &data[4..8] == b"ftyp" {
        Ok(Box::new(mp4::Mp4Source::new(data).map_err(|e| IngestError::caused(path.display().to_string(), e))?))
    } else if annexb::looks_like_annexb(&data) {
        Ok(Box::new(annexb::AnnexBSource::new(data)))
    } else {
        Err(IngestError::new(format!(
            "{}: neither an MP4 file nor an H.264/H.265 Annex B stream (other containers and codecs need the `libav` feature)",
            path.display()
        )))
    }
}

/// Decodes a whole file with a software decoder, handing
/// each picture to `each`, and stops after `limit` pictures; returns how
/// many there were. For tools, benches and tests: the pipeline decodes in
/// `capture`. A damaged packet is an error here.
pub fn decode_file(
    path: &std::path::Path,
    limit: usize,
    each: impl FnMut(&crate::decode::Picture<'_>),
) -> Result<usize, IngestError> {
    decode_file_with(path, limit, false, || {}, each).map(|(n, _)| n)
}

/// [`decode_file`] with the decoder a camera gets when `board_decoder`
/// (the board profile's hardware decoder first, software where it is
/// missing or fails: logged): the pictures, and the hardware decoder's
/// name when it made them all. `opened` runs once the decoder is open,
/// before its first packet (a bench times decoding apart from opening).
pub fn decode_file_with(
    path: &std::path::Path,
    limit: usize,
    board_decoder: bool,
    mut opened: impl FnMut(),
    mut each: impl FnMut(&crate::decode::Picture<'_>),
) -> Result<(usize, Option<&'static str>), IngestError> {
    let mut src = open_file(path)?;
    let mut codec = None;
    let mut dec: Option<crate::decode::VideoDecoder> = None;
    let n = std::cell::Cell::new(0usize);
    let mut on_picture = |p: &crate::decode::Picture<'_>, _corrupt: bool| {
        each(p);
        n.set(n.get() + 1);
        if n.get() >= limit {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    };
    while let Some(p) = src.next_packet()? {
        if dec.is_none() {
            codec = Some(p.codec);
            let d = if board_decoder {
                // As a camera with `hardware_decode` on (its default).
                let hardware_decode = true;
                crate::decode::VideoDecoder::for_camera(
                    p.codec,
                    p.extradata,
                    &path.display().to_string(),
                    crate::decode::Threads::board(),
                    hardware_decode,
                )
            } else {
                crate::decode::VideoDecoder::with_extradata(p.codec, p.extradata)
            };
            dec = Some(d.map_err(|e| IngestError::caused(path.display().to_string(), e))?);
            opened();
        }
        let d = dec.as_mut().expect("set above");
        d.decode(p.data, p.pts_ms, p.whole_unit, &mut on_picture)
            .map_err(|e| IngestError::caused(path.display().to_string(), e))?;
        if n.get() >= limit {
            return Ok((n.get(), hardware_used(d, codec)));
        }
    }
    if let Some(d) = dec.as_mut() {
        d.finish(&mut on_picture).map_err(|e| IngestError::caused(path.display().to_string(), e))?;
    }
    Ok((n.get(), dec.as_ref().and_then(|d| hardware_used(d, codec))))
}

/// The hardware decoder's name, if `d` still decodes in hardware.
fn hardware_used(d: &crate::decode::VideoDecoder, codec: Option<crate::decode::Codec>) -> Option<&'static str> {
    codec.filter(|_| d.is_hardware()).map(crate::decode::board_hw_decoder)
}
