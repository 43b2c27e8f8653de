"""Units as people read them: durations. Torch-free and Rich-free, for the engine and the CLI."""

from __future__ import annotations


def fmt_duration(seconds: float) -> str:
    """``seconds`` rounded to whole seconds as ``1h02m03s``, ``2m03s`` or ``3s``."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def plural(n: int, noun: str) -> str:
    """``1 CPU thread``, ``2 CPU threads``: ``n`` and ``noun`` with an ``s`` unless n is 1."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
