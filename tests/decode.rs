//! The decoder on encodes as cameras, phones and recorders make them
//! (scripts/setup.sh makes them with ffmpeg/x264/x265): every frame that
//! ffprobe counts comes out, in order, whatever the profile, B-frames,
//! bit depth, chroma format, scan or size; damaged input is counted, never
//! mistaken for the end of the stream.

mod common;

use std::path::Path;
use std::process::Command;

use faceflow::decode::{Codec, VideoDecoder};
use faceflow::ingest::{self, PacketSource};

/// Frames ffprobe decodes from `path` (`-count_frames`).
fn ffprobe_frames(path: &Path) -> usize {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (apt-get install ffmpeg)");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("ffprobe on {}", path.display()))
}

fn check(name: &str, size: (u32, u32)) {
    common::require_assets();
    let path = common::root().join("models/demo/enc").join(name);
    assert!(path.exists(), "{} is missing: run scripts/setup.sh", path.display());
    let want = ffprobe_frames(&path);
    let mut sizes = std::collections::BTreeSet::new();
    let mut luma_sum = 0u64;
    let got = ingest::decode_file(&path, usize::MAX, |p| {
        sizes.insert((p.width, p.height));
        luma_sum += p.y[(p.height as usize / 2) * p.strides.0 + p.width as usize / 2] as u64;
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got, want, "{name}: faceflow decoded {got} frames, ffprobe counts {want}");
    assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![size], "{name}: picture size");
    // Real pictures, not grey or black: the mid-pixel varies and is lit.
    assert!(luma_sum / got as u64 > 16, "{name}: pictures look empty");
}

#[test]
fn x264_defaults_high_profile_with_b_frames() {
    check("x264-default.h264", (640, 480));
}

#[test]
fn five_b_frames_with_pyramid() {
    check("bf5-pyramid.h264", (640, 480));
}

#[test]
fn main_profile() {
    check("main.h264", (640, 480));
}

#[test]
fn high10_is_converted_to_8_bit() {
    check("high10.h264", (640, 480));
}

#[test]
fn high_422_is_converted_to_420() {
    check("yuv422.h264", (640, 480));
}

#[test]
fn interlaced_coded_pictures() {
    check("interlaced.h264", (640, 480));
}

#[test]
fn size_not_a_multiple_of_16() {
    check("odd-642x362.h264", (642, 362));
}

#[test]
fn full_hd_annexb_and_mp4_with_b_frames() {
    check("1080p.h264", (1920, 1080));
    check("1080p.mp4", (1920, 1080));
}

#[test]
fn x265_defaults_with_b_frames() {
    check("x265-default.h265", (640, 480));
}

#[test]
fn the_demo_itself_has_b_frames_and_decodes_whole() {
    common::require_assets();
    let path = common::root().join("models/demo/demo.h264");
    let want = ffprobe_frames(&path);
    assert_eq!(want, 350);
    assert_eq!(ingest::decode_file(&path, usize::MAX, |_| {}).unwrap(), want);
    assert_eq!(ingest::decode_file(&common::root().join("models/demo/demo.mp4"), usize::MAX, |_| {}).unwrap(), want);
}

/// The decoder a camera gets (`bench --hardware --decoders`): every frame
/// too, and it says which decoder made them. This board names no hardware
/// decoder for the demo here, so that is software (`None`); on x86-cuda the
/// name is NVDEC's (measured by scripts/gpu-bench.sh decoders).
#[test]
fn the_board_decoder_decodes_every_frame_and_names_itself() {
    common::require_assets();
    let path = common::root().join("models/demo/demo.h264");
    let mut opens = 0;
    let (n, hw) = ingest::decode_file_with(&path, usize::MAX, true, || opens += 1, |_| {}).unwrap();
    assert_eq!(n, ffprobe_frames(&path));
    assert_eq!(opens, 1, "one decoder opened, and said so before decoding");
    // Software, or the board's own hardware decoder: never a name it lacks.
    assert!(hw.is_none_or(|h| !h.is_empty() && h == faceflow::board::HW_DECODER_H264), "{hw:?}");
}

/// Garbage in the middle of a stream: counted as errors, and decoding
/// resumes at the next picture it can make (not the end of the stream).
#[test]
fn damaged_packets_are_errors_and_decoding_goes_on() {
    common::require_assets();
    let data = std::fs::read(common::root().join("models/demo/enc/x264-default.h264")).unwrap();
    let mut src = ingest::annexb::AnnexBSource::new(data);
    let mut dec = VideoDecoder::new(Codec::H264).unwrap();
    let (mut pictures, mut errors, mut concealed, mut n) = (0usize, 0u64, 0usize, 0usize);
    let mut on_picture = |_p: &faceflow::decode::Picture<'_>, corrupt: bool| {
        pictures += 1;
        concealed += corrupt as usize;
        std::ops::ControlFlow::Continue(())
    };
    while let Some(p) = src.next_packet().unwrap() {
        n += 1;
        let mut bytes = p.data.to_vec();
        // Packets 200..260: every slice's body overwritten with noise.
        if (200..260).contains(&n) && bytes.len() > 40 {
            for (i, b) in bytes.iter_mut().enumerate().skip(8) {
                *b = (i as u8).wrapping_mul(151).wrapping_add(7);
            }
        }
        if dec.decode(&bytes, None, false, &mut on_picture).is_err() {
            errors += 1 + dec.take_extra_errors();
        }
    }
    dec.finish(&mut on_picture).ok();
    assert!(errors + concealed as u64 > 0, "the noise was noticed");
    assert!(pictures > 300, "decoding went on after the damage: {pictures} pictures");
}
