"""The training timelapse of ``gan sample --timeline``: the fixed-z grids a run stored
while training (``<run>/samples/step-<S>.png``, :mod:`gancli.runs`) as one animated
GIF in step order, each frame labelled ``step S`` in a band above the grid.

Imports Pillow only, not torch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from gancli.errors import GancliError
from gancli.generate.gif import MIN_GIF_PX, TIMELINE_FRAME_MS, check_frame_ms, check_gif_path, upscale, write_gif

_GRID_RE = re.compile(r"step-(\d+)\.png")


def stored_grids(samples_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step-<S>.png`` in ``samples_dir``, by step (numerically,
    so step 500 comes before step 1000); ``[]`` when the folder is missing or empty."""
    samples_dir = Path(samples_dir)
    if not samples_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in samples_dir.iterdir()
             if (m := _GRID_RE.fullmatch(p.name)) and p.is_file()]
    return sorted(found)


def label_font_px(width: int) -> int:
    """Height in pixels of the label text for a frame ``width`` pixels wide: 1/16 of it,
    12..32."""
    return max(12, min(32, width // 16))


def labelled_frame(grid: Image.Image, text: str, mode: str = "RGB", min_px: int = MIN_GIF_PX) -> Image.Image:
    """``grid`` in ``mode`` (``L`` or ``RGB``), enlarged to at least ``min_px``
    (:func:`gancli.generate.gif.upscale`), with a black band above it holding ``text`` in white
    (Pillow's default font), so the label never covers an image."""
    grid = upscale(grid.convert(mode), min_px)
    size = label_font_px(grid.width)
    band = size + size // 2
    frame = Image.new(mode, (grid.width, grid.height + band), 0)
    frame.paste(grid, (0, band))
    font = ImageFont.load_default(size=size)
    white = 255 if mode == "L" else (255, 255, 255)
    ImageDraw.Draw(frame).text((size // 2, band // 2), text, fill=white, font=font, anchor="lm")
    return frame


def _is_gray(img: Image.Image) -> bool:
    """Grayscale content: mode L, or RGB with equal channels (torchvision writes
    grayscale grids as RGB)."""
    if img.mode in ("1", "L", "I", "I;16"):
        return True
    if img.mode != "RGB":
        return False
    r, g, b = img.split()
    return r.tobytes() == g.tobytes() == b.tobytes()


def _read(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except OSError as e:
        raise GancliError(f"cannot read the sample grid {path}: {e}") from None


def timeline_frames(grids: list[tuple[int, Path]], min_px: int = MIN_GIF_PX) -> list[Image.Image]:
    """One :func:`labelled_frame` ``step S`` per ``(S, path)`` of :func:`stored_grids`, all
    of one size and mode: ``L`` when every grid is grayscale (exact in a GIF), else
    ``RGB``. A grid of another size than the first (a resumed run with another sample
    count) is resized to the first's.

    Raises:
        GancliError: a grid that cannot be read.
    """
    images = [_read(path) for _, path in grids]
    if not images:
        return []
    size = images[0].size
    mode = "L" if all(_is_gray(im) for im in images) else "RGB"
    return [labelled_frame(im if im.size == size else im.resize(size, Image.Resampling.NEAREST),
                           f"step {step}", mode, min_px)
            for (step, _), im in zip(grids, images)]


def write_timeline(samples_dir: str | os.PathLike, path: str | os.PathLike, duration_ms: int = TIMELINE_FRAME_MS,
                   run_id: str = "the run") -> list[int]:
    """``gan sample --timeline``: write the GIF of the grids in ``samples_dir`` to ``path``
    (atomically), ``duration_ms`` milliseconds per frame.

    Returns:
        the steps of the frames, in order.

    Raises:
        UsageError: ``path`` not a ``.gif`` in an existing folder, or a frame time out of range.
        GancliError: no stored grids (naming ``run_id`` and how to get them), or an unreadable one.
    """
    check_gif_path(path, "--timeline")
    check_frame_ms(duration_ms)
    grids = stored_grids(samples_dir)
    if not grids:
        raise GancliError(f"{run_id} has no stored sample grids (no {Path(samples_dir)}/step-<S>.png); "
                          "train with --sample-every N to store one every N steps")
    write_gif(timeline_frames(grids), path, duration_ms)
    return [step for step, _ in grids]
