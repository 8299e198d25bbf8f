//! RTSP cameras through `retina` (Scott Lamb's client): DESCRIBE, SETUP of
//! the first H.264, H.265 or MJPEG video stream over TCP-interleaved or UDP,
//! PLAY. Basic and digest authentication come from retina; credentials
//! travel apart from the URL, so no message built from the URL can carry them.
//!
//! H.264 and H.265 are taken as raw RTP packets and rebuilt into access
//! units by [`super::rtp`], which keeps what survives packet loss (retina's
//! depacketizer drops any unit that lost a packet, so over lossy UDP with a
//! long GOP nothing would decode until a key frame arrived whole). The
//! parameter sets of the SDP go to the decoder before the first unit, so a
//! camera joined mid-GOP, or one that repeats them only at key frames,
//! decodes from its next key frame on. MJPEG goes through retina's own
//! depacketizer (RFC 2435: whole JPEG frames). Lost packets are counted per
//! camera.
//!
//! retina is async: each camera's capture thread owns a current-thread
//! tokio runtime and blocks on it, so there is no extra thread per camera.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, PacketItem, PlayOptions, Playing, Session, SessionOptions, SetupOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParametersCodec};

use super::live::{LiveStream, StreamError};
use super::rtp::{annexb_parameter_sets, Depacketizer, RtpPacket};
use super::IngestError;
use crate::config::{RtspTransport, Secret};
use crate::decode::Codec;

