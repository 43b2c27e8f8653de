"""Load the translator of an image-to-image run (``gan train --task inpaint|superres|...``): the
one loader behind ``gan translate``, ``gan evaluate`` and ``gan export`` on translation runs.

A :class:`Translator` holds the run's generator (EMA weights when the run kept them) and what
is needed to use it without a data loader: the task, its corruption options (so a clean image
can be corrupted exactly as in training), the image channels, and :meth:`Translator.repair`,
which runs G and applies the task's output rule (inpainting keeps the known pixels).

Import cost: torch (through the checkpoint module).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gancli.checkpoint import GENERATOR_PARTS, Checkpoint, load_checkpoint
from gancli.config import RunConfig
from gancli.errors import GancliError, UsageError

__all__ = ["DIRECTIONS", "Translator", "load_translator", "translator_from_bundle", "translator_from_checkpoint",
           "translation_task"]

#: ``--direction`` values of an unpaired (CycleGAN) run: domain A to B, B to A.
DIRECTIONS = ("a2b", "b2a")


@dataclass
class Translator:
    """An image-to-image run's generator, ready to apply.

    Attributes:
        G: the generator in eval mode: ``(N, in_channels, H, W)`` in [-1, 1] -> ``(N,
            img_channels, H, W)`` in [-1, 1], any H and W (padded to :attr:`multiple` inside).
        config: the run's :class:`~gancli.config.RunConfig`.
        task: the run's ``--task`` name (``inpaint``, ``superres``...).
        corruption: the :data:`gancli.translate.corrupt.TASKS` entry that made G's training inputs.
        options: that corruption's options as trained (``scale``, ``mask_size``...).
        step: the checkpoint's step.
        uses_ema: the weights are the EMA generator's.
        path: the checkpoint file.
        direction: an unpaired (CycleGAN) run's direction, ``a2b`` or ``b2a`` (:data:`DIRECTIONS`):
            G maps that domain's images to the other's (same C); None for the other tasks.
    """

    G: torch.nn.Module
    config: RunConfig
    task: str
    corruption: str
    options: dict[str, Any]
    step: int
    uses_ema: bool
    path: Path
    direction: str | None = None

    @property
    def img_channels(self) -> int:
        """C of the images the run was trained on (and of G's output)."""
        return self.config.model.img_channels

    @property
    def in_channels(self) -> int:
        """C of G's input (e.g. inpaint: C + 1, the damaged image and the mask)."""
        return self.config.model.in_channels

    @property
    def multiple(self) -> int:
        """G pads H and W to multiples of this internally."""
        return int(getattr(self.G, "multiple", 1))

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    def corrupt(self, images: torch.Tensor, seed: int, index: int = 0):
        """The training corruption of clean ``images`` ``(N, C, H, W)`` in [-1, 1] at (``seed``,
        ``index``): :func:`gancli.translate.corrupt.corrupt` with the run's options. Returns
        ``(input, extra)`` (:class:`~gancli.translate.corrupt.Corrupted`).

        Raises:
            UsageError: the run has no corruption (``--task unpaired``: its inputs are images of
                the other domain).
        """
        from gancli.translate.corrupt import corrupt

        if not self.corruption:
            raise UsageError(f"--corrupt applies to repair tasks (inpaint, superres, denoise, colorize, edges); "
                             f"{self.path} is a --task {self.task} run")

        return corrupt(self.corruption, images, seed, index, **self.options)

    @torch.no_grad()
    def repair(self, source: torch.Tensor, extra: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """G applied to ``source`` ``(N, in_channels, H, W)`` in [-1, 1], float32 ``(N,
        img_channels, H, W)`` in [-1, 1]; with an inpainting ``extra`` (``mask`` and ``damaged``)
        the known pixels are kept (:func:`~gancli.translate.corrupt.keep_known`)."""
        out = self.G(source.to(self.device)).float()
        if extra and "mask" in extra:
            from gancli.translate.corrupt import keep_known

            out = keep_known(out, extra["damaged"].to(out.device), extra["mask"].to(out.device))
        return out


def _check_direction(direction: str | None, task: Any, where: Any) -> None:
    if direction is not None and direction not in DIRECTIONS:
        raise UsageError(f"--direction {direction} is not one of {', '.join(DIRECTIONS)}")
    if direction is not None and task.step != "cyclegan":
        raise UsageError(f"--direction applies to unpaired (CycleGAN) runs; {where} is a --task {task.name} "
                         "run with one generator")


def translator_from_checkpoint(ckpt: Checkpoint, device: str | torch.device = "cpu", ema: bool = True,
                               direction: str | None = None) -> Translator:
    """The :class:`Translator` of an already loaded checkpoint.

    Args:
        direction: ``a2b`` / ``b2a`` for an unpaired (CycleGAN) run, which holds one generator per
            direction (``G.g_ab`` / ``G.g_ba`` of its pair); None = the run's only generator (a2b
            for CycleGAN). The Translator's G is that direction's generator alone.

    Raises:
        UsageError: the run draws images from noise (``--task generate``): use ``gan sample``.
        GancliError: the weights do not match the config.
    """
    from gancli.models import build_generator
    from gancli.tasks import TRAINING_TASKS

    cfg = ckpt.config
    task = TRAINING_TASKS.get(cfg.task.name)
    if not task.translates:
        raise UsageError(f"{ckpt.path} is a generation run (--task generate): it draws images from noise; "
                         "use gan sample, or give a run trained with an image-to-image --task")
    _check_direction(direction, task, ckpt.path)
    g = build_generator(cfg.model)
    use_ema = ema and ckpt.has("generator_ema")
    try:
        g.load_state_dict(ckpt.part("generator_ema" if use_ema else "generator"), strict=True)
    except RuntimeError as e:
        raise GancliError(f"checkpoint {ckpt.path} does not match its config ({str(e).splitlines()[0]})") from None
    if task.step == "cyclegan":
        direction = direction or DIRECTIONS[0]
        g = g.g_ab if direction == "a2b" else g.g_ba
    g = g.to(device).eval()
    return Translator(g, cfg, task.name, task.corruption, task.corruption_options(cfg.task), ckpt.step,
                      use_ema, Path(ckpt.path), direction)


def load_translator(path: str | os.PathLike, device: str | torch.device = "cpu", ema: bool = True,
                    direction: str | None = None) -> Translator:
    """The :class:`Translator` of a checkpoint file, a run directory or a run's ``checkpoints/``
    folder (its newest checkpoint), or a bundle folder written by ``gan export --format
    safetensors`` of an image-to-image run (:func:`translator_from_bundle`).

    Raises:
        GancliError: no checkpoint there, or it is damaged.
        UsageError: a generation run or bundle (see :func:`translator_from_checkpoint`).
    """
    from gancli.bundle import is_bundle

    path = Path(path)
    if path.is_dir() and is_bundle(path):
        return translator_from_bundle(path, device=device, ema=ema, direction=direction)
    if path.is_dir():
        from gancli.runs import Run

        run = Run(path if (path / "config.json").exists() else path.parent)
        path = run.checkpoint_path("latest")
    ckpt = load_checkpoint(path, device="cpu", prefixes=GENERATOR_PARTS)
    return translator_from_checkpoint(ckpt, device=device, ema=ema, direction=direction)


def translator_from_bundle(folder: str | os.PathLike, device: str | torch.device = "cpu", ema: bool = True,
                           direction: str | None = None) -> Translator:
    """The :class:`Translator` of an image-to-image run's bundle folder (:mod:`gancli.bundle`; its
    ``run_config`` gives the task and its options). :attr:`Translator.step` is the exported
    checkpoint's step (0 if the bundle does not say), :attr:`Translator.path` the folder.

    Raises:
        GancliError: not a bundle, damaged, or its run config is.
        UsageError: a generation bundle (no ``run_config``: use ``gan sample``), or a bad ``direction``.
    """
    from gancli.bundle import bundle_task, load_bundle_weights, read_bundle_config
    from gancli.tasks import TRAINING_TASKS

    folder = Path(folder)
    doc = read_bundle_config(folder)
    if bundle_task(doc) == "generate":
        raise UsageError(f"{folder} is the bundle of a generation run: its generator draws images from noise; "
                         "use gan sample, or export an image-to-image run")
    try:
        cfg = RunConfig.from_dict(doc["run_config"])
    except GancliError as e:
        raise GancliError(f"bundle {folder} is damaged (run_config: {e})") from None
    task = TRAINING_TASKS.get(cfg.task.name)
    _check_direction(direction, task, folder)
    g = load_bundle_weights(folder, doc, device=device, ema=ema)
    step = doc.get("meta", {}).get("step")
    return Translator(g, cfg, task.name, task.corruption, task.corruption_options(cfg.task),
                      step if isinstance(step, int) else 0, bool(g.uses_ema), folder)


def translation_task(path: str | os.PathLike) -> str | None:
    """The ``--task`` of the run that ``path`` (a checkpoint file or a bundle folder, as
    :class:`gancli.cli.common.GeneratorSource` gives) holds the generator of, when it translates
    images; None for a noise-to-image generator. Reads only the checkpoint's header or the
    bundle's ``config.json``, so a command can choose its loader first.

    Raises:
        GancliError: unreadable or damaged (as :func:`gancli.checkpoint.read_header`).
    """
    from gancli.bundle import bundle_task, is_bundle, read_bundle_config
    from gancli.checkpoint import read_header
    from gancli.tasks import TRAINING_TASKS

    path = Path(path)
    if path.is_dir() and is_bundle(path):
        name = bundle_task(read_bundle_config(path))
    else:
        try:
            name = RunConfig.from_json(read_header(path)["config"]).task.name
        except (KeyError, GancliError):
            return None  # the loader reports the damage in its own words
    return name if name in TRAINING_TASKS.names() and TRAINING_TASKS.get(name).translates else None
