"""The ``manifest.json`` of a gancli dataset folder: its format name and version, and the
reader.

``gan sample --dataset-out`` writes it (:mod:`gancli.generate.synthetic`); ``--dataset DIR``
reads the image shape from it (:mod:`gancli.data.folder`). Imports nothing but the
standard library.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST_FORMAT = "gancli-dataset"
MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of a gancli dataset folder (written by
    :func:`gancli.generate.synthetic.write_dataset`), or None (no manifest, another format,
    or unreadable)."""
    try:
        doc = json.loads((Path(folder) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == MANIFEST_FORMAT else None
