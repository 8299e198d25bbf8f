//! Recordings in any container FFmpeg's libavformat reads (MP4, MOV, MKV,
//! WebM, AVI, MPEG-TS, FLV, raw H.264/H.265 Annex B, ...), holding any video
//! codec the installed libavcodec decodes (H.264, H.265, MPEG-4 Part 2,
//! MJPEG, VP9, AV1, ...): an NVR's export plays as it is.
//!
//! The best video stream's packets are handed out whole, with the
//! container's codec configuration (avcC, hvcC, esds, av1C) as the
//! decoder's extradata and their presentation time in milliseconds from the
//! stream's start. A file cut short gives every packet it holds and says
//! so: fewer packets than its index lists, or a read error before the end.

use std::ffi::{c_int, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;

use ffmpeg_sys_next as ff;

use super::{IngestError, Packet, PacketSource};
use crate::decode::Codec;

pub struct ContainerSource {
    fmt: *mut ff::AVFormatContext,
    pkt: *mut ff::AVPacket,
    stream: c_int,
    codec: Codec,
    extradata: Vec<u8>,
    time_base: ff::AVRational,
    /// The stream's first presentation time (its time base), subtracted.
    start: i64,
    fps: Option<f32>,
    looping: bool,
    /// Added to every timestamp after a loop, so they keep increasing.
    loop_offset_ms: u64,
    last_pts_ms: u64,
    /// Video packets read in the current pass, and the count the
    /// container's index promises (0 = it states none).
    read: u64,
    listed: u64,
    first: bool,
    truncated: Option<String>,
    path: PathBuf,
}

// SAFETY: the libavformat objects are owned by this value alone and used
// only through &mut self, from one thread at a time.
unsafe impl Send for ContainerSource {}

impl Drop for ContainerSource {
    fn drop(&mut self) {
        // SAFETY: both were allocated in `open` (or are NULL) and are
        // freed once here; the free functions take NULL.
        unsafe {
            ff::av_packet_free(&mut self.pkt);
            ff::avformat_close_input(&mut self.fmt);
        }
    }
}

fn av_err(code: c_int) -> String {
    let mut buf = [0 as std::ffi::c_char; 128];
    // SAFETY: av_strerror writes a NUL-terminated string within `buf`.
    unsafe {
        ff::av_strerror(code, buf.as_mut_ptr(), buf.len());
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

fn err(path: &Path, what: impl std::fmt::Display) -> IngestError {
    IngestError::new(format!("{}: {what}", path.display()))
}

/// libavcodec's name for a codec id (a static string).
fn codec_name(id: ff::AVCodecID) -> String {
    // SAFETY: avcodec_get_name never returns NULL; its strings are static.
    unsafe { CStr::from_ptr(ff::avcodec_get_name(id)).to_string_lossy().into_owned() }
}

impl ContainerSource {
    pub fn open(path: &Path) -> Result<Self, IngestError> {
        crate::decode::libav::quiet_libav_log();
        let cpath =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| err(path, "a file name with a NUL byte"))?;
        let mut fmt: *mut ff::AVFormatContext = ptr::null_mut();
        // SAFETY: `fmt` is NULL (libavformat allocates it); the path is
        // NUL-terminated; on failure libavformat frees what it allocated.
        let r = unsafe { ff::avformat_open_input(&mut fmt, cpath.as_ptr(), ptr::null_mut(), ptr::null_mut()) };
        if r < 0 {
            return Err(Self::unreadable(path, r));
        }
        let mut src = ContainerSource {
            fmt,
            // SAFETY: plain allocation, checked below.
            pkt: unsafe { ff::av_packet_alloc() },
            stream: -1,
            codec: Codec::H264,
            extradata: Vec::new(),
            time_base: ff::AVRational { num: 1, den: 1000 },
            start: 0,
            fps: None,
            looping: false,
            loop_offset_ms: 0,
            last_pts_ms: 0,
            read: 0,
            listed: 0,
            first: true,
            truncated: None,
            path: path.to_path_buf(),
        };
        if src.pkt.is_null() {
            return Err(err(path, "out of memory"));
        }
        // SAFETY: `fmt` is an open input; find_stream_info reads ahead as
        // needed and keeps what it read for av_read_frame.
        let r = unsafe { ff::avformat_find_stream_info(fmt, ptr::null_mut()) };
        if r < 0 {
            return Err(err(path, format!("cannot read the streams' descriptions: {}", av_err(r))));
        }
        src.pick_video()?;
        Ok(src)
    }

    /// Why libavformat refused the file, in words. An MP4 without its
    /// `moov` index is most often a recording cut off before it finished.
    fn unreadable(path: &Path, code: c_int) -> IngestError {
        let head = std::fs::read(path).ok();
        if let Some(data) = head.as_deref() {
            if data.len() >= 8 && &data[4..8] == b"ftyp" {
                if let Err(e) = super::mp4::Mp4Source::new(data.to_vec()) {
                    if e.context().contains("moov") {
                        return err(path, e.context());
                    }
                }
            }
            if data.is_empty() {
                return err(path, "the file is empty");
            }
        }
        err(path, format!("not a video file FFmpeg can read ({})", av_err(code)))
    }

    /// Chooses the best video stream and what decodes it.
    fn pick_video(&mut self) -> Result<(), IngestError> {
        let path = self.path.clone();
        // SAFETY: `fmt` is open with its streams found; the decoder out
        // parameter is not used (its pointer type differs across FFmpeg
        // versions): the decoder is looked up below.
        let index = unsafe {
            ff::av_find_best_stream(self.fmt, ff::AVMediaType::AVMEDIA_TYPE_VIDEO, -1, -1, ptr::null_mut(), 0)
        };
        // SAFETY: nb_streams pointers to streams, each with codecpar.
        let streams: Vec<(ff::AVMediaType, ff::AVCodecID)> = unsafe {
            (0..(*self.fmt).nb_streams as usize)
                .map(|i| {
                    let par = (**(*self.fmt).streams.add(i)).codecpar;
                    ((*par).codec_type, (*par).codec_id)
                })
                .collect()
        };
        if index < 0 {
            let found: Vec<String> = streams
                .iter()
                .map(|(t, id)| {
                    let kind = match t {
                        ff::AVMediaType::AVMEDIA_TYPE_AUDIO => "audio",
                        ff::AVMediaType::AVMEDIA_TYPE_VIDEO => "video",
                        ff::AVMediaType::AVMEDIA_TYPE_SUBTITLE => "subtitle",
                        _ => "data",
                    };
                    format!("{kind}/{}", codec_name(*id))
                })
                .collect();
            return Err(err(
                &path,
                format!(
                    "no video stream to decode (found: {})",
                    if found.is_empty() { "no streams".to_string() } else { found.join(", ") }
                ),
            ));
        }
        // SAFETY: `index` is a valid stream index (checked above).
        let (stream, par) = unsafe {
            let st = *(*self.fmt).streams.add(index as usize);
            (st, (*st).codecpar)
        };
        // SAFETY: codecpar is valid for the context's life.
        let (id, extradata) = unsafe {
            let p = &*par;
            let extra = if p.extradata.is_null() || p.extradata_size <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(p.extradata, p.extradata_size as usize).to_vec()
            };
            (p.codec_id, extra)
        };
        self.codec = match id {
            ff::AVCodecID::AV_CODEC_ID_H264 => Codec::H264,
            ff::AVCodecID::AV_CODEC_ID_HEVC => Codec::H265,
            other => {
                // SAFETY: NULL or a static AVCodec whose name is a static string.
                let decoder = unsafe {
                    // *mut in FFmpeg 4, *const from 5: the binding takes either.
                    let c: *const ff::AVCodec = ff::avcodec_find_decoder(other);
                    if c.is_null() {
                        None
                    } else {
                        CStr::from_ptr((*c).name).to_str().ok()
                    }
                };
                match decoder {
                    Some(decoder) => Codec::Other { decoder },
                    None => {
                        return Err(err(
                            &path,
                            format!("its video is {}, which this FFmpeg build cannot decode", codec_name(other)),
                        ))
                    }
                }
            }
        };
        self.stream = index;
        self.extradata = extradata;
        // SAFETY: `stream` is valid for the context's life.
        unsafe {
            let st = &*stream;
            self.time_base = st.time_base;
            self.start = if st.start_time != ff::AV_NOPTS_VALUE { st.start_time } else { 0 };
            self.listed = st.nb_frames.max(0) as u64;
            let rate = if st.avg_frame_rate.num > 0 && st.avg_frame_rate.den > 0 {
                st.avg_frame_rate
            } else {
                st.r_frame_rate
            };
            self.fps = (rate.num > 0 && rate.den > 0).then(|| rate.num as f32 / rate.den as f32);
        }
        Ok(())
    }

    /// The codec the file's video holds.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    fn pts_ms(&self, pts: i64) -> Option<u64> {
        if pts == ff::AV_NOPTS_VALUE {
            return None;
        }
        // SAFETY: pure arithmetic.
        let ms = unsafe { ff::av_rescale_q(pts - self.start, self.time_base, ff::AVRational { num: 1, den: 1000 }) };
        Some(ms.max(0) as u64 + self.loop_offset_ms)
    }

    /// Back to the first packet for another pass (looping).
    fn rewind(&mut self) -> Result<(), IngestError> {
        let frame_ms = self.fps.map_or(40, |f| (1000.0 / f).round() as u64);
        self.loop_offset_ms = self.last_pts_ms + frame_ms;
        // SAFETY: an open context and a valid stream index.
        let r = unsafe { ff::av_seek_frame(self.fmt, self.stream, self.start, ff::AVSEEK_FLAG_BACKWARD as c_int) };
        if r < 0 {
            // A raw stream (Annex B .h264/.h265) has no index to seek in
            // (EPERM): open the file again, the timestamps going on.
            let mut again = ContainerSource::open(&self.path).map_err(|e| {
                err(&self.path, format!("cannot loop back to the start ({}), nor open it again: {e}", av_err(r)))
            })?;
            again.looping = self.looping;
            again.loop_offset_ms = self.loop_offset_ms;
            // The same stream again: the decoder goes on (as after a seek).
            again.first = self.first;
            *self = again;
            return Ok(());
        }
        self.read = 0;
        Ok(())
    }
}

