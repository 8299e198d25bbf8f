//! A camera streaming x264's defaults (a key frame every 250 frames,
//! parameter sets in the SDP and in-band only at key frames) over RTSP/UDP
//! through a link that loses 1% and 5% of the RTP packets (gst-rtsp-server
//! with `identity drop-probability` behind the payloader, on loopback).
//! faceflow and FFmpeg's own RTSP client read the same shared stream over
//! the same seconds, both joining it mid-GOP: faceflow decodes at least 90%
//! of the frames FFmpeg does, counts the lost packets, and the same source
//! over TCP loses nothing.

mod common;
#[path = "support/rtsp.rs"]
mod rtsp;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faceflow::clock::RealClocks;
use faceflow::config::RtspTransport;
use faceflow::decode::VideoDecoder;
use faceflow::ingest::live::{LiveSource, ReconnectPolicy};
use faceflow::ingest::rtsp::RtspOpener;
use faceflow::ingest::PacketSource;
use faceflow::metrics::{get, Stats};
use rtsp::RtspServer;

const POLICY: ReconnectPolicy =
    ReconnectPolicy { initial: Duration::from_millis(200), max: Duration::from_secs(1), stall: Duration::from_secs(5) };

/// Seconds each client reads.
const READ_S: u64 = 12;

/// The tests here stream in real time and decode 720p: one at a time, so
/// a 2-core machine measures the code, not its own load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A camera at `url` as faceflow reads it, stopped after `secs` at the
/// latest (a live source never ends by itself: a stream that never flows
/// must fail the test, not hang it).
fn live_camera(url: &str, transport: RtspTransport, secs: u64) -> (LiveSource, Arc<Stats>) {
    let stats = Stats::with_names(vec!["cam".into()]);
    let stop = Arc::new(AtomicBool::new(false));
    let opener = RtspOpener::new(url, None, None, transport).unwrap();
    let src = LiveSource::new(
        "cam".into(),
        0,
        Box::new(opener),
        POLICY,
        Arc::new(RealClocks::default()),
        stats.clone(),
        stop.clone(),
    );
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    (src, stats)
}

/// Pictures faceflow's RTSP client and decoder make from `url` in `secs`,
/// and the RTP packets it counted lost.
fn faceflow_frames(url: &str, transport: RtspTransport, secs: u64) -> (u64, u64, u64) {
    let (mut src, stats) = live_camera(url, transport, secs + 10);
    let mut dec: Option<VideoDecoder> = None;
    let (mut pictures, mut errors) = (0u64, 0u64);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        let Some(p) = src.next_packet().unwrap() else { break };
        if p.fresh || dec.is_none() {
            dec = Some(VideoDecoder::with_extradata(p.codec, p.extradata).unwrap());
        }
        let d = dec.as_mut().unwrap();
        if d.decode(p.data, p.pts_ms, p.whole_unit, &mut |pic, _| {
            assert_eq!((pic.width, pic.height), (1280, 720));
            pictures += 1;
            std::ops::ControlFlow::Continue(())
        })
        .is_err()
        {
            errors += 1 + d.take_extra_errors();
        }
    }
    (pictures, errors, get(&stats.cameras[0].packets_lost))
}

