"""The PyTorch side of `make bench`: the seed recipe's training and test loops, timed on command.

    python bench_pytorch.py DIR [--batch 64]

`bench run` (backend/examples/bench.rs) starts this script and drives it over stdin/stdout, one command
per line, one JSON answer per line, so that its measurements interleave with the engine's: each of our
epochs is followed by one of PyTorch's, each of our ceiling windows by one of PyTorch's. On a shared
machine whose speed drifts by 10-20 % within seconds, figures taken side by side in time are the only
ones worth comparing.

With --whole EPOCHS it instead trains EPOCHS epochs, testing after each as the seed does, prints
{"accuracy"} and exits: `bench result` times the whole process, from the interpreter's start.

Commands:
    train    one training epoch (the seed's `train`) then one test pass (the seed's `test`)
             -> {"train_ips", "train_seconds", "test_seconds", "accuracy"}
    ceiling  one window of an epoch's worth of steps of a second model and optimiser on one pre-made
             batch already on the device (warmed up on first use) -> {"ips"}
    eval     one test pass -> {"ips"}
    loader   one pass over the train DataLoader with no model -> {"seconds"}
    forward SIDE BATCH
             eval-mode forwards of a [BATCH, 3, SIDE, SIDE] batch under no_grad (the first test image when
             SIDE is 32 and BATCH 1, else uniform noise: the arithmetic is the same) -> {"median_ms", "p90_ms"}
    quit     (or end of input) exits

The first answer, before any command, describes the setup: {"torch", "torchvision", "threads",
"num_workers", "batch", "train_images", "test_images"}.

Data is read the way the seed recipe loads it: torchvision `datasets.ImageFolder` over the PNG class
folders `DIR/data/synthetic/{train,test}/<class>/` that `bench data` wrote, with `transforms.ToTensor()`
and `Normalize((0.5,)*3, (0.5,)*3)`, a `DataLoader` with its default `num_workers=0` (the seed does not
set it), shuffled for training. The model is torchvision's `resnet18(num_classes=10)` (random
initialisation: the seed's pretrained backbone does the same arithmetic), SGD lr 0.001 momentum 0.9,
cross-entropy. The train and test functions are the seed's.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.optim as optim
import torchvision
from torchvision import datasets, transforms

EVAL_BATCH = 256  # the engine's evaluation batch
FORWARD_WARMUP = 10  # untimed forwards before the timed ones
FORWARDS = 50  # timed forwards of one image, as many as the classify requests
WARMUP_STEPS = 3


def train(model, train_loader, optimizer, criterion, device):
    """The seed recipe's training loop, unchanged."""
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)

        optimizer.zero_grad()
        output = model(data)
        loss = criterion(output, target)
        loss.backward()
        optimizer.step()


def test(model, test_loader, criterion, device):
    """The seed recipe's test loop, returning instead of printing."""
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)

            output = model(data)
            test_loss += criterion(output, target).item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)
    return 100.0 * correct / len(test_loader.dataset)


class Ceiling:
    """A second model and optimiser stepping on one batch already on the device: compute alone."""

    def __init__(self, classes, criterion, data, target, device):
        self.model = torchvision.models.resnet18(num_classes=classes).to(device)
        self.optimizer = optim.SGD(self.model.parameters(), lr=0.001, momentum=0.9)
        self.criterion = criterion
        self.data, self.target = data, target
        self.model.train()
        for _ in range(WARMUP_STEPS):
            self.step()

    def step(self):
        self.optimizer.zero_grad()
        loss = self.criterion(self.model(self.data), self.target)
        loss.backward()
        self.optimizer.step()

    def window(self, steps):
        """Images/s over `steps` steps (on a GPU, timed from and to an idle device)."""
        self.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        self.synchronize()
        return steps * self.data.shape[0] / (time.perf_counter() - started)

    def synchronize(self):
        """Waits for the GPU's queued work, so that a timer reads finished work, not queued work."""
        if self.data.is_cuda:
            torch.cuda.synchronize()


