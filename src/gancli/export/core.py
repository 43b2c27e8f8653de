"""Export a generator and prove the artifact computes what the generator computes.

The artifact is written next to its destination under a temporary name, reloaded
with its own runtime (onnxruntime, ``torch.jit.load``, ``torch.export.load``,
:func:`gancli.load_generator`) and run on fixed latents at two batch sizes; only
if its metadata reads back unchanged and its images match the PyTorch generator's
(eval mode) is it renamed into place. Otherwise it is deleted and the destination
is left as it was.
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
from gancli.export.graph import GeneratorGraph, export_metadata
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
    spec = check_options(fmt, uint8)
    path = Path(path)
    check_output(fmt, path, force)
    require_packages(fmt, verify)
    impl = spec.impl()

    on_cpu = all(t.device.type == "cpu" for t in [*generator.parameters(), *generator.buffers()])
    g = generator if on_cpu else copy.deepcopy(generator).cpu()
    was_training = g.training
    g.eval()
    try:
        graph = GeneratorGraph(g, uint8=uint8).eval()
        meta = export_metadata(g, uint8=uint8, source=source)
        staged = atomic_path(path, keep_suffix=True) if spec.suffix else atomic_dir(path, replace=force)
        with staged as tmp:
            t0 = time.perf_counter()
            notes = impl.write(graph, tmp, meta)
            seconds = time.perf_counter() - t0
            result = ExportResult(fmt, path, _size(tmp), seconds, meta, notes)
            if verify:
                _verify(impl, graph, tmp, meta, result)
    finally:
        g.train(was_training)
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
    worst = 0.0
    for seed, n in enumerate(VERIFY_BATCH_SIZES):
        inputs = graph.example_inputs(n, seed=seed)
        want = graph(*inputs)
        try:
            got = loaded.run(*inputs) if len(inputs) == 2 else loaded.run(inputs[0], None)
        except Exception as e:
            raise GancliError(f"{where}: it does not run at batch size {n} ({type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0]}); nothing was written") from None
        if got.shape != want.shape or got.dtype != want.dtype:
            raise GancliError(f"{where}: at batch size {n} it returns {got.dtype} {tuple(got.shape)}, expected "
                              f"{want.dtype} {tuple(want.shape)}; nothing was written")
        diff = (got.double() - want.double()).abs().max().item()
        if not diff <= tolerance:  # also catches NaN
            raise GancliError(f"{where}: max abs difference {diff:.3g} > {tolerance:g} at batch size {n} "
                              "against the PyTorch generator; nothing was written")
        worst = max(worst, diff)
    result.max_abs_diff = worst
    result.tolerance = tolerance
    result.verified_with = loaded.runtime
    result.batch_sizes = VERIFY_BATCH_SIZES
