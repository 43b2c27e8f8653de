"""Cached reference statistics: ``<home>/stats/<key>.safetensors``.

Reference-side statistics (e.g. the Inception mean and covariance of a dataset split) are
costly to compute and depend only on what :func:`stats_key` hashes: dataset, split,
feature extractor, the sha256 of its weights, resolution and number of images. A change in
any of them is a new key, so a stale entry is never read.

File format ``gancli-stats`` version 1: safetensors arrays (any NumPy dtype safetensors
stores, float64 for statistics) with string metadata ``format``, ``format_version``,
``key`` and ``meta`` (the caller's JSON). Files are written atomically (temp file, fsync,
rename); an unreadable, truncated or foreign file reads as a miss and the next save
replaces it. The home is ``--home`` / ``GANCLI_HOME`` / the platform cache dir, as for runs.

Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from gancli.fsutil import atomic_write_bytes

STATS_FORMAT = "gancli-stats"
STATS_FORMAT_VERSION = 1
_SUFFIX = ".safetensors"
_UNSAFE = re.compile(r"[^A-Za-z0-9._]+")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def stats_cache_dir(home: str | os.PathLike | None = None) -> Path:
    """``<home>/stats``; ``home`` defaults to :func:`gancli.runs.default_home` (the folder is not created)."""
    from gancli.runs import default_home

    return (Path(home) if home is not None else default_home()).expanduser() / "stats"


def _slug(value: object, max_chars: int = 24) -> str:
    return _UNSAFE.sub("-", str(value)).strip("-.")[:max_chars].rstrip("-.") or "x"


def stats_key(dataset: str, split: str, extractor: str, weights_sha256: str, resolution: int, num_samples: int) -> str:
    """A filesystem-safe cache key naming every field that changes the statistics.

    Args:
        dataset: dataset name (``"mnist"``).
        split: ``"train"`` / ``"test"``...
        extractor: feature extractor and protocol, e.g. ``InceptionExtractor.name``.
        weights_sha256: hex sha256 of the extractor's weights file.
        resolution: image side in pixels as fed to the extractor, before its own resize.
        num_samples: number of images the statistics cover.

    Returns:
        ``<dataset>-<split>-<resolution>px-n<num_samples>-w<sha256[:8]>-<digest[:16]>`` with
        every part reduced to ``[A-Za-z0-9._-]``; the digest is the sha256 of all six fields
        (extractor included), so two keys are equal only when every field is.
    """
    fields = {"dataset": dataset, "split": split, "extractor": extractor, "weights_sha256": weights_sha256,
              "resolution": int(resolution), "num_samples": int(num_samples)}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    return (f"{_slug(dataset)}-{_slug(split)}-{int(resolution)}px-n{int(num_samples)}"
            f"-w{_slug(weights_sha256, 8)}-{digest}")


def stats_path(key: str, home: str | os.PathLike | None = None) -> Path:
    """Where the entry ``key`` lives. Raises ValueError for a key that is not a plain file name."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"cache key must be a plain file name of [A-Za-z0-9._-], got {key!r}")
    return stats_cache_dir(home) / f"{key}{_SUFFIX}"


def load_stats(key: str, home: str | os.PathLike | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The cached entry ``key``, or None on a miss.

    Returns:
        ``(arrays, meta)``: the arrays as saved (NumPy, same dtypes and shapes) and the
        caller's ``meta`` dict; None when the file is absent, unreadable, damaged, of
        another format or version, or saved under another key.
    """
    from safetensors import safe_open

    path = stats_path(key, home)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
            if (header.get("format") != STATS_FORMAT or header.get("format_version") != str(STATS_FORMAT_VERSION)
                    or header.get("key") != key):
                return None
            meta = json.loads(header.get("meta", "{}"))
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except Exception:  # SafetensorError, OSError, ValueError (bad JSON): a damaged entry is a miss
        return None
    if not isinstance(meta, dict):
        return None
    return arrays, meta


def save_stats(key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None,
               home: str | os.PathLike | None = None) -> Path:
    """Write the entry ``key`` atomically, replacing any old or damaged file.

    Args:
        arrays: name -> array (e.g. ``{"mu": (D,) float64, "sigma": (D, D) float64}``).
        meta: JSON-serialisable facts about the entry (fields of the key, versions, timings).

    Returns:
        The file written.

    Raises:
        ValueError: a bad key, or ``meta`` is not JSON-serialisable.
        OSError: the cache folder cannot be written.
    """
    from safetensors.numpy import save

    path = stats_path(key, home)
    try:
        meta_json = json.dumps(meta or {}, sort_keys=True)
    except TypeError as e:
        raise ValueError(f"stats meta must be JSON-serialisable ({e})") from None
    header = {"format": STATS_FORMAT, "format_version": str(STATS_FORMAT_VERSION), "key": key, "meta": meta_json}
    data = save({name: np.ascontiguousarray(a) for name, a in arrays.items()}, metadata=header)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path
