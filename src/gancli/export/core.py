"""Export a generator (or an image-to-image run's translator) and prove the artifact computes
what the PyTorch module computes.

The artifact is written next to its destination under a temporary name, reloaded
with its own runtime (onnxruntime, ``torch.jit.load``, ``torch.export.load``,
:func:`gancli.load_generator` / :func:`gancli.translate.load.load_translator`) and run on
fixed latents at two batch sizes (a translator: on fixed inputs at two image sizes, the
training size and an odd larger one); only if its metadata reads back unchanged and its
images match the PyTorch module's (eval mode) is it renamed into place. Otherwise it is
deleted and the destination is left as it was.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gancli.errors import GancliError
from gancli.export.registry import check_options, check_output, require_packages
from gancli.export.graph import GeneratorGraph, TranslatorGraph, export_metadata, translator_metadata
from gancli.fsutil import atomic_dir, atomic_path

#: Batch sizes of the verification (1 catches a batch axis baked in as 2, 7 an odd one).
VERIFY_BATCH_SIZES = (1, 7)
#: Largest accepted |artifact - PyTorch| for float32 images in [-1, 1].
FLOAT_TOLERANCE = 1e-4
#: Largest accepted difference for uint8 images, in levels of 0..255.
UINT8_TOLERANCE = 1


@dataclass
class ExportResult:
    """What :func:`export_generator` wrote and how well it matched."""

    format: str
    path: Path
    bytes: int  # size on disk (a bundle: all its files)
    export_seconds: float  # writing the artifact, verification excluded
    metadata: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # how it was made (exporter, opset...)
    max_abs_diff: float | None = None  # None = not verified
    tolerance: float | None = None
    verified_with: str | None = None  # the runtime that reloaded it
    batch_sizes: tuple[int, ...] = ()
    sizes: tuple[tuple[int, int], ...] = ()  # a translator's verified (H, W), one per batch size


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def export_generator(generator: nn.Module, fmt: str, path: str | Path, *, uint8: bool = False, verify: bool = True,
                     force: bool = False, source: Mapping[str, Any] | None = None) -> ExportResult:
    """Export ``generator`` as ``fmt`` to ``path``, then verify it (unless ``verify=False``).

    Args:
        generator: a gancli generator (:func:`gancli.load_generator`); it is exported
            on the CPU in eval mode (its own mode and device are left as they were).
        fmt: ``onnx`` (.onnx), ``torchscript`` (.pt), ``exported-program`` (.pt2) or
            ``safetensors`` (a bundle folder); see :data:`gancli.export.FORMATS`.
        path: the output file, or folder for ``safetensors``; its directory must exist.
        uint8: graph formats: output uint8 images in [0, 255] instead of float32 in [-1, 1].
        verify: reload the artifact and compare it with the generator at batch sizes
            :data:`VERIFY_BATCH_SIZES`; False = skip (and the optional runtime it needs).
        force: replace an existing output; False = refuse it.
        source: provenance merged into the metadata (``source_run``, ``source_checkpoint``...).

    Returns:
        An :class:`ExportResult`: path, size, export seconds, max abs difference.

    Raises:
        UsageError: bad format, option or output path (see :func:`gancli.export.check_output`).
        GancliError: a missing optional package, an exporter failure, or a failed
            verification (max difference above :data:`FLOAT_TOLERANCE`, or
            :data:`UINT8_TOLERANCE` levels with ``uint8``); the artifact is removed.
    """
    spec = _check_request(fmt, Path(path), uint8, verify, force)
    on_cpu = all(t.device.type == "cpu" for t in [*generator.parameters(), *generator.buffers()])
    g = generator if on_cpu else copy.deepcopy(generator).cpu()
    was_training = g.training
    g.eval()
    try:
        graph = GeneratorGraph(g, uint8=uint8).eval()
        meta = export_metadata(g, uint8=uint8, source=source)
        return _export(spec, graph, meta, fmt, Path(path), verify=verify, force=force)
    finally:
        g.train(was_training)


def export_translator(translator: Any, fmt: str, path: str | Path, *, uint8: bool = False, verify: bool = True,
                      force: bool = False, source: Mapping[str, Any] | None = None) -> ExportResult:
    """Export an image-to-image run's generator as ``fmt`` to ``path`` with a dynamic batch,
    height and width (:class:`~gancli.export.graph.TranslatorGraph`: ``source (N, in_channels,
    H, W)`` in [-1, 1] -> ``images (N, img_channels, H, W)`` in [-1, 1], inpainting's known
    pixels kept), then verify it at the training size and at an odd larger size
    (:data:`~gancli.export.graph.TRANSLATOR_VERIFY`) against the PyTorch generator.

    Args:
        translator: a :class:`gancli.translate.load.Translator`; its G is exported on the CPU in
            eval mode. A ``safetensors`` bundle also stores the run's config (task and options),
            so :func:`~gancli.translate.load.load_translator` reads the folder back.
        fmt, path, uint8, verify, force, source: as :func:`export_generator`.

    Returns / Raises: as :func:`export_generator`.
    """
    spec = _check_request(fmt, Path(path), uint8, verify, force)
    g = translator.G
    on_cpu = all(t.device.type == "cpu" for t in [*g.parameters(), *g.buffers()])
    g = g if on_cpu else copy.deepcopy(g).cpu()
    was_training = g.training
    g.eval()
    try:
        graph = TranslatorGraph(g, translator.img_channels, translator.config.model.img_resolution,
                                keep_known=translator.corruption == "inpaint", uint8=uint8).eval()
        graph.run_config = translator.config.to_dict()
        meta = translator_metadata(translator, uint8=uint8, source=source)
        return _export(spec, graph, meta, fmt, Path(path), verify=verify, force=force)
    finally:
        g.train(was_training)


def _check_request(fmt: str, path: Path, uint8: bool, verify: bool, force: bool) -> Any:
    """The format's :class:`~gancli.export.ExportFormat` after the checks of the request."""
    spec = check_options(fmt, uint8)
    check_output(fmt, path, force)
    require_packages(fmt, verify)
    return spec


def _export(spec: Any, graph: GeneratorGraph | TranslatorGraph, meta: dict[str, Any], fmt: str, path: Path, *,
            verify: bool, force: bool) -> ExportResult:
    impl = spec.impl()
    staged = atomic_path(path, keep_suffix=True) if spec.suffix else atomic_dir(path, replace=force)
    with staged as tmp:
        t0 = time.perf_counter()
        notes = impl.write(graph, tmp, meta)
        seconds = time.perf_counter() - t0
        result = ExportResult(fmt, path, _size(tmp), seconds, meta, notes)
        if verify:
            _verify(impl, graph, tmp, meta, result)
    return result


@torch.no_grad()
def _verify(impl: Any, graph: GeneratorGraph, staged: Path, meta: dict[str, Any], result: ExportResult) -> None:
    """Reload ``staged`` and compare; fill in ``result`` or raise :class:`GancliError`."""
    where = f"verification of {result.path} ({result.format}) failed"
    try:
        loaded = impl.load(staged)
    except GancliError as e:
        raise GancliError(f"{where}: {e}; nothing was written") from None
    except Exception as e:  # runtimes raise their own types
        raise GancliError(f"{where}: cannot reload it ({type(e).__name__}: {str(e).strip().splitlines()[0]}); "
                          "nothing was written") from None
    if loaded.metadata != impl.stored_metadata(meta):
        raise GancliError(f"{where}: its metadata does not read back unchanged; nothing was written")
    tolerance = UINT8_TOLERANCE if graph.uint8 else FLOAT_TOLERANCE
    if isinstance(graph, TranslatorGraph):
        cases = graph.verify_inputs()
    else:
        cases = [(graph.example_inputs(n, seed=seed), f"batch size {n}") for seed, n in enumerate(VERIFY_BATCH_SIZES)]
    worst = 0.0
    for inputs, at in cases:
        want = graph.reference(*inputs) if isinstance(graph, TranslatorGraph) else graph(*inputs)
        try:
            got = loaded.run(*inputs) if len(inputs) == 2 else loaded.run(inputs[0], None)
        except Exception as e:
            raise GancliError(f"{where}: it does not run at {at} ({type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0]}); nothing was written") from None
        if got.shape != want.shape or got.dtype != want.dtype:
            raise GancliError(f"{where}: at {at} it returns {got.dtype} {tuple(got.shape)}, expected "
                              f"{want.dtype} {tuple(want.shape)}; nothing was written")
        diff = (got.double() - want.double()).abs().max().item()
        if not diff <= tolerance:  # also catches NaN
            raise GancliError(f"{where}: max abs difference {diff:.3g} > {tolerance:g} at {at} "
                              f"against the PyTorch {'translator' if isinstance(graph, TranslatorGraph) else 'generator'}; "
                              "nothing was written")
        worst = max(worst, diff)
    result.max_abs_diff = worst
    result.tolerance = tolerance
    result.verified_with = loaded.runtime
    result.batch_sizes = tuple(int(inputs[0].shape[0]) for inputs, _ in cases)
    if isinstance(graph, TranslatorGraph):
        result.sizes = tuple((int(inputs[0].shape[-2]), int(inputs[0].shape[-1])) for inputs, _ in cases)
