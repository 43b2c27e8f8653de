"""Generated images as a dataset: ``gan sample RUN --dataset-out DIR -n N`` (torch imported lazily).

Layout (torchvision's ``ImageFolder`` convention, which ``gan train --dataset DIR`` reads):

* conditional generator: ``DIR/<class>/<index>.png``, ``<class>`` the class index zero-padded
  to a common width (so names sort in class order), ``<index>`` numbered per class;
* unconditional generator: ``DIR/images/<index>.png`` (one subfolder = unlabelled);
* ``DIR/manifest.json`` (:data:`MANIFEST_FORMAT` version 1): the source (run, checkpoint step and
  sha256, EMA or raw weights), seed, images per class, image shape, gancli version, time.

Image ``i`` of the export (classes in block order: all of class 0, then class 1, ...) is
generated from row ``i`` of ``gancli.seeding.latents(N, nz, seed)`` with that class, in
chunks, so memory stays bounded for any N. Pixels are stored as 8-bit PNG,
``round((x + 1) * 127.5)`` of the generator's [-1, 1] output, as ``gan train`` reads them back.

The folder appears whole or not at all: the files are written into a temp folder beside it
(``.DIR.tmp-<pid>``) renamed into place at the end; a killed export leaves only that temp
folder, which the next export to the same place removes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gancli.data.manifest import MANIFEST_FORMAT, MANIFEST_NAME, MANIFEST_VERSION
from gancli.errors import UsageError

if TYPE_CHECKING:
    import torch

UNLABELLED_FOLDER = "images"


def class_counts(n: int, num_classes: int, only_class: int | None = None,
                 weights: Sequence[float] | None = None) -> list[int]:
    """Images per class for an export of ``n`` images.

    Args:
        n: total images, >= 1.
        num_classes: K, >= 1.
        only_class: every image of this class.
        weights: K non-negative relative weights (any positive sum); counts by largest remainder.
            Neither given: balanced (``n // K`` each, the first ``n % K`` classes one more).

    Returns:
        K ints summing to ``n``.

    Raises:
        ValueError: bad class, wrong number of weights, negative or all-zero weights.
    """
    if only_class is not None:
        if not 0 <= only_class < num_classes:
            raise ValueError(f"class {only_class} is out of range; valid choices: 0..{num_classes - 1}")
        return [n if c == only_class else 0 for c in range(num_classes)]
    if weights is None:
        return [n // num_classes + (1 if c < n % num_classes else 0) for c in range(num_classes)]
    if len(weights) != num_classes:
        raise ValueError(f"--class-weights needs {num_classes} numbers (one per class), got {len(weights)}")
    if any(not w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"--class-weights must be >= 0 with a positive sum, got {','.join(map(str, weights))}")
    total = sum(weights)
    exact = [n * w / total for w in weights]
    counts = [int(e) for e in exact]
    for c in sorted(range(num_classes), key=lambda c: (-(exact[c] - counts[c]), c))[:n - sum(counts)]:
        counts[c] += 1
    return counts


def parse_class_weights(text: str) -> list[float]:
    """``--class-weights W0,W1,...`` -> the numbers (checked against the classes by
    :func:`class_counts`).

    Raises:
        UsageError: not a comma-separated list of numbers.
    """
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise UsageError(f"--class-weights {text!r} is not a comma-separated list of numbers "
                         "(e.g. 1,1,2,1,1,1,1,1,1,1)") from None


def check_dataset_dir(out_dir: str | os.PathLike) -> None:
    """Raise :class:`UsageError` unless ``out_dir`` can become a dataset: not a file, missing
    or empty (nothing is overwritten), in an existing folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--dataset-out {out_dir} is a file; give a new or empty folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise UsageError(f"--dataset-out {out_dir} already holds files; give a new or empty folder (nothing is overwritten)")
    if not out_dir.absolute().parent.is_dir():
        raise UsageError(f"directory {out_dir.absolute().parent} does not exist (for --dataset-out {out_dir})")


def describe_source(path: str | os.PathLike, run_id: str | None, generator) -> dict[str, Any]:
    """The ``source`` of a manifest: the run, the checkpoint file or bundle folder ``path``
    with its step and sha256 (per file of a bundle), EMA or raw weights (``generator.step``,
    ``generator.uses_ema`` as :func:`gancli.load_generator` sets them)."""
    from gancli.fsutil import file_sha256

    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return {"run": run_id, "checkpoint": str(path), "step": generator.step,
            "sha256": file_sha256(path) if path.is_file() else {p.name: file_sha256(p) for p in files},
            "weights": "ema" if generator.uses_ema else "raw", "kind": "bundle" if path.is_dir() else "checkpoint"}


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8."""
    import torch

    return images.add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def write_dataset(
    generator: torch.nn.Module,
    out_dir: str | os.PathLike,
    counts: Sequence[int] | None,
    seed: int,
    source: dict[str, Any],
    n: int | None = None,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write generated images as an image-folder dataset (layout in the module doc), atomically.

    Args:
        generator: a gancli generator (``nz``, ``num_classes``, ``img_channels``,
            ``img_resolution``; called as ``G(z, y)``), on its device.
        out_dir: the folder to create; must not exist or be empty.
        counts: images per class (conditional; see :func:`class_counts`); None for an
            unconditional generator.
        seed: seed of the latents.
        source: describes the weights, stored in the manifest (run, checkpoint, step, sha256...).
        n: total images of an unconditional export (ignored when ``counts`` is given).
        batch_size: images per forward pass.
        progress: called with ``(images written, total)`` after each chunk.

    Returns:
        The manifest written to ``out_dir/manifest.json``.

    Raises:
        ValueError: counts for an unconditional generator or none for a conditional one.
        FileExistsError: ``out_dir`` holds files.
    """
    import torch
    from PIL import Image

    from gancli._version import __version__
    from gancli.fsutil import atomic_dir
    from gancli.generate.sampling import generate
    from gancli.seeding import latents

    out_dir = Path(out_dir)
    k = int(getattr(generator, "num_classes", 0) or 0)
    if k and counts is None:
        raise ValueError("a conditional generator needs counts per class")
    if not k and counts is not None:
        raise ValueError("an unconditional generator has no classes: pass n, not counts")
    total = sum(counts) if counts is not None else int(n or 0)
    if total < 1:
        raise ValueError(f"need at least one image, got {total}")
    device = next(generator.parameters()).device
    labels = torch.repeat_interleave(torch.arange(k), torch.tensor(counts)) if counts is not None else None
    names = [f"{c:0{len(str(k - 1))}d}" for c in range(k)] if k else [UNLABELLED_FOLDER]
    width = len(str(max(counts) - 1 if counts is not None else total - 1))
    mode = {1: "L", 3: "RGB"}[generator.img_channels]
    z_all = latents(total, generator.nz, seed)
    with atomic_dir(out_dir) as tmp:
        for name, count in zip(names, counts if counts is not None else [total]):
            if count:
                (tmp / name).mkdir()
        index = [0] * max(k, 1)
        for start in range(0, total, batch_size):
            z = z_all[start:start + batch_size].to(device)
            y = labels[start:start + batch_size].to(device) if labels is not None else None
            pixels = _to_uint8(generate(generator, z, y, batch_size=batch_size)).numpy()
            classes = labels[start:start + batch_size].tolist() if labels is not None else [0] * len(pixels)
            for a, c in zip(pixels, classes):
                img = Image.fromarray(a[:, :, 0] if mode == "L" else a, mode)
                img.save(tmp / names[c] / f"{index[c]:0{width}d}.png", format="PNG")
                index[c] += 1
            if progress is not None:
                progress(min(start + batch_size, total), total)
        manifest = {
            "format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION,
            "num_images": total,
            "labelled": bool(k),
            "classes": names if k else [],
            "per_class": dict(zip(names, counts)) if counts is not None else {},
            "image_shape": [generator.img_channels, generator.img_resolution, generator.img_resolution],
            "pixels": "8-bit PNG, round((x + 1) * 127.5) of the generator's [-1, 1] output",
            "seed": seed,
            "latents": f"row i of gancli.seeding.latents({total}, {generator.nz}, {seed}) -> image i, classes in "
                       "block order (all of class 0, then 1, ...)",
            "source": source,
            "gancli_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest

