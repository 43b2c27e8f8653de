"""What happens around the training loop's steps: progress reports, metrics.jsonl,
fixed-z sample grids, checkpoints, evaluation and the best checkpoint.

The loop (:class:`~gancli.engine.trainer.Trainer`) calls every hook after each step
(:meth:`Hook.after_step`), for each log record (:meth:`Hook.on_log`), after a
checkpoint is restored (:meth:`Hook.on_restore`) and once at the end
(:meth:`Hook.at_end`). Hooks use no global RNG, so a run trains the same with or
without them.
"""

from __future__ import annotations

import math
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gancli.engine.parts import GRID_COLUMNS

if TYPE_CHECKING:
    from gancli.checkpoint import Checkpoint
    from gancli.engine.trainer import Trainer


class Reporter(Protocol):
    """Receives progress from the loop (the CLI renders it with Rich or plain lines)."""

    def start(self, total_steps: int, start_step: int) -> None: ...
    def advance(self, step: int) -> None: ...
    def log(self, record: dict[str, Any]) -> None: ...
    def note(self, text: str) -> None: ...  # worth telling the user
    def detail(self, text: str) -> None: ...  # shown with --verbose only
    def stop(self) -> None: ...


class NullReporter:
    def start(self, total_steps: int, start_step: int) -> None:
        pass

    def advance(self, step: int) -> None:
        pass

    def log(self, record: dict[str, Any]) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass


class Hook:
    """Base hook: every method does nothing."""

    def after_step(self, t: Trainer) -> float:
        """After step ``t.step``; returns seconds to leave out of the images/s figure."""
        return 0.0

    def on_log(self, t: Trainer, record: dict[str, Any]) -> None:
        """A ``"kind": "train"`` record of a log interval."""

    def on_restore(self, t: Trainer, ckpt: Checkpoint) -> None:
        """After ``ckpt``'s step was restored (a collective with several processes)."""

    def at_end(self, t: Trainer, interrupted: bool) -> None:
        """Once, after the last step (or the step a signal stopped the run at)."""


class MetricsFile(Hook):
    """Appends every log record to ``metrics.jsonl`` (rank 0)."""

    def on_log(self, t: Trainer, record: dict[str, Any]) -> None:
        if t.dist.is_main:
            t.run.append_metrics(record)


class Samples(Hook):
    """The fixed-z grid every ``sample_every_steps`` and at the end: ``samples/step-<S>.png``
    (EMA G when enabled; 8x8, or one row per class for a conditional G). Rank 0 writes."""

    def __init__(self, every_steps: int):
        self.every = every_steps

    def after_step(self, t: Trainer) -> float:
        if self.every and t.step % self.every == 0:
            self.write(t)
        return 0.0

    def at_end(self, t: Trainer, interrupted: bool) -> None:
        if not interrupted and not (self.every and t.step % self.every == 0):
            self.write(t)

    @staticmethod
    def write(t: Trainer) -> Path:
        from gancli.sampling import generate, save_grid

        path = t.run.samples_dir / f"step-{t.step}.png"
        if t.dist.is_main:
            images = generate(t.parts.sampling_generator, t.parts.fixed_z, t.parts.fixed_y)
            save_grid(images, path, nrow=GRID_COLUMNS)
            t.reporter.detail(f"wrote samples {path}")
        return path


class Checkpoints(Hook):
    """A checkpoint every ``checkpoint_every_steps`` (before the last step) and at the end."""

    def __init__(self, every_steps: int):
        self.every = every_steps

    def after_step(self, t: Trainer) -> float:
        if self.every and t.step % self.every == 0 and t.step < t.cfg.train.steps:
            t.save()
        return 0.0

    def at_end(self, t: Trainer, interrupted: bool) -> None:
        if t.last_checkpoint is None or t.last_checkpoint.name != f"step-{t.step}.safetensors":
            t.save()


