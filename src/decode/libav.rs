//! H.264 and H.265 through FFmpeg's libavcodec (the system's FFmpeg, bound
//! by `ffmpeg-sys-next` against its installed headers).
//!
//! One [`LibavDecoder`] per camera stream. It takes access units (MP4
//! samples, RTSP frames) as they are, or any run of NAL units (an Annex B
//! file read NAL by NAL), which libavcodec's parser assembles into access
//! units. Every profile libavcodec reads is accepted: B-frames and
//! reordering, CABAC, Main/High/High 10, interlaced-coded pictures, odd
//! sizes. Pictures in 8-bit 4:2:0 planar are handed out as they are; any
//! other format (10-bit, 4:2:2, NV12 from a hardware decoder) is converted
//! by libswscale into a buffer kept for the stream.
//!
//! A hardware decoder (`h264_cuvid`, `h264_nvv4l2dec`, `h264_v4l2m2m`, ...)
//! is opened by name; whether it exists and opens is the caller's to log.

use std::ffi::{c_int, CStr, CString};
use std::ops::ControlFlow;
use std::ptr;

use ffmpeg_sys_next as ff;

use super::{Codec, DecodeError, Picture, Threads};
use crate::pool::i420_len;

/// libavcodec prints corrupt-stream details on stderr at ERROR level,
/// unthrottled; faceflow counts and logs those itself (rate-limited, per
/// camera). `FACEFLOW_AV_LOG=error|warning|info|debug` turns them back on.
pub(crate) fn quiet_libav_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let level = match std::env::var("FACEFLOW_AV_LOG").as_deref() {
            Ok("error") => ff::AV_LOG_ERROR,
            Ok("warning") => ff::AV_LOG_WARNING,
            Ok("info") => ff::AV_LOG_INFO,
            Ok("debug") => ff::AV_LOG_DEBUG,
            _ => ff::AV_LOG_FATAL,
        };
        // SAFETY: sets a process-wide integer; no pointers involved.
        unsafe { ff::av_log_set_level(level) };
    });
}

