//! Ingest: where encoded video comes from. A [`PacketSource`] yields access
//! units with their codec and, for live streams, their presentation time;
//! the capture thread (`ingest::capture`) decodes them into the frame pool.
//! Files (`annexb`, `mp4`) and live cameras (`live` for reconnects and
//! stalls, `rtsp` for the protocol) are sources alike.

pub mod annexb;
pub mod capture;
pub mod live;
pub mod mp4;
pub mod rtsp;
#[cfg(feature = "v4l2")]
pub mod v4l2;

use std::path::Path;

use crate::decode::Codec;

/// One access unit of an elementary stream (Annex B, with start codes).
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub data: &'a [u8],
    pub codec: Codec,
    /// Presentation time in stream milliseconds (RTP timestamp for live
    /// streams); `None` = derive it from the frame rate.
    pub pts_ms: Option<u64>,
    /// First packet after a (re)connect: the decoder starts afresh.
    pub fresh: bool,
}

impl<'a> Packet<'a> {
    pub fn h264(data: &'a [u8]) -> Self {
        Packet { data, codec: Codec::H264, pts_ms: None, fresh: false }
    }
}

#[derive(Debug)]
pub struct IngestError(pub String);

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IngestError {}

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
    /// A live camera: never paced, never waited for (frames are dropped and
    /// counted when the pipeline is full).
    fn is_live(&self) -> bool {
        false
    }
}

/// Opens a file by its content: MP4 (an `ftyp` box) or Annex B H.264.
pub fn open_file(path: &Path) -> Result<Box<dyn PacketSource>, IngestError> {
    let data = std::fs::read(path).map_err(|e| IngestError(format!("{}: {e}", path.display())))?;
    if data.len() >= 8 && &data[4..8] == b"ftyp" {
        Ok(Box::new(mp4::Mp4Source::new(data).map_err(|e| IngestError(format!("{}: {e}", path.display())))?))
    } else if annexb::looks_like_annexb(&data) {
        Ok(Box::new(annexb::AnnexBSource::new(data)))
    } else {
        Err(IngestError(format!("{}: neither an MP4 file nor an H.264 Annex B stream", path.display())))
    }
}
