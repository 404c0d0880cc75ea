"""Writes the reference side of the parity test: a torchvision ResNet-18 with fixed random weights
(batch-norm statistics randomised too, so evaluation mode is not an identity), an input batch, and
torchvision's logits for it.

    python parity.py OUT_DIR NUM_CLASSES

OUT_DIR/weights.safetensors  the state dict, torchvision's key names
OUT_DIR/io.safetensors       {"input": [4, 3, 32, 32], "logits": [4, NUM_CLASSES]}
"""
import sys

import torch
import torchvision
from safetensors.torch import save_file


def main(out_dir: str, num_classes: int) -> None:
    torch.manual_seed(1234)
    model = torchvision.models.resnet18(num_classes=num_classes)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    model.eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, f"{out_dir}/weights.safetensors")
    save_file({"input": images, "logits": logits}, f"{out_dir}/io.safetensors")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
