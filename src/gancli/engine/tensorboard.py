"""``gan train --tensorboard``: TensorBoard event files under ``<run>/tensorboard/``.

The :class:`TensorBoard` hook mirrors what the run logs anyway, so
``tensorboard --logdir <home>/runs`` shows every run (one TensorBoard run per gancli
run) without changing what is trained:

* ``train/<key>``: the numbers of each ``"train"`` record of metrics.jsonl (``loss_d``,
  ``loss_g``, ``d_real``, ``d_fake``, ``gp`` / ``r1`` when enabled, ``skipped``,
  ``lr_g``, ``lr_d``) at its step; ``perf/img_per_sec``.
* ``eval/<metric>``: each result of an ``--eval-every`` evaluation (``fd_lenet`` or
  ``fid``, ``classes_covered``, ``class_accuracy``...), ``eval/<metric>_std`` where the
  metric has a spread (KID, IS), ``eval/kl_to_uniform`` (LeNet protocol).
* ``monitor/<key>``: the mode-collapse monitor's scores (``diversity``, ``duplicates``,
  ``classes_covered``, ``kl_to_uniform``) and ``monitor/symptoms`` (how many it saw).
* ``samples/fixed_z``: the fixed-z grid each time ``samples/step-<S>.png`` is written,
  the same pixels as that file.
* hparams (the HParams dashboard): the flattened config (``optim.lr_g``, ``model.arch``...)
  at the end, with the metrics ``hparams/best_<headline>`` (best evaluation, when
  ``--eval-every`` runs), ``hparams/loss_d`` and ``hparams/loss_g`` (last logged).

Rank 0 writes; the files are flushed after each write, so a run that stops on an error
loses nothing already logged. A resumed run appends a new event file to the same folder
and purges what the previous process logged after the restored checkpoint
(``SummaryWriter(purge_step=...)``), so no step shows twice.

Torch-free at import; :func:`require_tensorboard` (run while options are validated) imports
PyTorch's writer to be sure it works.
"""

from __future__ import annotations

import importlib.util
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gancli.engine.protocols import Hook

if TYPE_CHECKING:
    import torch

    from gancli.checkpoint import Checkpoint
    from gancli.engine.trainer import Trainer

#: The event files' folder inside the run directory.
TENSORBOARD_DIR = "tensorboard"

#: The one line ``gan train --tensorboard`` fails with when the package is missing.
MISSING_MESSAGE = "--tensorboard needs the tensorboard package: pip install 'gancli[tensorboard]'"

