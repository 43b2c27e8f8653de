"""Animated GIFs of image grids (Pillow): upscaling small frames and writing atomically.

Used by ``gan sample --interpolate / --class-walk`` (:mod:`gancli.generate.walks`) and
``gan sample --timeline`` (:mod:`gancli.generate.timeline`). Never imports torch; Pillow
only when an image is made (so the CLI reads the frame times here without it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gancli.errors import UsageError
from gancli.fsutil import atomic_path

if TYPE_CHECKING:
    from PIL import Image

#: Frames whose longer side is below this many pixels are enlarged (nearest neighbour,
#: by a whole factor) until it is at least this, so a GIF of 28x28 digits is viewable.
MIN_GIF_PX = 256
#: ``gan sample`` enlarges its grid images (by a whole factor, nearest neighbour) to at least
#: this many pixels on the longer side unless ``--zoom`` says otherwise (an 8x8 grid of 28-px
#: digits is 242 px: 484 px at 2x).
GRID_MIN_PX = 480
#: Shortest frame time in milliseconds: GIF stores centiseconds and most viewers slow
#: frames under 20 ms down to 100 ms.
MIN_FRAME_MS = 20
#: Longest frame time in milliseconds (a 16-bit count of centiseconds).
MAX_FRAME_MS = 655_350
#: Frame times when not given, milliseconds: walk GIFs, and the --timeline of stored grids.
WALK_FRAME_MS = 100
TIMELINE_FRAME_MS = 500


def upscale(img: Image.Image, min_px: int = MIN_GIF_PX) -> Image.Image:
    """``img`` enlarged by the smallest whole factor that makes its longer side at least
    ``min_px`` pixels (nearest neighbour, so pixels stay sharp); ``img`` itself if it
    is that large already or ``min_px <= 0``."""
    from PIL import Image

    factor = math.ceil(min_px / max(img.size)) if min_px > 0 else 1
    if factor <= 1:
        return img
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)


def check_frame_ms(duration_ms: int) -> None:
    """Raise :class:`UsageError` unless ``duration_ms`` is in [MIN_FRAME_MS, MAX_FRAME_MS]."""
    if not MIN_FRAME_MS <= duration_ms <= MAX_FRAME_MS:
        raise UsageError(f"--duration-ms must be in [{MIN_FRAME_MS}, {MAX_FRAME_MS}] (milliseconds per frame), "
                         f"got {duration_ms}")


def check_gif_path(path: str | os.PathLike, what: str) -> None:
    """Raise :class:`UsageError` unless ``path`` ends in ``.gif`` and its folder exists;
    ``what`` names the option that needs a GIF (``--timeline``)."""
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise UsageError(f"{what} writes an animated GIF: -o must end in .gif, got {path.name!r}")
    if not path.parent.is_dir():
        raise UsageError(f"directory {path.parent} does not exist (for -o {path})")


def write_gif(frames: Sequence[Image.Image], path: str | os.PathLike, duration_ms: int, loop: int = 0) -> Path:
    """Write ``frames`` (same size, mode ``L`` or ``RGB``) as one animated GIF, atomically
    (temp file + rename: a reader never sees half a GIF).

    Args:
        duration_ms: display time of each frame, milliseconds (stored in 10 ms units).
        loop: times to repeat; 0 = forever.

    Colour frames are reduced to a 256-colour palette per frame. Pillow merges a frame
    identical to the one before it into that one (adding its time), so a GIF can hold
    fewer frames than given when consecutive frames look the same.

    Raises:
        ValueError: no frames, or frames of different sizes.
    """
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    if len({f.size for f in frames}) != 1:
        raise ValueError(f"GIF frames must share one size, got {sorted({f.size for f in frames})}")
    path = Path(path)
    first, *rest = frames
    with atomic_path(path) as tmp:
        first.save(tmp, format="GIF", save_all=True, append_images=rest, duration=duration_ms, loop=loop)
    return path
