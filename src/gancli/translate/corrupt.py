"""The training corruptions of the repair tasks: what the generator is given instead of the clean image.

Every task is a pure function ``(images, seed, step) -> Corrupted(input, extra)``: the random
draws come from a CPU :class:`torch.Generator` seeded with
``derive_seed(seed, f"corrupt-{step}")`` (:func:`corruption_generator`), never from the global
RNG, so a resumed run, an evaluation or ``gan translate --corrupt`` sees exactly the inputs the
uninterrupted run saw, on any device. The draws of one call depend on the batch size (they are
made for the whole batch in one fixed order), not on the image values. A process of a
multi-process run holds a slice of the global batch: it passes ``global_batch`` and the slice's
``offset``, the draws are made for the global batch and the slice's are kept, so every image
gets the corruption it gets in one process, whatever the number of processes.

=========  ===========  =====  ===================================================================
task       input C      RGB?   input
=========  ===========  =====  ===================================================================
inpaint    C + 1        no     damaged image (holes at 0, mid grey) and the mask (1 = hole)
superres   C            no     area-averaged by ``scale``, upsampled back (bicubic) to H x W
denoise    C            no     plus Gaussian noise of ``noise_std`` ([-1, 1] units), clamped
colorize   1            yes    the luma (ITU-R BT.601)
edges      1            no     Sobel edges, black (-1) lines on white (+1), as edges2shoes
=========  ===========  =====  ===================================================================

:data:`TASKS` declares each (options with their defaults and valid values, input channels, RGB
need); :func:`check_task` validates a task and its options against an image shape without any
tensor (for the resolver: a bad option fails before a run directory exists); :func:`corrupt`
applies one by name. Option errors are :class:`TaskOptionError`, both a ``UsageError`` (one
line, exit 2) and a ``ValueError``, named by the option's flag (``--scale``).

Importing this module imports no torch (``gan --help`` may list :data:`TASKS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from gancli.errors import UsageError
from gancli.registry import Registry
from gancli.seeding import derive_seed
from gancli.translate.masks import box_masks, default_mask_size, free_masks

if TYPE_CHECKING:
    import torch

#: Value of the hole pixels in the damaged image, in [-1, 1] units: 0 = mid grey, the mean of the
#: range, so a hole carries no brightness (as DeepFill's ``x * (1 - mask)`` on [-1, 1] images,
#: Yu et al. 2019, arXiv 1806.03589). The mask channel tells holes from real grey pixels.
HOLE_FILL = 0.0
MASK_KINDS = ("box", "free", "mixed")
SCALES = (2, 4, 8)
UPSAMPLE_MODES = ("bicubic", "nearest")
#: ITU-R BT.601 luma weights (R, G, B); they sum to 1, so [-1, 1] maps to [-1, 1].
BT601 = (0.299, 0.587, 0.114)
#: Sobel gain: a step edge of height 2 (-1 -> +1, the full range) gives a gradient magnitude of 8.
SOBEL_GAIN = 8.0


class TaskOptionError(UsageError, ValueError):
    """A task option that is not valid, or a task that does not fit the images (colorize on
    grayscale, a scale that does not divide the size). One line naming the value and the valid ones."""


class Corrupted(NamedTuple):
    """What a corruption returns; unpacks as ``input, extra = task(...)``.

    Attributes:
        input: ``(N, C_in, H, W)`` float32 on the images' device: the generator's input
            (``C_in = TASKS.get(name).input_channels(C)``).
        extra: named tensors some tasks add: inpaint ``mask`` ``(N, 1, H, W)`` float {0, 1}
            (1 = hole) and ``damaged`` ``(N, C, H, W)``; superres ``low`` ``(N, C, H/s, W/s)``
            (the downscaled image); empty otherwise.
    """

    input: torch.Tensor
    extra: dict[str, torch.Tensor]


def corruption_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of the corruption at ``step`` of a run seeded ``seed`` (the same on
    every process: each draws for the global batch, see :func:`batch_rows`)."""
    import torch

    return torch.Generator().manual_seed(derive_seed(seed, f"corrupt-{step}"))


