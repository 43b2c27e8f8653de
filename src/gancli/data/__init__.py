"""Datasets, registered by name, and on-device batching.

A dataset entry is a :class:`DatasetSource` subclass: its class attributes give
the image shape (so ``--dry-run`` needs no data) and :meth:`DatasetSource.load`
returns the whole split as a uint8 tensor. Small datasets are preloaded on the
training device once (:class:`~gancli.data.batcher.DeviceBatcher`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from gancli.errors import GancliError, UsageError
from gancli.registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass
class ImageData:
    """A dataset split held in memory.

    Attributes:
        images: ``(N, C, H, W)`` uint8 in [0, 255].
        labels: ``(N,)`` int64 class indices.
        classes: class names, ``len(classes)`` = number of classes.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]


class DatasetSource:
    """A registered dataset. Subclasses set the class attributes and :meth:`load`."""

    channels: ClassVar[int]
    resolution: ClassVar[int]
    num_classes: ClassVar[int]
    sizes: ClassVar[dict[str, int]]  # images per split, known without loading

    @classmethod
    def load(cls, root: Path, split: str, download: bool) -> ImageData:
        """The whole ``split`` as :class:`ImageData`.

        Raises:
            GancliError: the files are missing and cannot be downloaded; the
                message names the directory and the files expected there.
        """
        raise NotImplementedError


DATASETS: Registry[type[DatasetSource]] = Registry("dataset")


@DATASETS.register("mnist", "MNIST handwritten digits, 60k/10k 28x28 grayscale (LeCun et al. 1998)")
class MNIST(DatasetSource):
    channels = 1
    resolution = 28
    num_classes = 10
    files = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    sizes = {"train": 60000, "test": 10000}

    @classmethod
    def load(cls, root: Path, split: str, download: bool) -> ImageData:
        from torchvision import datasets

        raw = root / "MNIST" / "raw"
        try:
            ds = datasets.MNIST(str(root), train=(split == "train"), download=download)
        except (RuntimeError, OSError) as e:  # torchvision: "Dataset not found" / download failure
            reason = (str(e).splitlines()[0] if str(e) else type(e).__name__).rstrip(":")
            how = "it could not be downloaded" if download else "--no-download was given"
            raise GancliError(
                f"MNIST not found in {raw} and {how} ({reason}); put {', '.join(cls.files)} "
                f"(or their .gz) in {raw}, or point --data-dir / GANCLI_DATA_DIR at a folder with MNIST/raw/"
            ) from None
        return ImageData(ds.data.unsqueeze(1).contiguous(), ds.targets.long(), list(ds.classes))


def get_source(name: str) -> type[DatasetSource]:
    """The registered dataset ``name``. Raises UnknownNameError listing the valid names."""
    return DATASETS.get(name)


def check_split(source: type[DatasetSource], name: str, split: str) -> None:
    if split not in source.sizes:
        raise UsageError(f"unknown split {split!r} for {name}; valid choices: {', '.join(source.sizes)}")


def load_split(name: str, root: str | os.PathLike, split: str = "train", download: bool = True,
               limit: int = 0) -> ImageData:
    """Load ``split`` of dataset ``name`` from ``root`` (the data directory).

    Args:
        limit: keep only the first ``limit`` images; 0 = all.

    Raises:
        UnknownNameError: unknown dataset. UsageError: unknown split.
        GancliError: data missing and not downloadable.
    """
    source = get_source(name)
    check_split(source, name, split)
    data = source.load(Path(root).expanduser(), split, download)
    if limit:
        data = ImageData(data.images[:limit], data.labels[:limit], data.classes)
    return data
