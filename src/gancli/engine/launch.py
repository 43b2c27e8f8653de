"""Start or resume a run: resolve the device, load data, create/lock the run
directory, write config.json, restore the newest valid checkpoint, train."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from gancli import __version__
from gancli.checkpoint import Checkpoint, load_checkpoint
from gancli.config import RunConfig
from gancli.data import load_split
from gancli.engine.device import resolve_device
from gancli.engine.trainer import Reporter, Trainer, TrainResult
from gancli.errors import GancliError, UsageError
from gancli.models import check_supported
from gancli.runs import Run, RunStore


def run_meta(device: torch.device, data_dir: Path, command: list[str] | None = None) -> dict:
    """Provenance stored next to the config in ``config.json``."""
    import torchvision

    return {
        "gancli_version": __version__,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "python_version": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "data_dir": str(data_dir),
        "command": command if command is not None else sys.argv,
    }


def newest_valid_checkpoint(run: Run, note: Callable[[str], None]) -> Checkpoint | None:
    """The newest checkpoint of ``run`` that loads; damaged ones are skipped with a note."""
    for _, path in reversed(run.checkpoints()):
        try:
            return load_checkpoint(path, device="cpu")
        except GancliError as e:
            note(f"skipping damaged checkpoint: {e}")
    return None


def preflight(cfg: RunConfig) -> torch.device:
    """Checks that need torch but no data: the architecture supports the image
    shape and the device exists. Returns the resolved device.

    Raises:
        UsageError: with the bad value and the valid choices.
    """
    check_supported(cfg.model)
    return resolve_device(cfg.train.device)


def train(cfg: RunConfig, store: RunStore, data_dir: str | Path, *, resume: Run | None = None,
          reporter: Reporter | None = None, should_stop: Callable[[], bool] = lambda: False,
          on_run: Callable[[Run, Trainer], None] | None = None) -> tuple[Run, TrainResult]:
    """Train a new run (``resume=None``) or continue ``resume`` with config ``cfg``.

    Nothing is created on disk before the device and the data are known good.

    Args:
        on_run: called with ``(run, trainer)`` once the run is ready to train.

    Raises:
        UsageError: device unavailable, unsupported shape. GancliError: data
            missing, run locked, checkpoint damaged, training diverged.
    """
    data_dir = Path(data_dir)
    note = reporter.note if reporter is not None else (lambda _t: None)
    device = preflight(cfg)
    data = load_split(cfg.data, data_dir)
    if data.skipped:
        note(f"skipped {len(data.skipped)} unreadable image(s) (--skip-bad-images), e.g. {data.skipped[0]}")
    evaluator = None
    if cfg.train.eval_every_steps:
        from gancli.metrics.evaluate import TrainingEvaluator

        note("preparing --eval-every: reference statistics of the training set")
        evaluator = TrainingEvaluator(cfg.data, data_dir, cfg.train.eval_samples, device, home=store.home)
    if resume is None:
        run = store.create()
        run.write_config(cfg.to_dict(), run_meta(device, data_dir))
    else:
        run = resume
    with run.lock():
        ckpt = newest_valid_checkpoint(run, note) if resume is not None else None
        if resume is not None:
            done = ckpt.step if ckpt is not None else 0
            if cfg.train.steps <= done:
                raise UsageError(
                    f"{run.id} is already at step {done} of {cfg.train.steps}; "
                    f"pass --steps N (N > {done}) or a larger --epochs to train further"
                )
            doc = run.read_config_doc()
            meta = doc.get("meta", {})
            resumes = [*meta.get("resumes", []), {**run_meta(device, data_dir), "from_step": done}]
            run.write_config(cfg.to_dict(), {**meta, "resumes": resumes})
        trainer = Trainer(cfg, run, device, data, reporter, evaluator=evaluator)
        if ckpt is not None:
            trainer.restore(ckpt)
            run.truncate_metrics(ckpt.step)
        elif resume is not None:
            run.truncate_metrics(0)
        if on_run is not None:
            on_run(run, trainer)
        result = trainer.fit(should_stop)
    return run, result
