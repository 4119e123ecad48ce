"""Runs an ONNX file from `trainer export` in onnxruntime on the inputs of a cases file and
prints what it saw, as JSON, for the tests to judge (testkit::onnx).

usage: onnx_check.py MODEL.onnx CASES.json   (CASES: {"inputs": [[784 floats]…], "logits": [[…]…]})
"""
import json
import sys

import numpy as np
import onnxruntime as ort

model, cases = sys.argv[1], sys.argv[2]
with open(cases) as f:
    c = json.load(f)
x = np.array(c["inputs"], dtype=np.float32).reshape(-1, 1, 28, 28)
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
(logits,) = session.run(["logits"], {"image": x})
(single,) = session.run(["logits"], {"image": x[:1]})
expected = np.array(c["logits"], dtype=np.float32)
meta = session.get_modelmeta().custom_metadata_map
print(json.dumps({
    "onnxruntime": ort.__version__,
    "inputs": [(i.name, i.shape) for i in session.get_inputs()],
    "outputs": [(o.name, o.shape) for o in session.get_outputs()],
    "shape": list(logits.shape),
    "single_shape": list(single.shape),
    "max_abs_diff": float(np.abs(logits - expected).max()) if logits.shape == expected.shape else None,
    "single_diff": float(np.abs(single[0] - expected[0]).max()),
    "classes": json.loads(meta.get("classes", "[]")),
    "temperature": float(meta.get("temperature", "nan")),
}))
