//! Video decoding into packed I420, one backend per file behind the one
//! [`VideoDecoder`] interface:
//!
//! - `libav`: H.264 and H.265 through FFmpeg's libavcodec (the default
//!   `libav` feature), with the hardware decoder the board profile names
//!   tried first and a logged fallback to software; and any other video
//!   codec the installed libavcodec has, for files (MPEG-4 Part 2, MJPEG,
//!   VP9, AV1, ...);
//! - `openh264`: H.264 only, for builds without system libraries (the
//!   `openh264` feature, used only when `libav` is off);
//! - `raw`: USB cameras' MJPEG (libjpeg-turbo) and YUYV.
//!
//! Pictures are copied once, tightly packed, into a frame-pool slot by the
//! capture thread.

#[cfg(feature = "libav")]
pub mod libav;
#[cfg(feature = "openh264")]
pub mod openh264;
pub mod raw;

use std::ops::ControlFlow;

use crate::board;

crate::error::context_error!(
    /// A decoder that could not be made, or a picture it could not decode.
    DecodeError,
    "decode: "
);

/// The video codecs faceflow takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    /// One JPEG per frame (USB cameras).
    Mjpeg,
    /// Packed 4:2:2, Y0 U Y1 V (USB cameras), of the given size.
    Yuyv {
        width: u32,
        height: u32,
    },
    /// Another codec a file holds, decoded by the libavcodec decoder of
    /// this name (`mpeg4`, `mjpeg`, `vp9`, `libdav1d`, ...).
    Other {
        decoder: &'static str,
    },
}

impl Codec {
    pub fn as_str(&self) -> &'static str {
        match self {
            Codec::H264 => "H.264",
            Codec::H265 => "H.265",
            Codec::Mjpeg => "MJPEG",
            Codec::Yuyv { .. } => "YUYV",
            Codec::Other { decoder } => decoder,
        }
    }
}

/// A decoded 8-bit 4:2:0 picture borrowed from its decoder.
pub struct Picture<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    /// Bytes per row of y, u and v.
    pub strides: (usize, usize, usize),
    pub width: u32,
    pub height: u32,
    /// Presentation time the decoder carried through (ms), if the input had one.
    pub pts_ms: Option<u64>,
}

impl Picture<'_> {
    /// Writes the picture as packed I420 into `dst` (at least `i420_len` bytes).
    pub fn copy_to(&self, dst: &mut [u8]) {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (dy, rest) = dst.split_at_mut(w * h);
        let (du, rest) = rest.split_at_mut(cw * ch);
        let dv = &mut rest[..cw * ch];
        let s = self.strides;
        for r in 0..h {
            dy[r * w..(r + 1) * w].copy_from_slice(&self.y[r * s.0..r * s.0 + w]);
        }
        for r in 0..ch {
            du[r * cw..(r + 1) * cw].copy_from_slice(&self.u[r * s.1..r * s.1 + cw]);
            dv[r * cw..(r + 1) * cw].copy_from_slice(&self.v[r * s.2..r * s.2 + cw]);
        }
    }
}

/// Called with each decoded picture, in presentation order, and whether the
/// decoder concealed damage in it; `Break` stops the handing out.
pub(crate) type OnPicture<'f> = dyn FnMut(&Picture<'_>, bool) -> ControlFlow<()> + 'f;

enum Backend {
    #[cfg(feature = "libav")]
    Libav(libav::LibavDecoder),
    #[cfg(feature = "openh264")]
    OpenH264(openh264::OpenH264Decoder),
    /// MJPEG and YUYV: converted into an owned I420 buffer.
    Raw(raw::RawDecoder),
}

/// One camera's decoder, for the codec its stream carries.
pub struct VideoDecoder {
    backend: Backend,
    codec: Codec,
    /// A hardware decoder is in use; it is swapped for software if it makes
    /// no picture from its first packets.
    hardware: bool,
    pictures: u64,
    failures_before_first: u32,
    /// What the decoder was told before the first packet, for a software
    /// decoder that takes over from a hardware one.
    #[cfg_attr(not(feature = "libav"), allow(dead_code))]
    extradata: Vec<u8>,
    /// For the fallback's log line (only libav has hardware decoders).
    #[cfg_attr(not(feature = "libav"), allow(dead_code))]
    camera: String,
    /// The software decoder's threading, for a fallback from hardware.
    #[cfg_attr(not(feature = "libav"), allow(dead_code))]
    threads: Threads,
}

