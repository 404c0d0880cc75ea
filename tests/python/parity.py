"""Writes the reference side of the parity test: a torchvision ResNet-18 with fixed random weights
(batch-norm statistics randomised too, so evaluation mode is not an identity), an input batch, and
torchvision's logits for it.

    python parity.py OUT_DIR NUM_CLASSES

OUT_DIR/weights.safetensors  the state dict, torchvision's key names
OUT_DIR/io.safetensors       {"input": [4, 3, 32, 32], "logits": [4, NUM_CLASSES]}
"""
import sys

from reference_model import reference_model
from safetensors.torch import save_file


def main(out_dir: str, num_classes: int) -> None:
    model, images, logits = reference_model(num_classes, seed=1234)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, f"{out_dir}/weights.safetensors")
    save_file({"input": images, "logits": logits}, f"{out_dir}/io.safetensors")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
