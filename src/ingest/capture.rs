//! The capture thread of one camera: packets -> decoder -> frame pool ->
//! the camera's ring to the detector.
//!
//! Two policies, by source: a file read as fast as possible (`realtime =
//! false`) waits for room and loses nothing; a live or paced source never
//! blocks on the pipeline: with no free pool slot or a full ring the frame
//! is dropped and counted. Files are paced by their frame rate; live
//! cameras by the camera itself, with their own (RTP) timestamps.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{IngestError, PacketSource};
use crate::board;
use crate::clock::Clocks;
use crate::decode::{Picture, VideoDecoder};
use crate::metrics::stall::StallWatch;
use crate::metrics::{inc, CameraState, CameraStats};
use crate::pool::{i420_len, FramePool, FrameRef};
use crate::ring::{Backoff, Producer};

pub struct Capture {
    pub camera: u8,
    pub name: String,
    /// Pace frames at `fps` and drop rather than wait.
    pub realtime: bool,
    pub fps: f32,
    pub pool: FramePool,
    pub out: Producer<FrameRef>,
    pub clocks: Arc<dyn Clocks>,
    pub stats: Arc<crate::metrics::Stats>,
    pub stop: Arc<AtomicBool>,
    /// Files: the wall-clock time (ms) of the stream's start; frames are
    /// stamped with it plus their stream time. `None` (live cameras): the
    /// arrival time.
    pub start_unix_ms: Option<u64>,
    /// Software decoding's threads for this camera (`decode::Threads::for_cameras_here`).
    pub decode_threads: crate::decode::Threads,
    /// The camera's `hardware_decode`.
    pub hardware_decode: bool,
}

impl Capture {
    fn cam(&self) -> &CameraStats {
        &self.stats.cameras[self.camera as usize]
    }

    /// The camera's decoder for a new stream (or codec); a failure fails
    /// the camera, with the reason in its state.
    fn decoder_for(&self, codec: crate::decode::Codec, extradata: &[u8]) -> Result<VideoDecoder, IngestError> {
        let d = VideoDecoder::for_camera(codec, extradata, &self.name, self.decode_threads, self.hardware_decode)
            .map_err(|e| {
                let e = IngestError::caused(format!("camera {}", self.name), e);
                self.cam().set_state_reason(CameraState::Failed, &e.to_string());
                e
            })?;
        log::debug!("camera {}: decoding {} with {}", self.name, codec.as_str(), d.name());
        Ok(d)
    }

