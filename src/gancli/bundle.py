"""The portable generator bundle: a folder that alone rebuilds a generator.

Format ``gancli-generator`` version 1 (documented in ``docs/python-api.md``)::

    mnist-g/
      config.json             {"format": "gancli-generator", "format_version": 1,
                               "model": {<ModelConfig>}, "meta": {...}}
      generator.safetensors   G.state_dict() (EMA weights unless exported with --no-ema)

``meta`` says where the weights came from (source run, checkpoint, step, ema) and
holds ``sha256``, the digest of ``generator.safetensors``, checked on load. No
optimizer, discriminator or RNG state: a bundle is for sampling, not for resuming.

The bundle of an image-to-image run's generator (``gan export --format safetensors`` of a
``--task inpaint``... run) also holds ``"run_config"``, the run's whole config (its ``task``
section: the task and its corruption options), so that
:func:`gancli.translate.load.load_translator` rebuilds the translator from the folder alone;
:func:`load_bundle` (``gan sample``) refuses it.

Importing this module does not import torch (``gan sample`` tells bundles from
run directories before it loads anything); writing and loading do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gancli.errors import GancliError
from gancli.fsutil import file_sha256

if TYPE_CHECKING:
    from torch import nn

BUNDLE_FORMAT = "gancli-generator"
BUNDLE_FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "generator.safetensors"


def is_bundle(path: str | os.PathLike) -> bool:
    """True if ``path`` is a folder whose ``config.json`` says ``"format": "gancli-generator"``
    (a run directory says ``"gancli-run"``)."""
    config = Path(path) / CONFIG_NAME
    try:
        doc = json.loads(config.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == BUNDLE_FORMAT


def read_bundle_config(path: str | os.PathLike) -> dict[str, Any]:
    """The validated ``config.json`` document of the bundle at ``path``.

    Raises:
        GancliError: missing, unreadable, not a bundle, or from a newer gancli.
    """
    config = Path(path) / CONFIG_NAME
    try:
        doc = json.loads(config.read_text("utf-8"))
    except FileNotFoundError:
        raise GancliError(f"{path} is not a generator bundle (no {CONFIG_NAME})") from None
    except (OSError, ValueError) as e:
        raise GancliError(f"{config} is damaged ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
        raise GancliError(f"{config} is not a gancli generator bundle (format {doc.get('format')!r})"
                          if isinstance(doc, dict) else f"{config} is not a gancli generator bundle")
    version = doc.get("format_version", 0)
    if not isinstance(version, int) or version > BUNDLE_FORMAT_VERSION:
        raise GancliError(f"bundle {path} has format version {version!r}, newer than this gancli understands "
                          f"({BUNDLE_FORMAT_VERSION}); upgrade gancli")
    if not isinstance(doc.get("model"), dict) or not isinstance(doc.get("meta", {}), dict):
        raise GancliError(f"{config} is damaged (no \"model\" object)")
    return doc


def bundle_task(doc: dict[str, Any]) -> str:
    """The ``--task`` of the run a bundle's ``config.json`` document (:func:`read_bundle_config`)
    came from: ``generate`` for a bundle without ``run_config`` (all bundles of noise-to-image
    generators)."""
    task = (doc.get("run_config") or {}).get("task") or {}
    name = task.get("name", "generate") if isinstance(task, dict) else "generate"
    return name if isinstance(name, str) else "generate"


def write_bundle(generator: nn.Module, folder: str | os.PathLike, meta: dict[str, Any],
                 run_config: dict[str, Any] | None = None) -> Path:
    """Write ``generator`` (its ``config`` and ``state_dict()``) into the empty
    folder ``folder``. Callers make it atomic (:func:`gancli.fsutil.atomic_dir`).

    Args:
        generator: a gancli generator whose ``config`` is set (by
            :func:`gancli.models.build_generator` and the loaders).
        meta: JSON-able provenance (source, step, ema, ...); ``sha256`` is added.
        run_config: the run's :meth:`~gancli.config.RunConfig.to_dict`, written for an
            image-to-image run's generator; None = none (a noise-to-image generator).
    """
    import dataclasses

    from safetensors.torch import save_file

    from gancli._version import __version__

    folder = Path(folder)
    cfg = generator.config
    if cfg is None:
        raise GancliError("this generator has no config; build it with gancli.models.build_generator "
                          "or load it with gancli.load_generator")
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in generator.state_dict().items()}
    weights = folder / WEIGHTS_NAME
    save_file(tensors, str(weights), metadata={"format": BUNDLE_FORMAT, "format_version": str(BUNDLE_FORMAT_VERSION),
                                               "gancli_version": __version__})
    doc = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "model": dataclasses.asdict(cfg),
        "meta": {**meta, "sha256": {WEIGHTS_NAME: file_sha256(weights)}},
    }
    if run_config is not None:
        doc["run_config"] = run_config
    (folder / CONFIG_NAME).write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    return folder


def load_bundle(folder: str | os.PathLike, device: Any = "cpu", ema: bool = True) -> nn.Module:
    """Rebuild the generator of the bundle at ``folder`` (see :func:`gancli.checkpoint.load_generator`
    for what is returned).

    Args:
        ema: a bundle holds one set of weights; ``ema=False`` on a bundle exported
            with EMA weights is an error (export it again with ``--no-ema``).

    Raises:
        GancliError: not a bundle, damaged (checksum), or weights that do not match the config.
        UsageError: the bundle of an image-to-image run's generator (load it with
            :func:`gancli.translate.load.load_translator`).
    """
    from gancli.errors import UsageError

    doc = read_bundle_config(folder)
    task = bundle_task(doc)
    if task != "generate":
        raise UsageError(f"{folder} is the bundle of an image-to-image run (--task {task}): its generator "
                         "translates images; use gan translate, or gancli.translate.load.load_translator")
    return load_bundle_weights(folder, doc, device, ema)


def load_bundle_weights(folder: str | os.PathLike, doc: dict[str, Any], device: Any = "cpu",
                        ema: bool = True) -> nn.Module:
    """The generator of the bundle at ``folder`` whose ``config.json`` document is ``doc``
    (:func:`read_bundle_config`), any task: built from ``doc["model"]``, its weights checked
    against the stored sha256, in eval mode on ``device``, with ``step`` and ``uses_ema`` set.

    Raises:
        GancliError: as :func:`load_bundle`.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from gancli.config import ModelConfig, section_from_dict
    from gancli.models import build_generator

    folder = Path(folder)
    meta = doc.get("meta", {})
    cfg = section_from_dict(ModelConfig, doc["model"], "model")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise GancliError(f"bundle {folder} has no {WEIGHTS_NAME}")
    want = meta.get("sha256", {}).get(WEIGHTS_NAME)
    if want is not None and file_sha256(weights) != want:
        raise GancliError(f"bundle {folder} is damaged (checksum mismatch in {WEIGHTS_NAME})")
    uses_ema = bool(meta.get("ema", False))
    if uses_ema and not ema:
        raise GancliError(f"bundle {folder} holds only the EMA weights; export the run again with --no-ema "
                          "for the raw generator")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise GancliError(f"bundle {folder} is damaged ({str(e).splitlines()[0]})") from None
    g = build_generator(cfg)
    try:
        g.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise GancliError(f"bundle {folder} does not match its config ({str(e).splitlines()[0]})") from None
    step = meta.get("step")
    g.step = step if isinstance(step, int) else None  # informational
    g.uses_ema = uses_ema
    return g.to(device).eval()
