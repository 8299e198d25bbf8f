//! `faceflow bench --decoders`: the bare video decoder, software or the
//! board's hardware decoder, on one or many streams at once, timed from
//! the moment every stream's decoder is open.

use std::time::Instant;

use faceflow::monitor::process;

use super::{demo_path, BenchError};
use crate::cli::truth::DEMO_DIR;

/// The bare decoder on one file: frame size, frames per second and CPU
/// milliseconds per frame (the board's threading; one stream).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecoderFigure {
    pub file: String,
    pub width: u32,
    pub height: u32,
    /// Streams decoded at once (one thread each), and frames in all.
    pub streams: usize,
    pub frames: usize,
    /// Frames per second, all streams together.
    pub fps: f64,
    pub cpu_ms_per_frame: f64,
    /// Which decoder: "software" or the board's hardware decoder's name
    /// (when asked for and every stream kept it to the end).
    pub decoder: String,
}

/// How `bench --decoders` decodes: the board's hardware decoder or
/// software, and how many streams at once.
#[derive(Clone, Copy, Debug)]
pub struct DecoderRun {
    pub hardware: bool,
    pub streams: usize,
}

pub fn bare_decoder(path: &std::path::Path) -> Result<DecoderFigure, BenchError> {
    bare_decoders(path, DecoderRun { hardware: false, streams: 1 })
}

/// `how.streams` threads each decoding all of `path` at once.
/// Every stream's decoder is opened before the clock starts (a cuvid
/// decoder takes ~250 ms to open, and the driver opens them one after
/// another: with short clips that was most of a 32-stream run): the
/// streams wait for each other at a barrier, and the time and CPU from
/// there to the last frame are what is measured.
pub fn bare_decoders(path: &std::path::Path, how: DecoderRun) -> Result<DecoderFigure, BenchError> {
    type Run = Result<(usize, Option<&'static str>, (u32, u32)), BenchError>;
    let all_open = std::sync::Barrier::new(how.streams);
    let start = std::sync::OnceLock::<(Instant, f64)>::new();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..how.streams)
            .map(|_| {
                let (all_open, start) = (&all_open, &start);
                s.spawn(move || {
                    let mut size = (0, 0);
                    // Every stream reads the same file: one that fails
                    // before its decoder opens fails so for all of them,
                    // and none is left waiting at the barrier.
                    let opened = || {
                        if all_open.wait().is_leader() {
                            let _ = start.set((Instant::now(), process::sample().cpu_seconds));
                        }
                    };
                    faceflow::ingest::decode_file_with(path, usize::MAX, how.hardware, opened, |p| {
                        size = (p.width, p.height)
                    })
                    .map(|(n, hw)| (n, hw, size))
                    .map_err(BenchError::from)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("bench: a decoder thread panicked".into())))
            .collect()
    });
    let (t0, cpu0) = *start.get().ok_or_else(|| format!("bench: no decoder opened for {}", path.display()))?;
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), process::sample().cpu_seconds - cpu0);
    let (mut frames, mut size) = (0, (0, 0));
    let mut hardware: Option<Option<&'static str>> = None;
    for r in runs {
        let (n, hw, wh) = r?;
        frames += n;
        size = wh;
        // Every stream's decoder, or none: a stream that fell back counts as software.
        hardware = Some(match hardware {
            None => hw,
            Some(h) => h.and(hw),
        });
    }
    Ok(DecoderFigure {
        file: path.display().to_string(),
        width: size.0,
        height: size.1,
        streams: how.streams,
        frames,
        fps: frames as f64 / wall,
        cpu_ms_per_frame: cpu * 1e3 / frames.max(1) as f64,
        decoder: match (how.hardware, hardware.flatten()) {
            (_, Some(name)) => name.to_string(),
            (true, None) => "software (no hardware decoder, or it fell back: see the log)".into(),
            (false, None) => "software".into(),
        },
    })
}

/// The bare decoder on the demo (640x480) and its 1080p encode, side by
/// side: frames per second, CPU per frame, and the 1080p/640x480 cost ratio
/// next to the pixel ratio (6.75x), which does not depend on the machine.
/// `files`, when given, are measured instead (e.g. encodes without
/// B-frames, to compare with OpenH264).
pub fn decoders(files: &[std::path::PathBuf], how: DecoderRun) -> Result<Vec<DecoderFigure>, BenchError> {
    if !files.is_empty() {
        return files.iter().map(|f| bare_decoders(f, how)).collect();
    }
    let enc = std::path::Path::new(DEMO_DIR).join("enc");
    let mut out = vec![bare_decoders(&demo_path(), how)?];
    for f in ["1080p.h264", "x265-default.h265"] {
        let p = enc.join(f);
        if p.exists() {
            out.push(bare_decoders(&p, how)?);
        }
    }
    Ok(out)
}

pub fn print(rows: &[DecoderFigure]) {
    println!("bare decoder ({}), board threading:", decoder_name());
    println!(
        "{:>28} {:>10} {:>7} {:>7} {:>9} {:>12} {:>14}  decoder",
        "file", "size", "streams", "frames", "fps", "cpu ms/frame", "x real time"
    );
    for r in rows {
        println!(
            "{:>28} {:>10} {:>7} {:>7} {:>9.1} {:>12.2} {:>14.1}  {}",
            r.file.rsplit('/').next().unwrap_or(&r.file),
            format!("{}x{}", r.width, r.height),
            r.streams,
            r.frames,
            r.fps,
            r.cpu_ms_per_frame,
            r.fps / 25.0,
            r.decoder
        );
    }
    if let (Some(small), Some(big)) = (rows.first().filter(|r| r.height < 1080), rows.iter().find(|r| r.height == 1080))
    {
        let pixels = (big.width * big.height) as f64 / (small.width * small.height) as f64;
        println!(
            "1080p costs {:.2}x the CPU of 640x480 per frame for {pixels:.2}x the pixels (machine-independent ratio)",
            big.cpu_ms_per_frame / small.cpu_ms_per_frame.max(1e-9)
        );
    }
}

pub fn decoder_name() -> &'static str {
    if cfg!(feature = "libav") {
        "libavcodec"
    } else {
        "OpenH264"
    }
}
