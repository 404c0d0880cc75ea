"""Loads a checkpoint the backend exported into torchvision's resnet18 with strict=True and writes
torchvision's logits for the given input.

    python load_export.py MODEL.safetensors NUM_CLASSES IO.safetensors OUT.safetensors
"""
import sys

import torch
import torchvision
from safetensors.torch import load_file, save_file


def main(model_path: str, num_classes: int, io_path: str, out_path: str) -> None:
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.load_state_dict(load_file(model_path), strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(load_file(io_path)["input"])
    save_file({"logits": logits}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
