"""Datasets of image pairs (pix2pix) and of two unpaired domains (CycleGAN), held in memory as uint8.

Layouts under the folder ``ROOT`` (names starting with "." ignored, images found at any depth
below a domain folder, extensions as :data:`gancli.data.folder.IMAGE_EXTENSIONS`):

* paired, ``layout="folders"``: ``ROOT/A/`` and ``ROOT/B/``, matched by file name without
  extension (relative path below the domain folder: ``A/x/1.png`` pairs with ``B/x/1.jpg``).
  Every file must have its match; the error lists the first few of each side.
* paired, ``layout="ab"`` (``--paired-layout ab``, pix2pix's own datasets such as facades): each
  image is A | B side by side, A the left half; the images are in ``ROOT/<split>/`` when that
  folder exists (pix2pix's ``facades/train``, ``facades/val``), else in ``ROOT``.
* unpaired: split "train" reads ``ROOT/trainA`` + ``ROOT/trainB`` (CycleGAN's layout) when
  ``trainA`` exists, else ``ROOT/A`` + ``ROOT/B``; split "test" (or any other ``s``) reads
  ``ROOT/testA`` + ``ROOT/testB`` (``ROOT/sA`` + ``ROOT/sB``). The domains may differ in size.

``gan train --task paired`` reads the training split with :func:`describe_paired` (the resolver)
and :func:`load_paired_split` (the targets B as the images, the inputs A beside them).

Images are decoded with Pillow one at a time and brought to ``channels`` x ``size`` x ``size`` as
image folders are (:func:`gancli.data.transforms.pil_to_array`: grayscale <-> RGB, centered
square crop, bilinear resize), so A and B of another channel count or size are conformed, and
the two halves of an AB image are conformed each. ``scan_*`` list and check the files without
decoding (cheap enough for a dry run); ``load_*`` decode them.

Unpaired batches: :class:`UnpairedSampler`, B drawn independently of A as a function of
``(seed, step)`` (:func:`b_indices`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gancli.data.base import ImageData, first_line
from gancli.data.folder import DEFAULT_CHANNELS, DEFAULT_RESOLUTION, IMAGE_EXTENSIONS, images_under
from gancli.errors import GancliError, UsageError
from gancli.seeding import derive_seed

if TYPE_CHECKING:
    import torch

    from gancli.config import DataConfig
    from gancli.data import DatasetInfo

PAIRED_LAYOUTS = {"folders": "ROOT/A and ROOT/B matched by file name", "ab": "side-by-side A|B images"}
SHOWN_NAMES = 5  # unmatched names listed per side in the error


@dataclass
class PairedData:
    """Aligned pairs held in memory.

    Attributes:
        a: ``(N, C_a, H, W)`` uint8, the inputs. b: ``(N, C_b, H, W)`` uint8, the targets; ``b[i]`` is ``a[i]``'s.
        names: ``(N,)`` the pair names (relative path without extension; for AB images, the file's).
        skipped: unreadable files whose pair was left out (``skip_bad``); empty when none.
    """

    a: torch.Tensor
    b: torch.Tensor
    names: list[str]
    skipped: list[str] = field(default_factory=list)


@dataclass
class UnpairedData:
    """Two domains held in memory, of sizes N_a and N_b.

    Attributes:
        a: ``(N_a, C, H, W)`` uint8. b: ``(N_b, C, H, W)`` uint8.
        names_a, names_b: file names relative to their domain folder, in the tensors' order.
        skipped: unreadable files left out (``skip_bad``); empty when none.
    """

    a: torch.Tensor
    b: torch.Tensor
    names_a: list[str]
    names_b: list[str]
    skipped: list[str] = field(default_factory=list)


def _domain_images(folder: Path) -> list[Path]:
    """The images below a domain folder, sorted. Raises UsageError when it is missing or holds none."""
    if not folder.is_dir():
        raise UsageError(f"domain folder {folder} not found")
    paths = images_under(folder)
    if not paths:
        raise UsageError(f"domain folder {folder} holds no image; accepted extensions (any case): "
                         f"{', '.join(IMAGE_EXTENSIONS)}")
    return paths


def _names(folder: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in paths]


def _by_stem(folder: Path, paths: list[Path]) -> dict[str, Path]:
    """Relative path without extension -> file. Raises UsageError for two files of one stem."""
    out: dict[str, Path] = {}
    for p in paths:
        key = p.relative_to(folder).with_suffix("").as_posix()
        if key in out:
            raise UsageError(f"{folder} holds two images named {key!r} ({out[key].name}, {p.name}); paired folders "
                             "match files by name without extension, keep one")
        out[key] = p
    return out


def _first(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (", ..." if len(names) > SHOWN_NAMES else "")


def _check_root(root: Path) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"dataset folder {root} not found" if not root.exists() else f"{root} is not a folder")
    return root


def scan_paired(root: str | Path, layout: str = "folders", split: str = "train") -> list[tuple[str, Path, Path | None]]:
    """The pairs of ``root``, without decoding: ``[(name, file_a, file_b), ...]`` sorted by name;
    for the ``ab`` layout ``file_b`` is None (both halves are in ``file_a``).

    Raises:
        UsageError: ``layout`` not in :data:`PAIRED_LAYOUTS`; ``root`` or a domain folder missing
            or without images; names of one side without a match on the other (the counts and
            the first few names of each side); two files of one name on one side; ``ab`` on a
            folder with the subfolders A/ and B/ (the ``folders`` layout).
    """
    if layout not in PAIRED_LAYOUTS:
        valid = "; ".join(f"{k} ({v})" for k, v in PAIRED_LAYOUTS.items())
        raise UsageError(f"--paired-layout {layout!r} is not valid; valid choices: {valid}")
    root = _check_root(root)
    if layout == "ab":
        folder = root / split if (root / split).is_dir() else root
        if folder == root and split != "train":
            raise UsageError(f"no {split} split in {root}: expected a folder {root / split} of A|B images")
        if folder == root and (root / "A").is_dir() and (root / "B").is_dir():
            raise UsageError(f"{root} holds the subfolders A/ and B/: that is --paired-layout folders; "
                             "--paired-layout ab reads side-by-side A|B images")
        paths = _domain_images(folder)
        return [(p.relative_to(folder).with_suffix("").as_posix(), p, None) for p in paths]
    dir_a, dir_b = root / "A", root / "B"
    for d in (dir_a, dir_b):
        if not d.is_dir():
            raise UsageError(f"paired folder {root} needs the subfolders A/ and B/ (images matched by name); "
                             f"{d} not found")
    return match_by_name(dir_a, dir_b)


def match_by_name(dir_a: Path, dir_b: Path) -> list[tuple[str, Path, Path]]:
    """The images of two folders matched by name (relative path without extension), without
    decoding: ``[(name, file_a, file_b), ...]`` sorted by name.

    Raises:
        UsageError: a folder missing or without images; names of one side without a match on the
            other (the counts and the first few names of each side); two files of one name on one side.
    """
    a = _by_stem(dir_a, _domain_images(dir_a))
    b = _by_stem(dir_b, _domain_images(dir_b))
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        sides = []
        if only_a:
            sides.append(f"{len(only_a)} of {len(a)} in {dir_a} have no match in {dir_b.name}/ ({_first(only_a)})")
        if only_b:
            sides.append(f"{len(only_b)} of {len(b)} in {dir_b} have no match in {dir_a.name}/ ({_first(only_b)})")
        raise UsageError(f"unmatched images: {'; '.join(sides)}; {dir_a.name}/ and {dir_b.name}/ must hold the same "
                         "names (extensions aside)")
    return [(k, a[k], b[k]) for k in sorted(a)]


def _decode(path: Path, skip_bad: bool):  # -> PIL.Image.Image | None
    """The decoded image at ``path``; None if unreadable and ``skip_bad``, else GancliError."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        if not skip_bad:
            raise GancliError(f"cannot read image {path} ({first_line(e)}); fix or delete it, "
                              "or pass --skip-bad-images to leave unreadable files out") from None
        return None


def load_paired(root: str | Path, layout: str = "folders", split: str = "train", channels: int = DEFAULT_CHANNELS,
                size: int = DEFAULT_RESOLUTION, channels_b: int = 0, skip_bad: bool = False,
                limit: int = 0) -> PairedData:
    """Decode the pairs of :func:`scan_paired`.

    Args:
        channels: C of A (1 or 3). channels_b: C of B; 0 = ``channels``. size: H = W, pixels.
        skip_bad: leave a pair out when one of its files is unreadable, instead of failing.
        limit: keep the first ``limit`` pairs by name; 0 = all.

    Returns:
        :class:`PairedData` with ``a`` ``(N, channels, size, size)`` and ``b`` ``(N, channels_b, size, size)`` uint8.

    Raises:
        UsageError: as :func:`scan_paired`; an AB image of odd width (it has no two halves); the two
            files of a pair of other aspect ratios (they would not stay aligned once cropped and
            resized; the same aspect ratio at another size is conformed).
        GancliError: an unreadable file (unless ``skip_bad``), or no readable pair.
    """
    pairs = scan_paired(root, layout, split)
    return decode_pairs(pairs[:limit] if limit else pairs, channels, size, channels_b, skip_bad, where=root)


def decode_pairs(pairs: list[tuple[str, Path, Path | None]], channels: int = DEFAULT_CHANNELS,
                 size: int = DEFAULT_RESOLUTION, channels_b: int = 0, skip_bad: bool = False,
                 where: str | Path = "") -> PairedData:
    """Decode ``pairs`` as :func:`scan_paired` or :func:`match_by_name` list them (``file_b`` None:
    a side-by-side A|B image), in that order; arguments, result and errors as :func:`load_paired`
    (``where``: the folder named when no pair can be read)."""
    import numpy as np
    import torch

    from gancli.data.transforms import pil_to_array

    channels_b = channels_b or channels
    a_list, b_list, names, skipped = [], [], [], []
    for name, path_a, path_b in pairs:
        im_a = _decode(path_a, skip_bad)
        im_b = im_a if path_b is None else _decode(path_b, skip_bad)
        if im_a is None or im_b is None:
            skipped.append(str(path_a if im_a is None else path_b))
            continue
        if path_b is not None and im_a.size[0] * im_b.size[1] != im_b.size[0] * im_a.size[1]:
            raise UsageError(f"{path_a} is {im_a.size[0]}x{im_a.size[1]} pixels but {path_b} is "
                             f"{im_b.size[0]}x{im_b.size[1]}: the two images of a pair must have the same size, or "
                             "at least the same aspect ratio (pix2pix aligns them pixel for pixel once both are "
                             "cropped and resized); resize one side to the other")
        if path_b is None:
            w, h = im_a.size
            if w % 2:
                raise UsageError(f"{path_a} is {w}x{h} pixels: a side-by-side A|B image needs an even width "
                                 "(A the left half, B the right); is --paired-layout ab the layout of this folder?")
            im_a, im_b = im_a.crop((0, 0, w // 2, h)), im_a.crop((w // 2, 0, w, h))
        a_list.append(pil_to_array(im_a, channels, size))
        b_list.append(pil_to_array(im_b, channels_b, size))
        names.append(name)
    if not names:
        raise GancliError(f"none of the {len(skipped)} image pairs in {where} could be read (first: {skipped[0]})")

    def stack(arrays: list) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)))

    return PairedData(stack(a_list), stack(b_list), names, skipped)


