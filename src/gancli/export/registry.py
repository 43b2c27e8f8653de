"""Export formats by name, and the checks of an export request (format, options, output
path, optional packages) made before anything is loaded. Torch-free; see
:mod:`gancli.export`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gancli.errors import GancliError, UsageError
from gancli.registry import Registry

#: Suffixes that name files, refused for a bundle folder.
_FILE_SUFFIXES = (".onnx", ".pt", ".pt2", ".pth", ".safetensors", ".bin", ".json", ".zip", ".ckpt")
EXTRA_HINT = "pip install -e '.[export]' -c constraints.txt (in a gancli checkout; from PyPI: pip install 'gancli[export]')"


@dataclass(frozen=True)
class ExportFormat:
    """How one export format is written and checked.

    Args:
        suffix: the output's file suffix; "" = the output is a folder.
        graph: True = a computation graph (``--uint8`` applies); False = weights only.
        packages: import names needed to write it, beyond torch.
        verify_packages: import names needed to verify it.
        impl: torch-importing builder of the implementation (``write``, ``load``,
            ``stored_metadata``; see :mod:`gancli.export.formats`).
    """

    suffix: str
    graph: bool
    impl: Callable[[], Any]
    packages: tuple[str, ...] = field(default=())
    verify_packages: tuple[str, ...] = field(default=())


FORMATS: Registry[ExportFormat] = Registry("export format")


def _onnx() -> Any:
    from gancli.export.formats import OnnxFormat

    return OnnxFormat


def _torchscript() -> Any:
    from gancli.export.formats import TorchScriptFormat

    return TorchScriptFormat


def _exported_program() -> Any:
    from gancli.export.formats import ExportedProgramFormat

    return ExportedProgramFormat


def _bundle() -> Any:
    from gancli.export.formats import BundleFormat

    return BundleFormat


FORMATS.register("onnx", "ONNX graph (torch.export-based exporter); runs in onnxruntime without torch")(
    ExportFormat(".onnx", True, _onnx, ("onnx", "onnxscript"), ("onnx", "onnxruntime")))
FORMATS.register("torchscript", "TorchScript module (torch.jit.trace); torch.jit.load, also from C++")(
    ExportFormat(".pt", True, _torchscript))
FORMATS.register("exported-program", "torch.export ExportedProgram; torch.export.load, AOTInductor")(
    ExportFormat(".pt2", True, _exported_program))
FORMATS.register("safetensors", "bundle folder: config.json + generator.safetensors; gancli.load_generator")(
    ExportFormat("", False, _bundle))


def check_options(fmt: str, uint8: bool = False) -> ExportFormat:
    """The format ``fmt``, after checking the options that go with it.

    Raises:
        UnknownNameError: unknown format (lists the valid ones).
        UsageError: ``uint8`` for the weights-only bundle.
    """
    spec = FORMATS.get(fmt)
    if uint8 and not spec.graph:
        raise UsageError(f"--uint8 applies to graph formats ({', '.join(e.name for e in FORMATS if e.obj.graph)}); "
                         f"a {fmt} bundle holds weights only")
    return spec


def check_output(fmt: str, path: Path, force: bool = False) -> None:
    """Check that ``path`` can receive a ``fmt`` export.

    Raises:
        UsageError: wrong suffix for the format, a missing parent directory, or an
            existing output (a non-empty folder for a bundle) without ``force``.
    """
    spec = FORMATS.get(fmt)
    path = Path(path)
    suffix = path.suffix.lower()
    if spec.suffix:
        if suffix != spec.suffix:
            raise UsageError(f"-o {path}: --format {fmt} writes a {spec.suffix} file; use a name ending in {spec.suffix}")
    elif suffix in _FILE_SUFFIXES or path.is_file():
        raise UsageError(f"-o {path}: --format {fmt} writes a bundle folder; give a folder path without a file suffix")
    if not path.parent.is_dir():
        raise UsageError(f"directory {path.parent} does not exist (for -o {path})")
    if spec.suffix:
        if path.is_dir():
            raise UsageError(f"-o {path} is a folder; --format {fmt} writes a {spec.suffix} file")
        if path.exists() and not force:
            raise UsageError(f"{path} already exists; pass --force to replace it")
    elif path.exists() and not force and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"{path} already exists and is not empty; pass --force to replace it")


def require_packages(fmt: str, verify: bool = True) -> None:
    """Import the optional packages a ``fmt`` export (and its verification) needs.

    Raises:
        GancliError: one is missing; the message names ``pip install 'gancli[export]'``.
    """
    spec = FORMATS.get(fmt)
    needed = list(spec.packages) + [p for p in (spec.verify_packages if verify else ()) if p not in spec.packages]
    missing = []
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        what = "exporting and verifying" if verify and spec.verify_packages else "exporting"
        raise GancliError(f"{what} --format {fmt} needs {', '.join(missing)}, not installed here; "
                          f"install the export extra: {EXTRA_HINT}")


def format_for(path: Path | None, default: str = "onnx") -> str:
    """The format whose file suffix ``path`` has (``g.pt2`` -> ``exported-program``), else ``default``."""
    if path is not None:
        for entry in FORMATS:
            if entry.obj.suffix and path.suffix.lower() == entry.obj.suffix:
                return entry.name
    return default


def default_output(fmt: str, label: str, step: int | None) -> Path:
    """``<label>-step<S>`` + the format's suffix, in the current directory."""
    stem = label if step is None else f"{label}-step{step}"
    return Path(stem + FORMATS.get(fmt).suffix)