/// How long DESCRIBE/SETUP/PLAY may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RtspOpener {
    /// Without credentials (config::SourceKind::Rtsp strips them).
    url: url::Url,
    username: Option<String>,
    password: Option<Secret>,
    transport: RtspTransport,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl RtspOpener {
    pub fn new(
        url: &str,
        username: Option<String>,
        password: Option<Secret>,
        transport: RtspTransport,
    ) -> Result<Self, IngestError> {
        let url = url::Url::parse(url).map_err(|e| IngestError::caused("bad RTSP URL", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| IngestError::caused("cannot start the RTSP runtime", e))?;
        Ok(RtspOpener { url, username, password, transport, runtime: Arc::new(runtime) })
    }
}

/// retina's errors span lines (message, then connection context); logs and
/// `/api/stats` want one. 401/403/404 need a person, not a retry.
fn classify(what: &str, e: retina::Error) -> StreamError {
    let text = e.to_string().split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    match e.status_code() {
        Some(401) => {
            StreamError::permanent(format!("{what}: 401 Unauthorized (check the camera's username/password): {text}"))
        }
        Some(403) => StreamError::permanent(format!("{what}: 403 Forbidden: {text}")),
        Some(404) => StreamError::permanent(format!("{what}: 404 Not Found (check the URL path): {text}")),
        _ => StreamError::transient(format!("{what}: {text}")),
    }
}

/// The video codecs faceflow takes from RTSP, by SDP encoding name.
fn codec_of(media: &str, encoding: &str) -> Option<Codec> {
    match (media, encoding) {
        ("video", "h264") => Some(Codec::H264),
        ("video", "h265") => Some(Codec::H265),
        ("video" | "image", "jpeg") => Some(Codec::Mjpeg),
        _ => None,
    }
}

/// The SDP's parameter sets as Annex B (empty when it states none).
fn sdp_parameter_sets(params: Option<ParametersRef<'_>>) -> Vec<u8> {
    match params {
        Some(ParametersRef::Video(v)) => match v.codec_params() {
            VideoParametersCodec::H264 { sps, pps } => annexb_parameter_sets(&[sps, pps]),
            VideoParametersCodec::H265 { vps, sps, pps } => annexb_parameter_sets(&[vps, sps, pps]),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Packets, or whole frames (MJPEG), from a playing session.
enum Flow {
    Packets { session: std::pin::Pin<Box<Session<Playing>>>, depacketizer: Box<Depacketizer> },
    Frames(std::pin::Pin<Box<Demuxed>>),
}

impl RtspOpener {
    async fn connect(
        url: url::Url,
        creds: Option<Credentials>,
        transport: Transport,
    ) -> Result<(Flow, Codec, Vec<u8>), StreamError> {
        let opts = SessionOptions::default().creds(creds).user_agent(format!("faceflow/{}", env!("CARGO_PKG_VERSION")));
        let mut session = Session::describe(url, opts).await.map_err(|e| classify("DESCRIBE", e))?;
        let found: Vec<String> =
            session.streams().iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
        let (index, codec) = session
            .streams()
            .iter()
            .enumerate()
            .find_map(|(i, s)| Some((i, codec_of(s.media(), s.encoding_name())?)))
            .ok_or_else(|| {
                StreamError::permanent(format!(
                    "no H.264, H.265 or MJPEG video stream offered (found: {})",
                    if found.is_empty() { "nothing".to_string() } else { found.join(", ") }
                ))
            })?;
        let parameter_sets = sdp_parameter_sets(session.streams()[index].parameters());
        session
            .setup(index, SetupOptions::default().transport(transport).frame_format(FrameFormat::SIMPLE))
            .await
            .map_err(|e| classify("SETUP", e))?;
        let playing = session.play(PlayOptions::default()).await.map_err(|e| classify("PLAY", e))?;
        let flow = match Depacketizer::new(codec) {
            Some(d) => Flow::Packets { session: Box::pin(playing), depacketizer: Box::new(d) },
            None => Flow::Frames(Box::pin(playing.demuxed().map_err(|e| classify("PLAY", e))?)),
        };
        Ok((flow, codec, parameter_sets))
    }
}

impl super::live::StreamOpener for RtspOpener {
    fn open(&mut self) -> Result<Box<dyn LiveStream>, StreamError> {
        let creds = self.username.as_ref().map(|u| Credentials {
            username: u.clone(),
            password: self.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default(),
        });
        let transport = match self.transport {
            RtspTransport::Tcp => Transport::Tcp(Default::default()),
            RtspTransport::Udp => Transport::Udp(Default::default()),
        };
        let connect = Self::connect(self.url.clone(), creds, transport);
        let (flow, codec, parameter_sets) = self.runtime.block_on(async {
            tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| StreamError::transient(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        })?;
        Ok(Box::new(RtspStream { flow: Some(flow), codec, parameter_sets, lost: 0, runtime: self.runtime.clone() }))
    }
}

struct RtspStream {
    flow: Option<Flow>,
    codec: Codec,
    parameter_sets: Vec<u8>,
    /// RTP packets lost since the last `take_lost_packets`.
    lost: u64,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Drop for RtspStream {
    fn drop(&mut self) {
        // retina sends TEARDOWN from a task it spawns on drop: it needs the
        // runtime's context (it runs during this camera's next block_on).
        let _guard = self.runtime.enter();
        self.flow.take();
    }
}

impl LiveStream for RtspStream {
    fn codec(&self) -> Codec {
        self.codec
    }

    fn parameter_sets(&self) -> &[u8] {
        &self.parameter_sets
    }

    fn take_lost_packets(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    fn next_into(&mut self, wait: Duration, buf: &mut Vec<u8>) -> Result<Option<Option<u64>>, StreamError> {
        let flow = self.flow.as_mut().expect("the flow lives until drop");
        let lost = &mut self.lost;
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + wait;
            match flow {
                Flow::Packets { session, depacketizer } => loop {
                    if let Some(unit) = depacketizer.pop(buf) {
                        return Ok(Some(Some(unit.pts_ms)));
                    }
                    let item = match tokio::time::timeout_at(deadline, session.next()).await {
                        Err(_) => return Ok(None),
                        Ok(None) => return Err(StreamError::transient("the server ended the stream")),
                        Ok(Some(Err(e))) => return Err(classify("stream", e)),
                        Ok(Some(Ok(item))) => item,
                    };
                    if let PacketItem::Rtp(p) = item {
                        *lost += u64::from(p.loss());
                        depacketizer.push(&RtpPacket {
                            timestamp: p.timestamp().timestamp(),
                            pts_ms: (p.timestamp().elapsed_secs() * 1000.0).max(0.0) as u64,
                            mark: p.mark(),
                            loss: p.loss(),
                            payload: p.payload(),
                        });
                    }
                },
                Flow::Frames(demuxed) => loop {
                    let item = match tokio::time::timeout_at(deadline, demuxed.next()).await {
                        Err(_) => return Ok(None),
                        Ok(None) => return Err(StreamError::transient("the server ended the stream")),
                        Ok(Some(Err(e))) => return Err(classify("stream", e)),
                        Ok(Some(Ok(item))) => item,
                    };
                    if let CodecItem::VideoFrame(f) = item {
                        *lost += u64::from(f.loss());
                        buf.clear();
                        buf.extend_from_slice(f.data());
                        let pts_ms = (f.timestamp().elapsed_secs() * 1000.0).max(0.0) as u64;
                        return Ok(Some(Some(pts_ms)));
                    }
                },
            }
        })
    }
}