impl PacketSource for ContainerSource {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, IngestError> {
        loop {
            // SAFETY: `pkt` is ours; unref frees the previous packet's data
            // (which no Packet borrows any more: they borrow &mut self).
            let r = unsafe {
                ff::av_packet_unref(self.pkt);
                ff::av_read_frame(self.fmt, self.pkt)
            };
            if r == ff::AVERROR_EOF {
                if self.looping && self.read > 0 {
                    self.rewind()?;
                    continue;
                }
                if self.listed > 0 && self.read < self.listed && self.truncated.is_none() {
                    self.truncated = Some(format!(
                        "the file is truncated: its index lists {} frames, the data ends after {} of them",
                        self.listed, self.read
                    ));
                }
                return Ok(None);
            }
            if r < 0 {
                // Anything but a clean end: keep what was read, say why it stopped.
                self.truncated = Some(format!(
                    "reading stopped after {} frames: {} (truncated or damaged file?)",
                    self.read,
                    av_err(r)
                ));
                return Ok(None);
            }
            // SAFETY: av_read_frame filled the packet.
            let p = unsafe { &*self.pkt };
            if p.stream_index != self.stream || p.size <= 0 || p.data.is_null() {
                continue;
            }
            self.read += 1;
            let pts_ms = self.pts_ms(p.pts);
            if let Some(ms) = pts_ms {
                self.last_pts_ms = self.last_pts_ms.max(ms);
            }
            // SAFETY: `size` bytes at `data`, valid until the next unref,
            // which needs &mut self again.
            let data = unsafe { std::slice::from_raw_parts(p.data, p.size as usize) };
            let fresh = std::mem::take(&mut self.first);
            return Ok(Some(Packet {
                data,
                codec: self.codec,
                whole_unit: true,
                pts_ms,
                fresh,
                extradata: &self.extradata,
            }));
        }
    }

    fn fps(&self) -> Option<f32> {
        self.fps
    }

    fn set_looping(&mut self, on: bool) -> bool {
        self.looping = on;
        true
    }

    fn truncated(&self) -> Option<String> {
        self.truncated.clone()
    }
}