def batch_rows(n: int, global_batch: int = 0, offset: int = 0) -> tuple[int, slice]:
    """Where ``n`` images sit in the batch the draws are made for: ``(size, rows)``, the
    global batch's size (``global_batch``; 0 = ``n``, the images are the whole batch) and the
    images' rows ``offset:offset + n`` in it.

    Raises:
        ValueError: ``offset < 0`` or ``offset + n > global_batch``.
    """
    total = global_batch or n
    if offset < 0 or offset + n > total:
        raise ValueError(f"images {offset} to {offset + n} do not fit a global batch of {total} "
                         "(offset >= 0, offset + N <= global_batch)")
    return total, slice(offset, offset + n)


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def _bad(option: str, value: Any, valid: str) -> TaskOptionError:
    return TaskOptionError(f"{_flag(option)} {value!r} is not valid; valid choices: {valid}")


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be (N, C, H, W) float in [-1, 1], got {tuple(images.shape)} {images.dtype}")


# -- inpaint ----------------------------------------------------------------------------------------


def check_inpaint(height: int, width: int, mask: str = "box", mask_size: int = 0) -> None:
    """Raises TaskOptionError for a ``mask`` kind not in :data:`MASK_KINDS` or a ``mask_size``
    that is negative or larger than the shorter side."""
    if mask not in MASK_KINDS:
        raise _bad("mask", mask, ", ".join(MASK_KINDS))
    if not isinstance(mask_size, int) or not 0 <= mask_size <= min(height, width):
        raise _bad("mask_size", mask_size, f"1 to {min(height, width)} pixels for {height}x{width} images, "
                   f"or 0 ({default_mask_size(height, width)} px, 3/7 of the side)")


def make_masks(n: int, height: int, width: int, generator: torch.Generator, mask: str = "box",
               mask_size: int = 0, rows: slice = slice(None)) -> torch.Tensor:
    """``(n, 1, height, width)`` float32 {0, 1} (1 = hole) on the CPU: ``mask`` "box" (a square of
    ``mask_size`` px, 0 = :func:`default_mask_size`), "free" (:func:`free_masks`) or "mixed" (box
    or free, each with probability 0.5; both are drawn for every image, then one is kept).
    ``rows``: only these of the ``n`` masks are returned (the draws are made for all ``n``).

    Raises:
        TaskOptionError: as :func:`check_inpaint`.
    """
    import torch

    check_inpaint(height, width, mask, mask_size)
    size = mask_size or default_mask_size(height, width)
    if mask == "box":
        return box_masks(n, height, width, size, generator)[rows]
    if mask == "free":
        return free_masks(n, height, width, generator, rows)
    boxes = box_masks(n, height, width, size, generator)[rows]
    free = free_masks(n, height, width, generator, rows)
    pick_box = torch.rand(n, generator=generator)[rows] < 0.5
    return torch.where(pick_box[:, None, None, None], boxes, free)


def inpaint(images: torch.Tensor, seed: int, step: int, *, mask: str = "box", mask_size: int = 0,
            global_batch: int = 0, offset: int = 0) -> Corrupted:
    """Holes punched in the images.

    Args:
        images: ``(N, C, H, W)`` float in [-1, 1], the clean images.
        seed, step: see :func:`corruption_generator`. global_batch, offset: see :func:`batch_rows`.
        mask: "box", "free" or "mixed" (:func:`make_masks`). mask_size: side of a box hole,
            pixels; 0 = :func:`default_mask_size`.

    Returns:
        ``input`` ``(N, C + 1, H, W)``: the damaged image (holes set to :data:`HOLE_FILL`) and the
        mask as the last channel; ``extra``: ``mask`` ``(N, 1, H, W)`` {0, 1}, ``damaged`` ``(N, C, H, W)``.

    Raises:
        TaskOptionError: bad ``mask`` / ``mask_size``. ValueError: ``images`` not 4-D float, or a
        slice that does not fit ``global_batch``.
    """
    import torch

    _check_images(images)
    n, _, h, w = images.shape
    total, rows = batch_rows(n, global_batch, offset)
    holes = make_masks(total, h, w, corruption_generator(seed, step), mask, mask_size, rows)
    holes = holes.to(device=images.device, dtype=images.dtype)
    damaged = images.masked_fill(holes > 0.5, HOLE_FILL)
    return Corrupted(torch.cat([damaged, holes], 1), {"mask": holes, "damaged": damaged})


