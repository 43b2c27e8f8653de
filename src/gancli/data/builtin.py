"""The named datasets, each under its torchvision folder layout in the data directory.

=============  ==========================  ==========  =============================
name           data directory layout       native      splits
=============  ==========================  ==========  =============================
mnist          MNIST/raw/ (4 idx files)    1x28x28     train 60000, test 10000
fashion-mnist  FashionMNIST/raw/ (same)    1x28x28     train 60000, test 10000
cifar10        cifar-10-batches-py/        3x32x32     train 50000, test 10000
celeba         celeba/img_align_celeba/    3x64x64 *   train 162770, valid 19867,
                                                       test 19962
=============  ==========================  ==========  =============================

\\* CelebA: the aligned 178x218 photos, center-cropped to 178x178 and resized
(the DCGAN preprocessing, arXiv 1511.06434). Downloads go through torchvision.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from gancli.data.base import DATASETS, DatasetInfo, DatasetSource, ImageData, first_line, not_found
from gancli.errors import GancliError

if TYPE_CHECKING:
    from gancli.config import DataConfig


def _check_idx(path: Path, ndim: int, title: str) -> None:
    """Raise GancliError naming ``path`` if an (uncompressed) idx file there is damaged: a
    header that is not an unsigned-byte idx header of ``ndim`` dimensions, or a size that is
    not the header's plus the product of its dimensions (a truncated download). A missing file
    is left to the loader (which may download it)."""
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4 + 4 * ndim)
    except FileNotFoundError:
        return
    except OSError as e:
        raise GancliError(f"{title} file {path} cannot be read ({e.strerror or e})") from None
    if len(head) < 4 + 4 * ndim or head[:3] != b"\x00\x00\x08" or head[3] != ndim:
        raise GancliError(f"{title} file {path} is damaged (not an idx file of {ndim} dimension(s) of bytes); "
                          "replace it with an intact copy")
    dims = struct.unpack(f">{ndim}I", head[4:])
    count = 1
    for d in dims:
        count *= d
    expected = 4 + 4 * ndim + count
    if size != expected:
        raise GancliError(f"{title} file {path} is damaged or truncated ({size:,} bytes, expected {expected:,} "
                          f"for {'x'.join(map(str, dims))}); replace it with an intact copy")


class _IdxDigits(DatasetSource):
    """MNIST-format data (four idx files) read by a torchvision dataset class."""

    title: ClassVar[str]  # as shown in messages
    folder: ClassVar[str]  # torchvision's folder under the data directory
    files = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    sizes: ClassVar[dict[str, int]] = {"train": 60000, "test": 10000}

    @classmethod
    def torchvision_class(cls) -> Any:
        raise NotImplementedError

    @classmethod
    def info(cls, cfg: DataConfig) -> DatasetInfo:
        return DatasetInfo(cfg.channels or 1, cfg.image_size or 28, 10, dict(cls.sizes))

    @classmethod
    def load(cls, root: Path, cfg: DataConfig) -> ImageData:
        raw = root / cls.folder / "raw"
        prefix = "train" if cfg.split == "train" else "t10k"
        for name, ndim in ((f"{prefix}-images-idx3-ubyte", 3), (f"{prefix}-labels-idx1-ubyte", 1)):
            _check_idx(raw / name, ndim, cls.title)
        try:
            ds = cls.torchvision_class()(str(root), train=(cfg.split == "train"), download=cfg.download)
        except (RuntimeError, OSError) as e:  # torchvision: "Dataset not found" / download failure
            raise not_found(cls.title, raw, f"{', '.join(cls.files)} (or their .gz)", f"{cls.folder}/raw/",
                            cfg, first_line(e)) from None
        labels = ds.targets.long()
        check_labels(labels, len(ds.classes), raw / f"{prefix}-labels-idx1-ubyte", cls.title)
        return ImageData(ds.data.unsqueeze(1).contiguous(), labels, list(ds.classes))


def check_labels(labels, num_classes: int, where: Path, title: str) -> None:
    """Raise :class:`GancliError` naming ``where`` when a label of ``labels`` ``(N,)`` int64 is
    outside ``0 .. num_classes - 1`` (a damaged labels file trains a conditional G on classes
    that do not exist). Checked once, when the split loads."""
    bad = ((labels < 0) | (labels >= num_classes)).nonzero()
    if len(bad):
        i = int(bad[0, 0])
        raise GancliError(f"{title} labels in {where} are damaged: label {int(labels[i])} at index {i} "
                          f"({len(bad):,} such) is outside the {num_classes} classes 0-{num_classes - 1}; "
                          "replace the file with an intact copy")


@DATASETS.register("mnist", "MNIST handwritten digits, 60k/10k 28x28 grayscale (LeCun et al. 1998)")
class MNIST(_IdxDigits):
    title = "MNIST"
    folder = "MNIST"

    @classmethod
    def torchvision_class(cls) -> Any:
        from torchvision.datasets import MNIST

        return MNIST


@DATASETS.register("fashion-mnist", "Fashion-MNIST clothing, 60k/10k 28x28 grayscale (Xiao et al. 2017, arXiv 1708.07747)")
class FashionMNIST(_IdxDigits):
    title = "Fashion-MNIST"
    folder = "FashionMNIST"

    @classmethod
    def torchvision_class(cls) -> Any:
        from torchvision.datasets import FashionMNIST

        return FashionMNIST


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only (a CIFAR batch), never other code."""

    allowed: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),  # arrays pickled by numpy 1 (the official files)
        ("numpy._core.multiarray", "_reconstruct"),  # ... and by numpy 2
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes pickled by Python 3
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