def _paired_root(cfg: DataConfig) -> Path:
    """The folder of ``--task paired``'s ``--dataset``. Raises UsageError for a registered dataset name."""
    from gancli.data import DATASETS, is_folder_path

    if cfg.dataset in DATASETS or not is_folder_path(cfg.dataset):
        raise UsageError(f"--task paired needs --dataset FOLDER, a folder of image pairs (A/ and B/ matched by "
                         f"file name, or side-by-side A|B images with --paired-layout ab); got {cfg.dataset!r}")
    return Path(cfg.dataset).expanduser()


def describe_paired(cfg: DataConfig, layout: str) -> DatasetInfo:
    """The training data of ``--task paired`` as configured, without decoding (for the resolver and
    ``--dry-run``): B's (the targets') channels and size after ``--channels`` / ``--image-size``
    (RGB 64 px by default, as image folders), no classes, the number of pairs.

    Raises:
        UsageError: ``--dataset`` not a folder; bad ``--channels`` / ``--image-size``; as :func:`scan_paired`.
    """
    from gancli.data import DatasetInfo, check_shape_options

    check_shape_options(cfg)
    pairs = scan_paired(_paired_root(cfg), layout, cfg.split)
    return DatasetInfo(cfg.channels or DEFAULT_CHANNELS, cfg.image_size or DEFAULT_RESOLUTION, 0,
                       {cfg.split: len(pairs)})


