//! USB-camera frame formats on recorded frames (this machine has no
//! /dev/video*): frame 100 of the demo as V4L2 YUYV and as 4:2:2 MJPEG (made
//! by ffmpeg in scripts/setup.sh) must convert to the same I420 picture the
//! H.264 decoder gives for that frame, and the detector must find the same
//! faces in it.

mod common;

use faceflow::decode::{Codec, VideoDecoder};

fn h264_frame(n: usize) -> (Vec<u8>, u32, u32) {
    let (mut seen, mut out) = (0, None);
    faceflow::ingest::decode_file(std::path::Path::new("models/demo/demo.h264"), n + 1, |pic| {
        if seen == n {
            let mut buf = vec![0u8; faceflow::pool::i420_len(pic.width, pic.height)];
            pic.copy_to(&mut buf);
            out = Some((buf, pic.width, pic.height));
        }
        seen += 1;
    })
    .unwrap();
    out.unwrap_or_else(|| panic!("demo has no frame {n}"))
}

fn converted(codec: Codec, file: &str) -> (Vec<u8>, u32, u32) {
    let data = std::fs::read(format!("models/demo/usb/{file}")).expect("run scripts/setup.sh");
    let mut dec = VideoDecoder::new(codec).unwrap();
    let mut out = None;
    dec.decode(&data, None, true, &mut |pic, _| {
        let mut buf = vec![0u8; faceflow::pool::i420_len(pic.width, pic.height)];
        pic.copy_to(&mut buf);
        out = Some((buf, pic.width, pic.height));
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    out.expect("one picture per frame")
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as i32 - *y as i32).unsigned_abs() as u64).sum::<u64>() as f64 / a.len() as f64
}

#[test]
fn yuyv_and_mjpeg_frames_convert_to_the_decoded_picture() {
    common::require_assets();
    let (reference, w, h) = h264_frame(100);
    let luma = (w * h) as usize;
    for (codec, file, max_luma, max_chroma) in
        [(Codec::Yuyv { width: w, height: h }, "frame100.yuyv", 0.5, 2.0), (Codec::Mjpeg, "frame100.mjpg", 3.0, 3.0)]
    {
        let (got, gw, gh) = converted(codec, file);
        assert_eq!((gw, gh), (w, h), "{file}");
        let dy = mean_abs_diff(&got[..luma], &reference[..luma]);
        let dc = mean_abs_diff(&got[luma..], &reference[luma..]);
        assert!(dy <= max_luma && dc <= max_chroma, "{file}: mean |diff| luma {dy:.2}, chroma {dc:.2}");
    }
}

#[test]
fn the_detector_finds_the_same_faces_in_a_usb_frame() {
    common::require_assets();
    use faceflow::detect::centerface::CenterFace;
    use faceflow::detect::model::DetectorParams;
    use faceflow::detect::{Detections, Detector};
    use faceflow::pool::I420;
    let params = DetectorParams {
        input_width: faceflow::board::DETECTOR_WIDTH,
        input_height: faceflow::board::DETECTOR_HEIGHT,
        max_batch: 1,
        min_score: 0.5,
        nms_iou: 0.3,
        pad_batches: false,
        overlap: false,
        pinned_buffers: false,
        cuda_conv_search: faceflow::config::ConvSearch::Board,
        warm_frame: None,
    };
    let mut det =
        CenterFace::load(std::path::Path::new(""), std::path::Path::new("models/centerface.onnx"), params).unwrap();
    let mut faces = |buf: &[u8], w, h| {
        let mut out = [Detections::new()];
        det.detect_batch(&[I420::new(buf, w, h)], &mut out).unwrap();
        out[0].clone()
    };
    let (reference, w, h) = h264_frame(100);
    let want = faces(&reference, w, h);
    assert!(!want.is_empty(), "frame 100 has a face");
    let (mjpeg, _, _) = converted(Codec::Mjpeg, "frame100.mjpg");
    let got = faces(&mjpeg, w, h);
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(want.iter()) {
        assert!(a.bbox.iou(&b.bbox) > 0.9, "{a:?} vs {b:?}");
    }
}
