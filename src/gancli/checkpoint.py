"""Checkpoints: safetensors tensors + JSON metadata, no pickles.

Format ``gancli-checkpoint`` version 1 (documented in ``docs/runs.md``): one
``.safetensors`` file whose tensors are

* ``generator.<param>``, ``discriminator.<param>``: ``state_dict()`` entries;
* ``optim_g.<path>``, ``optim_d.<path>``: tensors of the optimizers' state;
* ``rng.<name>``: uint8 RNG states (torch CPU, CUDA/MPS device, latent generator);

and whose safetensors metadata (string -> string) holds ``format``,
``format_version``, ``gancli_version``, ``config`` (the full
:class:`~gancli.config.RunConfig` as JSON), ``state`` (JSON: step, epoch,
device_type and the non-tensor structure of each part) and
``sha256`` (JSON: part name -> sha256 of its tensors' bytes, checked on load).
Parts: ``generator``, ``discriminator``, ``generator_ema`` (when EMA is on),
``optim_g``, ``optim_d``, ``rng``. The config alone rebuilds the models, so a
checkpoint file is enough to sample (:func:`load_generator`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from gancli._version import __version__
from gancli.config import RunConfig
from gancli.errors import GancliError
from gancli.fsutil import atomic_path

FORMAT = "gancli-checkpoint"
FORMAT_VERSION = 1


# -- nested state <-> (tensors, JSON) ------------------------------------------
def flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested dict/list into ``tensors`` (keyed by path) and
    return a JSON-able skeleton with ``{"__tensor__": key}`` in their place.
    Integer dict keys (optimizer state) are kept as ``{"__intkeys__": {...}}``."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        body = {str(k): flatten_state(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        if obj and all(isinstance(k, int) for k in obj):
            return {"__intkeys__": body}
        return body
    if isinstance(obj, (list, tuple)):
        return [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def unflatten_state(skel: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skel, dict):
        if set(skel) == {"__tensor__"}:
            return tensors[skel["__tensor__"]]
        if set(skel) == {"__intkeys__"}:
            return {int(k): unflatten_state(v, tensors) for k, v in skel["__intkeys__"].items()}
        return {k: unflatten_state(v, tensors) for k, v in skel.items()}
    if isinstance(skel, list):
        return [unflatten_state(v, tensors) for v in skel]
    return skel


def _digest(tensors: dict[str, torch.Tensor], name: str) -> str:
    """sha256 over the raw bytes of the tensors stored under ``name.`` (key order),
    so flipped bytes in the data are detected on load (safetensors has no checksum)."""
    h = hashlib.sha256()
    prefix = name + "."
    for key in sorted(k for k in tensors if k.startswith(prefix) or k == name):
        t = tensors[key].contiguous()
        h.update(key.encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# -- files ---------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, config: RunConfig, state: dict[str, Any],
                    modules: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (temp file + fsync + rename).

    Args:
        path: destination ``.safetensors`` file.
        config: the run's config (embedded, so the file alone rebuilds the models).
        state: JSON-able training state (``step``, ...).
        modules: name -> anything with ``state_dict()`` (modules, optimizers) or a
            tensor (RNG states); tensors are stored under ``<name>.<key>``.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    skeletons: dict[str, Any] = {}
    for name, obj in modules.items():
        value = obj.state_dict() if hasattr(obj, "state_dict") else obj
        skeletons[name] = flatten_state(value, name, tensors)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "gancli_version": __version__,
        "config": config.to_json(indent=None),
        "state": json.dumps({**state, "structure": skeletons}),
        "sha256": json.dumps({name: _digest(tensors, name) for name in modules}),
    }
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as e:  # I/O errors surface as SafetensorError; keep them OSErrors
            raise OSError(errno.EIO, str(e), str(path)) from None
    return path


@dataclass
class Checkpoint:
    """A loaded checkpoint: config, JSON state and lazily read tensors."""

    path: Path
    config: RunConfig
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    #: parts whose data failed their checksum and were left out (:func:`salvage_checkpoint`)
    lost: tuple[str, ...] = ()

    @property
    def step(self) -> int:
        return self.state["step"]  # validated by load_checkpoint

    def part(self, name: str) -> Any:
        """The nested state stored under ``name`` (a state_dict, an RNG tensor...).

        Raises:
            GancliError: no such entry, or a tensor it names is missing (a damaged file).
        """
        try:
            skel = self.state["structure"][name]
        except (KeyError, TypeError):
            raise GancliError(f"checkpoint {self.path} has no {name!r} entry") from None
        try:
            return unflatten_state(skel, self.tensors)
        except (KeyError, TypeError, AttributeError) as e:
            raise GancliError(f"checkpoint {self.path} is damaged (part {name!r}: missing tensor {e})") from None

    def has(self, name: str) -> bool:
        """Whether the checkpoint holds the part ``name`` (a part lost to damage does not count)."""
        return name in self.state.get("structure", {}) and name not in self.lost


def read_header(path: str | os.PathLike) -> dict[str, str]:
    """The safetensors metadata of ``path``, validated as a gancli checkpoint.

    Raises:
        GancliError: missing, unreadable, corrupt, or not a gancli checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise GancliError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise GancliError(f"checkpoint {path} is damaged or not a safetensors file ({e})") from None
    if meta.get("format") != FORMAT:
        raise GancliError(f"{path} is not a gancli checkpoint (format {meta.get('format')!r})")
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        raise GancliError(f"checkpoint {path} is damaged (format_version {meta.get('format_version')!r})") from None
    if version > FORMAT_VERSION:
        raise GancliError(
            f"checkpoint {path} has format version {version}, newer than this gancli "
            f"understands ({FORMAT_VERSION}); upgrade gancli"
        )
    return meta


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu",
                    prefixes: tuple[str, ...] | None = None) -> Checkpoint:
    """Read a checkpoint; only tensors whose name starts with one of ``prefixes``
    (all when None) are loaded, onto ``device``.

    Raises:
        GancliError: see :func:`read_header`.
    """
    path = Path(path)
    meta = read_header(path)
    try:
        config = RunConfig.from_json(meta["config"])
        state = json.loads(meta["state"])
        digests = json.loads(meta.get("sha256", "{}"))
        if not isinstance(state, dict) or not isinstance(state.get("structure"), dict):
            raise ValueError("state is not an object with a structure")
        step = state.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"step {step!r} is not an integer >= 0")
        if not isinstance(digests, dict) or not all(isinstance(v, str) for v in digests.values()):
            raise ValueError("sha256 is not an object of hex digests")
        tensors = {}
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            for key in f.keys():
                if prefixes is None or key.startswith(prefixes):
                    tensors[key] = f.get_tensor(key)
    except GancliError as e:
        raise GancliError(f"checkpoint {path} is damaged ({e})") from None
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
        raise GancliError(f"checkpoint {path} is damaged ({str(e).splitlines()[0]})") from None
    for name, digest in digests.items():
        wanted = prefixes is None or any(p.rstrip(".") == name for p in prefixes)
        if wanted and _digest(tensors, name) != digest:
            raise GancliError(f"checkpoint {path} is damaged (checksum mismatch in {name!r})")
    return Checkpoint(path, config, state, tensors)


