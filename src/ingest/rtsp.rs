//! RTSP cameras through `retina` (Scott Lamb's client): DESCRIBE, SETUP of
//! the first H.264 or H.265 video stream over TCP-interleaved or UDP, PLAY,
//! then access units in Annex B with parameter sets before every key frame.
//! Basic and digest authentication come from retina; credentials travel
//! apart from the URL, so no message built from the URL can carry them.
//!
//! retina is async: each camera's capture thread owns a current-thread
//! tokio runtime and blocks on it, so there is no extra thread per camera.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use retina::client::{Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};

use super::live::{LiveStream, StreamError, StreamOpener};
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
    ) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| format!("bad RTSP URL: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the RTSP runtime: {e}"))?;
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

impl StreamOpener for RtspOpener {
    fn open(&mut self) -> Result<Box<dyn LiveStream>, StreamError> {
        let creds = self.username.as_ref().map(|u| Credentials {
            username: u.clone(),
            password: self.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default(),
        });
        let transport = match self.transport {
            RtspTransport::Tcp => Transport::Tcp(Default::default()),
            RtspTransport::Udp => Transport::Udp(Default::default()),
        };
        let url = self.url.clone();
        let connect = async move {
            let opts =
                SessionOptions::default().creds(creds).user_agent(format!("faceflow/{}", env!("CARGO_PKG_VERSION")));
            let mut session = Session::describe(url, opts).await.map_err(|e| classify("DESCRIBE", e))?;
            let found: Vec<String> =
                session.streams().iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
            let (index, codec) = session
                .streams()
                .iter()
                .enumerate()
                .find_map(|(i, s)| match (s.media(), s.encoding_name()) {
                    ("video", "h264") => Some((i, Codec::H264)),
                    ("video", "h265") => Some((i, Codec::H265)),
                    _ => None,
                })
                .ok_or_else(|| {
                    StreamError::permanent(format!(
                        "no H.264 or H.265 video stream offered (found: {})",
                        found.join(", ")
                    ))
                })?;
            session
                .setup(index, SetupOptions::default().transport(transport).frame_format(FrameFormat::SIMPLE))
                .await
                .map_err(|e| classify("SETUP", e))?;
            let playing = session.play(PlayOptions::default()).await.map_err(|e| classify("PLAY", e))?;
            let demuxed = playing.demuxed().map_err(|e| classify("PLAY", e))?;
            Ok::<_, StreamError>((demuxed, codec))
        };
        let (demuxed, codec) = self.runtime.block_on(async {
            tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| StreamError::transient(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        })?;
        Ok(Box::new(RtspStream { session: Some(Box::pin(demuxed)), codec, runtime: self.runtime.clone() }))
    }
}

struct RtspStream {
    session: Option<std::pin::Pin<Box<Demuxed>>>,
    codec: Codec,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Drop for RtspStream {
    fn drop(&mut self) {
        // retina sends TEARDOWN from a task it spawns on drop: it needs the
        // runtime's context (it runs during this camera's next block_on).
        let _guard = self.runtime.enter();
        self.session.take();
    }
}

impl LiveStream for RtspStream {
    fn codec(&self) -> Codec {
        self.codec
    }

    fn next_into(&mut self, wait: Duration, buf: &mut Vec<u8>) -> Result<Option<Option<u64>>, StreamError> {
        let session = self.session.as_mut().expect("session lives until drop");
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let item = match tokio::time::timeout_at(deadline, session.next()).await {
                    Err(_) => return Ok(None),
                    Ok(None) => return Err(StreamError::transient("the server ended the stream")),
                    Ok(Some(Err(e))) => return Err(classify("stream", e)),
                    Ok(Some(Ok(item))) => item,
                };
                if let CodecItem::VideoFrame(f) = item {
                    buf.clear();
                    buf.extend_from_slice(f.data());
                    let pts_ms = (f.timestamp().elapsed_secs() * 1000.0).max(0.0) as u64;
                    return Ok(Some(Some(pts_ms)));
                }
            }
        })
    }
}
