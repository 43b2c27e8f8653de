#!/usr/bin/env python
"""Train the LeNet-MNIST classifier that gancli ships for its offline MNIST metrics.

Writes ``src/gancli/metrics/weights/lenet-mnist.safetensors`` (atomically, only
if the MNIST test accuracy reaches ``--min-accuracy``) with the test accuracy,
the sha256 of the four raw MNIST files, the seed, epochs, torch version and
this script's path in its metadata (:mod:`gancli.metrics.lenet`).

Inputs are fed exactly as gancli feeds its discriminators: ``(N, 1, 28, 28)``
float32 ``uint8 / 127.5 - 1`` in [-1, 1]. Training: Adam (arXiv 1412.6980) with
a one-cycle learning-rate schedule (arXiv 1708.07120), batch 128, random
translations of up to ``--shift`` pixels; deterministic for a given seed and
thread count.

Usage::

    python scripts/train_lenet.py [--data-dir DIR] [--epochs 4] [--seed 0] [--threads 1]

``--data-dir`` defaults to $GANCLI_DATA_DIR, else ``../shared/data`` beside the
repository; it must hold ``MNIST/raw/`` (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gancli.config import DataConfig
from gancli.data import load_split
from gancli.errors import GancliError
from gancli.fsutil import file_sha256
from gancli.metrics.lenet import WEIGHTS_PATH, LeNet, lenet_outputs, save_lenet

REPO = Path(__file__).resolve().parents[1]
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def default_data_dir() -> Path:
    env = os.environ.get("GANCLI_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` as (N, 1, 28, 28) float32 in [-1, 1] and (N,) int64 labels."""
    data = load_split(DataConfig(dataset="mnist", split=split, download=False), root)
    return data.images.to(torch.float32).div_(127.5).sub_(1.0), data.labels.long()


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image of x (N, 1, H, W) by its own random (dy, dx) in [-max_shift, max_shift]
    pixels, filling with background -1."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s), value=-1.0)
    offsets = torch.randint(0, 2 * s + 1, (n, 2), generator=gen)
    out = torch.empty_like(x)
    for dy in range(2 * s + 1):
        for dx in range(2 * s + 1):
            idx = ((offsets[:, 0] == dy) & (offsets[:, 1] == dx)).nonzero().squeeze(1)
            if len(idx):
                out[idx] = padded[idx, :, dy:dy + h, dx:dx + w]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding MNIST/raw/")
    p.add_argument("--out", type=Path, default=WEIGHTS_PATH, help="weights file to write")
    p.add_argument("--epochs", type=int, default=4, help="passes over the 60000 training images")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--shift", type=int, default=2, help="max random translation, pixels; 0 = no augmentation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads; results depend on it slightly (1 = fastest on a busy 2-core machine)")
    p.add_argument("--min-accuracy", type=float, default=0.99, help="write the weights only at this test accuracy")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    root = args.data_dir.expanduser()
    try:
        x_train, y_train = load(root, "train")
        x_test, y_test = load(root, "test")
    except GancliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    raw = root / "MNIST" / "raw"
    data_sha256 = {name: file_sha256(raw / name) for name in RAW_FILES}

    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = len(x_train) // args.batch_size  # the last partial batch is dropped
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch_size:(i + 1) * args.batch_size]
            x, y = random_shift(x_train[idx], args.shift, gen), y_train[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += len(y)
            correct += (logits.argmax(1) == y).sum().item()
            loss_sum += loss.item() * len(y)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / total:.4f}, train acc {correct / total:.4f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    train_seconds = time.perf_counter() - start

    model.eval()
    _, logits = lenet_outputs(model, x_test)
    test_correct = int((logits.argmax(1) == y_test).sum())
    accuracy = test_correct / len(y_test)
    print(f"MNIST test accuracy: {accuracy:.4f} ({test_correct}/{len(y_test)}), training {train_seconds:.0f} s")
    if accuracy < args.min_accuracy:
        print(f"error: test accuracy {accuracy:.4f} < --min-accuracy {args.min_accuracy}; weights not written",
              file=sys.stderr)
        return 1
    metadata = {
        "test_accuracy": round(accuracy, 4),
        "test_correct": test_correct,
        "test_total": len(y_test),
        "data": "MNIST train (60000) for training, MNIST test (10000) for test_accuracy",
        "data_sha256": data_sha256,
        "input": "(N, 1, 28, 28) float32 in [-1, 1] = uint8 / 127.5 - 1",
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": "adam + one-cycle",
        "augmentation": f"random translation up to {args.shift} px",
        "threads": args.threads,
        "train_seconds": round(train_seconds, 1),
        "torch_version": torch.__version__,
        "script": "scripts/train_lenet.py",
    }
    out = save_lenet(model, args.out, metadata)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