#: Parts a training run can continue without (:func:`salvage_checkpoint`): the RNG states
#: (re-seeded), the fp16 loss scalers (a fresh scale) and a task step's own state (CycleGAN's
#: image pools, refilled).
EXPENDABLE_PARTS = ("rng", "scaler_d", "scaler_g", "task_step")


def salvage_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu",
                       expendable: tuple[str, ...] = EXPENDABLE_PARTS) -> Checkpoint:
    """Read a checkpoint for ``gan train --resume RUN --from damaged/step-N``: like
    :func:`load_checkpoint`, but a part of ``expendable`` whose data fails its checksum is left
    out and named in :attr:`Checkpoint.lost` instead of failing the whole file.

    Raises:
        GancliError: the header is damaged, or a part training needs (generator,
            discriminator, EMA generator, optimizers) fails its checksum (named).
    """
    path = Path(path)
    meta = read_header(path)
    try:
        names = list(json.loads(meta["state"])["structure"])
    except (KeyError, TypeError, ValueError):
        return load_checkpoint(path, device)  # raises with the reason
    lost = []
    for name in names:
        try:
            load_checkpoint(path, "cpu", prefixes=(name,))
        except GancliError as e:
            if name not in expendable:
                raise GancliError(f"checkpoint {path} cannot continue training: its {name!r} part is damaged "
                                  f"({e}); train a new run") from None
            lost.append(name)
    if not lost:
        return load_checkpoint(path, device)
    ckpt = load_checkpoint(path, device, prefixes=tuple(n for n in names if n not in lost))
    ckpt.lost = tuple(lost)
    return ckpt


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu", ema: bool = True) -> torch.nn.Module:
    """Rebuild the generator stored in a checkpoint, a run directory, a run's
    ``checkpoints/`` folder (newest checkpoint) or a generator bundle folder
    (``gan export --format safetensors``), with no other input.

    A folder is a bundle when its ``config.json`` says ``"format": "gancli-generator"``
    and a run directory when it says ``"gancli-run"``.

    Args:
        ema: use the EMA weights when the checkpoint has them (the default);
            False = the raw generator (an error for a bundle holding EMA weights).

    Returns:
        The generator in eval mode on ``device``: ``G(z)`` (or ``G(z, y)`` when
        ``G.num_classes > 0``, ``y (N,)`` int64) maps ``(N, nz)`` to
        ``(N, C, H, W)`` images in [-1, 1]; ``G.sample(n, seed)`` draws images.
        Attributes: ``nz``, ``num_classes``, ``img_channels``, ``img_resolution``,
        ``config`` (its :class:`~gancli.config.ModelConfig`), ``step``, ``uses_ema``.

    Raises:
        GancliError: no checkpoint there, or it is damaged.
    """
    from gancli.bundle import is_bundle, load_bundle

    path = Path(path)
    if path.is_dir() and is_bundle(path):
        return load_bundle(path, device=device, ema=ema)
    if path.is_dir():
        from gancli.runs import Run

        run = Run(path if (path / "config.json").exists() else path.parent)
        path = run.checkpoint_path("latest")
    ckpt = load_checkpoint(path, device="cpu", prefixes=GENERATOR_PARTS)
    return generator_from_checkpoint(ckpt, device=device, ema=ema)


