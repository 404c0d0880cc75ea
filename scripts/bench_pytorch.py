"""The PyTorch side of `make bench`: the seed recipe's training and test loops, timed.

    python bench_pytorch.py DIR OUT_JSON [--batch 64] [--epochs 3]

Reads the PNG class folders `DIR/data/synthetic/{train,test}/<class>/` that `bench data` wrote, the way
the seed recipe loads data: torchvision `datasets.ImageFolder` with `transforms.ToTensor()` and
`Normalize((0.5,)*3, (0.5,)*3)`, a `DataLoader` with its default `num_workers=0` (the seed does not set
it), shuffled for training. The model is torchvision's `resnet18(num_classes=10)` (random initialisation:
the seed's pretrained backbone does the same arithmetic), SGD lr 0.001 momentum 0.9, cross-entropy. The
train and test functions are the seed's.

Writes OUT_JSON with the figures `bench run` prints next to ours, measured as on our side: the fastest
epoch after the first (which warms up) is reported, evaluation throughput is the median of three test
passes, and the ceiling is the same model and optimiser stepping on one pre-made batch, the fastest of
three windows of an epoch's worth of steps.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.optim as optim
import torchvision
from torchvision import datasets, transforms

EVAL_BATCH = 256  # the engine's evaluation batch
WARMUP_STEPS = 3
CEILING_WINDOWS = 3


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


def ceiling(model, optimizer, criterion, data, target, steps):
    """Images/s of the model and optimiser alone on one batch already on the device, per window."""
    model.train()

    def step():
        optimizer.zero_grad()
        loss = criterion(model(data), target)
        loss.backward()
        optimizer.step()

    for _ in range(WARMUP_STEPS):
        step()
    windows = []
    for _ in range(CEILING_WINDOWS):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        windows.append(steps * data.shape[0] / (time.perf_counter() - started))
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("out")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
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
    log = lambda message: print(f"[bench pytorch] {message}", file=sys.stderr, flush=True)
    load_start = os.getloadavg()
    log(f"{threads} torch threads, batch {args.batch}, num_workers {num_workers}, load average {load_start}")

    epochs = []
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        train(model, train_loader, optimizer, criterion, device)
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        accuracy = test(model, test_loader, criterion, device)
        test_seconds = time.perf_counter() - started
        train_ips = len(train_dataset) / train_seconds
        log(f"epoch {epoch}: {train_ips:.1f} img/s training, {train_seconds:.2f} s + {test_seconds:.2f} s test (acc {accuracy:.1f}%)")
        epochs.append({"train_ips": train_ips, "train_seconds": train_seconds, "test_seconds": test_seconds})

    eval_ips = []
    for _ in range(3):
        started = time.perf_counter()
        test(model, test_loader, criterion, device)
        eval_ips.append(len(test_dataset) / (time.perf_counter() - started))
    log(f"evaluation: {statistics.median(eval_ips):.1f} img/s (median of 3)")

    started = time.perf_counter()
    for data, target in train_loader:
        pass
    loader_seconds = time.perf_counter() - started
    log(f"train DataLoader alone: {loader_seconds:.2f} s per epoch")

    data, target = next(iter(train_loader))
    data, target = data.to(device), target.to(device)
    ceiling_windows = ceiling(model, optimizer, criterion, data, target, len(train_loader))
    log(f"ceiling windows: {', '.join(f'{ips:.1f}' for ips in ceiling_windows)} img/s")

    fastest = max(epochs[1:] or epochs, key=lambda epoch: epoch["train_ips"])
    result = {
        "load_average_start": " ".join(f"{x:.2f}" for x in load_start),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "threads": torch.get_num_threads(),
        "num_workers": num_workers,
        "batch": args.batch,
        "train_images": len(train_dataset),
        "test_images": len(test_dataset),
        "epochs": epochs,
        "train_ips": fastest["train_ips"],
        "epoch_seconds": fastest["train_seconds"] + fastest["test_seconds"],
        "eval_ips": statistics.median(eval_ips),
        "loader_seconds": loader_seconds,
        "ceiling_ips": max(ceiling_windows),
        "ceiling_windows": [round(ips, 1) for ips in ceiling_windows],
    }
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