    /// Runs until the source ends, fails, or stop is set. The ring's producer
    /// is dropped on return, which tells the detector this camera is done.
    pub fn run(mut self, mut source: Box<dyn PacketSource>) -> Result<u64, IngestError> {
        board::pin_current_thread(board::Role::Capture);
        let live = source.is_live();
        let pace = self.realtime && !live;
        self.realtime |= live;
        let mut dec: Option<VideoDecoder> = None;
        let fps = source.fps().unwrap_or(self.fps).max(0.1);
        let frame_ms = 1000.0 / fps as f64;
        let start = self.clocks.monotonic();
        let mut seq = 0u64;
        let mut errors = DecodeErrors::default();
        let mut packets = 0u64;
        let mut last_packet_damaged = false;
        if !live {
            self.cam().set_state(CameraState::Streaming);
        }
        // A picture that cannot go into the pool (too large) ends the camera.
        let mut refused: Option<IngestError> = None;
        // Stopped on request rather than at the stream's end: the parser may
        // hold the start of a picture the stop cut off, which says nothing
        // about the file.
        let mut stopped = false;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                stopped = true;
                break;
            }
            let pkt = match source.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    self.cam().set_state_reason(CameraState::Failed, &e.to_string());
                    return Err(IngestError::caused(format!("camera {}", self.name), e));
                }
            };
            // A new connection (or a codec change) starts a new decoder:
            // reference pictures of the old stream mean nothing to it.
            if pkt.fresh || dec.as_ref().is_none_or(|d| d.codec() != pkt.codec) {
                dec = Some(self.decoder_for(pkt.codec, pkt.extradata)?);
            }
            let dec = dec.as_mut().expect("set above");
            packets += 1;
            let t0 = self.clocks.monotonic();
            let before = errors.total;
            let mut on_picture = |pic: &Picture<'_>, corrupt: bool| {
                if corrupt {
                    errors.count(&self, 1, "a picture was concealed (damaged input)");
                }
                self.stats.stages.decode.record_us((self.clocks.monotonic() - t0).as_micros() as u64);
                if pace {
                    let due = start + Duration::from_secs_f64(seq as f64 * frame_ms / 1000.0);
                    let now = self.clocks.monotonic();
                    if due > now {
                        self.clocks.sleep(due - now);
                    }
                }
                let pts_ms = pic.pts_ms.unwrap_or((seq as f64 * frame_ms) as u64);
                if let Err(e) = emit(pic, seq, pts_ms, &mut self) {
                    refused = Some(e);
                    return ControlFlow::Break(());
                }
                seq += 1;
                errors.clean_picture(&self);
                ControlFlow::Continue(())
            };
            let r = dec.decode(pkt.data, pkt.pts_ms, pkt.whole_unit, &mut on_picture);
            if let Err(e) = r {
                let n = 1 + dec.take_extra_errors();
                errors.count(&self, n, &e.to_string());
            }
            if live {
                errors.watch_starvation(self.cam(), &self.name, seq, t0);
            }
            last_packet_damaged = errors.total > before;
            if let Some(e) = refused {
                return Err(e);
            }
        }
        let Some(mut dec) = dec else {
            self.cam().set_state(CameraState::Ended);
            return Ok(seq);
        };
        let mut end_damaged = last_packet_damaged;
        let mut on_picture = |pic: &Picture<'_>, corrupt: bool| {
            end_damaged |= corrupt;
            let pts_ms = pic.pts_ms.unwrap_or((seq as f64 * frame_ms) as u64);
            if let Err(e) = emit(pic, seq, pts_ms, &mut self) {
                refused = Some(e);
                return ControlFlow::Break(());
            }
            seq += 1;
            ControlFlow::Continue(())
        };
        match dec.finish(&mut on_picture) {
            Err(e) if !stopped => {
                errors.count(&self, 1, &e.to_string());
                end_damaged = true;
            }
            _ => {}
        }
        if let Some(e) = refused {
            return Err(e);
        }
        let truncated = source.truncated().filter(|_| !stopped);
        self.conclude(Ending {
            seq,
            packets,
            errors: errors.total,
            codec: dec.codec(),
            truncated,
            end_damaged,
            stopped,
            live,
        })
    }

    /// How a stream that ended went: cut short (partial), mostly
    /// undecodable (an error), or simply ended; the frames it gave.
    fn conclude(&self, end: Ending) -> Result<u64, IngestError> {
        let Ending { seq, packets, errors, codec, truncated, end_damaged, stopped, live } = end;
        // A file whose last picture does not decode whole was most likely
        // cut short (a copy or recording interrupted).
        let cut = truncated.or_else(|| {
            (!live && !stopped && end_damaged)
                .then(|| "the file ends inside a picture that does not decode (truncated?)".to_string())
        });
        if let Some(t) = cut {
            log::warn!("camera {}: {t}; the {seq} intact frames were decoded", self.name);
            self.cam().set_state_reason(CameraState::Ended, &format!("partial: {t}"));
            self.cam().partial.store(true, Ordering::Relaxed);
        }
        // A file that is mostly undecodable is an error, not a short stream.
        if !live && errors > 0 && errors * 2 > packets.max(1) {
            let msg = format!(
                "camera {}: {errors} of {packets} packets failed to decode ({seq} pictures made); is this a damaged or unsupported {} stream?",
                self.name,
                codec.as_str()
            );
            self.cam().set_state_reason(CameraState::Failed, &msg);
            return Err(IngestError::new(msg));
        }
        if self.cam().state() != CameraState::Failed && !self.cam().partial.load(Ordering::Relaxed) {
            self.cam().set_state(CameraState::Ended);
        }
        Ok(seq)
    }
}

