"""The GAN training loop: one loop, pluggable parts.

One step = ``d_steps`` discriminator updates (each on a fresh real batch and a
batch of fakes; + the objective's regularizers: gradient penalty, lazy R1), then
one generator update through the frozen discriminator, then the EMA update of G;
what a batch is and what G and D are given is the task's step object
(:mod:`gancli.engine.steps`: a GAN's, or an image-to-image task's).
The parts (models, optimizers, objective, augmentation, batcher, task step: built by
:func:`~gancli.engine.parts.build_parts`) and the hooks (metrics, samples,
checkpoints, evaluation: :mod:`gancli.engine.hooks`) are handed in; this module
only loops. Everything random is seeded from the run seed and a checkpoint holds
everything the loop needs (:mod:`gancli.engine.state`), so on CPU
``N steps + resume + N steps`` is bitwise identical to ``2N`` steps straight.

The same loop runs in each process of a multi-process run
(:mod:`gancli.engine.distributed`): G and D are called through their
``DistributedDataParallel`` wrappers, each process takes its slice of every
global batch and only rank 0 writes files.
"""

from __future__ import annotations

import errno
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from gancli.checkpoint import Checkpoint
from gancli.config import RunConfig
from gancli.engine import state
from gancli.engine.distributed import SINGLE, Dist, interval_means
from gancli.engine.protocols import Diverged, Hook, NullReporter, Reporter
from gancli.engine.optim import lr_factor
from gancli.engine.parts import Parts
from gancli.errors import GancliError
from gancli.runs import Run
from gancli.units import fmt_duration

#: The cost estimate at start: the speed between these steps of an invocation (the first 5
#: warm up allocator and kernels), told once, in invocations of at least 50 steps.
WARMUP_MARKS = (5, 25)

#: A loss whose magnitude exceeds this has diverged even when it is finite (the adversarial
#: losses of a healthy run stay below ~100; a WGAN critic's below ~1e4).
ABSURD_LOSS = 1e6


def loss_ok(loss: torch.Tensor) -> torch.Tensor:
    """0-d bool tensor: ``loss`` is finite and below :data:`ABSURD_LOSS` in magnitude."""
    return torch.isfinite(loss) & (loss.abs() < ABSURD_LOSS)


@dataclass
class TrainResult:
    step: int  # steps completed
    total_steps: int
    interrupted: bool
    seconds: float  # wall time of this invocation
    images_per_sec: float  # real images consumed per second in this invocation
    last_checkpoint: Path | None