/// Packets a hardware decoder may fail before any picture, then software takes over.
const HW_FAILURES_BEFORE_FALLBACK: u32 = 3;

/// How a software decoder may use threads for one stream (libavcodec;
/// OpenH264 decodes on the calling thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads {
    /// Threads per decoder (1 = none).
    pub count: usize,
    /// Frame threading (a picture per thread: throughput, `count` frames of
    /// delay) rather than slice threading (only helps multi-slice streams).
    pub frame: bool,
}

impl Threads {
    /// The board profile's `[decode]` threading.
    pub fn board() -> Threads {
        Threads { count: board::DECODE_THREADS, frame: board::DECODE_FRAME_THREADS }
    }

    /// The board's threading, at most the cores left to the unpinned
    /// threads on this machine shared among the cameras (see [`Self::sized`]);
    /// logged where it is fewer than the board's.
    pub fn for_cameras_here(cameras: usize) -> Threads {
        let cores = board::cores_for_unpinned();
        let t = Self::sized(Self::board(), cameras, cores);
        if t.count < board::DECODE_THREADS {
            log::info!(
                "decode: {} thread(s) per camera{} in software, not the board's {}: {cameras} cameras share {cores} cores left to decoding",
                t.count,
                if t.frame { ", frame threaded," } else { "" },
                board::DECODE_THREADS
            );
        }
        t
    }

    /// `board` at most `cores / cameras`: each camera's decoder starts
    /// `count` threads, and 32 cameras at 4 each on the 13 cores x86-cuda
    /// leaves them would be 128 threads taking turns (more switching, and
    /// frame threading's `count` frames of delay for nothing). At least
    /// one; frame threading only with two or more.
    fn sized(board: Threads, cameras: usize, cores: usize) -> Threads {
        let count = board.count.min(cores / cameras.max(1)).max(1);
        Threads { count, frame: board.frame && count > 1 }
    }
}

/// Opens the CUDA device the board's NVDEC decoders share, before the
/// detector's session takes the GPU: the first to use the CUDA primary
/// context sets its flags, and libavutil shares it only on its own terms
/// (`libav::shared_cuda_device`). A no-op on boards without `*_cuvid`
/// decoders or without libavcodec.
pub fn open_hardware_device() {
    #[cfg(feature = "libav")]
    if [Codec::H264, Codec::H265].iter().any(|&c| board_hw_decoder(c).ends_with("_cuvid")) {
        libav::shared_cuda_device();
    }
}

/// The hardware decoder the board profile names for `codec` ("" = none).
pub(crate) fn board_hw_decoder(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => board::HW_DECODER_H264,
        Codec::H265 => board::HW_DECODER_H265,
        _ => "",
    }
}

impl VideoDecoder {
    /// A software decoder for `codec` (tests, benches, fuzzing).
    pub fn new(codec: Codec) -> Result<Self, DecodeError> {
        Self::open(codec, &[], "", false, Threads::board())
    }

    /// A software decoder for `codec` told `extradata` first: the codec
    /// configuration a container holds (avcC, hvcC, esds, av1C) or
    /// parameter sets in Annex B (an RTSP camera's SDP).
    pub fn with_extradata(codec: Codec, extradata: &[u8]) -> Result<Self, DecodeError> {
        Self::open(codec, extradata, "", false, Threads::board())
    }

