"""Applying an image-to-image run to image files: the library half of ``gan translate``.

One image at a time, at its own size: the generator pads H and W to its ``multiple`` and crops
back (:class:`~gancli.models.pix2pix.Pix2PixGenerator`), and an image with a side larger than
``tile`` goes through :func:`gancli.translate.tiling.tiled_apply` (overlapping tiles, blended
seams). What G is given depends on the run's corruption (its ``--task``):

=========  =============================================  ==========================================
task       the input file (without ``corrupt``)            with ``corrupt`` (a clean image)
=========  =============================================  ==========================================
inpaint    the damaged image; ``mask`` (white = hole)      holes drawn as in training; target = input
           gives the holes; known pixels are kept
superres   a low-res image, upsampled by the run's         downscaled by ``scale`` (sides must divide),
           ``scale`` as in training (bicubic / nearest):   upsampled back; output at the input's size,
           the output is ``scale`` x the input's size      target = input
denoise    a noisy image                                   noise of the run's ``noise_std`` added
colorize   a grayscale (1-channel) image -> RGB            the luma of an RGB image; target = input
edges      a 1-channel edge map (black lines on white)     the Sobel edge map; target = input
other      the A-domain image (paired / unpaired runs)     refused (no training corruption)
=========  =============================================  ==========================================

Files are read with PIL, alpha dropped (as training reads them): gray modes count 1 channel,
color and palette modes 3. An input whose channel count is not what the run takes is refused
(:class:`~gancli.errors.UsageError`, naming the file, its channels and the expected). The k-th
image of a call (0-based, in :func:`plan` order) is corrupted with ``(seed, k)``
(:meth:`~gancli.translate.load.Translator.corrupt`), so the same command gives the same holes.
Outputs are 8-bit PNGs (mode ``L`` or ``RGB``), written atomically.

Import cost: torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from gancli.errors import GancliError, UsageError
from gancli.fsutil import atomic_path
from gancli.translate.load import Translator
from gancli.translate.tiling import tiled_apply

__all__ = ["COMPARE_GAP", "DEFAULT_OVERLAP", "DEFAULT_TILE", "INPUT_EXTENSIONS", "Job", "Translation", "Written",
           "check_options", "compare_strip", "describe", "expected_channels", "plan", "prepare", "read_image",
           "read_mask", "run_generator", "to_uint8", "translate_files", "translate_image", "upsample", "write_png"]

#: ``--tile``: images with a side above this many pixels go through tiles; 0 = never tile
DEFAULT_TILE = 256
#: ``--overlap``: pixels shared by neighbouring tiles
DEFAULT_OVERLAP = 32
#: image files a folder input contributes (any case), as ``gan train --dataset FOLDER`` reads them
INPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
#: black pixels between the panels of a ``--compare`` strip
COMPARE_GAP = 2
#: PIL modes read as one channel (the others are converted to RGB; alpha is dropped)
_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


# -- inputs and outputs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One image to translate.

    Attributes:
        source: the input file. output: where its PNG goes. compare: where its ``--compare`` strip
        goes (None: no strip). index: its position in the call (the corruption's ``index``).
    """

    source: Path
    output: Path
    compare: Path | None
    index: int


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in INPUT_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def plan(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, compare: bool = False) -> tuple[list[Job], bool]:
    """The jobs of ``gan translate INPUT... -o OUTPUT``.

    ``output`` ending in ``.png`` is a file: the one input must be a file (its strip: ``<stem>-compare.png``
    beside it). Otherwise ``output`` is a folder: a file input ``x.jpg`` writes ``OUTPUT/x.png``, a
    folder input writes each image below it (any depth, hidden names skipped, sorted) at the same
    relative path with the suffix ``.png``; strips are ``<name>-compare.png`` beside them.

    Returns:
        ``(jobs, single_file)``; the ``output`` paths of a folder are relative to it.

    Raises:
        UsageError: a missing input, a folder without images, a non-PNG file output, a file output
            for several images, or two inputs that would write the same file (the first named).
    """
    output = Path(output)
    sources: list[tuple[Path, Path]] = []  # (file, output name relative to the output folder)
    for given in map(Path, inputs):
        if given.is_dir():
            found = _images_in(given)
            if not found:
                raise UsageError(f"no images in {given}; accepted extensions (any case): {', '.join(INPUT_EXTENSIONS)}")
            sources += [(p, p.relative_to(given).with_suffix(".png")) for p in found]
        elif given.is_file():
            sources.append((given, Path(given.name).with_suffix(".png")))
        else:
            raise UsageError(f"input {given} does not exist")
    single = output.suffix.lower() == ".png"
    if output.suffix and not single:
        raise UsageError(f"-o {output}: outputs are PNGs; give a .png file (one input) or a folder")
    if single and (len(sources) != 1 or Path(inputs[0]).is_dir()):
        raise UsageError(f"-o {output} is one file but the inputs hold {len(sources)} image"
                         f"{'s' if len(sources) != 1 else ''}; give a folder")
    if single:
        strip = output.with_name(f"{output.stem}-compare.png") if compare else None
        return [Job(sources[0][0], output, strip, 0)], True
    seen: dict[Path, Path] = {}
    jobs = []
    for k, (src, rel) in enumerate(sources):
        strip = rel.with_name(f"{rel.stem}-compare.png") if compare else None
        for name in (rel, strip):
            if name is None:
                continue
            if name in seen:
                raise UsageError(f"{seen[name]} and {src} would both write {output / name}; "
                                 "translate them into different -o folders")
            seen[name] = src
        jobs.append(Job(src, rel, strip, k))
    return jobs, False


