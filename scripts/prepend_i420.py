"""Prepends faceflow's letterbox to a CenterFace model: I420 frames in.

    prepend_i420.py SRC.onnx DST.onnx --size 640x384 [--check]

The new model's one input `i420` is a batch of raw I420 frames, uint8
[N, H*3/2, W] (the Y plane, then U, then V, as the frame pool holds them;
W and H even). The prepended ops do what `detect::letterbox::Resampler`
does on the CPU, bit for bit: scale = min(dst_w / W, dst_h / H) in f32,
nearest source sample at ((x + 0.5) / scale), chroma at half the index,
BT.601 limited-range integer conversion, zero padding right and bottom,
into the model's N x 3 x dst_h x dst_w input. So an accelerator receives
the small raw frames and does the conversion and the resize itself,
instead of one CPU thread preparing 32 float tensors per batch.

Every index is computed from the input's shape inside the graph: one model
serves any even frame size. The model size is fixed here (--size).

--check runs the prepended part alone through ONNX Runtime on random frames
of several sizes and compares it with a NumPy copy of the CPU letterbox.
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, version_converter

OPSET = 13


def preprocess_nodes(dst_w, dst_h, out_name):
    """Nodes from `i420` [N, H*3/2, W] uint8 to `out_name` [N, 3, dst_h, dst_w] f32."""
    nodes, inits = [], []

    def const(name, value, dtype):
        inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    i64 = np.int64
    f32 = np.float32
    zero, one, two, three = (const(f"pp_c{v}", v, i64) for v in (0, 1, 2, 3))
    ax0 = const("pp_axes0", [0], i64)
    node("Shape", ["i420"], "pp_shape")
    n = node("Gather", ["pp_shape", zero], "pp_n", axis=0)
    rows = node("Gather", ["pp_shape", one], "pp_rows", axis=0)
    w = node("Gather", ["pp_shape", two], "pp_w", axis=0)
    h = node("Div", [node("Mul", [rows, two], "pp_rows2"), three], "pp_h")
    wf = node("Cast", [w], "pp_wf", to=TensorProto.FLOAT)
    hf = node("Cast", [h], "pp_hf", to=TensorProto.FLOAT)
    # scale = min(dst_w / W, dst_h / H), in f32 as the Rust code does it.
    sx = node("Div", [const("pp_dw", float(dst_w), f32), wf], "pp_sx")
    sy = node("Div", [const("pp_dh", float(dst_h), f32), hf], "pp_sy")
    scale = node("Min", [sx, sy], "pp_scale")

    def content(src_f, dst, tag):
        # round(src * scale), at most dst (Rust's f32::round rounds half away
        # from zero: floor(v + 0.5) for v >= 0).
        v = node("Floor", [node("Add", [node("Mul", [src_f, scale], f"pp_{tag}s"), const(f"pp_half{tag}", 0.5, f32)], f"pp_{tag}h")], f"pp_{tag}r")
        vi = node("Cast", [v], f"pp_{tag}i", to=TensorProto.INT64)
        return node("Min", [vi, const(f"pp_dst{tag}", dst, i64)], f"pp_{tag}c")

    cw = content(wf, dst_w, "cw")
    ch = content(hf, dst_h, "ch")

    def indices(count, src, tag):
        # min(trunc((i + 0.5) / scale), src - 1) for i in 0..count
        r = node("Range", [const(f"pp_r0{tag}", 0.0, f32), node("Cast", [count], f"pp_{tag}cf", to=TensorProto.FLOAT), const(f"pp_r1{tag}", 1.0, f32)], f"pp_{tag}range")
        q = node("Div", [node("Add", [r, const(f"pp_rh{tag}", 0.5, f32)], f"pp_{tag}mid"), scale], f"pp_{tag}q")
        qi = node("Cast", [node("Floor", [q], f"pp_{tag}fl")], f"pp_{tag}qi", to=TensorProto.INT64)
        full = node("Min", [qi, node("Sub", [src, one], f"pp_{tag}last")], f"pp_{tag}idx")
        half = node("Div", [full, two], f"pp_{tag}idx2")
        return full, half

    xs, xs2 = indices(cw, w, "x")
    ys, ys2 = indices(ch, h, "y")

    # Planes from the flat frame.
    flat = node("Reshape", ["i420", node("Concat", [node("Unsqueeze", [n, ax0], "pp_nu"), const("pp_m1", [-1], i64)], "pp_flatshape", axis=0)], "pp_flat")
    wh = node("Mul", [w, h], "pp_wh")
    quarter = node("Div", [wh, const("pp_c4", 4, i64)], "pp_q")
    u0, v0 = wh, node("Add", [wh, quarter], "pp_v0")
    v1 = node("Add", [v0, quarter], "pp_v1")
    h2, w2 = node("Div", [h, two], "pp_h2"), node("Div", [w, two], "pp_w2")

    def u(x, tag):
        return node("Unsqueeze", [x, ax0], f"pp_u{tag}")

    def plane(start, end, ph, pw, tag):
        s = node("Slice", [flat, u(start, tag + "s"), u(end, tag + "e"), const(f"pp_ax1{tag}", [1], i64)], f"pp_{tag}flat")
        shape = node("Concat", [u(n, tag + "n"), u(ph, tag + "h"), u(pw, tag + "w")], f"pp_{tag}shape", axis=0)
        return node("Reshape", [s, shape], f"pp_{tag}plane")

    def sample(p, rows_idx, cols_idx, tag):
        g = node("Gather", [node("Gather", [p, rows_idx], f"pp_{tag}rows", axis=1), cols_idx], f"pp_{tag}px", axis=2)
        return node("Cast", [g], f"pp_{tag}f", to=TensorProto.FLOAT)

    yv = sample(plane(zero, wh, h, w, "y"), ys, xs, "Y")
    uv = sample(plane(u0, v0, h2, w2, "u"), ys2, xs2, "U")
    vv = sample(plane(v0, v1, h2, w2, "v"), ys2, xs2, "V")

    # pool::yuv_to_rgb: c = max(y - 16, 0) * 298, d = u - 128, e = v - 128,
    # channel = clamp((c + k_d * d + k_e * e + 128) >> 8, 0, 255). Exact in
    # f32 (every term is an integer below 2^24); >> 8 is floor(/ 256).
    c = node("Mul", [node("Relu", [node("Sub", [yv, const("pp_16", 16.0, f32)], "pp_y16")], "pp_y16r"), const("pp_298", 298.0, f32)], "pp_c")
    d = node("Sub", [uv, const("pp_128u", 128.0, f32)], "pp_d")
    e = node("Sub", [vv, const("pp_128v", 128.0, f32)], "pp_e")

    def channel(kd, ke, tag):
        acc = node("Add", [c, const(f"pp_r{tag}", 128.0, f32)], f"pp_{tag}0")
        if kd:
            acc = node("Add", [acc, node("Mul", [d, const(f"pp_kd{tag}", float(kd), f32)], f"pp_{tag}d")], f"pp_{tag}1")
        if ke:
            acc = node("Add", [acc, node("Mul", [e, const(f"pp_ke{tag}", float(ke), f32)], f"pp_{tag}e")], f"pp_{tag}2")
        v = node("Floor", [node("Div", [acc, const(f"pp_256{tag}", 256.0, f32)], f"pp_{tag}q")], f"pp_{tag}fl")
        v = node("Clip", [v, const(f"pp_lo{tag}", 0.0, f32), const(f"pp_hi{tag}", 255.0, f32)], f"pp_{tag}clip")
        return node("Unsqueeze", [v, const(f"pp_ax{tag}", [1], i64)], f"pp_{tag}ch")

    rgb = node("Concat", [channel(0, 409, "R"), channel(-100, -208, "G"), channel(516, 0, "B")], "pp_rgb", axis=1)
    # Zero padding right and bottom up to the model size.
    pad_h = node("Sub", [const("pp_dsth", dst_h, i64), ch], "pp_padh")
    pad_w = node("Sub", [const("pp_dstw", dst_w, i64), cw], "pp_padw")
    zeros6 = const("pp_z6", [0, 0, 0, 0, 0, 0], i64)
    pads = node("Concat", [zeros6, u(pad_h, "ph"), u(pad_w, "pw")], "pp_pads", axis=0)
    node("Pad", [rgb, pads], out_name)
    return nodes, inits


def prepend(model, dst_w, dst_h):
    if model.opset_import[0].version < OPSET or any(o.domain in ("", "ai.onnx") and o.version < OPSET for o in model.opset_import):
        model = version_converter.convert_version(model, OPSET)
    g = model.graph
    assert len(g.input) == 1, "one model input expected"
    old_input = g.input[0].name
    nodes, inits = preprocess_nodes(dst_w, dst_h, old_input)
    new_input = helper.make_tensor_value_info("i420", TensorProto.UINT8, ["N", "rows", "W"])
    del g.input[:]
    g.input.append(new_input)
    for n in reversed(nodes):
        g.node.insert(0, n)
    g.initializer.extend(inits)
    return model


def preprocess_only(dst_w, dst_h):
    nodes, inits = preprocess_nodes(dst_w, dst_h, "rgb")
    g = helper.make_graph(
        nodes,
        "i420_letterbox",
        [helper.make_tensor_value_info("i420", TensorProto.UINT8, ["N", "rows", "W"])],
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["N", 3, dst_h, dst_w])],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def letterbox_numpy(frame, w, h, dst_w, dst_h):
    """detect::letterbox::Resampler::fill, in NumPy (f32 where Rust uses f32)."""
    y = frame[: w * h].reshape(h, w).astype(np.int32)
    u = frame[w * h : w * h * 5 // 4].reshape(h // 2, w // 2).astype(np.int32)
    v = frame[w * h * 5 // 4 :].reshape(h // 2, w // 2).astype(np.int32)
    scale = min(np.float32(dst_w) / np.float32(w), np.float32(dst_h) / np.float32(h))
    cw = min(int(np.floor(np.float32(w) * scale + np.float32(0.5))), dst_w)
    ch = min(int(np.floor(np.float32(h) * scale + np.float32(0.5))), dst_h)
    xs = np.minimum(((np.arange(cw, dtype=np.float32) + np.float32(0.5)) / scale).astype(np.int64), w - 1)
    ys = np.minimum(((np.arange(ch, dtype=np.float32) + np.float32(0.5)) / scale).astype(np.int64), h - 1)
    yy = y[ys][:, xs]
    uu = u[ys // 2][:, xs // 2] - 128
    vv = v[ys // 2][:, xs // 2] - 128
    c = np.maximum(yy - 16, 0) * 298
    out = np.zeros((3, dst_h, dst_w), np.float32)
    out[0, :ch, :cw] = np.clip((c + 409 * vv + 128) >> 8, 0, 255)
    out[1, :ch, :cw] = np.clip((c - 100 * uu - 208 * vv + 128) >> 8, 0, 255)
    out[2, :ch, :cw] = np.clip((c + 516 * uu + 128) >> 8, 0, 255)
    return out


def check(dst_w, dst_h):
    import onnxruntime as ort

    sess = ort.InferenceSession(preprocess_only(dst_w, dst_h).SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    for w, h in [(1920, 1080), (640, 480), (642, 362), (300, 700), (dst_w, dst_h), (1280, 720)]:
        frames = rng.integers(0, 256, size=(3, h * 3 // 2 * w), dtype=np.uint8)
        got = sess.run(None, {"i420": frames.reshape(3, h * 3 // 2, w)})[0]
        for i in range(3):
            want = letterbox_numpy(frames[i], w, h, dst_w, dst_h)
            if not np.array_equal(got[i], want):
                bad = np.argwhere(got[i] != want)
                sys.exit(f"prepend_i420: {w}x{h}: {len(bad)} values differ from the CPU letterbox, first at {bad[0]}")
    print(f"prepend_i420: letterbox in the graph matches the CPU letterbox bit for bit at {dst_w}x{dst_h}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--size", required=True, help="model input WxH, e.g. 640x384")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    dst_w, dst_h = (int(v) for v in a.size.split("x"))
    if a.check:
        check(dst_w, dst_h)
    model = prepend(onnx.load(a.src), dst_w, dst_h)
    onnx.checker.check_model(model)
    onnx.save(model, a.dst)


if __name__ == "__main__":
    main()
