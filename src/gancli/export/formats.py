"""The four export formats: how each is written and how it is loaded back for verification.

Each implementation has

* ``write(graph, path, meta) -> list[str]``: write ``graph`` (a
  :class:`~gancli.export.graph.GeneratorGraph`) with ``meta`` to ``path`` (a file,
  or an empty folder for the bundle); returns notes on how it was made;
* ``load(path) -> Loaded``: reload it with the format's own runtime;
* ``stored_metadata(meta)``: ``meta`` as ``load`` reads it back.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gancli.errors import GancliError
from gancli.export.graph import GeneratorGraph, TranslatorGraph

Graph = GeneratorGraph | TranslatorGraph

METADATA_FILE = "metadata.json"  # extra file of the TorchScript and ExportedProgram archives


@dataclass
class Loaded:
    """A reloaded artifact: ``run(z, labels)`` -> images (a CPU tensor; a translator's:
    ``run(source, None)``), its metadata, and the runtime that ran it (for the report)."""

    run: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    metadata: dict[str, Any]
    runtime: str


def _size_oblivious(graph: Graph) -> Any:
    """For a :class:`TranslatorGraph`, torch.export's size-oblivious reasoning about sizes 0
    and 1 (``backed_size_oblivious``): without it the U-Net's innermost map, 1 x 1 at small
    inputs, makes torch.export guard that H and W exceed the multiple. A no-op for the
    generators (their graphs stay exactly as before) and where torch lacks the setting."""
    if not isinstance(graph, TranslatorGraph):
        return contextlib.nullcontext()
    try:
        from torch.fx.experimental import _config as fx_config

        return fx_config.patch(backed_size_oblivious=True)
    except (ImportError, AttributeError, KeyError):  # pragma: no cover - older or newer torch
        return contextlib.nullcontext()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def _json_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(meta))


class OnnxFormat:
    """ONNX through the torch.export-based exporter (``torch.onnx.export(..., dynamo=True)``,
    onnxscript), default opset; model ``metadata_props`` hold the metadata (strings as
    they are, other values as JSON)."""

    @staticmethod
    def stored_metadata(meta: dict[str, Any]) -> dict[str, str]:
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}

    @staticmethod
    def write(graph: Graph, path: Path, meta: dict[str, Any]) -> list[str]:
        try:
            with warnings.catch_warnings(), _size_oblivious(graph):
                warnings.simplefilter("ignore")  # exporter chatter (axis renames, deprecations)
                program = torch.onnx.export(
                    graph, graph.export_inputs(), dynamo=True, input_names=graph.input_names,
                    output_names=["images"], dynamic_shapes=graph.dynamic_shapes(), optimize=True, verbose=False,
                )
        except Exception as e:  # the exporter raises many types; report it in one line
            raise GancliError(f"the ONNX exporter (torch.onnx.export, dynamo=True) failed: {_first_line(e)}") from None
        program.model.metadata_props.update(OnnxFormat.stored_metadata(meta))
        program.model.doc_string = (
            "gancli translator: source (N, in_channels, H, W) float32 -> images (N, C, H, W)"
            if isinstance(graph, TranslatorGraph) else
            "gancli generator: z (N, nz) float32 [, labels (N,) int64] -> images (N, C, H, W)")
        program.save(str(path), external_data=False)
        opset = program.model.opset_imports.get("", "?")
        return [f"torch.export-based ONNX exporter, opset {opset}"]

    @staticmethod
    def load(path: Path) -> Loaded:
        import onnx
        import onnxruntime as ort

        try:
            onnx.checker.check_model(str(path))
        except onnx.checker.ValidationError as e:
            raise GancliError(f"{path} fails onnx.checker: {_first_line(e)}") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        first = session.get_inputs()[0].name  # z, or a translator's source

        def run(z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
            feed = {first: z.numpy()}
            if labels is not None:
                feed["labels"] = labels.numpy()
            return torch.from_numpy(session.run(["images"], feed)[0])

        return Loaded(run, dict(session.get_modelmeta().custom_metadata_map), f"onnxruntime {ort.__version__}")


class TorchScriptFormat:
    """TorchScript by ``torch.jit.trace`` (the generators have no data-dependent control
    flow; the batch size stays symbolic, and a translator's H and W: its padding indices are
    computed from the traced sizes), saved with ``torch.jit.save`` and the
    metadata as the extra file ``metadata.json``."""

    stored_metadata = staticmethod(_json_metadata)

    @staticmethod
    def write(graph: Graph, path: Path, meta: dict[str, Any]) -> list[str]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TracerWarning on shape checks; jit deprecation notice
                traced = torch.jit.trace(graph, graph.export_inputs(), check_trace=False)
        except Exception as e:
            raise GancliError(f"torch.jit.trace failed: {_first_line(e)}") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.save is deprecated"
            torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(meta)})
        return ["torch.jit.trace"]

    @staticmethod
    def load(path: Path) -> Loaded:
        extra = {METADATA_FILE: ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)

        @torch.no_grad()
        def run(z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
            return module(z) if labels is None else module(z, labels)

        return Loaded(run, json.loads(extra[METADATA_FILE]), f"torch.jit.load (torch {torch.__version__})")


class ExportedProgramFormat:
    """``torch.export.export`` with a dynamic batch dimension, saved with
    ``torch.export.save`` (.pt2) and the metadata as the extra file ``metadata.json``."""

    stored_metadata = staticmethod(_json_metadata)

    @staticmethod
    def write(graph: Graph, path: Path, meta: dict[str, Any]) -> list[str]:
        try:
            with warnings.catch_warnings(), _size_oblivious(graph):
                warnings.simplefilter("ignore")
                program = torch.export.export(graph, graph.export_inputs(), dynamic_shapes=graph.dynamic_shapes())
        except Exception as e:
            raise GancliError(f"torch.export.export failed: {_first_line(e)}") from None
        torch.export.save(program, str(path), extra_files={METADATA_FILE: json.dumps(meta)})
        return ["torch.export.export, dynamic " + ("batch, height and width" if isinstance(graph, TranslatorGraph)
                                                   else "batch")]

    @staticmethod
    def load(path: Path) -> Loaded:
        extra = {METADATA_FILE: ""}
        module = torch.export.load(str(path), extra_files=extra).module()

        @torch.no_grad()
        def run(z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
            return module(z) if labels is None else module(z, labels)

        return Loaded(run, json.loads(extra[METADATA_FILE]), f"torch.export.load (torch {torch.__version__})")


class BundleFormat:
    """The safetensors bundle folder (:mod:`gancli.bundle`); reloaded with
    :func:`gancli.load_generator`, a translator's (with the run's config) with
    :func:`gancli.translate.load.load_translator`."""

    @staticmethod
    def stored_metadata(meta: dict[str, Any]) -> dict[str, Any]:
        return _json_metadata(meta)

    @staticmethod
    def write(graph: Graph, path: Path, meta: dict[str, Any]) -> list[str]:
        from gancli.bundle import write_bundle

        run_config = getattr(graph, "run_config", None) if isinstance(graph, TranslatorGraph) else None
        write_bundle(graph.generator, path, meta, run_config=run_config)
        return ["config.json + generator.safetensors" + (" + the run's config (task)" if run_config else "")]

    @staticmethod
    def load(path: Path) -> Loaded:
        from gancli.bundle import bundle_task, read_bundle_config
        from gancli.checkpoint import load_generator

        doc = read_bundle_config(path)
        meta = dict(doc["meta"])
        meta.pop("sha256", None)
        if bundle_task(doc) != "generate":
            from gancli.translate.load import load_translator

            t = load_translator(path, ema=bool(meta.get("ema")))
            graph = TranslatorGraph(t.G, t.img_channels, t.config.model.img_resolution,
                                    keep_known=t.corruption == "inpaint")

            @torch.no_grad()
            def translate(source: torch.Tensor, _: torch.Tensor | None) -> torch.Tensor:
                return graph(source)

            return Loaded(translate, meta, "gancli.translate.load.load_translator")
        graph = GeneratorGraph(load_generator(path, ema=bool(meta.get("ema"))))

        @torch.no_grad()
        def run(z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
            return graph(z, labels)

        return Loaded(run, meta, "gancli.load_generator")