def keep_known(output: torch.Tensor, known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The repaired image: ``output`` inside the holes, ``known`` (the damaged or the clean
    image) exactly everywhere else, so the generator only fills the holes.

    Args:
        output: ``(N, C, H, W)`` the generator's output. known: ``(N, C, H, W)``.
        mask: ``(N, 1, H, W)`` or ``(N, C, H, W)`` {0, 1}, 1 = hole.

    Returns:
        ``(N, C, H, W)``; gradients flow to ``output`` in the holes only.
    """
    import torch

    return torch.where(mask > 0.5, output, known)


# -- superres ---------------------------------------------------------------------------------------


def check_superres(height: int, width: int, scale: int = 4, upsample: str = "bicubic") -> None:
    """Raises TaskOptionError for a ``scale`` not in :data:`SCALES` or one that does not divide
    ``height`` and ``width`` (the message lists the scales that do), or a bad ``upsample``."""
    if scale not in SCALES:
        raise _bad("scale", scale, ", ".join(map(str, SCALES)))
    if height % scale or width % scale:
        fits = [s for s in SCALES if height % s == 0 and width % s == 0]
        raise TaskOptionError(f"--scale {scale} does not divide the image size {height}x{width}; valid scales "
                              f"for it: {', '.join(map(str, fits)) or 'none (use an --image-size divisible by 2)'}")
    if upsample not in UPSAMPLE_MODES:
        raise _bad("upsample", upsample, ", ".join(UPSAMPLE_MODES))


def superres(images: torch.Tensor, seed: int, step: int, *, scale: int = 4, upsample: str = "bicubic",
             global_batch: int = 0, offset: int = 0) -> Corrupted:
    """The image at ``1/scale`` of its resolution, brought back to full size (pix2pix-style
    generators map H x W to H x W; pre-upsampling as SRCNN, Dong et al. 2014, arXiv 1501.00092).

    Downscaling averages each ``scale`` x ``scale`` block (area), the upsampling is bicubic
    (``align_corners=False``, clamped to [-1, 1]) or, with ``upsample="nearest"``, block copies.
    No randomness: ``seed``, ``step``, ``global_batch`` and ``offset`` are taken for a uniform signature.

    Args:
        images: ``(N, C, H, W)`` float in [-1, 1]. scale: 2, 4 or 8, dividing H and W.

    Returns:
        ``input`` ``(N, C, H, W)`` in [-1, 1]; ``extra``: ``low`` ``(N, C, H/scale, W/scale)``.

    Raises:
        TaskOptionError: as :func:`check_superres`. ValueError: ``images`` not 4-D float.
    """
    import torch.nn.functional as F

    _check_images(images)
    check_superres(images.shape[2], images.shape[3], scale, upsample)
    low = F.avg_pool2d(images, scale)
    if upsample == "nearest":
        up = F.interpolate(low, scale_factor=scale, mode="nearest")
    else:
        up = F.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)
    return Corrupted(up, {"low": low})


# -- denoise ----------------------------------------------------------------------------------------


def check_denoise(noise_std: float = 0.2) -> None:
    """Raises TaskOptionError unless ``0 < noise_std <= 2`` ([-1, 1] units)."""
    if not (isinstance(noise_std, (int, float)) and 0 < noise_std <= 2):
        raise _bad("noise_std", noise_std, "a standard deviation in (0, 2], in [-1, 1] units (0.2 = 25.5 of 255)")


def denoise(images: torch.Tensor, seed: int, step: int, *, noise_std: float = 0.2, global_batch: int = 0,
            offset: int = 0) -> Corrupted:
    """Additive white Gaussian noise, clamped to [-1, 1].

    The default 0.2 is sigma = 25.5 on a 0-255 scale, about the sigma = 25 of the DnCNN benchmark
    (Zhang et al. 2017, arXiv 1608.03981). The noise is drawn on the CPU (same values on every
    device) and copied to the images' device.

    Args:
        images: ``(N, C, H, W)`` float in [-1, 1]. noise_std: in [-1, 1] units.
        global_batch, offset: see :func:`batch_rows`.

    Returns:
        ``input`` ``(N, C, H, W)`` in [-1, 1]; no ``extra``.

    Raises:
        TaskOptionError: ``noise_std`` outside (0, 2]. ValueError: ``images`` not 4-D float, or a
        slice that does not fit ``global_batch``.
    """
    import torch

    _check_images(images)
    check_denoise(noise_std)
    total, rows = batch_rows(images.shape[0], global_batch, offset)
    noise = torch.randn((total, *images.shape[1:]), generator=corruption_generator(seed, step))[rows]
    noise = noise.to(device=images.device, dtype=images.dtype)
    return Corrupted((images + noise_std * noise).clamp(-1, 1), {})


# -- colorize ---------------------------------------------------------------------------------------


def check_colorize(channels: int) -> None:
    """Raises TaskOptionError unless ``channels`` is 3."""
    if channels != 3:
        raise TaskOptionError(f"task colorize needs RGB images (3 channels), got {channels} channel"
                              f"{'s' if channels != 1 else ''}; use an RGB dataset or --channels 3")


def luma(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB -> ``(N, 1, H, W)`` ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``
    (float, no rounding; the same weights as :func:`gancli.data.transforms.rgb_to_gray`)."""
    w = images.new_tensor(BT601).view(1, 3, 1, 1)
    return (images * w).sum(1, keepdim=True)


def colorize(images: torch.Tensor, seed: int, step: int, *, global_batch: int = 0, offset: int = 0) -> Corrupted:
    """The luma of RGB images, to be colored back. Deterministic (``seed``, ``step``,
    ``global_batch``, ``offset`` unused).

    Args:
        images: ``(N, 3, H, W)`` float in [-1, 1].

    Returns:
        ``input`` ``(N, 1, H, W)`` in [-1, 1]; no ``extra``.

    Raises:
        TaskOptionError: images of another channel count. ValueError: ``images`` not 4-D float.
    """
    _check_images(images)
    check_colorize(images.shape[1])
    return Corrupted(luma(images), {})


# -- edges ------------------------------------------------------------------------------------------


def check_edges(edge_threshold: float = 0.2) -> None:
    """Raises TaskOptionError unless ``0 < edge_threshold < 1.5``."""
    if not (isinstance(edge_threshold, (int, float)) and 0 < edge_threshold < 1.5):
        raise _bad("edge_threshold", edge_threshold,
                   "a gradient magnitude in (0, 1.5), 1 = a sharp step across the whole range")


def sobel_magnitude(gray: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` -> ``(N, 1, H, W)`` Sobel gradient magnitude divided by :data:`SOBEL_GAIN`
    (a sharp step from -1 to +1 gives 1; the maximum, a corner, is sqrt 2). Borders are replicated,
    so the image frame is no edge."""
    import torch
    import torch.nn.functional as F

    kx = gray.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1)  # (2, 1, 3, 3)
    grad = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
    return grad.pow(2).sum(1, keepdim=True).sqrt() / SOBEL_GAIN


def edges(images: torch.Tensor, seed: int, step: int, *, edge_threshold: float = 0.2, global_batch: int = 0,
          offset: int = 0) -> Corrupted:
    """An edge map to be turned back into the image (edges -> image, as pix2pix's edges2shoes,
    whose edges are black lines on white; theirs come from HED, these from a thresholded Sobel
    gradient of the luma). Deterministic (``seed``, ``step``, ``global_batch``, ``offset`` unused).

    Args:
        images: ``(N, C, H, W)`` float in [-1, 1], C = 1 or 3 (RGB goes through :func:`luma`).
        edge_threshold: :func:`sobel_magnitude` above which a pixel is an edge.

    Returns:
        ``input`` ``(N, 1, H, W)`` in {-1, +1}: -1 on edges, +1 elsewhere; no ``extra``.

    Raises:
        TaskOptionError: a bad ``edge_threshold``. ValueError: ``images`` not 4-D float, or C not 1 or 3.
    """
    import torch

    _check_images(images)
    check_edges(edge_threshold)
    c = images.shape[1]
    if c not in (1, 3):
        raise ValueError(f"edges takes 1- or 3-channel images, got {c} channels")
    gray = luma(images) if c == 3 else images
    edge = sobel_magnitude(gray) > edge_threshold
    return Corrupted(torch.where(edge, -1.0, 1.0).to(images.dtype), {})


# -- the registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorruptionTask:
    """A repair task's declaration.

    Attributes:
        name: the ``--task`` value. summary: one line for ``--help`` and the docs.
        apply: ``(images, seed, step, *, global_batch=0, offset=0, **options) -> Corrupted``.
        input_channels: image channels C -> channels of the generator's input.
        needs_rgb: only 3-channel datasets (colorize).
        options: option name -> default (the ``--flag`` is the name with "-" for "_").
        choices: option name -> its valid values, for options with a fixed set.
        check: ``(channels, height, width, **options) -> None``, raising TaskOptionError.
    """

    name: str
    summary: str
    apply: Callable[..., Corrupted]
    input_channels: Callable[[int], int]
    needs_rgb: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    check: Callable[..., None] = lambda channels, height, width, **options: None


#: The repair tasks by name. ``TASKS.get(name)`` raises UnknownNameError listing the names.
TASKS: Registry[CorruptionTask] = Registry("task")


def _register(task: CorruptionTask) -> None:
    TASKS.register(task.name, task.summary, task.options)(task)


_register(CorruptionTask(
    "inpaint", "fill holes: random squares (--mask box), brush strokes (free) or either (mixed)",
    inpaint, lambda c: c + 1, options={"mask": "box", "mask_size": 0}, choices={"mask": MASK_KINDS},
    check=lambda channels, height, width, **o: check_inpaint(height, width, **o)))
_register(CorruptionTask(
    "superres", "super-resolution: the image area-downscaled by --scale (2, 4, 8), upsampled back",
    superres, lambda c: c, options={"scale": 4, "upsample": "bicubic"},
    choices={"scale": SCALES, "upsample": UPSAMPLE_MODES},
    check=lambda channels, height, width, **o: check_superres(height, width, **o)))
_register(CorruptionTask(
    "denoise", "remove additive Gaussian noise of --noise-std ([-1, 1] units)",
    denoise, lambda c: c, options={"noise_std": 0.2},
    check=lambda channels, height, width, **o: check_denoise(**o)))
_register(CorruptionTask(
    "colorize", "color a grayscale (BT.601 luma) version of an RGB image",
    colorize, lambda c: 1, needs_rgb=True,
    check=lambda channels, height, width, **o: check_colorize(channels)))
_register(CorruptionTask(
    "edges", "edges -> image: draw the image from its Sobel edge map (as edges2shoes)",
    edges, lambda c: 1, options={"edge_threshold": 0.2},
    check=lambda channels, height, width, **o: check_edges(**o)))


def task_options(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full options of task ``name``: its defaults updated with ``options``.

    Raises:
        UnknownNameError: ``name`` is not in :data:`TASKS`.
        TaskOptionError: an option the task does not take (the message lists those it takes).
    """
    task = TASKS.get(name)
    options = dict(options or {})
    unknown = sorted(set(options) - set(task.options))
    if unknown:
        takes = ", ".join(_flag(o) for o in task.options) or "none"
        raise TaskOptionError(f"task {name} takes no {', '.join(_flag(o) for o in unknown)}; its options: {takes}")
    return {**task.options, **options}


def check_task(name: str, channels: int, height: int, width: int, **options: Any) -> dict[str, Any]:
    """Validate task ``name`` with ``options`` for images of ``channels`` x ``height`` x ``width``,
    without tensors (so the CLI fails before making a run directory).

    Returns:
        the task's full options (defaults filled in).

    Raises:
        UnknownNameError: unknown task. TaskOptionError: an unknown or bad option, or images the
        task cannot take (colorize on grayscale, a ``--scale`` that does not divide the size).
    """
    full = task_options(name, options)
    TASKS.get(name).check(channels, height, width, **full)
    return full


def corrupt(name: str, images: torch.Tensor, seed: int, step: int, *, global_batch: int = 0, offset: int = 0,
            **options: Any) -> Corrupted:
    """Apply task ``name`` (options as :func:`check_task`) to clean ``images`` ``(N, C, H, W)``
    float in [-1, 1]; see each task's function for what it returns.

    ``global_batch`` / ``offset`` (:func:`batch_rows`): the images are rows ``offset`` to
    ``offset + N`` of a batch of ``global_batch`` (a process's slice of a multi-process run's
    batch); their corruption is those rows of the global batch's, so it does not depend on how
    the batch is split. Default: the images are the whole batch.

    Raises:
        as :func:`check_task`, and ValueError for images that are not 4-D float or a slice that
        does not fit ``global_batch``.
    """
    full = task_options(name, options)
    return TASKS.get(name).apply(images, seed, step, global_batch=global_batch, offset=offset, **full)
