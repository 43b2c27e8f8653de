#!/usr/bin/env python
"""Train the LeNet-MNIST classifier that gancli ships for its offline MNIST metrics.

Writes ``src/gancli/metrics/weights/lenet-mnist.safetensors`` (atomically, only
if the MNIST test accuracy reaches ``--min-accuracy``) with the test accuracy,
the sha256 of the four raw MNIST files, the seed, epochs, torch version and
this script's path in its metadata (:mod:`gancli.metrics.lenet`).

Inputs are fed exactly as gancli feeds its discriminators: ``(N, 1, 28, 28)``
float32 ``uint8 / 127.5 - 1`` in [-1, 1]. Training: :func:`gancli.metrics.classifier.train_lenet`
(Adam, arXiv 1412.6980, with a one-cycle learning-rate schedule, arXiv 1708.07120,
batch 128, random translations of up to ``--shift`` pixels), the same code the
Classification Accuracy Score trains its classifiers with; deterministic for a
given seed and thread count.

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

from gancli.config import DataConfig
from gancli.data import load_split
from gancli.errors import GancliError
from gancli.fsutil import file_sha256
from gancli.metrics.classifier import Recipe, steps_for, train_lenet
from gancli.metrics.lenet import WEIGHTS_PATH, lenet_outputs, save_lenet

REPO = Path(__file__).resolve().parents[1]
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def default_data_dir() -> Path:
    env = os.environ.get("GANCLI_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` as (N, 1, 28, 28) float32 in [-1, 1] and (N,) int64 labels."""
    data = load_split(DataConfig(dataset="mnist", split=split, download=False), root)
    return data.images.to(torch.float32).div_(127.5).sub_(1.0), data.labels.long()


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
    torch.use_deterministic_algorithms(True)

    root = args.data_dir.expanduser()
    try:
        x_train, y_train = load(root, "train")
        x_test, y_test = load(root, "test")
    except GancliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    raw = root / "MNIST" / "raw"
    data_sha256 = {name: file_sha256(raw / name) for name in RAW_FILES}

    steps = steps_for(len(x_train), args.epochs, args.batch_size)
    recipe = Recipe(batch_size=args.batch_size, lr=args.lr, shift=args.shift)
    start = time.perf_counter()

    def on_epoch(epoch: int, loss: float, acc: float) -> None:
        print(f"epoch {epoch}/{args.epochs}: train loss {loss:.4f}, train acc {acc:.4f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)

    model = train_lenet(x_train, y_train, steps, seed=args.seed, recipe=recipe, on_epoch=on_epoch)
    train_seconds = time.perf_counter() - start

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