def _channels_of(mode: str) -> int:
    return 1 if mode in _GRAY_MODES else 3


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """The image at ``path`` as ``(1, C, H, W)`` float32 in [-1, 1], at its own size: C = 1 for gray
    modes (16-bit ones scaled from 65535), else 3 (RGB); alpha is dropped.

    Raises:
        UsageError: an unreadable file.
    """
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
                a = np.asarray(im, dtype=np.float64) / 65535.0
            elif mode == "F":
                a = np.clip(np.asarray(im, dtype=np.float64), 0.0, 1.0)
            elif _channels_of(mode) == 1:
                a = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
            else:
                rgb = im.convert("RGBA").convert("RGB") if mode in ("P", "PA") else im.convert("RGB")
                a = np.asarray(rgb, dtype=np.float64) / 255.0
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UsageError(f"cannot read image {path} ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    a = a[:, :, None] if a.ndim == 2 else a
    x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float()
    return (x * 2 - 1).clamp_(-1, 1).unsqueeze(0)


def read_mask(path: str | os.PathLike, height: int, width: int, for_input: str | os.PathLike = "") -> torch.Tensor:
    """The inpainting mask at ``path``: ``(1, 1, height, width)`` float32 {0, 1}, 1 = hole (a pixel
    whose gray value is above mid grey: white = hole).

    Raises:
        UsageError: unreadable, or not ``width`` x ``height`` pixels (naming ``for_input``).
    """
    x = read_image(path)
    if x.shape[-2:] != (height, width):
        raise UsageError(f"--mask {path} is {x.shape[-1]}x{x.shape[-2]} px but the input {for_input} is "
                         f"{width}x{height}; the mask must have the input's size")
    gray = x.mean(1, keepdim=True)
    return (gray > 0).float()


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """``(C, H, W)`` in [-1, 1] -> ``(H, W, C)`` uint8, rounded as ``gan sample`` writes images
    (torchvision's ``save_image``: ``x * 255 + 0.5`` clamped, truncated)."""
    unit = (image.detach().float().cpu() + 1) / 2
    return unit.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0)


def write_png(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write ``image`` ``(C, H, W)`` in [-1, 1] (C = 1: mode ``L``, 3: ``RGB``) as a PNG, atomically.

    Raises:
        ValueError: C not 1 or 3.
    """
    from PIL import Image

    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with C 1 or 3, got {tuple(image.shape)}")
    a = to_uint8(image).numpy()
    im = Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")
    path = Path(path)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return path


# -- what G is given -------------------------------------------------------------------------------
def expected_channels(translator: Translator, corrupt: bool = False) -> int:
    """C of the input files: the run's image channels with ``corrupt`` or for inpainting (the mask
    is separate), else G's input channels (colorize and edges: 1)."""
    if corrupt or translator.corruption == "inpaint":
        return translator.img_channels
    return translator.in_channels


def check_options(translator: Translator, *, mask: str | os.PathLike | None = None, corrupt: bool = False,
                  label: str = "") -> None:
    """Refuse option combinations the run cannot take, before any image is read.

    Raises:
        UsageError: ``mask`` with ``corrupt`` or on a run that is not inpainting; an inpainting run
            without either; ``corrupt`` on a run without a training corruption.
    """
    label = label or str(translator.path)
    if mask is not None and corrupt:
        raise UsageError("give --mask (your holes) or --corrupt (the training holes), not both")
    if mask is not None and translator.corruption != "inpaint":
        raise UsageError(f"--mask applies to inpaint runs; {label} is a --task {translator.task} run")
    if translator.corruption == "inpaint" and mask is None and not corrupt:
        raise UsageError(f"{label} is an inpaint run: give --mask PNG (white = hole, the input's size) or "
                         "--corrupt (holes drawn as in training on clean inputs)")
    if corrupt and not translator.corruption:
        raise UsageError(f"--corrupt applies to runs with a training corruption (inpaint, superres, denoise, "
                         f"colorize, edges); {label} is a --task {translator.task} run: give its inputs as they are")