@DATASETS.register("cifar10", "CIFAR-10 objects, 50k/10k 32x32 RGB, 10 classes (Krizhevsky 2009)")
class CIFAR10(DatasetSource):
    """Read from the python-pickle batches directly: torchvision's reader insists
    on the official md5 sums; it is used only to download."""

    folder = "cifar-10-batches-py"
    split_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
    }
    meta_file = "batches.meta"
    sizes: ClassVar[dict[str, int]] = {"train": 50000, "test": 10000}

    @classmethod
    def info(cls, cfg: DataConfig) -> DatasetInfo:
        return DatasetInfo(cfg.channels or 3, cfg.image_size or 32, 10, dict(cls.sizes))

    @classmethod
    def load(cls, root: Path, cfg: DataConfig) -> ImageData:
        import numpy as np
        import torch

        base = root / cls.folder
        needed = [*cls.split_files[cfg.split], cls.meta_file]
        missing = [f for f in needed if not (base / f).is_file()]
        reason = f"no {missing[0]}" if missing else ""
        if missing and cfg.download:
            from torchvision.datasets import CIFAR10

            try:
                CIFAR10(str(root), train=(cfg.split == "train"), download=True)
                missing = [f for f in needed if not (base / f).is_file()]
                reason = f"no {missing[0]}" if missing else ""
            except (RuntimeError, OSError) as e:
                reason = first_line(e)
        if missing:
            every = [*cls.split_files["train"], *cls.split_files["test"], cls.meta_file]
            raise not_found("CIFAR-10", base, ", ".join(every), f"{cls.folder}/", cfg, reason)
        batches = [cls._read(base / f) for f in cls.split_files[cfg.split]]
        data = np.concatenate([np.asarray(b["data"], dtype=np.uint8).reshape(-1, 3, 32, 32) for b in batches])
        labels = [int(y) for b in batches for y in b["labels"]]
        names = cls._read(base / cls.meta_file)["label_names"]
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        targets = torch.tensor(labels, dtype=torch.int64)
        check_labels(targets, len(classes), base, "CIFAR-10")
        return ImageData(torch.from_numpy(data), targets, classes)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        """A batch file: rows of 3072 bytes = 1024 R, 1024 G, 1024 B (row-major 32x32)."""
        try:
            with open(path, "rb") as f:
                d = _ArraysOnly(f, encoding="latin1").load()
            return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, OSError) as e:
            raise GancliError(f"cannot read CIFAR-10 batch {path} ({first_line(e)}); delete "
                              f"{path.parent} and download it again") from None


@DATASETS.register("celeba", "CelebA faces, 163k/20k/20k, cropped 178 -> 64x64 RGB, unlabelled (Liu et al. 2015)")
class CelebA(DatasetSource):
    """Read from ``img_align_celeba/`` and ``list_eval_partition.txt`` (the other
    annotation files are not needed); torchvision is used only to download."""

    folder = "celeba"
    crop = 178  # side of the centered square cut from the 178x218 photos, pixels
    resolution = 64  # native output H = W, pixels
    sizes: ClassVar[dict[str, int]] = {"train": 162770, "valid": 19867, "test": 19962}
    partition: ClassVar[dict[str, str]] = {"train": "0", "valid": "1", "test": "2"}  # list_eval_partition.txt

    @classmethod
    def info(cls, cfg: DataConfig) -> DatasetInfo:
        return DatasetInfo(cfg.channels or 3, cfg.image_size or cls.resolution, 0, dict(cls.sizes))

    @classmethod
    def load(cls, root: Path, cfg: DataConfig) -> ImageData:
        import torch

        from gancli.data.folder import read_images

        base = root / cls.folder
        images_dir, listing = base / "img_align_celeba", base / "list_eval_partition.txt"

        def missing() -> str:
            return "" if images_dir.is_dir() and listing.is_file() else (
                f"no {listing.name}" if images_dir.is_dir() else f"no {images_dir.name}/")

        reason = missing()
        if reason and cfg.download:
            from torchvision.datasets import CelebA

            try:
                CelebA(str(root), split="all", target_type=[], download=True)
            except (RuntimeError, OSError) as e:  # also: "'gdown' is required"
                reason = first_line(e)
            else:
                reason = missing()
        if reason:
            raise not_found("CelebA", base, "img_align_celeba/ (the aligned JPEGs of img_align_celeba.zip) "
                            "and list_eval_partition.txt", f"{cls.folder}/", cfg, reason)
        want = cls.partition[cfg.split]
        names = [parts[0] for parts in (line.split() for line in listing.read_text().splitlines())
                 if len(parts) == 2 and parts[1] == want]
        if not names:
            raise GancliError(f"{listing} lists no image of split {cfg.split!r} (partition {want})")
        images, _, skipped = read_images([images_dir / n for n in names], [0] * len(names),
                                         cfg.channels or 3, cfg.image_size or cls.resolution, crop=cls.crop,
                                         skip_bad=cfg.skip_bad_images, limit=cfg.limit)
        return ImageData(images, torch.zeros(len(images), dtype=torch.int64), [], skipped)
