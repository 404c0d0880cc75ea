"""The reference side of the Grad-CAM test: loads a checkpoint downloaded from Transfer Studio into
torchvision's resnet18 (strictly, in evaluation mode), preprocesses each image as its header's metadata
says, and computes Grad-CAM of the top class with hooks on `model.layerN`, one image at a time.

    python gradcam.py MODEL.safetensors OUT.json LAYERS IMAGE.png...

LAYERS is a comma-separated list such as "layer2,layer3"; images must already be at the model's input
size (no resizing here). OUT.json: {"layer2": [{"layer", "class_index", "width", "height", "cam"}, ...], ...}.
"""
import json
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file


def grad_cam(model: torch.nn.Module, layer: str, image: torch.Tensor) -> dict:
    """Selvaraju et al. (2017) at the output of `layer` for the top class of one image [1, 3, H, W]."""
    captured = {}

    def keep_output(_module, _inputs, output):
        captured["activation"] = output
        output.register_hook(lambda gradient: captured.__setitem__("gradient", gradient))

    hook = getattr(model, layer).register_forward_hook(keep_output)
    try:
        logits = model(image)
        top = int(logits.argmax(1))
        model.zero_grad()
        logits[0, top].backward()
    finally:
        hook.remove()
    activation, gradient = captured["activation"][0], captured["gradient"][0]  # [C, h, w] each
    weights = gradient.mean(dim=(1, 2), keepdim=True)  # [C, 1, 1]
    cam = torch.relu((weights * activation).sum(0)).detach()  # [h, w]
    peak = cam.max()
    cam = cam / peak if peak > 0 else torch.zeros_like(cam)
    height, width = cam.shape
    return {"layer": layer, "class_index": top, "width": width, "height": height, "cam": cam.flatten().tolist()}


def main(model_path: str, out_path: str, layers: str, images: list) -> None:
    with safe_open(model_path, framework="pt") as f:
        metadata = json.loads(f.metadata()["transfer_studio"])
    model = torchvision.models.resnet18(num_classes=len(metadata["classes"]))
    model.load_state_dict(load_file(model_path), strict=True)
    model.eval()
    mean = torch.tensor(metadata["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(metadata["std"], dtype=torch.float32).view(1, 3, 1, 1)
    side = metadata["input_size"]
    inputs = []
    for path in images:
        pixels = np.asarray(Image.open(path).convert("RGB"))  # [H, W, 3]
        assert pixels.shape[:2] == (side, side), f"{path} is not {side}x{side}"
        chw = torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0)  # [1, 3, H, W]
        inputs.append((chw.to(torch.float32) / 255.0 - mean) / std)
    answers = {layer: [grad_cam(model, layer, x) for x in inputs] for layer in layers.split(",")}
    with open(out_path, "w") as f:
        json.dump(answers, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