#: Record keys that are not values to plot.
_NOT_SCALARS = frozenset({"kind", "step", "epoch", "time", "seconds"})


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package is installed (found, not imported: no torch import)."""
    return importlib.util.find_spec("tensorboard") is not None


def require_tensorboard() -> None:
    """Raise :class:`~gancli.errors.UsageError` (:data:`MISSING_MESSAGE`) unless
    :func:`tensorboard_available` and PyTorch's writer imports (an installed but broken
    tensorboard, e.g. against another protobuf, fails here, before a run directory exists,
    rather than when the first event is written)."""
    from gancli.errors import UsageError

    if not tensorboard_available():
        raise UsageError(MISSING_MESSAGE)
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception as e:  # ImportError, or whatever a broken dependency raises on import
        raise UsageError(f"{MISSING_MESSAGE} (it is installed but does not import: {str(e).splitlines()[0]})") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def train_scalars(record: dict[str, Any]) -> dict[str, float]:
    """Tag -> value of a ``"train"`` record: ``train/<key>`` for its numbers, except
    ``perf/img_per_sec``; step, epoch and time are left out."""
    return {("perf/" if k == "img_per_sec" else "train/") + k: v for k, v in record.items()
            if k not in _NOT_SCALARS and _is_number(v)}


def eval_scalars(record: dict[str, Any]) -> dict[str, float]:
    """Tag -> value of an ``"eval"`` record: ``eval/<metric>`` for each result,
    ``eval/<metric>_std`` for a spread, ``eval/kl_to_uniform`` for the class coverage."""
    out: dict[str, float] = {}
    for result in record.get("results", []):
        metric = result.get("metric")
        if not isinstance(metric, str) or not _is_number(result.get("value")):
            continue
        out[f"eval/{metric}"] = result["value"]
        if _is_number(result.get("std")):
            out[f"eval/{metric}_std"] = result["std"]
        if _is_number(result.get("kl_to_uniform")):
            out["eval/kl_to_uniform"] = result["kl_to_uniform"]
    return out


def monitor_scalars(record: dict[str, Any]) -> dict[str, float]:
    """Tag -> value of a ``"monitor"`` record: ``monitor/<key>`` for its numbers and
    ``monitor/symptoms``, the number of symptoms seen (0 = healthy)."""
    out = {f"monitor/{k}": v for k, v in record.items() if k not in _NOT_SCALARS and _is_number(v)}
    out["monitor/symptoms"] = len(record.get("symptoms", []))
    return out


def flat_hparams(config: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """``RunConfig.to_dict()`` as ``{"<section>.<field>": value}``, the values TensorBoard's
    HParams dashboard takes (None and the schema version left out)."""
    return {f"{section}.{key}": value for section, fields in config.items() if isinstance(fields, dict)
            for key, value in fields.items() if isinstance(value, (bool, int, float, str))}


class TensorBoard(Hook):
    """Writes the run's scalars, fixed-z grids and hparams as TensorBoard event files
    under ``<run>/tensorboard/`` (see the module docstring for the tags). Rank 0 writes;
    uses no RNG. The writer is opened at the first value.

    Raises:
        GancliError: (at the first value) the tensorboard package cannot be imported.
    """

    def __init__(self) -> None:
        self.writer: Any = None  # torch.utils.tensorboard.SummaryWriter, opened at the first value
        self.start_step = 0  # the step this process started from (a restored checkpoint's)
        self.last_train: dict[str, Any] | None = None  # the last "train" record logged

    # -- the hook ----------------------------------------------------------------------
    def on_restore(self, t: Trainer, ckpt: Checkpoint) -> None:
        self.start_step = ckpt.step

    def on_log(self, t: Trainer, record: dict[str, Any]) -> None:
        if t.dist.is_main:
            self.last_train = record
            self._scalars(t, train_scalars(record), record["step"])

    def on_record(self, t: Trainer, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind == "eval":
            self._scalars(t, eval_scalars(record), record["step"])
        elif kind == "monitor":
            self._scalars(t, monitor_scalars(record), record["step"])
        elif self.writer is not None:  # a stop record: the process is about to fail
            self.writer.flush()

    def on_samples(self, t: Trainer, images: torch.Tensor, path: Path) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:  # the file's very pixels, as written
            grid = np.asarray(im.convert("RGB"))
        w = self._writer(t)
        w.add_image("samples/fixed_z", grid, t.step, dataformats="HWC")
        w.flush()

    def at_end(self, t: Trainer, interrupted: bool) -> None:
        if not t.dist.is_main:
            return
        self._hparams(t)
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # -- writing -----------------------------------------------------------------------
    def _writer(self, t: Trainer) -> Any:
        """The open writer of ``<run>/tensorboard/``; a process that continues a run purges
        the events its predecessors logged after the step it starts from."""
        if self.writer is None:
            from gancli.errors import GancliError

            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise GancliError(f"{MISSING_MESSAGE} ({e})") from None
            log_dir = t.run.path / TENSORBOARD_DIR
            earlier = log_dir.is_dir() and any(log_dir.glob("events.out.tfevents.*"))
            self.writer = SummaryWriter(str(log_dir), purge_step=self.start_step + 1 if earlier else None)
        return self.writer

    def _scalars(self, t: Trainer, values: dict[str, float], step: int) -> None:
        if not values:
            return
        w = self._writer(t)
        for tag, value in values.items():
            w.add_scalar(tag, value, step)
        w.flush()

    def _hparams(self, t: Trainer) -> None:
        """The flattened config with the run's headline numbers (HParams dashboard)."""
        from gancli.engine.hooks import PeriodicEvaluation

        metrics: dict[str, float] = {}
        for hook in t.hooks:
            if isinstance(hook, PeriodicEvaluation) and hook.best is not None and hook.evaluator is not None:
                metrics[f"hparams/best_{hook.evaluator.headline}"] = hook.best[0]
        for key in ("loss_d", "loss_g"):
            if self.last_train is not None and _is_number(self.last_train.get(key)):
                metrics[f"hparams/{key}"] = self.last_train[key]
        if not metrics:
            return
        from torch.utils.tensorboard.summary import hparams

        w = self._writer(t)
        for summary in hparams(flat_hparams(t.cfg.to_dict()), metrics):
            w.file_writer.add_summary(summary, t.step)
        for tag, value in metrics.items():
            w.add_scalar(tag, value, t.step)
        w.flush()
