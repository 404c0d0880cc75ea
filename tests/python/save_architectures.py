"""Writes real torchvision state dicts of networks that are not ResNet-18, and one that is, for the test
that weights are checked for exactly ResNet-18 (random weights: nothing is downloaded).

    python save_architectures.py OUT_DIR

OUT_DIR/resnet34.pth      torchvision.models.resnet34()
OUT_DIR/resnet50.pth      torchvision.models.resnet50()
OUT_DIR/mobilenet_v2.pth  torchvision.models.mobilenet_v2()
OUT_DIR/partial.pth       a ResNet-18 without layer4
OUT_DIR/resnet18.pth      torchvision.models.resnet18(num_classes=10), with its num_batches_tracked
"""
import sys

import torch
import torchvision


def main(out_dir: str) -> None:
    torch.manual_seed(0)
    for name in ["resnet34", "resnet50", "mobilenet_v2"]:
        torch.save(getattr(torchvision.models, name)().state_dict(), f"{out_dir}/{name}.pth")
    resnet18 = torchvision.models.resnet18(num_classes=10).state_dict()
    torch.save(resnet18, f"{out_dir}/resnet18.pth")
    partial = {k: v for k, v in resnet18.items() if not k.startswith("layer4.")}
    torch.save(partial, f"{out_dir}/partial.pth")


if __name__ == "__main__":
    main(sys.argv[1])