def upsample(low: torch.Tensor, scale: int, mode: str = "bicubic") -> torch.Tensor:
    """A low-res ``(N, C, h, w)`` in [-1, 1] brought to ``(N, C, h * scale, w * scale)`` exactly as
    :func:`gancli.translate.corrupt.superres` does in training: bicubic (``align_corners=False``,
    clamped to [-1, 1]) or ``mode="nearest"`` block copies."""
    if mode == "nearest":
        return F.interpolate(low, scale_factor=scale, mode="nearest")
    return F.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def prepare(translator: Translator, image: torch.Tensor, *, mask: torch.Tensor | None = None, corrupt: bool = False,
            seed: int = 0, index: int = 0, name: str | os.PathLike = "") -> tuple[torch.Tensor, dict, torch.Tensor | None]:
    """G's input for one image (module docstring's table).

    Args:
        image: ``(1, C, H, W)`` in [-1, 1], as :func:`read_image` gives it.
        mask: inpainting: ``(1, 1, H, W)`` {0, 1}, 1 = hole (:func:`read_mask`).
        corrupt: ``image`` is clean: apply the training corruption at (``seed``, ``index``).
        name: the file, for messages.

    Returns:
        ``(source (1, in_channels, H', W'), extra, target)``: ``extra`` as
        :class:`~gancli.translate.corrupt.Corrupted`'s (inpainting: ``mask`` and ``damaged``, for
        :meth:`~gancli.translate.load.Translator.repair`); ``target`` the clean image with
        ``corrupt``, else None.

    Raises:
        UsageError: the channels are not :func:`expected_channels` (naming ``name``), or with
            ``corrupt`` on superres, sides the run's scale does not divide.
    """
    want = expected_channels(translator, corrupt)
    have = image.shape[1]
    if have != want:
        what = {1: "grayscale", 3: "RGB"}
        raise UsageError(f"{name or 'the input'} has {have} channel{'s' if have != 1 else ''} "
                         f"({what.get(have, '?')}); the run takes {want} ({what.get(want, '?')})"
                         + (" clean images with --corrupt" if corrupt and want != translator.in_channels else ""))
    task, options = translator.corruption, translator.options
    if corrupt:
        if task == "superres":
            s = options["scale"]
            h, w = image.shape[-2:]
            if h % s or w % s:
                raise UsageError(f"{name or 'the input'} is {w}x{h} px; --corrupt on this superres run downscales "
                                 f"by its scale {s}, which must divide both sides")
        source, extra = translator.corrupt(image, seed, index)
        return source, dict(extra), image
    if task == "inpaint":
        from gancli.translate.corrupt import HOLE_FILL

        damaged = image.masked_fill(mask > 0.5, HOLE_FILL)
        return torch.cat([damaged, mask], 1), {"mask": mask, "damaged": damaged}, None
    if task == "superres":
        return upsample(image, options["scale"], options.get("upsample", "bicubic")), {}, None
    return image, {}, None


@torch.no_grad()
def run_generator(translator: Translator, source: torch.Tensor, extra: dict | None = None,
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP) -> tuple[torch.Tensor, bool]:
    """G on ``source`` ``(1, in_channels, H, W)``: in one pass, or in tiles when ``tile`` > 0 and a side
    is larger than ``tile``; inpainting keeps the known pixels. Returns ``(output (1, C, H, W) float32
    in [-1, 1] on the CPU, tiled)``."""
    source = source.to(translator.device)
    if not tile or max(source.shape[-2:]) <= tile:
        return translator.repair(source, extra).clamp_(-1, 1).cpu(), False
    out = tiled_apply(lambda t: translator.G(t).float(), source, tile, overlap, translator.multiple)
    if extra and "mask" in extra:
        from gancli.translate.corrupt import keep_known

        out = keep_known(out, extra["damaged"].to(out.device), extra["mask"].to(out.device))
    return out.clamp_(-1, 1).cpu(), True


@dataclass
class Translation:
    """One translated image, ``(1, C, H, W)`` tensors in [-1, 1] on the CPU.

    Attributes:
        input: what G was given, as an image (inpainting: the damaged image; superres: upsampled;
            colorize / edges: 1 channel). output: G's output. target: the clean input with
            ``corrupt``, else None. tiled: the output was made in tiles.
    """

    input: torch.Tensor
    output: torch.Tensor
    target: torch.Tensor | None = None
    tiled: bool = False


