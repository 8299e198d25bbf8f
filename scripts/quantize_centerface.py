#!/usr/bin/env python3
"""Makes the INT8 CenterFace (`detector.precision = "int8"`) from the FP32
one: opset 13 first (`onnx.version_converter`; the quantiser wants >= 11
and per-channel QDQ wants 13), then static quantisation with ONNX Runtime
(`quantize_static`: QDQ format, per-channel QInt8 weights, QUInt8
activations), calibrated on frames of the demo video letterboxed exactly as
faceflow feeds the detector (RGB 0..255, aspect kept, padded with black).

    quantize_centerface.py fp32.onnx video.mp4 out.onnx [--width 416 --height 320 --frames 32]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import version_converter


def frames(video: str, n: int):
    """n RGB frames spread over the video (ffmpeg decodes)."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", video], capture_output=True, text=True, check=True).stdout.strip().split(",")
    w, h = int(probe[0]), int(probe[1])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", video, "-vf", f"select=not(mod(n\\,10))",
                          "-vsync", "0", "-frames:v", str(n), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    arr = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    return arr


def letterbox(img: np.ndarray, W: int, H: int) -> np.ndarray:
    from PIL import Image
    h, w = img.shape[:2]
    s = min(W / w, H / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    out = np.zeros((H, W, 3), np.float32)
    out[:nh, :nw] = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR), np.float32)
    return out.transpose(2, 0, 1)[None]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("fp32")
    ap.add_argument("video")
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=416)
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--frames", type=int, default=32)
    a = ap.parse_args()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    m = onnx.load(a.fp32)
    name = m.graph.input[0].name
    m13 = version_converter.convert_version(m, 13)
    blobs = [letterbox(f, a.width, a.height) for f in frames(a.video, a.frames)]
    if not blobs:
        sys.exit(f"quantize_centerface: no frames from {a.video}")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(blobs)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {name: b}

    with tempfile.TemporaryDirectory() as d:
        p13 = os.path.join(d, "centerface-op13.onnx")
        onnx.save(m13, p13)
        # ONNX Runtime's pre-processing: shape inference and graph
        # optimisation (folds the batch norms into the convolutions), so
        # the quantiser sees the graph ONNX Runtime will run.
        from onnxruntime.quantization.shape_inference import quant_pre_process
        pre = os.path.join(d, "centerface-pre.onnx")
        quant_pre_process(p13, pre, skip_symbolic_shape=True)
        quantize_static(pre, a.out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    print(f"quantize_centerface: {a.fp32} -> {a.out} (INT8 QDQ, per-channel, {len(blobs)} calibration frames "
          f"at {a.width}x{a.height})")


if __name__ == "__main__":
    main()