/// How a stream ended, for [`Capture::conclude`].
struct Ending {
    /// Pictures made.
    seq: u64,
    packets: u64,
    /// Packets (and concealed pictures) that failed to decode.
    errors: u64,
    codec: crate::decode::Codec,
    /// Why the source says it was cut short, if it does.
    truncated: Option<String>,
    /// The last picture did not decode whole.
    end_damaged: bool,
    stopped: bool,
    live: bool,
}

/// A camera's decode errors: counted, logged at WARN at most every
/// [`DecodeErrors::LOG_EVERY`] (with the count since the last line), and the
/// camera `degraded` until [`DecodeErrors::CLEAN_TO_RECOVER`] clean pictures in a row.
/// A live camera that sends packets but gives no picture for
/// [`DecodeErrors::STARVED_AFTER`] is `degraded` with a WARN saying so.
#[derive(Default)]
struct DecodeErrors {
    total: u64,
    since_log: u64,
    last_log: Option<Duration>,
    clean_run: u32,
    degraded: bool,
    /// Pictures made by the last starvation check, and when that number
    /// last moved (or packets started arriving).
    seen_pictures: u64,
    last_progress: Option<Duration>,
    packets_without_picture: u64,
    starved: bool,
}

impl DecodeErrors {
    const LOG_EVERY: Duration = Duration::from_secs(10);
    const CLEAN_TO_RECOVER: u32 = 50;
    const STARVED_AFTER: Duration = Duration::from_secs(5);

    /// After each packet of a live camera: `pictures` made so far, `now`.
    fn watch_starvation(&mut self, cs: &CameraStats, name: &str, pictures: u64, now: Duration) {
        if pictures != self.seen_pictures || self.last_progress.is_none() {
            self.seen_pictures = pictures;
            self.last_progress = Some(now);
            self.packets_without_picture = 0;
            self.starved = false;
            return;
        }
        self.packets_without_picture += 1;
        let since = now.saturating_sub(self.last_progress.unwrap_or(now));
        if self.starved || since < Self::STARVED_AFTER {
            return;
        }
        self.starved = true;
        let why = format!(
            "receiving video but no picture decoded for {:.0} s ({} packets, {} decode errors, {} RTP packets lost so far): waiting for a decodable key frame",
            since.as_secs_f64(),
            self.packets_without_picture,
            self.total,
            crate::metrics::get(&cs.packets_lost)
        );
        log::warn!("camera {name}: {why}");
        self.degraded = true;
        self.clean_run = 0;
        if matches!(cs.state(), CameraState::Streaming | CameraState::Degraded) {
            cs.set_state_reason(CameraState::Degraded, &why);
        }
    }

    fn count(&mut self, c: &Capture, n: u64, what: &str) {
        let cs = c.cam();
        cs.decode_errors.fetch_add(n, Ordering::Relaxed);
        self.total += n;
        self.since_log += n;
        self.clean_run = 0;
        let now = c.clocks.monotonic();
        if self.last_log.is_none_or(|t| now.saturating_sub(t) >= Self::LOG_EVERY) {
            log::warn!(
                "camera {}: {} decode error(s) (latest: {what}); skipping to the next decodable picture",
                c.name,
                self.since_log
            );
            self.since_log = 0;
            self.last_log = Some(now);
        }
        if !self.degraded && matches!(cs.state(), CameraState::Streaming) {
            self.degraded = true;
            cs.set_state_reason(CameraState::Degraded, &format!("decode errors ({what})"));
        }
    }

