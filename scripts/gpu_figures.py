"""Figures of `make gpu-check` (scripts/gpu-run.sh): one line per studio run, then the table.

    python gpu_figures.py run LABEL PEAK_MIB TRAIN TEST < run.json   -> one JSON line (stdout)
    python gpu_figures.py table RUNS.jsonl SEED.jsonl SEED_PEAK_MIB LATENCY.txt TRAIN TEST TESTS DEVICE OUT

An epoch's time is the studio's own (`EpochMetrics.seconds`: the training pass plus the test pass) and
the seed loop's training plus test pass, so both sides count the same work; images/s is training images
over that time. The first epoch of a run warms up (CUDA context, cuDNN's autotuner), so the figure is the
median of the later epochs, with the first shown beside it. Peak GPU memory is the process's, as
nvidia-smi reports it (CUDA context and the caching allocator's reserve included), polled every 0.2 s.
"""
import json
import statistics
import sys
import time


def run_line(label, peak, train, test):
    run = json.load(sys.stdin)
    if run["status"] != "completed":
        sys.exit(f"status {run['status']}: {run.get('error')}")
    seconds = [epoch["seconds"] for epoch in run["epochs"]]
    later = seconds[1:] or seconds
    print(json.dumps({
        "label": label,
        "train": int(train),
        "test": int(test),
        "first_epoch_seconds": seconds[0],
        "epoch_seconds": statistics.median(later),
        "images_per_second": int(train) / statistics.median(later),
        "test_accuracy": run["epochs"][-1]["test_accuracy"],
        "peak_mib": int(peak),
    }))


def table(runs_file, seed_file, seed_peak, latency_file, train, test, tests, device, out):
    runs = [json.loads(line) for line in open(runs_file) if line.strip()]
    seed = [json.loads(line) for line in open(seed_file) if line.strip() and line.startswith("{")]
    seed_epochs = [s for s in seed if "train_seconds" in s]
    setup = next((s for s in seed if "torch" in s), {})
    latencies = [float(x) * 1000 for x in open(latency_file).read().split()]
    rows = [(r["label"], r["first_epoch_seconds"], r["epoch_seconds"], r["images_per_second"], r["peak_mib"])
            for r in runs if r["label"] != "short run"]
    seed_ips = None
    if seed_epochs:
        seconds = [s["train_seconds"] + s["test_seconds"] for s in seed_epochs]
        median = statistics.median(seconds[1:] or seconds)
        seed_ips = int(train) / median
        rows.append((f"seed PyTorch loop fp32 (torch {setup.get('torch')}), batch 512", seconds[0], median, seed_ips,
                     int(seed_peak)))
    lines = [
        f"GPU check, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, device {device}; GPU-gated tests {tests}",
        f"{train} + {test} synthetic 32x32 images (224 px rows: their own smaller set); epoch = training + test pass",
        "",
        "| phase | first epoch (s) | epoch (s, median of later) | images/s | peak GPU memory (MiB) | vs seed loop |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, first, seconds, ips, peak in rows:
        ratio = f"{ips / seed_ips:.1f}x" if seed_ips and "32 px" in label else ""
        lines.append(f"| {label} | {first:.2f} | {seconds:.2f} | {ips:,.0f} | {peak:,} | {ratio} |")
    ceilings = [s["ips"] for s in seed if "ips" in s]
    if ceilings:
        lines += ["", f"PyTorch's training step alone (fp32, batch 512, one batch already on the GPU, no data loading, "
                      f"no test pass): {ceilings[-1]:,.0f} images/s"]
    if latencies:
        first, timed = latencies[0], sorted(latencies[1:]) or latencies
        lines += ["", f"classify one 32x32 PNG over HTTP: first {first:.1f} ms, then median "
                      f"{statistics.median(timed):.1f} ms, p90 {timed[int(0.9 * (len(timed) - 1))]:.1f} ms "
                      f"({len(timed)} requests)"]
    text = "\n".join(lines)
    print(text)
    with open(f"{out}/gpu-figures.md", "w") as f:
        f.write(text + "\n")
    with open(f"{out}/gpu-figures.json", "w") as f:
        json.dump({"runs": runs, "seed": seed, "seed_peak_mib": int(seed_peak), "classify_ms": latencies,
                   "tests": tests, "device": device}, f, indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run_line(*sys.argv[2:6])
    else:
        table(*sys.argv[2:11])
