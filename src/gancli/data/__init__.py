"""Datasets, registered by name or given as a folder of images, and on-device batching.

``--dataset`` is a registered name (:data:`DATASETS`: mnist, fashion-mnist,
cifar10, celeba; see :mod:`gancli.data.builtin`) or a folder of image files
(:mod:`gancli.data.folder`). Each is a :class:`DatasetSource`:
:meth:`DatasetSource.info` describes it without decoding images (so
``--dry-run`` is cheap) and :meth:`DatasetSource.load` returns a whole split as
a uint8 tensor, which :func:`load_split` brings to ``--image-size`` /
``--channels`` (:mod:`gancli.data.transforms`). Small datasets are preloaded on
the training device once (:class:`~gancli.data.batcher.DeviceBatcher`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gancli.data.base import DATASETS, DatasetInfo, DatasetSource, ImageData, UnknownDatasetError
from gancli.data.builtin import CIFAR10, MNIST, CelebA, FashionMNIST  # importing registers them
from gancli.data.folder import IMAGE_EXTENSIONS, ImageFolder, is_folder_path
from gancli.errors import UsageError

if TYPE_CHECKING:
    from gancli.config import DataConfig

__all__ = [
    "CIFAR10", "DATASETS", "IMAGE_EXTENSIONS", "MNIST", "CelebA", "DatasetInfo", "DatasetSource",
    "FashionMNIST", "ImageData", "ImageFolder", "UnknownDatasetError", "check_shape_options", "describe",
    "get_source", "is_folder_path", "load_split",
]

CHANNEL_CHOICES = (0, 1, 3)  # 0 = the dataset's own, 1 = grayscale, 3 = RGB
MIN_IMAGE_SIZE = 8  # pixels; --image-size 0 = the dataset's own
MAX_IMAGE_SIZE = 1024  # pixels: a 1024x1024 RGB dataset of 30k images is already ~90 GiB as uint8


def get_source(name: str) -> type[DatasetSource]:
    """The dataset ``--dataset name`` means: a registered name first, else a folder path
    (:func:`~gancli.data.folder.is_folder_path`; its existence is checked by ``info``/``load``).

    Raises:
        UnknownDatasetError: neither; the message lists the names and mentions folders.
    """
    if name in DATASETS:
        return DATASETS.get(name)
    if is_folder_path(name):
        return ImageFolder
    raise UnknownDatasetError(name, DATASETS.names())


def check_shape_options(cfg: DataConfig) -> None:
    """Raises UsageError for ``--channels`` not in {0, 1, 3} or ``--image-size`` in 1..7 or < 0."""
    if cfg.channels not in CHANNEL_CHOICES:
        raise UsageError(f"--channels {cfg.channels} is not valid; valid choices: 1 (grayscale), 3 (RGB), "
                         "0 (the dataset's own)")
    if cfg.image_size != 0 and not MIN_IMAGE_SIZE <= cfg.image_size <= MAX_IMAGE_SIZE:
        raise UsageError(f"--image-size {cfg.image_size} is not valid; valid choices: {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} "
                         "pixels, or 0 (the dataset's own)")


def describe(cfg: DataConfig) -> DatasetInfo:
    """:class:`DatasetInfo` of ``cfg.dataset`` as configured (for a folder: lists its files).

    Raises:
        UsageError: bad --channels / --image-size, unknown split.
        UnknownDatasetError: unknown dataset.
        GancliError: an image folder that is missing or holds no image.
    """
    check_shape_options(cfg)
    info = get_source(cfg.dataset).info(cfg)
    if cfg.split not in info.sizes:
        raise UsageError(f"unknown split {cfg.split!r} for {cfg.dataset}; valid choices: {', '.join(info.sizes)}")
    return info


def load_split(cfg: DataConfig, root: str | os.PathLike) -> ImageData:
    """Load split ``cfg.split`` of ``cfg.dataset`` from the data directory ``root``
    (unused for folders), keeping the first ``cfg.limit`` images (0 = all), as
    ``(N, info.channels, info.resolution, info.resolution)`` uint8.

    ``ImageData.skipped`` lists the unreadable files left out under
    ``cfg.skip_bad_images``; N is then smaller than ``describe(cfg).sizes``.

    Raises:
        UsageError: as :func:`describe`. UnknownDatasetError: unknown dataset.
        GancliError: data missing and not downloadable, or an unreadable image.
    """
    from gancli.data.transforms import conform

    info = describe(cfg)
    data = get_source(cfg.dataset).load(Path(root).expanduser(), cfg)
    images, labels = data.images, data.labels
    if cfg.limit:
        images, labels = images[:cfg.limit], labels[:cfg.limit]
    images = conform(images, info.channels, info.resolution)
    return ImageData(images, labels, data.classes, data.skipped)
