"""The PIL + torchvision side of `make bench-data`: decoding image files as torchvision's loaders do, timed on command.

    python bench_data_pytorch.py ROOT

`bench data-scale` (backend/examples/bench/data_scale.rs) starts this script and drives it over
stdin/stdout, one command per line, one JSON answer per line, so that its decoding rounds interleave with
the engine's builds of the decoded cache from the same files.

Commands:
    decode   decodes every image file under ROOT once, in this one process on one thread
             -> {"ips", "images", "seconds"}
    quit     (or end of input) exits

The first answer, before any command, describes the setup: {"torch", "torchvision", "pillow",
"libjpeg_turbo", "threads", "images"}.

Each image goes through what an `ImageFolder` with a 224 px resize does per image: torchvision's
`pil_loader` (open the file, `PIL.Image.open(f).convert("RGB")`), `transforms.Resize((224, 224))` and
`transforms.PILToTensor()`, which gives the `uint8 [3, 224, 224]` tensor the engine's cache holds.
"""
import argparse
import json
import os
import sys
import time

import PIL
import torch
import torchvision
from PIL import Image, features
from torchvision import transforms

SIDE = 224


def pil_loader(path):
    """torchvision.datasets.folder.pil_loader, unchanged."""
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


def image_files(root):
    """Every image file under `root`, sorted."""
    found = []
    for folder, _, names in os.walk(root):
        found.extend(os.path.join(folder, name) for name in names if name.lower().endswith((".jpg", ".jpeg", ".png")))
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    args = parser.parse_args()

    torch.set_num_threads(1)
    files = image_files(args.root)
    transform = transforms.Compose([transforms.Resize((SIDE, SIDE)), transforms.PILToTensor()])
    answer = lambda value: print(json.dumps(value), flush=True)
    answer({
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
        "libjpeg_turbo": bool(features.check_feature("libjpeg_turbo")),
        "threads": torch.get_num_threads(),
        "images": len(files),
    })

    for line in sys.stdin:
        command = line.strip()
        if command == "decode":
            started = time.perf_counter()
            for path in files:
                tensor = transform(pil_loader(path))
                assert tensor.shape == (3, SIDE, SIDE) and tensor.dtype == torch.uint8
            seconds = time.perf_counter() - started
            answer({"ips": len(files) / seconds, "images": len(files), "seconds": seconds})
        elif command == "quit":
            break
        else:
            answer({"error": f"unknown command {command!r}"})


if __name__ == "__main__":
    main()