    /// The decoder the board profile picks for a camera: with `hardware`
    /// (the camera's `hardware_decode`), its hardware decoder first where it
    /// names one, else (logged, with the reason) libavcodec's software
    /// decoder. `extradata` as for [`Self::with_extradata`]; `threads` for
    /// software decoding (see [`Threads::for_cameras_here`]).
    pub(crate) fn for_camera(
        codec: Codec,
        extradata: &[u8],
        camera: &str,
        threads: Threads,
        hardware: bool,
    ) -> Result<Self, DecodeError> {
        if !hardware && !board_hw_decoder(codec).is_empty() {
            log::info!("camera {camera}: hardware_decode = false: {} decoded in software", codec.as_str());
        }
        Self::open(codec, extradata, camera, hardware, threads)
    }

    fn open(codec: Codec, extradata: &[u8], camera: &str, use_hw: bool, threads: Threads) -> Result<Self, DecodeError> {
        let mut hardware = false;
        let backend = match codec {
            Codec::Mjpeg | Codec::Yuyv { .. } => Backend::Raw(raw::RawDecoder::new(codec)?),
            Codec::H264 | Codec::H265 | Codec::Other { .. } => {
                let hw = if use_hw { board_hw_decoder(codec) } else { "" };
                let b = Self::compressed(codec, extradata, camera, hw, threads)?;
                hardware = b.1;
                b.0
            }
        };
        Ok(VideoDecoder {
            backend,
            codec,
            hardware,
            pictures: 0,
            failures_before_first: 0,
            extradata: extradata.to_vec(),
            camera: camera.into(),
            threads,
        })
    }

    #[cfg(feature = "libav")]
    fn compressed(
        codec: Codec,
        extradata: &[u8],
        camera: &str,
        hw: &'static str,
        threads: Threads,
    ) -> Result<(Backend, bool), DecodeError> {
        if !hw.is_empty() {
            match libav::LibavDecoder::named(codec, hw, extradata, Threads { count: 1, frame: false }) {
                Ok(d) => {
                    log::info!("camera {camera}: {} decoded in hardware by {hw}", codec.as_str());
                    return Ok((Backend::Libav(d), true));
                }
                Err(e) => log::warn!(
                    "camera {camera}: hardware decoder unavailable ({e}); decoding {} in software (libavcodec)",
                    codec.as_str()
                ),
            }
        }
        Ok((Backend::Libav(libav::LibavDecoder::software(codec, extradata, threads)?), false))
    }

    #[cfg(all(not(feature = "libav"), feature = "openh264"))]
    fn compressed(
        codec: Codec,
        extradata: &[u8],
        _camera: &str,
        _hw: &'static str,
        _threads: Threads,
    ) -> Result<(Backend, bool), DecodeError> {
        match codec {
            // OpenH264 reads parameter sets in-band: the Annex B ones go in
            // front of the first unit (decode), an avcC record cannot.
            Codec::H264 if extradata.first() != Some(&1) => {
                let mut d = openh264::OpenH264Decoder::new()?;
                if !extradata.is_empty() {
                    d.decode(extradata)?;
                }
                Ok((Backend::OpenH264(d), false))
            }
            other => Err(DecodeError::new(format!(
                "{} needs libavcodec: this build has only OpenH264 (build with the default `libav` feature)",
                other.as_str()
            ))),
        }
    }