    fn clean_picture(&mut self, c: &Capture) {
        if !self.degraded {
            return;
        }
        self.clean_run += 1;
        if self.clean_run >= Self::CLEAN_TO_RECOVER {
            self.degraded = false;
            let cs = c.cam();
            if cs.state() == CameraState::Degraded {
                cs.set_state_reason(CameraState::Streaming, "");
                log::info!("camera {}: decoding cleanly again", c.name);
            }
        }
    }
}

fn emit(pic: &Picture<'_>, seq: u64, pts_ms: u64, c: &mut Capture) -> Result<(), IngestError> {
    inc(&c.cam().decoded);
    if pic.width > board::MAX_FRAME_WIDTH
        || pic.height > board::MAX_FRAME_HEIGHT
        || i420_len(pic.width, pic.height) > c.pool.slot_bytes()
    {
        let msg = format!(
            "camera {}: frame {}x{} is more than {}; refusing the stream",
            c.name,
            pic.width,
            pic.height,
            board::frame_limit_text()
        );
        c.cam().set_state_reason(CameraState::Failed, &msg);
        return Err(IngestError::new(msg));
    }
    // A file waits for a slot (frames in flight free them); a wait that
    // lasts is reported, never silent.
    let mut watch = StallWatch::new("capture", Some(c.camera), "a free frame-pool slot");
    let mut slot = loop {
        match c.pool.acquire() {
            Some(s) => break s,
            None if c.realtime => {
                inc(&c.cam().dropped_pool_empty);
                return Ok(());
            }
            None => {
                if c.stop.load(Ordering::Relaxed) {
                    watch.done(&c.stats);
                    return Ok(());
                }
                watch.waiting(&c.stats);
                let mut b = Backoff::default();
                for _ in 0..20 {
                    b.snooze();
                }
            }
        }
    };
    watch.done(&c.stats);
    pic.copy_to(slot.buffer_mut());
    *slot.meta_mut() = crate::pool::FrameMeta {
        camera: c.camera,
        seq,
        width: pic.width,
        height: pic.height,
        pts_ms,
        captured_unix_ms: match c.start_unix_ms {
            Some(start) => start + pts_ms,
            None => c.clocks.unix_ms(),
        },
        captured_mono_ns: c.clocks.monotonic().as_nanos() as u64,
    };
    let frame = slot.freeze();
    if c.realtime {
        if !c.out.push_or_drop(frame) {
            inc(&c.cam().dropped_ring_full);
        }
    } else {
        let mut watch = StallWatch::new("capture", Some(c.camera), "room in its ring to the detector");
        let stats = &c.stats;
        let _ = c.out.push_wait_with(frame, &c.stop, || watch.waiting(stats));
        watch.done(&c.stats);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets keep coming and nothing decodes: after 5 s the camera is
    /// degraded with the reason in words, once per episode; a picture
    /// ends the episode.
    #[test]
    fn a_camera_streaming_without_pictures_is_degraded_with_its_reason() {
        let cs = CameraStats::default();
        cs.set_state(CameraState::Streaming);
        cs.packets_lost.store(12, Ordering::Relaxed);
        let mut e = DecodeErrors::default();
        let ms = Duration::from_millis;
        e.watch_starvation(&cs, "gate", 0, ms(0));
        for t in (40..4960).step_by(40) {
            e.watch_starvation(&cs, "gate", 0, ms(t));
        }
        assert_eq!(cs.state(), CameraState::Streaming, "not yet: under 5 s");
        e.watch_starvation(&cs, "gate", 0, ms(5000));
        assert_eq!(cs.state(), CameraState::Degraded);
        let why = cs.reason();
        assert!(why.contains("no picture decoded for 5 s") && why.contains("12 RTP packets lost"), "{why}");
        assert!(e.starved);
        e.watch_starvation(&cs, "gate", 1, ms(5040));
        assert!(!e.starved, "a picture ends the episode");
        assert!(e.degraded, "the camera recovers after clean pictures, as after decode errors");
    }
}
