"""Runs an ONNX file exported by Transfer Studio in ONNX Runtime, preprocessing as its metadata says.

    python onnx_check.py MODEL.onnx OUT.json IMAGE.png...

Reads `classes`, `mean`, `std` and `input_size` from the file's metadata_props, loads each PNG (already
input_size square), scales to [0, 1], normalises, runs the graph's `input` -> `logits` and writes
{"opset": ..., "input": [names/shape], "classes": [...], "probabilities": [[...], ...]} to OUT.json.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime
from PIL import Image


def main():
    model_path, out_path, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    mean = np.array(json.loads(props["mean"]), dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(json.loads(props["std"]), dtype=np.float32).reshape(1, 3, 1, 1)
    side = int(props["input_size"])
    pixels = []
    for path in images:
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        assert image.shape == (side, side, 3), image.shape
        pixels.append(image.transpose(2, 0, 1) / 255.0)
    batch = ((np.stack(pixels) - mean) / std).astype(np.float32)
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": batch})
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    with open(out_path, "w") as f:
        json.dump({
            "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
            "input": [session.get_inputs()[0].name, session.get_inputs()[0].type],
            "output": session.get_outputs()[0].name,
            "classes": json.loads(props["classes"]),
            "probabilities": probabilities.tolist(),
        }, f)


if __name__ == "__main__":
    main()