def time_forward(model, side, batch, test_dataset, device):
    """Median and p90 milliseconds of FORWARDS eval-mode forwards, after FORWARD_WARMUP untimed ones."""
    model.eval()
    if side == 32 and batch == 1:
        images = test_dataset[0][0].unsqueeze(0).to(device)
    else:
        images = (torch.rand(batch, 3, side, side) * 2 - 1).to(device)
    times = []
    with torch.no_grad():
        for _ in range(FORWARD_WARMUP):
            model(images)
        for _ in range(FORWARDS):
            started = time.perf_counter()
            model(images)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - started) * 1000)
    model.train()
    times.sort()
    return {"median_ms": times[len(times) // 2], "p90_ms": times[int(len(times) * 0.9)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--whole", type=int, metavar="EPOCHS",
                        help="train EPOCHS epochs, testing after each, print the accuracy and exit (time to result)")
    args = parser.parse_args()

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    root = os.path.join(args.dir, "data", "synthetic")

    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])
    train_dataset = datasets.ImageFolder(os.path.join(root, "train"), transform=transform)
    test_dataset = datasets.ImageFolder(os.path.join(root, "test"), transform=transform)
    num_workers = 0  # DataLoader's default; the seed recipe does not set it
    train_loader = torch.utils.data.DataLoader(train_dataset, batch_size=args.batch, shuffle=True, num_workers=num_workers)
    test_loader = torch.utils.data.DataLoader(test_dataset, batch_size=EVAL_BATCH, shuffle=False, num_workers=num_workers)

    model = torchvision.models.resnet18(num_classes=len(train_dataset.classes)).to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    if args.whole:
        for _ in range(args.whole):
            train(model, train_loader, optimizer, criterion, device)
            accuracy = test(model, test_loader, criterion, device)
        print(json.dumps({"accuracy": accuracy}), flush=True)
        return
    ceiling = None
    log = lambda message: print(f"[bench pytorch] {message}", file=sys.stderr, flush=True)
    answer = lambda value: print(json.dumps(value), flush=True)
    log(f"{threads} torch threads, batch {args.batch}, num_workers {num_workers}")
    answer({
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "threads": torch.get_num_threads(),
        "num_workers": num_workers,
        "batch": args.batch,
        "train_images": len(train_dataset),
        "test_images": len(test_dataset),
    })

    for line in sys.stdin:
        command = line.strip()
        if command == "train":
            started = time.perf_counter()
            train(model, train_loader, optimizer, criterion, device)
            if device.type == "cuda":
                torch.cuda.synchronize()  # the last steps may still be queued on the GPU
            train_seconds = time.perf_counter() - started
            started = time.perf_counter()
            accuracy = test(model, test_loader, criterion, device)
            test_seconds = time.perf_counter() - started
            train_ips = len(train_dataset) / train_seconds
            log(f"epoch: {train_ips:.1f} img/s training, {train_seconds:.2f} s + {test_seconds:.2f} s test (acc {accuracy:.1f}%)")
            answer({"train_ips": train_ips, "train_seconds": train_seconds, "test_seconds": test_seconds, "accuracy": accuracy})
        elif command == "ceiling":
            if ceiling is None:
                # The first batch of a shuffled epoch, as the engine's ceiling takes it.
                data, target = next(iter(train_loader))
                ceiling = Ceiling(len(train_dataset.classes), criterion, data.to(device), target.to(device), device)
            ips = ceiling.window(len(train_loader))
            log(f"ceiling window: {ips:.1f} img/s")
            answer({"ips": ips})
        elif command == "eval":
            started = time.perf_counter()
            test(model, test_loader, criterion, device)
            answer({"ips": len(test_dataset) / (time.perf_counter() - started)})
        elif command.startswith("forward"):
            # PyTorch's bare eager forward of an already decoded and normalised batch, the floor a
            # classify request is compared with: no decoding, no HTTP. `forward SIDE BATCH`; plain
            # `forward` is one 32x32 test image.
            words = command.split()
            side, batch = (int(words[1]), int(words[2])) if len(words) == 3 else (32, 1)
            answer(time_forward(model, side, batch, test_dataset, device))
        elif command == "loader":
            started = time.perf_counter()
            for data, target in train_loader:
                pass
            answer({"seconds": time.perf_counter() - started})
        elif command == "quit":
            break
        else:
            answer({"error": f"unknown command {command!r}"})


if __name__ == "__main__":
    main()