class Trainer:
    """Runs the loop of one run in one process.

    Args:
        cfg: the run's resolved config.
        run: where checkpoints, samples and metrics go (rank 0 only writes).
        device: the training device of this process.
        parts: G, D, EMA G, optimizers, objective, augmentation, batcher, latent streams.
        hooks: called around the steps (see :class:`~gancli.engine.protocols.Hook`).
        reporter: progress sink; ``None`` = silent.
        dist: this process's rank among the run's processes; default one process.
    """

    def __init__(self, cfg: RunConfig, run: Run, device: torch.device, parts: Parts, hooks: list[Hook],
                 reporter: Reporter | None = None, dist: Dist | None = None):
        self.cfg = cfg
        self.run = run
        self.device = device
        self.parts = parts
        self.hooks = hooks
        self.reporter = reporter or NullReporter()
        self.dist = dist or SINGLE
        self.step = 0
        self.last_checkpoint: Path | None = None

    # -- the parts, by their usual names -------------------------------------------------
    @property
    def G(self) -> torch.nn.Module:
        return self.parts.G

    @property
    def D(self) -> torch.nn.Module:
        return self.parts.D

    @property
    def G_ema(self) -> torch.nn.Module | None:
        return self.parts.G_ema

    @property
    def opt_g(self) -> torch.optim.Optimizer:
        return self.parts.opt_g

    @property
    def opt_d(self) -> torch.optim.Optimizer:
        return self.parts.opt_d

    @property
    def scaler_d(self) -> torch.amp.GradScaler:
        return self.parts.scaler_d

    @property
    def batcher(self):
        return self.parts.batcher

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The EMA generator when enabled, else G."""
        return self.parts.sampling_generator

    @property
    def d_updates(self) -> int:
        """D updates completed: every step does exactly ``d_steps`` of them."""
        return self.step * self.cfg.optim.d_steps

    @property
    def epoch(self) -> float:
        """Passes over the data so far (each D update consumes one batch)."""
        return round(self.d_updates / self.parts.batcher.steps_per_epoch, 4)

    def save(self) -> Path:
        """Checkpoint the current step (see :func:`gancli.engine.state.save`)."""
        return state.save(self)

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from ``ckpt`` (see :func:`gancli.engine.state.restore`)."""
        state.restore(self, ckpt)

    # -- what hooks tell each other --------------------------------------------------------
    def append_record(self, record: dict[str, Any]) -> None:
        """Rank 0 only: append ``record`` (``"kind"`` other than ``"train"``: eval, monitor,
        stop) to metrics.jsonl, then hand it to every hook's
        :meth:`~gancli.engine.protocols.Hook.on_record`."""
        self.run.append_metrics(record)
        for hook in self.hooks:
            hook.on_record(self, record)

    def samples_written(self, images: torch.Tensor, path: Path) -> None:
        """Rank 0 only: tell every hook (:meth:`~gancli.engine.protocols.Hook.on_samples`) that the
        fixed-z grid of this step, ``images`` ``(N, C, H, W)`` float32 in [-1, 1] on the CPU,
        was written to ``path``."""
        for hook in self.hooks:
            hook.on_samples(self, images, path)

    # -- one step ------------------------------------------------------------------------
    def _set_lr(self, step: int) -> None:
        o = self.cfg.optim
        f = lr_factor(o.lr_schedule, step, self.cfg.train.steps)
        for opt, base in ((self.parts.opt_g, o.lr_g), (self.parts.opt_d, o.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * f

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """Train 0-based ``step``: set the learning rates, then run the task's step
        (:mod:`gancli.engine.steps`: ``d_steps`` D updates, one G update, the EMA update).

        Returns:
            Detached scalars of the last D update and the G update, this process's
            means: ``loss_d`` (with penalties), ``loss_g``, ``d_real`` / ``d_fake``
            (mean D(x) and D(G(z)) before the update: probabilities for BCE losses,
            raw scores otherwise), ``gp`` / ``r1`` when enabled, and the task's own
            terms (``l1`` for the image-to-image tasks).
        """
        self._set_lr(step)
        stats = self.parts.task_step(self, step)
        if self.cfg.train.nan_policy == "skip":  # keep NaN/Inf out of the logged means
            stats = {k: v for k, v in stats.items() if torch.isfinite(v).item()}
        return stats

    def usable(self, loss: torch.Tensor, stats: dict[str, torch.Tensor]) -> bool:
        """With ``--nan-policy skip``, a diverged loss (non-finite, or above
        :data:`ABSURD_LOSS` in magnitude) skips its update (counted in
        ``stats["skipped"]``); with ``stop`` every update is applied and the divergence
        surfaces at the next log or checkpoint. With several processes the update
        is skipped on every rank when the loss diverged on one."""
        if self.cfg.train.nan_policy != "skip" or self.dist.all(loss_ok(loss)):
            return True
        stats["skipped"] = stats.get("skipped", torch.zeros((), device=loss.device)) + 1
        return False

    # -- the loop ------------------------------------------------------------------------
    def fit(self, should_stop: Callable[[], bool] = lambda: False) -> TrainResult:
        """Train from ``self.step`` to ``cfg.train.steps``.

        Args:
            should_stop: polled after every step; when it returns True the loop
                checkpoints and returns with ``interrupted=True``.

        Raises:
            GancliError: a loss or a weight became NaN/Inf (the message names the
                step and the last good checkpoint; no checkpoint of bad weights is
                written), a run file could not be written, or the device ran out of memory.
        """
        t = self.cfg.train
        total = t.steps
        images_per_step = t.batch_size * self.cfg.optim.d_steps
        start_step = self.step
        self.reporter.start(total, start_step)
        t0 = time.perf_counter()
        mark_time, mark_step = t0, self.step
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        interrupted = False
        warm: tuple[int, float] | None = None
        try:
            while self.step < total:
                stats = self.train_step(self.step)
                self.step += 1
                for k, v in stats.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                    counts[k] = counts.get(k, 0) + 1
                self.reporter.advance(self.step)
                if self.step - start_step in WARMUP_MARKS and total - start_step >= 2 * WARMUP_MARKS[1]:
                    warm = self._warmup_note(warm, stats, images_per_step, total)
                if self.step % t.log_every_steps == 0 or self.step == total:
                    values = interval_means(self.dist, sums, counts, self.device)
                    now = time.perf_counter()
                    self._check_finite(values)
                    record = {
                        "kind": "train", "step": self.step, "epoch": self.epoch,
                        **{k: round(v, 6) for k, v in values.items()},
                        "lr_g": self.parts.opt_g.param_groups[0]["lr"], "lr_d": self.parts.opt_d.param_groups[0]["lr"],
                        "img_per_sec": round(images_per_step * (self.step - mark_step) / max(now - mark_time, 1e-9), 1),
                        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    }
                    for hook in self.hooks:
                        hook.on_log(self, record)
                    self.reporter.log(record)
                    sums, counts = {}, {}
                    mark_time, mark_step = now, self.step
                for hook in self.hooks:
                    mark_time += hook.after_step(self)  # e.g. evaluation time stays out of img/s
                if self.dist.any(should_stop()):  # every rank stops after the same step
                    interrupted = self.step < total
                    break
            for hook in self.hooks:
                hook.at_end(self, interrupted)
        except Diverged as e:  # found at a log or before a checkpoint (which was not written)
            raise self._stop_diverged(e) from None
        except OSError as e:
            what = "disk full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
            last = self.last_checkpoint or "none"
            raise GancliError(f"could not write {e.filename or 'a run file'} at step {self.step} ({what}); "
                              f"the newest checkpoint on disk is intact: {last}") from None
        except torch.OutOfMemoryError:
            b = t.batch_size
            raise GancliError(f"out of memory on {self.device} at step {self.step} with --batch-size {b}; "
                              f"try --batch-size {max(1, b // 2)} or a smaller --ngf/--ndf, then "
                              f"gan train --resume {self.run.id}") from None
        finally:
            self.reporter.stop()
        seconds = time.perf_counter() - t0
        return TrainResult(step=self.step, total_steps=total, interrupted=interrupted, seconds=seconds,
                           images_per_sec=images_per_step * (self.step - start_step) / max(seconds, 1e-9),
                           last_checkpoint=self.last_checkpoint)

    def _warmup_note(self, warm: tuple[int, float] | None, stats: dict[str, torch.Tensor], images_per_step: int,
                     total: int) -> tuple[int, float]:
        """The honest cost estimate: at the first mark remember (step, time); at the second
        tell the reporter the measured speed, the current losses and the time left."""
        now = time.perf_counter()
        if warm is None:
            return self.step, now
        steps, seconds = self.step - warm[0], max(now - warm[1], 1e-9)
        losses = " ".join(f"{k} {float(stats[k]):.4f}" for k in ("loss_d", "loss_g") if k in stats)
        left = (total - self.step) * seconds / steps
        self.reporter.note(f"measured {images_per_step * steps / seconds:.0f} img/s over steps {warm[0] + 1}-"
                           f"{self.step} ({losses}): about {fmt_duration(left)} for the remaining "
                           f"{total - self.step} steps, plus evaluations and checkpoints")
        return self.step, now

    def _stop_diverged(self, e: Diverged) -> GancliError:
        """Record the divergence ``e`` in metrics.jsonl; the error to raise, naming the step and
        the last good checkpoint."""
        last = self.last_checkpoint.name if self.last_checkpoint else "none"
        message = f"{e}; last good checkpoint: {last}; try a lower --lr-g/--lr-d or another --loss"
        self.record_stop("diverged", message)
        return GancliError(message)

    def record_stop(self, reason: str, message: str) -> None:
        """Append ``{"kind": "stop", "reason": ...}`` to metrics.jsonl (rank 0), so ``gan runs
        list`` can tell a run that stopped on its own (``diverged``, ``collapse``) apart."""
        if self.dist.is_main:
            self.append_record({"kind": "stop", "step": self.step, "reason": reason, "message": message,
                                "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})

    def _check_finite(self, record: dict[str, float]) -> None:
        """Divergence at a log: a logged loss that is NaN/Inf or above :data:`ABSURD_LOSS`
        in magnitude, or (``--nan-policy skip``) an interval whose updates were all skipped."""
        bad = {k: v for k, v in record.items() if k.startswith("loss") and not (math.isfinite(v) and abs(v) < ABSURD_LOSS)}
        bad.update({k: v for k, v in record.items() if not math.isfinite(v)})
        if bad:
            raise Diverged(", ".join(f"{k}={v:.4g}" for k, v in bad.items()), self.step)
        if "loss_d" not in record and "loss_g" not in record:  # skip policy: no finite loss in the whole interval
            raise Diverged(f"every update of the last {record.get('skipped', 0):.0f} was skipped (--nan-policy skip)",
                           self.step)
