"""Walks through a generator's inputs: latent interpolation and class walks
(``gan sample --interpolate K`` / ``--class-walk``), rendered as a PNG grid
(rows = paths, columns = steps) or an animated GIF (frame t = all paths at step t).

Latent paths: path ``i`` goes from ``z_a[i]`` to ``z_b[i]`` with
``z_a = latents(n, nz, seed)`` and ``z_b = latents(n, nz, seed + 1)``
(:func:`gancli.seeding.latents`), so the first column holds the images of
``gan sample --seed S -n N`` and the last those of ``gan sample --seed S+1 -n N``
(for a conditional run: each path keeps the class of its first image, see
:func:`latent_walk`).

:func:`write_walk` is the ``--interpolate`` / ``--class-walk`` mode of ``gan sample``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from gancli.errors import UsageError
from gancli.generate.gif import MIN_GIF_PX, WALK_FRAME_MS, upscale, write_gif
from gancli.generate.sampling import MAX_SAMPLE_BYTES, generate, image_format, save_grid
from gancli.seeding import latents, random_labels

#: Below this ``sin(angle)`` between two latents :func:`slerp` falls back to :func:`lerp`
#: (near-parallel or near-opposite vectors, where the great circle is ill-defined).
SLERP_MIN_SIN = 1e-6


def steps_t(steps: int) -> torch.Tensor:
    """``(steps,)`` float64 positions ``0, 1/(steps-1), ..., 1`` along a path; ``steps >= 2``."""
    if steps < 2:
        raise ValueError(f"a path needs steps >= 2, got {steps}")
    return torch.linspace(0.0, 1.0, steps, dtype=torch.float64)


def _check_ends(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"endpoints must both be (N, nz), got {tuple(a.shape)} and {tuple(b.shape)}")
    if t.dim() != 1:
        raise ValueError(f"t must be (T,), got {tuple(t.shape)}")


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation ``(1 - t) a + t b``.

    Args:
        a, b: ``(N, nz)`` endpoints.
        t: ``(T,)`` positions, 0 = ``a``, 1 = ``b`` (values outside [0, 1] extrapolate).

    Returns:
        ``(N, T, nz)`` in ``a``'s dtype; computed in float64; rows at ``t == 0`` / ``t == 1``
        are exactly ``a`` / ``b``.
    """
    _check_ends(a, b, t)
    a64, b64, t64 = a.double()[:, None], b.double()[:, None], t.double().to(a.device)[None, :, None]
    out = ((1.0 - t64) * a64 + t64 * b64).to(a.dtype)
    return _exact_ends(out, a, b, t)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation (Shoemake 1985, "Animating rotation with quaternion
    curves", SIGGRAPH), as used for GAN latents by White 2016 ("Sampling generative
    networks", arXiv 1609.04468): the direction moves along the great circle from
    ``a/|a|`` to ``b/|b|`` at constant angular speed, and the norm moves linearly from
    ``|a|`` to ``|b|``.

    So ``|slerp(a, b, t)| = (1 - t)|a| + t|b|``: for ``z ~ N(0, I)`` in high dimension
    (``|z|`` close to ``sqrt(nz)``) every point keeps the norm the generator was trained
    on, whereas the midpoint of :func:`lerp` of two near-orthogonal latents has norm
    about ``sqrt(nz / 2)``. For ``|a| == |b|`` this is White's formula
    ``sin((1-t)w)/sin(w) a + sin(tw)/sin(w) b``. Where ``sin(w) < SLERP_MIN_SIN``
    (``a`` and ``b`` near-parallel or near-opposite) the pair falls back to :func:`lerp`.

    Args:
        a, b: ``(N, nz)`` endpoints, non-zero.
        t: ``(T,)`` positions in [0, 1]; 0 = ``a``, 1 = ``b``.

    Returns:
        ``(N, T, nz)`` in ``a``'s dtype; computed in float64; rows at ``t == 0`` / ``t == 1``
        are exactly ``a`` / ``b``.

    Raises:
        ValueError: endpoints of different shapes, or a zero endpoint.
    """
    _check_ends(a, b, t)
    a64, b64, t64 = a.double(), b.double(), t.double().to(a.device)
    na, nb = a64.norm(dim=1, keepdim=True), b64.norm(dim=1, keepdim=True)  # (N, 1)
    if bool((na == 0).any() or (nb == 0).any()):
        raise ValueError("slerp needs non-zero endpoints")
    ua, ub = a64 / na, b64 / nb
    omega = torch.arccos((ua * ub).sum(1).clamp(-1.0, 1.0))[:, None, None]  # (N, 1, 1)
    sin = torch.sin(omega)
    tt = t64[None, :, None]  # (1, T, 1)
    safe = sin.clamp_min(SLERP_MIN_SIN)
    direction = (torch.sin((1.0 - tt) * omega) / safe) * ua[:, None] + (torch.sin(tt * omega) / safe) * ub[:, None]
    norm = (1.0 - tt) * na[:, None] + tt * nb[:, None]
    out = direction * norm
    flat = (sin < SLERP_MIN_SIN).expand_as(out)  # fall back to lerp for (anti)parallel pairs
    out = torch.where(flat, (1.0 - tt) * a64[:, None] + tt * b64[:, None], out).to(a.dtype)
    return _exact_ends(out, a, b, t)


def _exact_ends(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Make the steps at t == 0 and t == 1 bitwise ``a`` and ``b`` (no float64 round trip error)."""
    t = t.to(out.device)
    out[:, t == 0] = a[:, None]
    out[:, t == 1] = b[:, None]
    return out


INTERPOLATORS = {"slerp": slerp, "lerp": lerp}


def latent_paths(n: int, nz: int, steps: int, seed: int, method: str = "slerp") -> torch.Tensor:
    """The latents of ``n`` paths of ``steps`` steps from seed ``seed`` to seed ``seed + 1``.

    Path ``i`` runs from ``latents(n, nz, seed)[i]`` (the ``i``-th latent of
    ``gan sample --seed S``) to ``latents(n, nz, seed + 1)[i]``.

    Args:
        method: ``slerp`` (default; for Gaussian latents) or ``lerp``.

    Returns:
        ``(n, steps, nz)`` float32 on the CPU; ``[:, 0]`` and ``[:, -1]`` are exactly the
        two seeds' latents.

    Raises:
        ValueError: ``steps < 2`` or an unknown ``method``.
    """
    if method not in INTERPOLATORS:
        raise ValueError(f"unknown interpolation {method!r}; valid choices: {', '.join(INTERPOLATORS)}")
    return INTERPOLATORS[method](latents(n, nz, seed), latents(n, nz, seed + 1), steps_t(steps))


@torch.no_grad()
def latent_walk(generator, n: int, steps: int, seed: int = 0, method: str = "slerp",
                labels: int | torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
    """Images along :func:`latent_paths`: ``(n, steps, C, H, W)`` float32 in [-1, 1] on the CPU.

    ``[:, 0]`` equals ``generator.sample(n, seed=seed, labels=labels)`` (the images of
    ``gan sample --seed S -n N [--class C]``) and ``[:, -1]`` the latents of seed
    ``seed + 1`` with the same classes. A self-conditioned generator
    (:class:`~gancli.models.selfcond.SelfConditionedGenerator`) takes z alone; its
    cluster follows ``z[:, 0]`` and may switch midway along a path.

    Args:
        generator: a :class:`~gancli.models.layers.Generator`.
        labels: conditional generators only: None = the random classes of
            ``gan sample --seed S`` (:func:`~gancli.seeding.random_labels`), an int =
            that class; each path keeps its class along the way.
    """
    device = next(generator.parameters()).device
    z = latent_paths(n, generator.nz, steps, seed, method)
    y = None
    if generator.num_classes:
        if labels is None:
            labels = random_labels(n, generator.num_classes, seed)
        elif isinstance(labels, int):
            labels = torch.full((n,), labels, dtype=torch.long)
        y = labels.to(torch.long).cpu().repeat_interleave(steps).to(device)
    elif labels is not None:
        raise ValueError("this generator is unconditional: pass no labels")
    images = generate(generator, z.reshape(n * steps, -1).to(device), y, batch_size=batch_size)
    return images.reshape(n, steps, *images.shape[1:])


def class_walk_columns(num_classes: int, steps: int | None) -> torch.Tensor:
    """Soft labels of a walk over the classes ``0 -> 1 -> ... -> K-1``: ``(T, K)`` float32
    rows of class weights summing to 1.

    Args:
        steps: steps from one class to the next, both ends included (>= 2), so
            ``T = (K - 1) * (steps - 1) + 1``; None = the classes alone (``T = K``,
            one-hot rows).
    """
    eye = torch.eye(num_classes)
    if steps is None or num_classes == 1:
        return eye
    t = steps_t(steps)[:-1].float()[:, None]  # each leg without its end: the next leg starts there
    legs = [(1 - t) * eye[c] + t * eye[c + 1] for c in range(num_classes - 1)]
    return torch.cat([*legs, eye[-1:]])


def supports_soft_labels(generator) -> bool:
    """Whether :func:`class_walk` can blend classes of ``generator``: a conditional
    generator whose labels go through ``nn.Embedding`` tables only (its class says so in
    :attr:`~gancli.models.layers.Generator.takes_soft_labels`)."""
    return bool(getattr(generator, "takes_soft_labels", False)) and generator.num_classes > 0


@torch.no_grad()
def generate_soft(generator, z: torch.Tensor, weights: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Run a conditional ``generator`` on ``z`` ``(N, nz)`` with soft labels ``weights``
    ``(N, K)`` (class weights, rows summing to 1) instead of classes.

    Every ``nn.Embedding`` of the class labels (``K`` rows) is looked up as the blend
    ``weights @ table``, which is what feeding the one-hot blend of the classes
    through the (linear) look-up gives; a one-hot row gives exactly the image of
    that class. Only for :func:`supports_soft_labels` generators.

    Returns:
        ``(N, C, H, W)`` float32 in [-1, 1] on the CPU.

    Raises:
        ValueError: the generator does not take soft labels, or bad shapes.
    """
    from torch import nn
    from torch.func import functional_call

    k = generator.num_classes
    if not supports_soft_labels(generator):
        raise ValueError(f"{type(generator).__name__} does not take soft labels")
    if z.dim() != 2 or weights.shape != (z.shape[0], k):
        raise ValueError(f"need z (N, nz) and weights (N, {k}), got {tuple(z.shape)} and {tuple(weights.shape)}")
    device = next(generator.parameters()).device
    z, w = z.to(device), weights.to(device)
    tables = {f"{name}.weight": w.to(m.weight.dtype) @ m.weight for name, m in generator.named_modules()
              if isinstance(m, nn.Embedding) and m.num_embeddings == k}
    rows = torch.arange(z.shape[0], device=device)  # label i = row i of every blended table
    was_training = generator.training
    generator.eval()
    try:
        out = [functional_call(generator, tables, (zc, yc)).float().cpu()
               for zc, yc in zip(z.split(batch_size), rows.split(batch_size))]
    finally:
        generator.train(was_training)
    return torch.cat(out).clamp_(-1, 1)


@torch.no_grad()
def class_walk(generator, n: int, steps: int | None = None, seed: int = 0,
               batch_size: int = 256) -> torch.Tensor:
    """Walk each of ``n`` fixed latents across the classes ``0 -> 1 -> ... -> K-1``.

    Row ``i`` uses ``z = latents(n, nz, seed)[i]`` throughout, so the column of class
    ``c`` equals ``gan sample --seed S -n N --class c``. With ``steps`` the classes are
    blended between neighbours through their embeddings (:func:`generate_soft`);
    without, or for a generator that does not take soft labels, there is one column
    per class.

    Returns:
        ``(n, T, C, H, W)`` float32 in [-1, 1] on the CPU, ``T`` as in
        :func:`class_walk_columns`.

    Raises:
        ValueError: an unconditional generator.
    """
    k = generator.num_classes
    if not k:
        raise ValueError("a class walk needs a conditional generator")
    device = next(generator.parameters()).device
    cols = class_walk_columns(k, steps if supports_soft_labels(generator) else None)
    t = cols.shape[0]
    z = latents(n, generator.nz, seed).repeat_interleave(t, dim=0)  # (n * T, nz): row-major paths
    w = cols.repeat(n, 1)
    if steps is None or not supports_soft_labels(generator):
        images = generate(generator, z.to(device), w.argmax(1).to(device), batch_size=batch_size)
    else:
        images = generate_soft(generator, z, w, batch_size=batch_size)
    return images.reshape(n, t, *images.shape[1:])


# -- rendering ----------------------------------------------------------------------------
def walk_format(path: str | os.PathLike) -> str:
    """``GIF`` for a ``.gif`` path, else the PIL format of an image suffix (.png, ...).

    Raises:
        UsageError: an unknown suffix; the message lists the valid ones.
    """
    if Path(path).suffix.lower() == ".gif":
        return "GIF"
    try:
        return image_format(path)
    except UsageError as e:
        raise UsageError(str(e).replace("valid choices: ", "valid choices: .gif, ")) from None


def save_walk_grid(images: torch.Tensor, path: str | os.PathLike, padding: int = 2, scale: int | None = 1) -> int:
    """Write ``images`` ``(P, T, C, H, W)`` in [-1, 1] as one grid, row ``i`` = path ``i``,
    column ``t`` = step ``t``, atomically, enlarged ``scale`` times (None: see
    :func:`~gancli.generate.sampling.save_grid`). Same pixels per image as ``gan sample``'s grids.
    Returns the enlargement used."""
    return save_grid(images.flatten(0, 1), path, nrow=images.shape[1], padding=padding, scale=scale)


def frame_nrow(paths: int) -> int:
    """Paths per row of a GIF frame: the smallest divisor of ``paths`` from ``ceil(sqrt(paths))``
    up to twice that (a full rectangle: 8 paths -> 4 x 2), else ``ceil(sqrt(paths))``."""
    side = math.ceil(math.sqrt(paths))
    return next((d for d in range(side, 2 * side + 1) if paths % d == 0), side)


def walk_frames(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pingpong: bool = False,
                min_px: int | None = None) -> list:
    """GIF frames of a walk: frame ``t`` is the grid of all ``P`` paths at step ``t``.

    Args:
        images: ``(P, T, C, H, W)`` in [-1, 1].
        nrow: paths per grid row; default :func:`frame_nrow`.
        pingpong: append the steps back (``T-2 .. 1``), so a looping GIF runs to and
            fro: ``2T - 2`` frames instead of ``T``.
        min_px: enlarge small frames (see :func:`gancli.generate.gif.upscale`); None = its default.

    Returns:
        ``T`` (or ``2T - 2``) PIL images of one size, mode ``L`` (1 channel) or ``RGB``.
    """
    from PIL import Image

    from gancli.generate.grid import make_grid, to_uint8_hwc

    p, t = images.shape[:2]
    nrow = nrow or frame_nrow(p)
    order = list(range(t)) + (list(range(t - 2, 0, -1)) if pingpong else [])
    frames = []
    for s in order:
        grid = make_grid(images[:, s], nrow=nrow, padding=padding, value_range=(-1, 1))
        arr = to_uint8_hwc(grid)
        img = Image.fromarray(arr[:, :, 0] if images.shape[2] == 1 else arr, "L" if images.shape[2] == 1 else "RGB")
        frames.append(upscale(img, MIN_GIF_PX if min_px is None else min_px))
    return frames


# -- the walk modes of gan sample ---------------------------------------------------------
@dataclass
class WalkResult:
    """What :func:`write_walk` made."""

    path: Path  # the grid image or GIF written
    images: torch.Tensor  # (P, T, C, H, W) float32 in [-1, 1] on the CPU: path i, step t
    method: str  # how the steps were made: slerp, lerp, blended classes, one column per class
    frames: int | None  # frames of the GIF (2T - 2 with pingpong); None for a grid image
    zoom: int | None = None  # the grid image's enlargement (save_walk_grid); None for a GIF


def walk_steps(generator, steps: int | None, classes: bool) -> int:
    """Columns ``T`` of a walk of ``generator``: ``steps`` for a latent walk, else
    :func:`class_walk_columns` (counting blended columns whenever ``steps`` is given)."""
    return class_walk_columns(generator.num_classes, steps).shape[0] if classes else steps


def check_walk_memory(generator, n: int, steps: int | None, classes: bool) -> None:
    """Raise :class:`UsageError` when the ``n`` paths of :func:`walk_steps` steps would take
    more than :data:`~gancli.generate.sampling.MAX_SAMPLE_BYTES` as float32."""
    t = walk_steps(generator, steps, classes)
    need = n * t * generator.img_channels * generator.img_resolution ** 2 * 4
    if need > MAX_SAMPLE_BYTES:
        raise UsageError(f"-n {n} paths of {t} steps would hold {need / 2**30:.0f} GiB of images in "
                         "memory; give fewer paths (-n) or steps (--interpolate)")


def check_walk_path(path: str | os.PathLike) -> None:
    """Raise :class:`UsageError` unless ``path`` is a grid image or ``.gif``
    (:func:`walk_format`) in an existing folder."""
    path = Path(path)
    walk_format(path)
    if not path.parent.is_dir():
        raise UsageError(f"directory {path.parent} does not exist (for -o {path})")


def write_walk(generator, path: str | os.PathLike, n: int, steps: int | None = None, *, classes: bool = False,
               seed: int = 0, method: str = "slerp", labels: int | torch.Tensor | None = None, nrow: int | None = None,
               pingpong: bool = False, duration_ms: int = WALK_FRAME_MS, batch_size: int = 256,
               scale: int | None = 1) -> WalkResult:
    """``gan sample --interpolate K`` / ``--class-walk``: ``n`` walks written as a grid image
    (row = path, column = step) or, for a ``.gif`` ``path``, an animated GIF (frame = step).

    Args:
        steps: steps per path (>= 2; a latent walk needs it); with ``classes`` the blended
            steps from each class to the next, None = one column per class.
        classes: walk across the classes (:func:`class_walk`) instead of from the latents
            of ``seed`` to those of ``seed + 1`` (:func:`latent_walk`).
        method: ``slerp`` or ``lerp`` (latent walks).
        labels: latent walks of a conditional generator: see :func:`latent_walk`.
        nrow, pingpong: GIF frames, see :func:`walk_frames`.
        duration_ms: GIF frame time, milliseconds.
        scale: a grid image's enlargement (see :func:`save_walk_grid`); GIF frames are enlarged
            to at least :data:`~gancli.generate.gif.MIN_GIF_PX` pixels instead.

    Returns:
        a :class:`WalkResult`; its ``method`` is ``one column per class`` for a class walk
        without ``steps`` or of a generator that takes no blended classes
        (:func:`supports_soft_labels`).

    Raises:
        UsageError: the walk would not fit in memory (:func:`check_walk_memory`), a bad suffix.
        ValueError: as :func:`latent_walk` / :func:`class_walk`.
    """
    path = Path(path)
    check_walk_memory(generator, n, steps, classes)
    if classes:
        images = class_walk(generator, n, steps, seed=seed, batch_size=batch_size)
        method = "blended classes" if steps is not None and supports_soft_labels(generator) else "one column per class"
    else:
        images = latent_walk(generator, n, steps, seed=seed, method=method, labels=labels, batch_size=batch_size)
    frames = zoom = None
    if path.suffix.lower() == ".gif":
        gif_frames = walk_frames(images, nrow=nrow, pingpong=pingpong)
        write_gif(gif_frames, path, duration_ms)
        frames = len(gif_frames)
    else:
        zoom = save_walk_grid(images, path, scale=scale)
    return WalkResult(path, images, method, frames, zoom)