/// libavutil's text for an error code.
fn av_err(code: c_int) -> String {
    let mut buf = [0 as std::ffi::c_char; 128];
    // SAFETY: av_strerror writes at most `buf.len()` bytes, NUL-terminated
    // (it terminates even on an unknown code), so CStr finds the end in `buf`.
    unsafe {
        ff::av_strerror(code, buf.as_mut_ptr(), buf.len());
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

pub struct LibavDecoder {
    ctx: *mut ff::AVCodecContext,
    parser: *mut ff::AVCodecParserContext,
    pkt: *mut ff::AVPacket,
    frame: *mut ff::AVFrame,
    sws: *mut ff::SwsContext,
    /// Packed I420 for pictures libswscale converted (not 8-bit 4:2:0 planar).
    converted: Vec<u8>,
    /// The parser's input with the zeroed padding libavcodec may read past
    /// the end of it (`AV_INPUT_BUFFER_PADDING_SIZE`); grown once, reused.
    padded: Vec<u8>,
    codec: Codec,
    name: &'static str,
    /// Errors of the current `decode` call after the first (which is returned).
    extra_errors: u64,
}

// libavcodec contexts may be used from any thread, one thread at a time
// (its own frame threads are internal to it).
// SAFETY: the FFmpeg objects are owned by this value, shared with no other,
// and used only through &mut self.
unsafe impl Send for LibavDecoder {}

impl Drop for LibavDecoder {
    fn drop(&mut self) {
        // The packet's data is borrowed: detached before the packet is freed.
        // SAFETY: each pointer is NULL or the object `open` allocated, held by
        // nothing else; the frees accept NULL (the parser is checked), once.
        unsafe {
            if !self.parser.is_null() {
                ff::av_parser_close(self.parser);
            }
            ff::sws_freeContext(self.sws);
            ff::av_frame_free(&mut self.frame);
            // The packet only ever points at borrowed data (buf is NULL).
            (*self.pkt).data = ptr::null_mut();
            (*self.pkt).size = 0;
            ff::av_packet_free(&mut self.pkt);
            ff::avcodec_free_context(&mut self.ctx);
        }
    }
}

/// One CUDA device for every NVDEC (`*_cuvid`) decoder of the process,
/// on the CUDA primary context where it can be: the context ONNX Runtime's
/// CUDA provider uses. Left to itself, each cuvid decoder creates a CUDA
/// context of its own, and the GPU time-slices between contexts: on an
/// H100 with 32 cameras the detector then ran at about half its bare speed
/// (0.47-0.53 of it; PERFORMANCE.md, x86-cuda). libavutil takes the
/// primary context only if it can set its flags (blocking sync), so this
/// is opened before the detector's session ([`super::open_hardware_device`]);
/// where the primary context is already active with other flags, the
/// decoders share one context of their own instead (logged). `None`
/// (logged once) where no CUDA device opens: each decoder then tries its
/// own, as libavcodec does by default.
pub(crate) fn shared_cuda_device() -> Option<*mut ff::AVBufferRef> {
    struct Device(*mut ff::AVBufferRef);
    // The CUDA device is used by its decoders from any thread (each pushes
    // the context it is given).
    // SAFETY: created once, never freed or written after, and only handed
    // to av_buffer_ref, whose count is atomic.
    unsafe impl Send for Device {}
    // SAFETY: as for Send: shared read-only.
    unsafe impl Sync for Device {}
    static DEVICE: std::sync::OnceLock<Option<Device>> = std::sync::OnceLock::new();
    DEVICE
        .get_or_init(|| {
            quiet_libav_log();
            let primary_error = match cuda_device(true) {
                Ok(d) => {
                    log::info!("NVDEC: decoders share the CUDA primary context with the detector");
                    return Some(Device(d));
                }
                Err(e) => e,
            };
            match cuda_device(false) {
                Ok(d) => {
                    log::warn!(
                        "NVDEC: decoders share a CUDA context of their own, not the detector's ({primary_error}): \
                         the GPU switches between the two"
                    );
                    Some(Device(d))
                }
                Err(e) => {
                    log::warn!("NVDEC: no CUDA device ({e}); each decoder tries to open its own");
                    None
                }
            }
        })
        .as_ref()
        .map(|d| d.0)
}

/// `get_format` for a hardware decoder given a device: the first format it
/// offers in host memory (cuvid offers CUDA, then NV12), so pictures are
/// copied out as they are without a device.
unsafe extern "C" fn host_format(_: *mut ff::AVCodecContext, offered: *const ff::AVPixelFormat) -> ff::AVPixelFormat {
    let mut f = offered;
    // SAFETY: libavcodec passes a list ended by AV_PIX_FMT_NONE;
    // av_pix_fmt_desc_get returns NULL or a static descriptor.
    unsafe {
        while !f.is_null() && *f != ff::AVPixelFormat::AV_PIX_FMT_NONE {
            let desc = ff::av_pix_fmt_desc_get(*f);
            if !desc.is_null() && (*desc).flags & ff::AV_PIX_FMT_FLAG_HWACCEL as u64 == 0 {
                return *f;
            }
            f = f.add(1);
        }
    }
    ff::AVPixelFormat::AV_PIX_FMT_NONE
}

/// A new CUDA device context (`primary`: on the primary context).
fn cuda_device(primary: bool) -> Result<*mut ff::AVBufferRef, DecodeError> {
    let mut dev: *mut ff::AVBufferRef = ptr::null_mut();
    let mut opts: *mut ff::AVDictionary = ptr::null_mut();
    // SAFETY: the option strings are NUL-terminated literals; `opts` is
    // freed here after the call (which copies what it needs); `dev` is
    // written only on success.
    let r = unsafe {
        if primary {
            ff::av_dict_set(&mut opts, c"primary_ctx".as_ptr(), c"1".as_ptr(), 0);
        }
        let r = ff::av_hwdevice_ctx_create(&mut dev, ff::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA, ptr::null(), opts, 0);
        ff::av_dict_free(&mut opts);
        r
    };
    match r {
        r if r < 0 => Err(DecodeError::new(format!("CUDA device: {}", av_err(r)))),
        _ if dev.is_null() => Err(DecodeError::new("CUDA device: none returned")),
        _ => Ok(dev),
    }
}

/// libavcodec's id for the H.26x codecs (others are opened by decoder name).
fn h26x_id(codec: Codec) -> Option<ff::AVCodecID> {
    match codec {
        Codec::H264 => Some(ff::AVCodecID::AV_CODEC_ID_H264),
        Codec::H265 => Some(ff::AVCodecID::AV_CODEC_ID_HEVC),
        _ => None,
    }
}

fn find_by_name(name: &str) -> Result<*const ff::AVCodec, DecodeError> {
    let cname = CString::new(name).map_err(|_| DecodeError::new(format!("bad decoder name {name:?}")))?;
    // SAFETY: a NUL-terminated name; the result is NULL or a static AVCodec.
    Ok(unsafe { ff::avcodec_find_decoder_by_name(cname.as_ptr()) })
}

impl LibavDecoder {
    /// libavcodec's own software decoder for `codec`, told `extradata`
    /// (a container's codec configuration, or Annex B parameter sets) first.
    pub(crate) fn software(codec: Codec, extradata: &[u8], threads: Threads) -> Result<Self, DecodeError> {
        let (c, name): (*const ff::AVCodec, &'static str) = match (h26x_id(codec), codec) {
            // SAFETY: avcodec_find_decoder returns NULL or a static AVCodec.
            (Some(id), _) => (unsafe { ff::avcodec_find_decoder(id) }, codec.as_str()),
            (None, Codec::Other { decoder }) => (find_by_name(decoder)?, decoder),
            (None, other) => {
                return Err(DecodeError::new(format!("{} is not decoded by libavcodec here", other.as_str())))
            }
        };
        Self::open(codec, c, extradata, threads, name)
    }

    /// The decoder libavcodec knows as `name` (a hardware one, typically).
    pub fn named(codec: Codec, name: &'static str, extradata: &[u8], threads: Threads) -> Result<Self, DecodeError> {
        let c = find_by_name(name)?;
        Self::open(codec, c, extradata, threads, name)
    }

    fn open(
        codec: Codec,
        c: *const ff::AVCodec,
        extradata: &[u8],
        threads: Threads,
        name: &'static str,
    ) -> Result<Self, DecodeError> {
        quiet_libav_log();
        if c.is_null() {
            return Err(DecodeError::new(format!("{name}: this FFmpeg build has no such decoder")));
        }
        // The context, packet and frame are owned by `d` from here on (its
        // Drop frees them, also on the error returns below). The extradata
        // buffer has `len` + padding bytes; the context takes ownership of it.
        // SAFETY: `c` is a non-NULL static AVCodec; the objects are checked
        // for NULL before use; `len` bytes are copied from a slice that long.
        unsafe {
            if let Some(id) = h26x_id(codec) {
                if (*c).id != id {
                    return Err(DecodeError::new(format!("{name} does not decode {}", codec.as_str())));
                }
            }
            let ctx = ff::avcodec_alloc_context3(c);
            let pkt = ff::av_packet_alloc();
            let frame = ff::av_frame_alloc();
            // Only Annex B runs of NAL units go through a parser; a codec
            // without one takes whole packets only (decode says so).
            let parser = ff::av_parser_init((*c).id as c_int);
            let d = LibavDecoder {
                ctx,
                parser,
                pkt,
                frame,
                sws: ptr::null_mut(),
                converted: Vec::new(),
                padded: Vec::new(),
                codec,
                name,
                extra_errors: 0,
            };
            if ctx.is_null() || pkt.is_null() || frame.is_null() {
                return Err(DecodeError::new(format!("{name}: out of memory opening the decoder")));
            }
            if !extradata.is_empty() {
                let len = extradata.len();
                let Ok(size) = c_int::try_from(len) else {
                    return Err(DecodeError::new(format!("{name}: {len} bytes of codec configuration is too much")));
                };
                // libavcodec frees it with the context: av_malloc'd, with
                // the zeroed padding its readers may run into.
                let buf = ff::av_mallocz(len + ff::AV_INPUT_BUFFER_PADDING_SIZE as usize) as *mut u8;
                if buf.is_null() {
                    return Err(DecodeError::new(format!("{name}: out of memory opening the decoder")));
                }
                ptr::copy_nonoverlapping(extradata.as_ptr(), buf, len);
                (*ctx).extradata = buf;
                (*ctx).extradata_size = size;
            }
            // Timestamps in and out are milliseconds.
            (*ctx).pkt_timebase = ff::AVRational { num: 1, den: 1000 };
            (*ctx).thread_count = threads.count.max(1) as c_int;
            (*ctx).thread_type = if threads.frame { ff::FF_THREAD_FRAME } else { ff::FF_THREAD_SLICE };
            if name.ends_with("_cuvid") {
                if let Some(dev) = shared_cuda_device() {
                    // The context unrefs it when freed.
                    (*ctx).hw_device_ctx = ff::av_buffer_ref(dev);
                    // Given a device, libavcodec would hand out CUDA
                    // surfaces; faceflow reads pictures in host memory.
                    (*ctx).get_format = Some(host_format);
                }
            }
            let r = ff::avcodec_open2(ctx, c, ptr::null_mut());
            if r < 0 {
                return Err(DecodeError::new(format!("{name}: cannot open the decoder: {}", av_err(r))));
            }
            Ok(d)
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// libavcodec's name of the decoder in use.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Feeds encoded bytes: a whole access unit when `whole_unit` (MP4
    /// samples, RTSP frames: decoded at once, no added delay), else any run
    /// of NAL units, which the parser splits into access units. Every
    /// picture that becomes ready goes to `on_picture`, in presentation
    /// order; `Break` stops the handing out (the rest is discarded).
    ///
    /// An error names the first of the packet's failures; decoding goes on
    /// with the next picture libavcodec can make, so the caller counts it
    /// and carries on. [`Self::take_extra_errors`] tells how many more there were.
    pub fn decode(
        &mut self,
        data: &[u8],
        pts_ms: Option<u64>,
        whole_unit: bool,
        on_picture: &mut dyn FnMut(&Picture<'_>, bool) -> ControlFlow<()>,
    ) -> Result<(), DecodeError> {
        let pts = pts_ms.map(|p| p as i64).unwrap_or(ff::AV_NOPTS_VALUE);
        if whole_unit {
            return self.send(data.as_ptr(), data.len(), pts, on_picture);
        }
        if self.parser.is_null() {
            return Err(DecodeError::new(format!("{}: takes whole packets only (no parser for it)", self.name)));
        }
        let mut first_err = None;
        // The parser reads up to the padding size past its input: give it
        // a copy with zeroed padding (the bytes a caller owns end at data).
        self.padded.clear();
        self.padded.extend_from_slice(data);
        self.padded.resize(data.len() + ff::AV_INPUT_BUFFER_PADDING_SIZE as usize, 0);
        let mut at = 0usize;
        while at < data.len() {
            let (mut out, mut out_len): (*mut u8, c_int) = (ptr::null_mut(), 0);
            let left = data.len() - at;
            // `out` receives a pointer into the parser's own buffer.
            // SAFETY: a live parser and context (owned by self); the input is
            // `left` bytes of `padded` from `at`, then the zeroed padding.
            let used = unsafe {
                ff::av_parser_parse2(
                    self.parser,
                    self.ctx,
                    &mut out,
                    &mut out_len,
                    self.padded.as_ptr().add(at),
                    left.min(c_int::MAX as usize) as c_int,
                    pts,
                    ff::AV_NOPTS_VALUE,
                    0,
                )
            };
            if used < 0 {
                return Err(DecodeError::new(format!("{}: parser: {}", self.name, av_err(used))));
            }
            at += (used as usize).min(left);
            if used == 0 && out_len == 0 {
                break; // the parser took nothing and made nothing: never spin
            }
            if out_len > 0 {
                // SAFETY: the parser is non-NULL (checked above) and live.
                let unit_pts = unsafe { (*self.parser).pts };
                if let Err(e) = self.send(out, out_len as usize, unit_pts, on_picture) {
                    self.note(&mut first_err, e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn note(&mut self, first: &mut Option<DecodeError>, e: DecodeError) {
        if first.is_none() {
            *first = Some(e);
        } else {
            self.extra_errors += 1;
        }
    }

    /// Errors after the first in the last `decode`/`finish` call, reset on reading.
    pub fn take_extra_errors(&mut self) -> u64 {
        std::mem::take(&mut self.extra_errors)
    }

    /// End of stream: the parser's last access unit and every picture
    /// libavcodec still holds (reordering, frame threads).
    pub fn finish(
        &mut self,
        on_picture: &mut dyn FnMut(&Picture<'_>, bool) -> ControlFlow<()>,
    ) -> Result<(), DecodeError> {
        let mut first_err = None;
        let (mut out, mut out_len): (*mut u8, c_int) = (ptr::null_mut(), 0);
        if !self.parser.is_null() {
            // SAFETY: a live parser and context; NULL input with size 0 is
            // the parser's documented flush call.
            unsafe {
                ff::av_parser_parse2(
                    self.parser,
                    self.ctx,
                    &mut out,
                    &mut out_len,
                    ptr::null(),
                    0,
                    ff::AV_NOPTS_VALUE,
                    ff::AV_NOPTS_VALUE,
                    0,
                );
            }
            if out_len > 0 {
                // SAFETY: the parser is non-NULL (checked above) and live.
                let pts = unsafe { (*self.parser).pts };
                if let Err(e) = self.send(out, out_len as usize, pts, on_picture) {
                    self.note(&mut first_err, e);
                }
            }
        }
        // SAFETY: a live, opened context; a NULL packet is the documented
        // end-of-stream (drain) call.
        let r = unsafe { ff::avcodec_send_packet(self.ctx, ptr::null()) };
        if r < 0 && r != ff::AVERROR_EOF {
            self.note(&mut first_err, DecodeError::new(format!("{}: flush: {}", self.name, av_err(r))));
        }
        if let Err(e) = self.receive_all(on_picture) {
            self.note(&mut first_err, e);
        }
        first_err.map_or(Ok(()), Err)
    }

    fn send(
        &mut self,
        data: *const u8,
        len: usize,
        pts: i64,
        on_picture: &mut dyn FnMut(&Picture<'_>, bool) -> ControlFlow<()>,
    ) -> Result<(), DecodeError> {
        let Ok(size) = c_int::try_from(len) else {
            return Err(DecodeError::new(format!("{}: a {len}-byte access unit is too large", self.name)));
        };
        if size == 0 {
            return Ok(());
        }
        // The data is a slice, or the parser's output until its next call.
        // SAFETY: a live packet owned by self; `len` bytes at `data` are
        // readable for this call (the callers' guarantee).
        unsafe {
            // Borrowed bytes (buf stays NULL): libavcodec copies what it keeps.
            (*self.pkt).data = data as *mut u8;
            (*self.pkt).size = size;
            (*self.pkt).pts = pts;
            (*self.pkt).dts = ff::AV_NOPTS_VALUE;
        }
        loop {
            // SAFETY: a live, opened context and the packet set up above.
            let r = unsafe { ff::avcodec_send_packet(self.ctx, self.pkt) };
            if r == ff::AVERROR(ff::EAGAIN) {
                // Output must be taken before more input fits.
                self.receive_all(on_picture)?;
                continue;
            }
            let received = self.receive_all(on_picture);
            if r < 0 {
                return Err(DecodeError::new(format!("{}: {}", self.name, av_err(r))));
            }
            return received;
        }
    }

    /// Hands out every picture libavcodec has ready.
    fn receive_all(
        &mut self,
        on_picture: &mut dyn FnMut(&Picture<'_>, bool) -> ControlFlow<()>,
    ) -> Result<(), DecodeError> {
        loop {
            // SAFETY: a live, opened context and a live frame owned by self.
            let r = unsafe { ff::avcodec_receive_frame(self.ctx, self.frame) };
            if r == ff::AVERROR(ff::EAGAIN) || r == ff::AVERROR_EOF {
                return Ok(());
            }
            if r < 0 {
                return Err(DecodeError::new(format!("{}: {}", self.name, av_err(r))));
            }
            let flow = match self.picture() {
                Ok((pic, corrupt)) => on_picture(&pic, corrupt),
                Err(e) => {
                    // SAFETY: a live frame; the picture borrowing it is gone.
                    unsafe { ff::av_frame_unref(self.frame) };
                    return Err(e);
                }
            };
            // SAFETY: a live frame; `on_picture`'s borrow of it has ended.
            unsafe { ff::av_frame_unref(self.frame) };
            if flow.is_break() {
                return Ok(());
            }
        }
    }

    /// The received frame as 8-bit 4:2:0 planes, and whether libavcodec
    /// flagged it as concealed (damaged input).
    fn picture(&mut self) -> Result<(Picture<'_>, bool), DecodeError> {
        // SAFETY: the frame is live (owned by self, allocated in `open`)
        // and filled by avcodec_receive_frame; it is not written while `f`
        // (tied to &mut self) is in use.
        let f = unsafe { &*self.frame };
        let (w, h) = (f.width, f.height);
        if w <= 0 || h <= 0 {
            return Err(DecodeError::new(format!("{}: a picture with no size", self.name)));
        }
        let corrupt = f.decode_error_flags != 0 || (f.flags & ff::AV_FRAME_FLAG_CORRUPT) != 0;
        // The packet's own timestamp, carried through reordering (not
        // best_effort_timestamp, whose guessing rewrites camera clocks).
        let pts_ms = (f.pts != ff::AV_NOPTS_VALUE && f.pts >= 0).then_some(f.pts as u64);
        let (wu, hu) = (w as usize, h as usize);
        let (cw, ch) = (wu.div_ceil(2), hu.div_ceil(2));
        let planar420 = f.format == ff::AVPixelFormat::AV_PIX_FMT_YUV420P as c_int
            || f.format == ff::AVPixelFormat::AV_PIX_FMT_YUVJ420P as c_int;
        if planar420 {
            let ls = f.linesize;
            if ls[0] < w || ls[1] < cw as c_int || ls[2] < cw as c_int || f.data[0].is_null() {
                return Err(DecodeError::new(format!("{}: unexpected picture layout", self.name)));
            }
            let (sy, su, sv) = (ls[0] as usize, ls[1] as usize, ls[2] as usize);
            // SAFETY: libavcodec's planes hold `linesize * rows` bytes each
            // (the last row at least `width`), valid until av_frame_unref.
            let pic = unsafe {
                Picture {
                    y: std::slice::from_raw_parts(f.data[0], sy * (hu - 1) + wu),
                    u: std::slice::from_raw_parts(f.data[1], su * (ch - 1) + cw),
                    v: std::slice::from_raw_parts(f.data[2], sv * (ch - 1) + cw),
                    strides: (sy, su, sv),
                    width: w as u32,
                    height: h as u32,
                    pts_ms,
                }
            };
            return Ok((pic, corrupt));
        }
        // Anything else: libswscale into 8-bit I420 (a context per stream
        // format, cached; the buffer grows only when the size does).
        let Some(fmt) = pixel_format(f.format) else {
            return Err(DecodeError::new(format!("{}: unknown pixel format {}", self.name, f.format)));
        };
        // SAFETY: `self.sws` is NULL or the context this call returned
        // before (it frees or reuses it); sizes are positive, `fmt` a valid
        // AVPixelFormat; NULL filters and params are allowed.
        self.sws = unsafe {
            ff::sws_getCachedContext(
                self.sws,
                w,
                h,
                fmt,
                w,
                h,
                ff::AVPixelFormat::AV_PIX_FMT_YUV420P,
                ff::SWS_BILINEAR,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null(),
            )
        };
        if self.sws.is_null() {
            return Err(DecodeError::new(format!(
                "{}: cannot convert pixel format {} to 8-bit 4:2:0",
                self.name, f.format
            )));
        }
        let len = i420_len(w as u32, h as u32);
        if self.converted.len() < len {
            self.converted.resize(len, 0);
        }
        let base = self.converted.as_mut_ptr();
        // SAFETY: both offsets are within `converted`, which holds at least
        // `len` = wu*hu + 2*cw*ch bytes (resized above).
        let dst = unsafe { [base, base.add(wu * hu), base.add(wu * hu + cw * ch), ptr::null_mut()] };
        let dst_stride = [w, cw as c_int, cw as c_int, 0];
        // The context was made for exactly these sizes and formats.
        // SAFETY: source planes and strides are the received frame's (valid
        // until unref); the destination holds h x w and 2 x ch x cw bytes.
        let rows = unsafe {
            ff::sws_scale(self.sws, f.data.as_ptr() as _, f.linesize.as_ptr(), 0, h, dst.as_ptr(), dst_stride.as_ptr())
        };
        if rows != h {
            return Err(DecodeError::new(format!("{}: pixel format conversion failed", self.name)));
        }
        let (y, rest) = self.converted[..len].split_at(wu * hu);
        let (u, v) = rest.split_at(cw * ch);
        Ok((Picture { y, u, v, strides: (wu, cw, cw), width: w as u32, height: h as u32, pts_ms }, corrupt))
    }
}

/// The pixel format libavcodec gave as an int, if it is one the bindings
/// know: range-checked against `AV_PIX_FMT_NB` before it becomes the enum.
fn pixel_format(v: c_int) -> Option<ff::AVPixelFormat> {
    if !(0..ff::AVPixelFormat::AV_PIX_FMT_NB as c_int).contains(&v) {
        return None;
    }
    // AVPixelFormat is a C enum (bindgen's `#[repr(i32)]`). In the headers
    // the bindings come from, FFmpeg assigns no explicit values between
    // AV_PIX_FMT_NONE (-1) and AV_PIX_FMT_NB (aliases repeat one).
    // SAFETY: so every value in [0, NB) is a variant, and `v` is in it.
    Some(unsafe { std::mem::transmute::<c_int, ff::AVPixelFormat>(v) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hardware_decoder_given_a_device_hands_out_pictures_in_host_memory() {
        use ff::AVPixelFormat::*;
        let pick = |offered: &[ff::AVPixelFormat]| {
            // SAFETY: the list ends with AV_PIX_FMT_NONE, as libavcodec's does.
            unsafe { host_format(ptr::null_mut(), offered.as_ptr()) }
        };
        // What h264_cuvid offers: CUDA surfaces first, then NV12.
        assert_eq!(pick(&[AV_PIX_FMT_CUDA, AV_PIX_FMT_NV12, AV_PIX_FMT_NONE]), AV_PIX_FMT_NV12);
        assert_eq!(pick(&[AV_PIX_FMT_YUV420P, AV_PIX_FMT_NONE]), AV_PIX_FMT_YUV420P);
        // Nothing in host memory: no format, and the open fails (logged, software takes over).
        assert_eq!(pick(&[AV_PIX_FMT_CUDA, AV_PIX_FMT_VAAPI, AV_PIX_FMT_NONE]), AV_PIX_FMT_NONE);
        assert_eq!(pick(&[AV_PIX_FMT_NONE]), AV_PIX_FMT_NONE);
    }

    #[test]
    fn pixel_formats_are_range_checked() {
        let yuv420 = ff::AVPixelFormat::AV_PIX_FMT_YUV420P;
        assert_eq!(pixel_format(yuv420 as c_int), Some(yuv420));
        let nv12 = ff::AVPixelFormat::AV_PIX_FMT_NV12;
        assert_eq!(pixel_format(nv12 as c_int), Some(nv12));
        let last = ff::AVPixelFormat::AV_PIX_FMT_NB as c_int - 1;
        assert_eq!(pixel_format(last).map(|f| f as c_int), Some(last));
        assert_eq!(pixel_format(-1), None, "AV_PIX_FMT_NONE is no picture's format");
        assert_eq!(pixel_format(ff::AVPixelFormat::AV_PIX_FMT_NB as c_int), None);
        assert_eq!(pixel_format(c_int::MAX), None);
    }

    /// 12 frames of ffmpeg's test pattern, 66x50 (not a multiple of 16),
    /// x264/x265 with B-frames on every other picture (`b-adapt=0`), made by
    /// ffmpeg from its `testsrc2` pattern and kept in the repo so
    /// the test runs anywhere the library does (also under qemu for aarch64).
    const TINY_H264: &[u8] = include_bytes!("testdata/tiny-bframes.h264");
    const TINY_H265: &[u8] = include_bytes!("testdata/tiny-bframes.h265");

    fn nal_units(data: &[u8]) -> Vec<&[u8]> {
        let mut starts: Vec<usize> =
            (0..data.len().saturating_sub(3)).filter(|&i| data[i..i + 3] == [0, 0, 1]).collect();
        starts.push(data.len());
        starts.windows(2).map(|w| &data[w[0]..w[1]]).collect()
    }

    fn decode_all(codec: Codec, data: &[u8], chunks: &[&[u8]]) -> Vec<(u32, u32, u8)> {
        let mut d = LibavDecoder::software(codec, &[], Threads { count: 1, frame: false }).unwrap();
        let mut out = Vec::new();
        let mut on = |p: &Picture<'_>, corrupt: bool| {
            assert!(!corrupt);
            out.push((p.width, p.height, p.y[0]));
            ControlFlow::Continue(())
        };
        if chunks.is_empty() {
            d.decode(data, None, false, &mut on).unwrap();
        }
        for c in chunks {
            d.decode(c, None, false, &mut on).unwrap();
        }
        d.finish(&mut on).unwrap();
        out
    }

    #[test]
    fn h264_with_b_frames_gives_every_frame_nal_by_nal_or_at_once() {
        let by_nal = decode_all(Codec::H264, TINY_H264, &nal_units(TINY_H264));
        assert_eq!(by_nal.len(), 12, "every frame, B-frames included");
        assert!(by_nal.iter().all(|&(w, h, _)| (w, h) == (66, 50)));
        assert_eq!(decode_all(Codec::H264, TINY_H264, &[]), by_nal, "one big chunk decodes the same");
    }

    #[test]
    fn h265_with_b_frames_gives_every_frame() {
        let pics = decode_all(Codec::H265, TINY_H265, &nal_units(TINY_H265));
        assert_eq!(pics.len(), 12);
        assert!(pics.iter().all(|&(w, h, _)| (w, h) == (66, 50)));
    }

    #[test]
    fn timestamps_travel_with_their_pictures_through_reordering() {
        let mut d = LibavDecoder::software(Codec::H264, &[], Threads { count: 2, frame: true }).unwrap();
        let mut pts = Vec::new();
        let mut on = |p: &Picture<'_>, _: bool| {
            pts.push(p.pts_ms);
            ControlFlow::Continue(())
        };
        // The parser finds the access units; feeding them back whole with a
        // running decode-order counter as pts shows the reordering.
        let parser = LibavDecoder::software(Codec::H264, &[], Threads { count: 1, frame: false }).unwrap();
        let mut units: Vec<Vec<u8>> = Vec::new();
        for nal in nal_units(TINY_H264) {
            // The parser reads up to the padding size past its input.
            let mut padded = nal.to_vec();
            padded.resize(nal.len() + ff::AV_INPUT_BUFFER_PADDING_SIZE as usize, 0);
            let mut at = 0;
            while at < nal.len() {
                let (mut out, mut len): (*mut u8, c_int) = (ptr::null_mut(), 0);
                // SAFETY: a live parser; the input is `nal.len() - at` bytes
                // of `padded`, followed by the zeroed padding it may read.
                let used = unsafe {
                    ff::av_parser_parse2(
                        parser.parser,
                        parser.ctx,
                        &mut out,
                        &mut len,
                        padded.as_ptr().add(at),
                        (nal.len() - at) as c_int,
                        ff::AV_NOPTS_VALUE,
                        ff::AV_NOPTS_VALUE,
                        0,
                    )
                };
                at += used as usize;
                if len > 0 {
                    // SAFETY: the parser's output: `len` bytes valid until its next call.
                    units.push(unsafe { std::slice::from_raw_parts(out, len as usize) }.to_vec());
                }
            }
        }
        let (mut out, mut len): (*mut u8, c_int) = (ptr::null_mut(), 0);
        // SAFETY: a live parser; NULL input with size 0 flushes it.
        unsafe {
            ff::av_parser_parse2(parser.parser, parser.ctx, &mut out, &mut len, ptr::null(), 0, 0, 0, 0);
        }
        if len > 0 {
            // SAFETY: the parser's output: `len` bytes valid until its next call.
            units.push(unsafe { std::slice::from_raw_parts(out, len as usize) }.to_vec());
        }
        assert_eq!(units.len(), 12, "twelve access units");
        for (i, u) in units.iter().enumerate() {
            d.decode(u, Some(1000 + i as u64 * 40), true, &mut on).unwrap();
        }
        d.finish(&mut on).unwrap();
        // Stamped in decode order, the pictures come out in presentation
        // order: the same stamps, reordered around the B-frames.
        let got: Vec<u64> = pts.iter().map(|p| p.expect("every picture keeps its timestamp")).collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..12).map(|i| 1000 + i * 40).collect::<Vec<u64>>());
        assert_ne!(got, sorted, "B-frames were reordered: {got:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_crash_and_a_missing_decoder_is_named() {
        let mut d = LibavDecoder::software(Codec::H264, &[], Threads { count: 1, frame: false }).unwrap();
        let noise: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut n = 0;
        let mut on = |_: &Picture<'_>, _: bool| {
            n += 1;
            ControlFlow::Continue(())
        };
        let mut framed = vec![0, 0, 0, 1, 0x65];
        framed.extend_from_slice(&noise);
        let _ = d.decode(&framed, None, true, &mut on);
        let _ = d.finish(&mut on);
        assert_eq!(n, 0, "noise makes no picture");
        let e = LibavDecoder::named(Codec::H264, "h264_no_such_decoder", &[], Threads { count: 1, frame: false });
        assert!(e.err().unwrap().to_string().contains("h264_no_such_decoder: this FFmpeg build has no such decoder"));
    }
}