def load_paired_split(cfg: DataConfig, layout: str) -> ImageData:
    """The training data of ``--task paired``: :class:`~gancli.data.ImageData` whose ``images``
    are the targets B ``(N, C, S, S)`` and ``inputs`` the inputs A ``(N, C, S, S)``, both uint8 at
    :func:`describe_paired`'s shape (``--channels`` applies to both sides), ``labels`` ``arange(N)``
    (a batch's labels are the indices of its pairs), the first ``--limit`` pairs by name.

    Raises:
        UsageError / GancliError: as :func:`describe_paired` and :func:`load_paired`.
    """
    import torch

    from gancli.data import ImageData

    info = describe_paired(cfg, layout)
    pairs = load_paired(_paired_root(cfg), layout, cfg.split, info.channels, info.resolution,
                        skip_bad=cfg.skip_bad_images, limit=cfg.limit)
    n = pairs.b.shape[0]
    return ImageData(pairs.b, torch.arange(n, dtype=torch.int64), [], pairs.skipped, inputs=pairs.a)


def domain_folders(root: str | Path, split: str = "train") -> tuple[Path, Path]:
    """The two domain folders of ``root`` for ``split`` (see the module doc).

    Raises:
        UsageError: ``root`` missing, or neither layout's folders both present (names the one missing).
    """
    root = _check_root(root)
    candidates = [("trainA", "trainB"), ("A", "B")] if split == "train" else [(f"{split}A", f"{split}B")]
    for name_a, name_b in candidates:
        if (root / name_a).is_dir() or (root / name_b).is_dir():
            missing = [n for n in (name_a, name_b) if not (root / n).is_dir()]
            if missing:
                raise UsageError(f"domain folder {root / missing[0]} not found; an unpaired dataset holds "
                                 f"{name_a}/ and {name_b}/")
            return root / name_a, root / name_b
    expected = " or ".join(f"{a}/ and {b}/" for a, b in candidates)
    raise UsageError(f"no {split} domains in {root}: expected the subfolders {expected}")