/// FFmpeg's RTSP client on the same URL for `secs`: the frames it decoded.
fn spawn_ffmpeg(url: &str, secs: u64) -> std::process::Child {
    Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-rtsp_transport", "udp", "-i", url])
        .args(["-t", &secs.to_string(), "-f", "null", "-", "-progress", "pipe:1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg runs")
}

fn ffmpeg_frames(mut child: std::process::Child) -> u64 {
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = child.wait();
    out.lines().rev().filter_map(|l| l.strip_prefix("frame=")).find_map(|n| n.trim().parse().ok()).unwrap_or(0)
}

fn lossy_udp_decodes_like_ffmpeg(loss: &str) {
    let _serial = serial();
    common::require_assets();
    let server = RtspServer::start_with(
        rtsp::free_port(),
        &[("/cam", "models/demo/lossy-720p.mp4")],
        &["--loss", loss, "--no-repeat-params"],
    );
    let url = server.url("/cam");
    // A first viewer starts the shared stream at its first key frame; the
    // two measured clients join it a moment later, mid-GOP, as one joins a
    // camera that has been streaming for a while.
    let primer = spawn_ffmpeg(&url, READ_S + 6);
    std::thread::sleep(Duration::from_secs(2));
    let ffmpeg = spawn_ffmpeg(&url, READ_S);
    let (ours, errors, lost) = faceflow_frames(&url, RtspTransport::Udp, READ_S);
    let theirs = ffmpeg_frames(ffmpeg);
    let _ = ffmpeg_frames(primer);
    eprintln!(
        "loss {loss}: faceflow {ours} frames ({errors} decode errors, {lost} RTP packets lost), FFmpeg {theirs} frames in {READ_S} s"
    );
    assert!(theirs >= 100, "FFmpeg's client decoded {theirs} frames: the stream did not flow");
    assert!(ours * 10 >= theirs * 9, "faceflow decoded {ours} frames, FFmpeg {theirs}: under 90%");
    assert!(lost > 0, "a lossy link's lost packets are counted");
}

#[test]
fn one_percent_loss_over_udp() {
    lossy_udp_decodes_like_ffmpeg("0.01");
}

#[test]
fn five_percent_loss_over_udp() {
    lossy_udp_decodes_like_ffmpeg("0.05");
}

#[test]
fn the_same_source_over_tcp_loses_nothing() {
    let _serial = serial();
    common::require_assets();
    let server =
        RtspServer::start_with(rtsp::free_port(), &[("/cam", "models/demo/lossy-720p.mp4")], &["--no-repeat-params"]);
    let (ours, errors, lost) = faceflow_frames(&server.url("/cam"), RtspTransport::Tcp, 6);
    assert_eq!((errors, lost), (0, 0), "TCP: nothing lost, nothing damaged");
    assert!(ours >= 25 * 4, "{ours} frames in 6 s");
}

/// A camera that offers only MJPEG (RFC 2435) works: retina rebuilds the
/// JPEG frames, libjpeg-turbo decodes them.
#[test]
fn an_mjpeg_only_camera_streams_and_decodes() {
    let _serial = serial();
    common::require_assets();
    let server = RtspServer::start(rtsp::free_port(), &[("/mjpeg", "pattern:mjpeg")], None);
    let (mut src, _stats) = live_camera(&server.url("/mjpeg"), RtspTransport::Tcp, 20);
    let mut dec: Option<VideoDecoder> = None;
    let mut pictures = 0;
    while pictures < 50 {
        let Some(p) = src.next_packet().unwrap() else { break };
        assert_eq!(p.codec, faceflow::decode::Codec::Mjpeg);
        let d = dec.get_or_insert_with(|| VideoDecoder::with_extradata(p.codec, p.extradata).unwrap());
        d.decode(p.data, p.pts_ms, p.whole_unit, &mut |pic, _| {
            assert_eq!((pic.width, pic.height), (640, 480));
            pictures += 1;
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    }
    assert_eq!(pictures, 50, "MJPEG frames decode");
}

/// `faceflow run` on the lossy camera (5% of the packets lost, UDP, long
/// GOP): every person of the demo, which plays twice, is found. The live
/// camera numbers frames as they decode (a unit lost whole shifts the
/// count), so a face is matched to the truth within two seconds of its frame.
/// Seen on every run here: the loss hides the fourth person in the second
/// pass (the damaged pictures carry no face where they walk, and the damage
/// lasts to the end of the 250-frame GOP), so the first pass must find
/// them. That once failed: their track was stitched to the second person's,
/// who walks the other way through the same spot and whose track lost ends
/// early; stitching now refuses a track moving the opposite way.
#[test]
fn faceflow_run_finds_every_person_through_five_percent_loss() {
    let _serial = serial();
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    common::require_assets();
    let server = RtspServer::start_with(
        rtsp::free_port(),
        &[("/cam", "models/demo/lossy-720p.mp4")],
        &["--loss", "0.05", "--no-repeat-params"],
    );
    let dir = common::temp_dir("lossy-run");
    let cfg = dir.join("faceflow.toml");
    std::fs::write(
        &cfg,
        format!(
            "[outbox]\ndir = \"{}\"\n[monitor]\nbind = \"\"\n[[cameras]]\nname = \"cam\"\nurl = \"{}\"\ntransport = \"udp\"\n",
            dir.join("out").display(),
            server.url("/cam")
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_faceflow"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .current_dir(common::root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The stream lasts 28 s (the demo twice); the server then ends it.
    std::thread::sleep(Duration::from_secs(30));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let truth = common::truth::load_truth(&common::root().join("models/demo/truth.json")).unwrap();
    let records = common::files_with_suffix(&dir.join("out/cam"), ".json");
    let events: Vec<faceflow::sink::EventRecord> =
        records.iter().map(|r| serde_json::from_slice(&std::fs::read(r).unwrap()).unwrap()).collect();
    let mut found = vec![0usize; truth.persons.len()];
    for e in &events {
        let (sx, sy) = (e.frame_width as f32 / truth.width as f32, e.frame_height as f32 / truth.height as f32);
        let b = faceflow::geom::BBox::new(e.bbox[0] / sx, e.bbox[1] / sy, e.bbox[2] / sx, e.bbox[3] / sy);
        let frame = e.best_frame % truth.frames;
        let best = truth
            .persons
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let iou = p
                    .boxes
                    .iter()
                    .filter(|t| (t[0] as u64).abs_diff(frame) <= 50)
                    .map(|t| faceflow::geom::BBox::new(t[1], t[2], t[3], t[4]).iou(&b))
                    .fold(0.0f32, f32::max);
                (i, iou)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, _)) = best.filter(|b| b.1 > 0.5) {
            found[i] += 1;
        }
    }
    eprintln!("5% loss: {} events, per person {found:?}", events.len());
    assert!(found.iter().all(|&n| n >= 1), "every person found: {found:?} from {} events\n{log}", events.len());
    assert!(events.len() <= 2 * truth.persons.len() + 2, "{} events for two passes of 5 people", events.len());
    let _ = std::fs::remove_dir_all(&dir);
}