    #[cfg(all(not(feature = "libav"), not(feature = "openh264")))]
    fn compressed(
        codec: Codec,
        _extradata: &[u8],
        _camera: &str,
        _hw: &'static str,
        _threads: Threads,
    ) -> Result<(Backend, bool), DecodeError> {
        Err(DecodeError::new(format!(
            "{}: this build has no video decoder (enable the `libav` feature)",
            codec.as_str()
        )))
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// What decodes: libavcodec's decoder name, "OpenH264", or the raw format.
    pub fn name(&self) -> &str {
        match &self.backend {
            #[cfg(feature = "libav")]
            Backend::Libav(d) => d.name(),
            #[cfg(feature = "openh264")]
            Backend::OpenH264(_) => "OpenH264",
            Backend::Raw(_) => self.codec.as_str(),
        }
    }

    pub fn is_hardware(&self) -> bool {
        self.hardware
    }

    /// Feeds encoded bytes; every picture that becomes ready goes to
    /// `on_picture`. `whole_unit`: `data` is exactly one access unit (MP4
    /// sample, RTSP frame, parameter sets); otherwise any run of NAL units.
    /// An error is one damaged packet: the decoder goes on with the next.
    pub fn decode(
        &mut self,
        data: &[u8],
        pts_ms: Option<u64>,
        whole_unit: bool,
        on_picture: &mut OnPicture<'_>,
    ) -> Result<(), DecodeError> {
        let mut made = 0u64;
        let mut count = |p: &Picture<'_>, corrupt: bool| {
            made += 1;
            on_picture(p, corrupt)
        };
        let r = match &mut self.backend {
            #[cfg(feature = "libav")]
            Backend::Libav(d) => d.decode(data, pts_ms, whole_unit, &mut count),
            #[cfg(feature = "openh264")]
            Backend::OpenH264(d) => d.decode(data).map(|p| {
                if let Some(p) = p {
                    let _ = count(&Picture { pts_ms, ..p }, false);
                }
            }),
            Backend::Raw(d) => d.decode(data).map(|p| {
                let _ = count(&Picture { pts_ms, ..p }, false);
            }),
        };
        // Only libavcodec's parser cares whether a packet is a whole unit.
        #[cfg(not(feature = "libav"))]
        let _ = whole_unit;
        self.pictures += made;
        if r.is_err() && self.hardware && self.pictures == 0 {
            self.failures_before_first += 1;
            if self.failures_before_first >= HW_FAILURES_BEFORE_FALLBACK {
                self.fall_back_to_software(r.as_ref().err());
            }
        }
        r
    }

    #[cfg(feature = "libav")]
    fn fall_back_to_software(&mut self, why: Option<&DecodeError>) {
        let why = why.map(|e| e.to_string()).unwrap_or_default();
        match libav::LibavDecoder::software(self.codec, &self.extradata, self.threads) {
            Ok(d) => {
                log::warn!(
                    "camera {}: hardware decoder {} made no picture from its first {} packets ({why}); decoding in software (libavcodec) from the next key frame",
                    self.camera,
                    self.name(),
                    self.failures_before_first
                );
                self.backend = Backend::Libav(d);
                self.hardware = false;
            }
            Err(e) => log::error!("camera {}: cannot fall back to software decoding: {e}", self.camera),
        }
    }

    #[cfg(not(feature = "libav"))]
    fn fall_back_to_software(&mut self, _why: Option<&DecodeError>) {}

    /// End of stream: every picture still held (reordering, threads).
    pub fn finish(&mut self, on_picture: &mut OnPicture<'_>) -> Result<(), DecodeError> {
        match &mut self.backend {
            #[cfg(feature = "libav")]
            Backend::Libav(d) => d.finish(on_picture),
            #[cfg(feature = "openh264")]
            Backend::OpenH264(d) => {
                while let Some(p) = d.flush_one() {
                    if on_picture(&p, false).is_break() {
                        break;
                    }
                }
                Ok(())
            }
            Backend::Raw(_) => Ok(()),
        }
    }

    /// Further errors inside the last call (beyond the one it returned).
    pub fn take_extra_errors(&mut self) -> u64 {
        match &mut self.backend {
            #[cfg(feature = "libav")]
            Backend::Libav(d) => d.take_extra_errors(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Threads;

    #[test]
    fn decoder_threads_share_the_cores_left_among_the_cameras() {
        let board = Threads { count: 4, frame: true };
        // x86-cuda's 13 cores left: one camera keeps the board's 4.
        assert_eq!(Threads::sized(board, 1, 13), board);
        assert_eq!(Threads::sized(board, 4, 13), Threads { count: 3, frame: true });
        // 32 cameras: one thread each, and no frame threading with one.
        assert_eq!(Threads::sized(board, 32, 13), Threads { count: 1, frame: false });
        // Never more than the board asks for, never none.
        assert_eq!(Threads::sized(Threads { count: 1, frame: false }, 1, 64), Threads { count: 1, frame: false });
        assert_eq!(Threads::sized(board, 0, 0), Threads { count: 1, frame: false });
    }
}
