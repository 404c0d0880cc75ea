"""Writes the synthetic dataset of `make gpu-check`: noisy 32x32 RGB PNGs in ten class folders.

    python gpu_data.py DIR TRAIN TEST      -> DIR/{train,test}/class{0..9}/NNNNN.png

Image i is of class i % 10; each class shifts the mean colour a little under strong uniform noise (as
`bench data` does), so a network learns something without the loss collapsing. Written with numpy and
Pillow, which the GPU machine has; several processes share the work.
"""
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

CLASSES = 10
SIDE = 32


def write(args):
    root, split, start, stop, seed_offset = args
    for index in range(start, stop):
        label = index % CLASSES
        shift = label - 5
        base = np.array([128 + 4 * shift, 128 - 3 * shift, 128 + 2 * (shift % 3)])
        rng = np.random.default_rng(seed_offset + index)
        pixels = np.clip(base + rng.integers(-100, 101, size=(SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(os.path.join(root, split, f"class{label}", f"{index:05}.png"))


def main():
    root, train, test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    jobs = []
    for split, count, seed_offset in (("train", train, 0), ("test", test, 1 << 32)):
        for label in range(CLASSES):
            os.makedirs(os.path.join(root, split, f"class{label}"), exist_ok=True)
        chunk = max(1, count // (4 * (os.cpu_count() or 1)))
        jobs += [(root, split, start, min(count, start + chunk), seed_offset) for start in range(0, count, chunk)]
    with ProcessPoolExecutor() as pool:
        list(pool.map(write, jobs))
    print(f"wrote {train} + {test} images to {root}")


if __name__ == "__main__":
    main()
