"""Writes one small CIFAR-10 dataset three ways from the same NumPy arrays, for tests/tests/cifar_python.rs:

  <out>/p2/cifar-10-batches-py/   pickles at protocol 2 (as the official archive: a uint8 [N, 3072]
                                  array under "data", a list under "labels", bytes keys)
  <out>/p4/cifar-10-batches-py/   the same at protocol 4 (what Python 3 writes by default)
  <out>/bin/cifar-10-batches-bin/ the same records in the binary layout (label byte + 3072 pixel bytes)
  <out>/c100py/cifar-100-python/  a CIFAR-100-shaped set (100 fine, 20 coarse labels) as the official
                                  python version: train, test, meta (fine_labels, fine_label_names)
  <out>/c100bin/cifar-100-binary/ the same records in CIFAR-100's binary layout (coarse, fine, pixels)

Usage: python save_cifar_python.py OUT PER_FILE TEST_COUNT
"""
import os
import pickle
import sys

import numpy as np

out, per_file, test_count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
rng = np.random.default_rng(7)
files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
counts = [per_file] * 5 + [test_count]
batches = []
for count in counts:
    labels = rng.integers(0, 10, size=count)
    # A learnable signal: each class has its own mean colour, plus noise.
    means = (labels[:, None] * 23 + np.arange(3)[None, :] * 60) % 256
    planes = np.repeat(means, 1024, axis=1) + rng.integers(-20, 21, size=(count, 3072))
    batches.append((np.clip(planes, 0, 255).astype(np.uint8), [int(l) for l in labels]))

for protocol in (2, 4):
    folder = os.path.join(out, f"p{protocol}", "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    meta = {b"num_cases_per_batch": per_file, b"label_names": [c.encode() for c in classes], b"num_vis": 3072}
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump(meta, f, protocol=protocol)
    for name, (data, labels) in zip(files, batches):
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(len(labels))]}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f, protocol=protocol)

folder = os.path.join(out, "bin", "cifar-10-batches-bin")
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "batches.meta.txt"), "w") as f:
    f.write("\n".join(classes) + "\n")
for name, (data, labels) in zip(files, batches):
    records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], data], axis=1)
    records.tofile(os.path.join(folder, name + ".bin"))

# CIFAR-100 shaped: one train file of 5 * PER_FILE records, the test file, 100 fine classes.
fine_names = [f"class{i:02d}" for i in range(100)]
coarse_names = [f"super{i:02d}" for i in range(20)]
c100 = {}
for name, count in (("train", 5 * per_file), ("test", test_count)):
    fine = rng.integers(0, 100, size=count)
    data = rng.integers(0, 256, size=(count, 3072)).astype(np.uint8)
    c100[name] = (data, [int(f) for f in fine], [int(f) // 5 for f in fine])
folder = os.path.join(out, "c100py", "cifar-100-python")
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "meta"), "wb") as f:
    pickle.dump({b"fine_label_names": [n.encode() for n in fine_names],
                 b"coarse_label_names": [n.encode() for n in coarse_names]}, f, protocol=2)
for name, (data, fine, coarse) in c100.items():
    batch = {b"filenames": [f"{name}_{i}.png".encode() for i in range(len(fine))], b"batch_label": name.encode(),
             b"fine_labels": fine, b"coarse_labels": coarse, b"data": data}
    with open(os.path.join(folder, name), "wb") as f:
        pickle.dump(batch, f, protocol=2)
folder = os.path.join(out, "c100bin", "cifar-100-binary")
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "fine_label_names.txt"), "w") as f:
    f.write("\n".join(fine_names) + "\n")
for name, (data, fine, coarse) in c100.items():
    labels = np.stack([np.array(coarse, dtype=np.uint8), np.array(fine, dtype=np.uint8)], axis=1)
    np.concatenate([labels, data], axis=1).tofile(os.path.join(folder, name + ".bin"))
