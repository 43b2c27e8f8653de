"""The dataset interface: :class:`DatasetSource`, what it returns, and its registry.

Torch-free at import time (``gan --help`` imports the registry).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gancli.errors import GancliError, UnknownNameError, UsageError, suggestion
from gancli.registry import Registry

if TYPE_CHECKING:
    import torch

    from gancli.config import DataConfig


@dataclass
class ImageData:
    """A dataset split held in memory.

    Attributes:
        images: ``(N, C, H, W)`` uint8 in [0, 255].
        labels: ``(N,)`` int64 class indices (all 0 for unlabelled data).
        classes: class names, ``len(classes)`` = number of classes (empty = unlabelled).
        skipped: paths of unreadable image files left out (``--skip-bad-images``);
            empty when nothing was skipped.
        inputs: a paired dataset's (``--task paired``) G inputs, ``(N, C_in, H, W)`` uint8 in
            [0, 255], ``inputs[i]`` the input of target ``images[i]`` (then ``labels`` is
            ``arange(N)``, so a batch's labels are its indices); None = no paired inputs.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    skipped: list[str] = field(default_factory=list)
    inputs: torch.Tensor | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset yields once loaded with a given :class:`DataConfig`."""

    channels: int  # C of the images after --channels
    resolution: int  # H = W after --image-size, pixels
    num_classes: int  # 0 = no labels
    sizes: dict[str, int]  # split name -> number of images


class DatasetSource:
    """A dataset. Subclasses implement :meth:`info` and :meth:`load`."""

    @classmethod
    def info(cls, cfg: DataConfig) -> DatasetInfo:
        """Shape, classes and split sizes, without decoding images."""
        raise NotImplementedError

    @classmethod
    def load(cls, root: Path, cfg: DataConfig) -> ImageData:
        """The ``cfg.split`` as :class:`ImageData`.

        Images come either at the dataset's native shape or already at
        :meth:`info`'s shape; :func:`gancli.data.load_split` crops, resizes and
        converts the channels of the rest. A source may stop after ``cfg.limit``
        images (0 = all); :func:`~gancli.data.load_split` keeps the first ``cfg.limit``.

        Raises:
            GancliError: the files are missing and cannot be downloaded; the
                message names the directory and the files expected there.
        """
        raise NotImplementedError


DATASETS: Registry[type[DatasetSource]] = Registry("dataset")


class UnknownDatasetError(UnknownNameError):
    """``--dataset`` is neither a registered name nor a folder path."""

    def __init__(self, value: str, choices: Iterable[str]):
        self.kind = "dataset"
        self.value = value
        self.choices = list(choices)
        UsageError.__init__(self, f"unknown dataset {value!r}{suggestion(value, self.choices)}; "
                            f"valid choices: {', '.join(self.choices)}, or a folder of images")


def not_found(title: str, where: Path, expected: str, hint: str, cfg: DataConfig, reason: str) -> GancliError:
    """The one-line error for a named dataset missing from the data directory.

    Args:
        title: dataset name as shown to the user ("MNIST").
        where: the directory that should hold the files.
        expected: the files / folders expected in ``where``, as a phrase.
        hint: the layout ``--data-dir`` must contain ("MNIST/raw/").
        reason: why loading failed (one line; torchvision's message or the missing file).
    """
    how = "it could not be downloaded" if cfg.download else "--no-download was given"
    return GancliError(
        f"{title} not found in {where} and {how} ({reason}); put {expected} in {where}, "
        f"or point --data-dir / GANCLI_DATA_DIR at a folder with {hint}"
    )


def first_line(e: BaseException) -> str:
    """``e``'s message cut to its first line (the type name when empty)."""
    return (str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__).rstrip(":")
