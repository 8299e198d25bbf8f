//! USB cameras through V4L2 (`v4l` crate, behind the `v4l2` cargo feature):
//! MJPEG or YUYV at a requested size, memory-mapped buffers, driver
//! timestamps. Wrapped in [`super::live::LiveSource`], so an unplugged or
//! stalled camera is reopened with the same backoff as an RTSP one; the
//! frame conversions live in `decode` (MJPEG via libjpeg-turbo, YUYV by a
//! plain conversion) and are tested on recorded frames there.
//!
//! URL form: `v4l2:/dev/video0?width=1280&height=720&format=mjpeg`.

use std::time::Duration;

use v4l::buffer::Type;
use v4l::io::mmap::Stream as MmapStream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, Format, FourCC};

use super::live::{LiveStream, StreamError, StreamOpener};
use crate::config::V4l2Format;
use crate::decode::Codec;

pub(crate) struct V4l2Opener {
    pub device: String,
    pub width: u32,
    pub height: u32,
    pub format: V4l2Format,
}

impl StreamOpener for V4l2Opener {
    fn open(&mut self) -> Result<Box<dyn LiveStream>, StreamError> {
        let dev = Device::with_path(&self.device)
            .map_err(|e| StreamError::transient(format!("cannot open {}: {e}", self.device)))?;
        let fourcc = match self.format {
            V4l2Format::Mjpeg => FourCC::new(b"MJPG"),
            V4l2Format::Yuyv => FourCC::new(b"YUYV"),
        };
        let got = dev
            .set_format(&Format::new(self.width, self.height, fourcc))
            .map_err(|e| StreamError::transient(format!("{}: cannot set the format: {e}", self.device)))?;
        if got.fourcc != fourcc {
            return Err(StreamError::permanent(format!(
                "{} does not offer {fourcc} (it answered {} at {}x{})",
                self.device, got.fourcc, got.width, got.height
            )));
        }
        let codec = match self.format {
            V4l2Format::Mjpeg => Codec::Mjpeg,
            V4l2Format::Yuyv => Codec::Yuyv { width: got.width, height: got.height },
        };
        let stream = MmapStream::with_buffers(&dev, Type::VideoCapture, 4)
            .map_err(|e| StreamError::transient(format!("{}: cannot map buffers: {e}", self.device)))?;
        Ok(Box::new(V4l2Stream { _dev: dev, stream, codec }))
    }
}

struct V4l2Stream {
    // The stream holds its own handle; the device is kept for clarity of ownership.
    _dev: Device,
    stream: MmapStream<'static>,
    codec: Codec,
}

impl LiveStream for V4l2Stream {
    fn codec(&self) -> Codec {
        self.codec
    }

    fn next_into(&mut self, wait: Duration, buf: &mut Vec<u8>) -> Result<Option<Option<u64>>, StreamError> {
        self.stream.set_timeout(wait.max(Duration::from_millis(1)));
        match self.stream.next() {
            Ok((data, meta)) => {
                let used = (meta.bytesused as usize).min(data.len());
                buf.clear();
                buf.extend_from_slice(&data[..used]);
                let ts = &meta.timestamp;
                Ok(Some(Some(ts.sec as u64 * 1000 + ts.usec as u64 / 1000)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(None),
            Err(e) => Err(StreamError::transient(format!("capture: {e}"))),
        }
    }
}
