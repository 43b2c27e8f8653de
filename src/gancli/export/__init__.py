"""Exporting a generator: ONNX, TorchScript, torch.export and a safetensors bundle.

Every graph format exports the same function, :class:`gancli.export.graph.GeneratorGraph`:
``z (N, nz) float32`` [+ ``labels (N,) int64`` for a conditional generator] ->
``images (N, C, H, W)`` float32 in [-1, 1] (uint8 in [0, 255] with ``uint8=True``),
with a dynamic batch N, and carries the same metadata (:func:`gancli.export.graph.export_metadata`).
An image-to-image run's translator (:func:`export_translator`) maps ``source (N, in_channels,
H, W)`` -> ``images (N, C, H, W)`` with a dynamic batch, height and width
(:class:`gancli.export.graph.TranslatorGraph`).
The ``safetensors`` format is a bundle folder of weights + config instead
(:mod:`gancli.bundle`). Every export is verified by reloading the artifact with its
own runtime and comparing it with the PyTorch generator (:mod:`gancli.export.core`).

Formats are registered by name. This module does not import torch, so the CLI
checks a request (format, output path, optional packages) before loading anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gancli.export.registry import (FORMATS, ExportFormat, check_options, check_output, default_output, format_for,
                                    require_packages)

if TYPE_CHECKING:
    from gancli.export.core import ExportResult


def export_generator(generator: Any, fmt: str, path: str | Path, **kwargs: Any) -> ExportResult:
    """Export and verify ``generator``; see :func:`gancli.export.core.export_generator`."""
    from gancli.export.core import export_generator as _export

    return _export(generator, fmt, path, **kwargs)


def export_translator(translator: Any, fmt: str, path: str | Path, **kwargs: Any) -> ExportResult:
    """Export and verify an image-to-image run's translator; see :func:`gancli.export.core.export_translator`."""
    from gancli.export.core import export_translator as _export

    return _export(translator, fmt, path, **kwargs)


__all__ = ["FORMATS", "ExportFormat", "check_options", "check_output", "default_output", "export_generator",
           "export_translator", "format_for", "require_packages"]