def scan_unpaired(root: str | Path, split: str = "train") -> tuple[Path, list[Path], Path, list[Path]]:
    """``(folder_a, files_a, folder_b, files_b)``, sorted, without decoding.

    Raises:
        UsageError: as :func:`domain_folders`; a domain folder without images (named).
    """
    dir_a, dir_b = domain_folders(root, split)
    return dir_a, _domain_images(dir_a), dir_b, _domain_images(dir_b)


def load_unpaired(root: str | Path, split: str = "train", channels: int = DEFAULT_CHANNELS,
                  size: int = DEFAULT_RESOLUTION, skip_bad: bool = False, limit: int = 0) -> UnpairedData:
    """Decode both domains of :func:`scan_unpaired`.

    Args:
        channels: C of both domains (1 or 3). size: H = W, pixels.
        skip_bad: leave unreadable files out instead of failing. limit: first ``limit`` images of each domain; 0 = all.

    Returns:
        :class:`UnpairedData`: ``a`` ``(N_a, channels, size, size)``, ``b`` ``(N_b, ...)`` uint8.

    Raises:
        UsageError: as :func:`scan_unpaired`. GancliError: an unreadable file (unless ``skip_bad``),
        or a domain with no readable image.
    """
    from gancli.data.folder import read_images

    dir_a, files_a, dir_b, files_b = scan_unpaired(root, split)
    out = []
    skipped: list[str] = []
    for folder, files in ((dir_a, files_a), (dir_b, files_b)):
        images, _, bad = read_images(files, [0] * len(files), channels, size, skip_bad=skip_bad, limit=limit)
        bad_set = set(bad)
        kept = [p for p in files if str(p) not in bad_set][:images.shape[0]]
        out.append((images, _names(folder, kept)))
        skipped += bad
    (a, names_a), (b, names_b) = out
    return UnpairedData(a, b, names_a, names_b, skipped)