def translate_image(translator: Translator, image: torch.Tensor, *, mask: torch.Tensor | None = None,
                    corrupt: bool = False, seed: int = 0, index: int = 0, tile: int = DEFAULT_TILE,
                    overlap: int = DEFAULT_OVERLAP, name: str | os.PathLike = "") -> Translation:
    """:func:`prepare` then :func:`run_generator`: one image ``(1, C, H, W)`` in [-1, 1] translated.

    Raises:
        UsageError: as :func:`prepare`.
    """
    source, extra, target = prepare(translator, image, mask=mask, corrupt=corrupt, seed=seed, index=index, name=name)
    out, tiled = run_generator(translator, source, extra, tile, overlap)
    shown = extra["damaged"] if "damaged" in extra else source
    return Translation(shown.float().cpu(), out, target, tiled)


def compare_strip(t: Translation) -> torch.Tensor:
    """``input | output | target`` (target only when known) side by side, :data:`COMPARE_GAP` black
    pixels apart: ``(C, H, k * W + (k - 1) * gap)`` in [-1, 1] for k panels; 1-channel inputs of an
    RGB run are shown gray."""
    c = t.output.shape[1]
    panels = [t.input, t.output] + ([t.target] if t.target is not None else [])
    panels = [p.expand(-1, c, -1, -1) if p.shape[1] == 1 else p for p in panels]
    gap = torch.full((1, c, t.output.shape[2], COMPARE_GAP), -1.0)
    parts = []
    for i, p in enumerate(panels):
        parts += [gap] if i else []
        parts.append(p.float())
    return torch.cat(parts, 3)[0]


def _quality(t: Translation) -> dict[str, float | None]:
    """PSNR / SSIM of the output against the target (:mod:`gancli.translate.quality`); SSIM only
    for sides >= 11 px; ``inf`` (an exact match) as None, JSON having no infinity."""
    from gancli.translate.quality import psnr, ssim

    out = {"psnr": psnr(t.output, t.target)}
    if min(t.output.shape[-2:]) >= 11:
        out["ssim"] = ssim(t.output, t.target)
    return {k: (v if math.isfinite(v) else None) for k, v in out.items()}


@dataclass
class Written:
    """What :func:`translate_files` wrote for one :class:`Job`: paths, sizes ``(w, h)`` in pixels,
    whether it was tiled and, with ``corrupt``, ``psnr`` / ``ssim`` against the clean input."""

    job: Job
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    tiled: bool
    quality: dict[str, float | None] = field(default_factory=dict)


def translate_files(translator: Translator, jobs: Sequence[Job], root: str | os.PathLike | None = None, *,
                    mask: str | os.PathLike | None = None, corrupt: bool = False, seed: int = 0,
                    tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                    progress: Callable[[int], None] | None = None) -> list[Written]:
    """Translate each job's file and write its PNG (and strip) below ``root`` (None: the jobs' paths
    as they are). One image at a time; ``progress(done)`` after each.

    Raises:
        UsageError: as :func:`check_options`, :func:`read_image`, :func:`read_mask` and :func:`prepare`.
        GancliError: G failed on an image (named).
    """
    check_options(translator, mask=mask, corrupt=corrupt)
    root = Path(root) if root is not None else None
    written = []
    for done, job in enumerate(jobs, 1):
        image = read_image(job.source)
        holes = read_mask(mask, *image.shape[-2:], for_input=job.source) if mask is not None else None
        try:
            t = translate_image(translator, image, mask=holes, corrupt=corrupt, seed=seed, index=job.index,
                                tile=tile, overlap=overlap, name=job.source)
        except (RuntimeError, ValueError) as e:  # e.g. out of memory on a huge image
            hint = "; try a smaller --tile" if tile else ""
            raise GancliError(f"translating {job.source} failed ({str(e).splitlines()[0]}){hint}") from None
        out_path = root / job.output if root is not None else job.output
        out_path.parent.mkdir(parents=True, exist_ok=True)
        write_png(t.output[0], out_path)
        if job.compare is not None:
            write_png(compare_strip(t), root / job.compare if root is not None else job.compare)
        w = Written(job, (image.shape[-1], image.shape[-2]), (t.output.shape[-1], t.output.shape[-2]), t.tiled)
        if t.target is not None:
            w.quality = _quality(t)
        written.append(w)
        if progress is not None:
            progress(done)
    return written


def describe(written: Sequence[Written]) -> dict[str, Any]:
    """The means of the ``psnr`` / ``ssim`` of ``written`` (those that have one; None when none)."""
    out: dict[str, Any] = {}
    for key in ("psnr", "ssim"):
        values = [w.quality.get(key) for w in written if w.quality.get(key) is not None]
        out[key] = sum(values) / len(values) if values else None
    return out
