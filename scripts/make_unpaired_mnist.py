#!/usr/bin/env python
"""Write the unpaired MNIST benchmark of issue #24: MNIST digits <-> restyled *other* MNIST digits.

Folders written under OUT (CycleGAN's layout, read by :func:`gancli.translate.pairs.load_unpaired`):

==========  =====================================================================  ======
folder      images                                                                 count
==========  =====================================================================  ======
trainA      MNIST train images 0-29999, as they are                                30000
trainB      MNIST train images 30000-59999, restyled (other digits than trainA)    30000
testA       MNIST test images 0-9999                                               10000
testB       the same test images restyled: testB/x.png is testA/x.png's target     10000
==========  =====================================================================  ======

The restyling is :func:`gancli.translate.restyle.restyle_mnist` (strokes dilated by 2 px, then
inverted). Files are ``NNNNN.png`` (grayscale, 28x28) named by the image's index in its MNIST
split, and each folder has a ``labels.json`` (file name -> digit) for label-preservation
metrics. ``OUT/benchmark.json`` records what was written. MNIST is read through torchvision
from ``--data-dir`` (default $GANCLI_DATA_DIR, else ``../shared/data`` beside the repository;
it must hold ``MNIST/raw/``; nothing is downloaded).

Usage::

    python scripts/make_unpaired_mnist.py OUT [--data-dir DIR] [--limit N] [--force]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch
from PIL import Image

from gancli.config import DataConfig
from gancli.data import load_split
from gancli.errors import GancliError
from gancli.translate.restyle import restyle_mnist

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("trainA", "trainB", "testA", "testB")


def default_data_dir() -> Path:
    env = os.environ.get("GANCLI_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_mnist(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` as ``(N, 1, 28, 28)`` uint8 and ``(N,)`` int64 labels."""
    data = load_split(DataConfig(dataset="mnist", split=split, download=False), root)
    return data.images, data.labels


def write_folder(folder: Path, images: torch.Tensor, labels: torch.Tensor, first_index: int) -> int:
    """Write ``images`` ``(N, 1, H, W)`` uint8 as ``folder/NNNNN.png`` (index from ``first_index``)
    and ``folder/labels.json``; returns N."""
    folder.mkdir(parents=True)
    names = {}
    for k, (image, label) in enumerate(zip(images, labels.tolist())):
        name = f"{first_index + k:05d}.png"
        Image.fromarray(image[0].numpy()).save(folder / name)
        names[name] = int(label)
    (folder / "labels.json").write_text(json.dumps(names, indent=0) + "\n")
    return len(names)


def write_benchmark(out: Path, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                    limit: int = 0) -> dict[str, int]:
    """Write the four folders and ``benchmark.json`` under ``out`` (see the module doc).

    Args:
        train, test: ``(images (N, 1, H, W) uint8, labels (N,) int64)`` of the MNIST splits; the
            train split is halved, A the first half, B the second.
        limit: at most this many images per folder (the first of each half); 0 = all.

    Returns:
        folder name -> number of images written.

    Raises:
        GancliError: one of the four folders already exists under ``out``.
    """
    for name in FOLDERS:
        if (out / name).exists():
            raise GancliError(f"{out / name} already exists; pass --force to replace it")
    (x_train, y_train), (x_test, y_test) = train, test
    half = x_train.shape[0] // 2
    n_train = min(half, limit) if limit else half
    n_test = min(x_test.shape[0], limit) if limit else x_test.shape[0]
    parts = {
        "trainA": (x_train[:n_train], y_train[:n_train], 0),
        "trainB": (restyle_mnist(x_train[half:half + n_train]), y_train[half:half + n_train], half),
        "testA": (x_test[:n_test], y_test[:n_test], 0),
        "testB": (restyle_mnist(x_test[:n_test]), y_test[:n_test], 0),
    }
    counts = {name: write_folder(out / name, *parts[name]) for name in FOLDERS}
    manifest = {
        "benchmark": "unpaired MNIST (gancli issue #24)",
        "A": "MNIST digits as they are",
        "B": "gancli.translate.restyle.restyle_mnist: strokes dilated by 2 px (5x5 max-pool), then inverted",
        "trainA": f"MNIST train [0, {n_train})",
        "trainB": f"MNIST train [{half}, {half + n_train}), restyled",
        "testA": f"MNIST test [0, {n_test})",
        "testB": f"MNIST test [0, {n_test}), restyled: the ground truth of testA -> B",
        "counts": counts,
    }
    (out / "benchmark.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder to write trainA/, trainB/, testA/, testB/ into")
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding MNIST/raw/")
    p.add_argument("--limit", type=int, default=0, help="at most N images per folder (for quick tests); 0 = all")
    p.add_argument("--force", action="store_true", help="replace the four folders if they exist")
    args = p.parse_args(argv)
    if args.limit < 0:
        p.error(f"--limit {args.limit} is not valid; valid choices: 0 (all) or a positive count")

    out = args.out.expanduser()
    try:
        train = load_mnist(args.data_dir.expanduser(), "train")
        test = load_mnist(args.data_dir.expanduser(), "test")
        if args.force:
            for name in FOLDERS:
                shutil.rmtree(out / name, ignore_errors=True)
        counts = write_benchmark(out, train, test, args.limit)
    except GancliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(f'{name} {n}' for name, n in counts.items())} images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