# -- an unpaired dataset as training data (gan train --task unpaired) ---------------------------------

#: The largest side ``--image-size 0`` takes from an unpaired dataset's images, pixels.
MAX_OWN_SIZE = 256
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _own_shape(path: Path) -> tuple[int, int]:
    """``(channels, shorter side)`` of one image file, read from its header."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return (1 if im.mode in _GRAY_MODES else 3), min(im.size)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise GancliError(f"cannot read image {path} ({first_line(e)}); fix or delete it") from None


def describe_unpaired(cfg):  # (DataConfig) -> DatasetInfo
    """The :class:`~gancli.data.DatasetInfo` of the unpaired dataset ``cfg.dataset`` (a folder
    ``ROOT``; see the module doc), listing its files without decoding them.

    Both domains are brought to one shape: ``--channels`` (0 = 1 when the first image of each
    domain is grayscale, else 3: a grayscale domain beside an RGB one is converted to RGB) and
    ``--image-size`` (0 = the shorter side of domain A's first image, at most
    :data:`MAX_OWN_SIZE`). ``sizes["train"]`` is domain A's image count (an epoch is a pass over
    A; B is drawn at random, :func:`b_indices`); no classes.

    Raises:
        UsageError: ``cfg.dataset`` is not a folder (a dataset name), a domain folder is missing
            or holds no image (named), or bad ``--channels`` / ``--image-size``.
        GancliError: the first image of a domain cannot be read.
    """
    from gancli.data import DATASETS, DatasetInfo, check_shape_options

    check_shape_options(cfg)
    if cfg.dataset in DATASETS:
        raise UsageError(f"--task unpaired takes a folder with the domain folders A/ and B/ (or trainA/ and trainB/) "
                         f"as --dataset, not the dataset {cfg.dataset!r}")
    _, files_a, _, files_b = scan_unpaired(cfg.dataset, cfg.split)
    if cfg.channels and cfg.image_size:
        channels, size = cfg.channels, cfg.image_size
    else:
        (c_a, side), (c_b, _) = _own_shape(files_a[0]), _own_shape(files_b[0])
        channels = cfg.channels or (1 if c_a == c_b == 1 else 3)
        size = cfg.image_size or min(side, MAX_OWN_SIZE)
    return DatasetInfo(channels, size, 0, {cfg.split: len(files_a)})


@dataclass
class DomainData(ImageData):
    """An unpaired dataset as the training loop takes it: domain A as :attr:`images` (batched
    as any dataset, labels all 0, no classes) and domain B as :attr:`b`.

    Attributes:
        b: ``(N_b, C, H, W)`` uint8, domain B (same C, H, W as ``images``).
        names_a, names_b: file names relative to their domain folder, in the tensors' order.
    """

    b: torch.Tensor | None = None
    names_a: list[str] = field(default_factory=list)
    names_b: list[str] = field(default_factory=list)


def load_domains(cfg) -> DomainData:  # (DataConfig) -> DomainData
    """Decode the unpaired dataset ``cfg.dataset`` at the shape of :func:`describe_unpaired`
    (``cfg.limit``: the first N images of each domain; ``cfg.skip_bad_images``: leave
    unreadable files out).

    Raises:
        UsageError, GancliError: as :func:`describe_unpaired` and :func:`load_unpaired`.
    """
    import torch

    info = describe_unpaired(cfg)
    d = load_unpaired(cfg.dataset, cfg.split, info.channels, info.resolution, skip_bad=cfg.skip_bad_images,
                      limit=cfg.limit)
    return DomainData(d.a, torch.zeros(d.a.shape[0], dtype=torch.int64), [], d.skipped, b=d.b,
                      names_a=d.names_a, names_b=d.names_b)


# -- unpaired batches -------------------------------------------------------------------------------


def b_indices(n_b: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """``(batch_size,)`` int64 in [0, n_b): the B images of ``step``, uniform with replacement
    (as CycleGAN's unaligned loader, which draws B at random for each A), from a CPU generator
    seeded with ``derive_seed(seed, f"unpaired-b-{step}")``: independent of A and of the other
    steps, so resuming at any step draws the same B."""
    import torch

    if n_b < 1 or batch_size < 1:
        raise ValueError(f"need n_b >= 1 and batch_size >= 1, got {n_b} and {batch_size}")
    g = torch.Generator().manual_seed(derive_seed(seed, f"unpaired-b-{step}"))
    return torch.randint(0, n_b, (batch_size,), generator=g)


class UnpairedSampler:
    """The indices of an unpaired batch, a pure function of ``(seed, step)``.

    A: shuffled epochs, drop-last, in the very order of
    :class:`gancli.data.batcher.DeviceBatcher` (epoch ``e`` = ``randperm(n_a)`` of a CPU
    generator seeded ``seed * 100003 + e``), so domain A is batched as any dataset is.
    B: :func:`b_indices`. With several processes, ``batch_size`` is the global batch and rank
    ``r`` of ``world_size`` gets the ``r``-th slice of both.

    Args:
        n_a, n_b: domain sizes. batch_size: global batch, in [1, n_a] and divisible by ``world_size``.
        seed: data-order seed. rank, world_size: this process's slice; ``0, 1`` = all.

    Raises:
        ValueError: a batch size out of range or that does not split over the processes.
    """

    def __init__(self, n_a: int, n_b: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if not 0 < batch_size <= n_a or n_b < 1:
            raise ValueError(f"batch_size must be in [1, {n_a}] (domain A's size) and domain B non-empty, "
                             f"got batch_size {batch_size}, {n_b} B images")
        if batch_size % world_size or not 0 <= rank < world_size:
            raise ValueError(f"batch_size {batch_size} does not split over {world_size} processes (rank {rank})")
        self.n_a, self.n_b, self.batch_size, self.seed = n_a, n_b, batch_size, seed
        self.steps_per_epoch = n_a // batch_size
        self.local = batch_size // world_size
        self.offset = rank * self.local
        self._epoch, self._perm = -1, None

    def indices(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(idx_a, idx_b)``, each ``(batch_size / world_size,)`` int64 on the CPU, for 0-based ``step``."""
        import torch

        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._perm = torch.randperm(self.n_a, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
            self._epoch = epoch
        start = i * self.batch_size + self.offset
        idx_a = self._perm[start:start + self.local]
        idx_b = b_indices(self.n_b, self.batch_size, self.seed, step)[self.offset:self.offset + self.local]
        return idx_a, idx_b
