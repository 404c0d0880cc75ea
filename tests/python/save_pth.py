"""Writes the reference side of the .pth test: a torchvision ResNet-18 with fixed random weights
(batch-norm statistics randomised too, so evaluation mode is not an identity) saved the way torchvision
publishes its weights, an input batch, and torchvision's logits for it.

    python save_pth.py OUT_DIR NUM_CLASSES

OUT_DIR/w.pth             torch.save(model.state_dict()): a zip with data.pkl and data/<key>
OUT_DIR/io.safetensors    {"input": [4, 3, 32, 32], "logits": [4, NUM_CLASSES]}
OUT_DIR/half.pt           the same state dict in float16, a layer-4 weight stored as a strided view
OUT_DIR/half.safetensors  that float16 state dict, contiguous, to compare against
"""
import sys

import torch
from reference_model import reference_model
from safetensors.torch import save_file


def main(out_dir: str, num_classes: int) -> None:
    model, images, logits = reference_model(num_classes, seed=4321)
    torch.save(model.state_dict(), f"{out_dir}/w.pth")
    save_file({"input": images, "logits": logits}, f"{out_dir}/io.safetensors")

    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    # A non-contiguous view with a storage offset: a transposed slice of a bigger storage.
    big = torch.randn(600, 600).half()
    half["fc.weight_view"] = big[10:20, 5:25].t()
    torch.save(half, f"{out_dir}/half.pt")
    save_file({k: v.contiguous() for k, v in half.items()}, f"{out_dir}/half.safetensors")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