class Evaluation(Hook):
    """``--eval-every``: score the sampling generator with ``evaluator`` every
    ``every_steps`` and at the end, append a ``"kind": "eval"`` record to metrics.jsonl,
    and when the headline metric (lower is better) improves copy this step's checkpoint
    (saved now if needed) to ``checkpoints/best.safetensors``. Restores G's mode. With
    several processes rank 0 evaluates while the others wait; a new best is saved by all
    (the checkpoint is a collective) and copied by rank 0.

    Args:
        evaluator: a :class:`~gancli.metrics.evaluate.TrainingEvaluator` on rank 0,
            None on the other ranks.
    """

    def __init__(self, evaluator: Any, every_steps: int):
        self.evaluator = evaluator
        self.every = every_steps
        self.best: tuple[float, int] | None = None  # (headline value, step) of best.safetensors

    def after_step(self, t: Trainer) -> float:
        if self.every and t.step % self.every == 0:
            return self.evaluate(t)["seconds"]
        return 0.0

    def at_end(self, t: Trainer, interrupted: bool) -> None:
        if not interrupted and t.step % self.every:
            self.evaluate(t)  # the final weights are always scored

    def on_restore(self, t: Trainer, ckpt: Checkpoint) -> None:
        """The best so far, from the evaluations up to the checkpoint's step (rank 0's run directory)."""

        def best() -> tuple[float, int] | None:
            name = self.evaluator.headline
            seen = [(r[name], r["step"]) for r in t.run.read_metrics() if r.get("kind") == "eval"
                    and isinstance(r.get(name), (int, float)) and r.get("step", 0) <= ckpt.step]
            return min(seen) if seen else None

        self.best = t.dist.from_main(best)

    def evaluate(self, t: Trainer) -> dict[str, Any]:
        from gancli.fsutil import atomic_path
        from gancli.runs import BEST_CHECKPOINT

        def score() -> tuple[dict[str, Any], str, float, int]:
            name = self.evaluator.headline
            describe = {"run": t.run.id, "step": t.step, "weights": "ema" if t.parts.G_ema is not None else "raw"}
            ev = self.evaluator(t.parts.sampling_generator, describe)
            value = ev.values[name]
            record = {"kind": "eval", "step": t.step, "epoch": t.epoch, name: round(value, 6),
                      "results": ev.results, "seconds": round(ev.seconds, 2),
                      "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            t.run.append_metrics(record)
            return record, name, value, ev.protocol["num_generated"]

        record, name, value, num_generated = t.dist.from_main(score)
        improved = math.isfinite(value) and (self.best is None or value < self.best[0])
        if improved:
            if t.last_checkpoint is None or t.last_checkpoint.name != f"step-{t.step}.safetensors":
                t.save()
            if t.dist.is_main:
                with atomic_path(t.run.checkpoints_dir / BEST_CHECKPOINT) as tmp:
                    shutil.copyfile(t.last_checkpoint, tmp)
            self.best = (value, t.step)
        best_value, best_step = self.best if self.best is not None else (float("nan"), 0)
        t.reporter.note(f"step {t.step}: {name} {value:.4g} ({num_generated} samples, "
                        f"{record['seconds']:.0f} s); best {best_value:.4g} at step {best_step}"
                        + (" -> checkpoints/best.safetensors" if improved else ""))
        return record


def default_hooks(cfg, evaluator: Any = None, evaluating: bool = False) -> list[Hook]:
    """The hooks of ``gan train``: metrics.jsonl, samples, checkpoints and, when
    ``evaluating`` (rank 0 has an evaluator and ``eval_every_steps`` > 0), evaluation."""
    t = cfg.train
    hooks: list[Hook] = [MetricsFile(), Samples(t.sample_every_steps), Checkpoints(t.checkpoint_every_steps)]
    if evaluating and t.eval_every_steps:
        hooks.append(Evaluation(evaluator, t.eval_every_steps))
    return hooks
