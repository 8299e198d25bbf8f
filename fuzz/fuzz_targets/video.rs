//! Any bytes as a camera's H.264 or H.265 stream, through the path a frame
//! takes up to the detector's input: Annex B splitting, decoding, and the
//! letterbox into the model tensor. Damaged video must cost frames, never
//! the process. (The ONNX inference itself is left out: at ~30 ms a call it
//! would starve the fuzzer, and its input is a fixed-size float tensor.)
#![no_main]
use faceflow::decode::{Codec, VideoDecoder};
use faceflow::detect::letterbox::Resampler;
use faceflow::ingest::annexb::AnnexBSource;
use faceflow::ingest::PacketSource;
use faceflow::pool::I420;
use libfuzzer_sys::fuzz_target;

const W: u32 = 160;
const H: u32 = 96;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let codec = if first & 1 == 0 { Codec::H264 } else { Codec::H265 };
    let mut src = AnnexBSource::new(rest.to_vec());
    let mut dec = VideoDecoder::new(codec).expect("decoder");
    let mut resampler = Resampler::new(W, H);
    let mut tensor = vec![0f32; 3 * (W * H) as usize];
    let mut frame = Vec::new();
    let mut on_picture = |pic: &faceflow::decode::Picture<'_>, _corrupt: bool| {
        // Bounded like the pool: the capture thread refuses larger frames.
        if pic.width <= 1920 && pic.height <= 1088 {
            frame.resize(faceflow::pool::i420_len(pic.width, pic.height), 0);
            pic.copy_to(&mut frame);
            resampler.fill(&I420::new(&frame, pic.width, pic.height), W, H, &mut tensor);
        }
        std::ops::ControlFlow::Continue(())
    };
    while let Ok(Some(p)) = src.next_packet() {
        let _ = dec.decode(p.data, None, false, &mut on_picture);
    }
    let _ = dec.finish(&mut on_picture);
});