#: Tensor-name prefixes of the generator parts (what sampling needs of a checkpoint).
GENERATOR_PARTS = ("generator.", "generator_ema.")


def generator_from_checkpoint(ckpt: Checkpoint, device: str | torch.device = "cpu", ema: bool = True) -> torch.nn.Module:
    """The generator of an already loaded checkpoint (see :func:`load_generator`), so a
    command that also needs the checkpoint's config reads the file once.

    Raises:
        GancliError: the weights do not match the config.
        UsageError: an image-to-image run's generator (``--task inpaint`` ...): it takes an
            image, not ``z``: ``gan translate`` runs it (:func:`gancli.translate.load.load_translator`).
    """
    from gancli.errors import UsageError
    from gancli.models import build_generator

    if ckpt.config.task.name != "generate":
        raise UsageError(f"{ckpt.path} is an image-to-image run (--task {ckpt.config.task.name}): its generator "
                         "translates images rather than drawing them from noise; use gan translate RUN INPUT... -o OUT")
    g = build_generator(ckpt.config.model)
    use_ema = ema and ckpt.has("generator_ema")
    try:
        g.load_state_dict(ckpt.part("generator_ema" if use_ema else "generator"), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise GancliError(f"checkpoint {ckpt.path} does not match its config ({first})") from None
    g.step = ckpt.step  # informational
    g.uses_ema = use_ema
    return g.to(device).eval()
