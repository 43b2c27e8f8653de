"""The GAN training loop: one loop, pluggable parts.

One step = ``d_steps`` discriminator updates (each on a fresh real batch and a
batch of fakes; + gradient penalty, lazy R1), then one generator update through
the frozen discriminator, then the EMA update of G. The adversarial loss,
architecture, optimizer, LR schedule, augmentation and conditioning are chosen
by config. Everything random is seeded from the run seed and a checkpoint holds
everything the loop needs, so on CPU ``N steps + resume + N steps`` is bitwise
identical to ``2N`` steps straight.
"""

from __future__ import annotations

import copy
import errno
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import torch

from gancli.augment import DiffAugment, parse_augment
from gancli.checkpoint import Checkpoint, save_checkpoint
from gancli.config import RunConfig
from gancli.data import ImageData
from gancli.data.batcher import DeviceBatcher
from gancli.errors import GancliError
from gancli.losses import build_loss
from gancli.losses.regularizers import gradient_penalty, r1_penalty
from gancli.models import build_discriminator, build_generator
from gancli.runs import Run
from gancli.sampling import derive_seed, generate, grid_labels, latents, save_grid

#: Columns of the periodic fixed-z sample grid (8x8 unconditional; one row per class otherwise).
GRID_COLUMNS = 8


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


@dataclass
class TrainResult:
    step: int  # steps completed
    total_steps: int
    interrupted: bool
    seconds: float  # wall time of this invocation
    images_per_sec: float  # real images consumed per second in this invocation
    last_checkpoint: Path | None


def build_optimizer(name: str, params, lr: float, beta1: float, beta2: float, momentum: float):
    """``adam`` (Kingma & Ba 2014, arXiv 1412.6980), ``sgd`` or ``rmsprop``
    (Tieleman & Hinton 2012) over ``params``."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}")


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the base learning rate at 0-based ``step`` of ``total``:
    ``constant`` 1; ``linear`` 1 -> 0; ``cosine`` 0.5 (1 + cos(pi t)), t = step / total."""
    t = min(step / max(total, 1), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - t
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    raise ValueError(f"unknown lr schedule {schedule!r}")


def ema_beta(decay: float, step: int) -> float:
    """EMA decay at 0-based ``step`` with warm-up: ``min(decay, (1 + step) / (10 + step))``
    (as TensorFlow's ExponentialMovingAverage with num_updates), so early
    averages follow G closely instead of its random initialisation."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def ema_update_(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """``ema = beta * ema + (1 - beta) * model`` for parameters; buffers (BatchNorm
    statistics) are copied. Exponential moving average of G (Karras et al. 2018,
    arXiv 1710.10196; Yazici et al. 2019, arXiv 1806.04498)."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


class Trainer:
    """Holds G, D, EMA G, their optimizers, the data and the RNGs of one run.

    Args:
        cfg: the run's config (validated).
        run: where checkpoints, samples and metrics go.
        device: the training device.
        data: the training split (uint8 images), preloaded on ``device``.
        reporter: progress sink; ``None`` = silent.
        evaluator: for ``eval_every_steps``: a
            :class:`~gancli.metrics.evaluate.TrainingEvaluator` (``evaluator(G, describe)``
            -> an ``Evaluation`` whose ``values[evaluator.headline]`` is lower-is-better).
    """

    def __init__(self, cfg: RunConfig, run: Run, device: torch.device, data: ImageData,
                 reporter: Reporter | None = None, evaluator: Callable[..., Any] | None = None):
        self.cfg = cfg
        self.run = run
        self.device = device
        self.reporter = reporter or NullReporter()
        t, o = cfg.train, cfg.optim
        torch.manual_seed(t.seed)  # weight init, dropout, augmentation, GP mixing
        self.G = build_generator(cfg.model).to(device)
        self.D = build_discriminator(cfg.model).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if t.ema_decay > 0 else None
        self.loss = build_loss(cfg.loss.name)
        self.augment = DiffAugment(parse_augment(t.augment))
        self.opt_g = build_optimizer(o.name, self.G.parameters(), o.lr_g, o.beta1, o.beta2, o.momentum)
        self.opt_d = build_optimizer(o.name, self.D.parameters(), o.lr_d, o.beta1, o.beta2, o.momentum)
        self.z_gen = torch.Generator(device=device).manual_seed(derive_seed(t.seed, "z"))
        self.batcher = DeviceBatcher(data.images, data.labels, t.batch_size, derive_seed(t.seed, "data") % 2**31,
                                     device)
        k = cfg.model.num_classes
        rows = k if k else GRID_COLUMNS
        self.fixed_z = latents(rows * GRID_COLUMNS, cfg.model.nz, derive_seed(t.seed, "fixed-z"), device)
        self.fixed_y = grid_labels(k, GRID_COLUMNS, device) if k else None
        self.step = 0
        self.last_checkpoint: Path | None = None
        self.evaluator = evaluator
        self.best: tuple[float, int] | None = None  # (headline value, step) of best.safetensors

    # -- state -----------------------------------------------------------------
    def rng_state(self) -> dict[str, torch.Tensor]:
        state = {"torch": torch.get_rng_state(), "z": self.z_gen.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps":
            state["mps"] = torch.mps.get_rng_state()
        return state

    def set_rng_state(self, state: dict[str, torch.Tensor], saved_device_type: str) -> None:
        """Restore the RNG states of a checkpoint. States of another device type
        (a run moved from CPU to CUDA, say) cannot be restored: then the z stream
        is re-seeded from (seed, step) and the run continues, no longer bitwise
        reproducible."""
        torch.set_rng_state(state["torch"])
        if saved_device_type != self.device.type:
            self.z_gen.manual_seed(derive_seed(self.cfg.train.seed, f"z-after-{self.step}"))
            self.reporter.note(
                f"resuming on {self.device.type} a run checkpointed on {saved_device_type}: "
                "the random stream of z is re-seeded, so the run is not bitwise reproducible"
            )
            return
        self.z_gen.set_state(state["z"])
        if self.device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], self.device)
        elif self.device.type == "mps" and "mps" in state:
            torch.mps.set_rng_state(state["mps"])

    def modules(self) -> dict[str, Any]:
        """What a checkpoint holds, by name."""
        out: dict[str, Any] = {"generator": self.G, "discriminator": self.D}
        if self.G_ema is not None:
            out["generator_ema"] = self.G_ema
        out.update({"optim_g": self.opt_g, "optim_d": self.opt_d, "rng": self.rng_state()})
        return out

    def save(self) -> Path:
        """Checkpoint the current step into ``checkpoints/step-<S>.safetensors`` and
        prune old ones (``keep_checkpoints``)."""
        path = self.run.checkpoints_dir / f"step-{self.step}.safetensors"
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device_type": self.device.type,
        }
        self._check_weights_finite()
        save_checkpoint(path, self.cfg, state, self.modules())
        self.last_checkpoint = path
        self.run.prune_checkpoints(self.cfg.train.keep_checkpoints)
        self.reporter.detail(f"saved checkpoint {path}")
        return path

    def restore(self, ckpt: Checkpoint) -> None:
        """Load G, D, EMA G, optimizers, RNG states and the step from ``ckpt``."""
        try:
            self.G.load_state_dict(ckpt.part("generator"))
            self.D.load_state_dict(ckpt.part("discriminator"))
            if self.G_ema is not None:
                self.G_ema.load_state_dict(ckpt.part("generator_ema"))
            self.opt_g.load_state_dict(ckpt.part("optim_g"))
            self.opt_d.load_state_dict(ckpt.part("optim_d"))
        except (RuntimeError, ValueError, KeyError) as e:
            raise GancliError(f"checkpoint {ckpt.path} does not match the run ({str(e).splitlines()[0]})") from None
        self.step = ckpt.step
        if self.evaluator is not None:  # the best so far, from the evaluations up to this step
            name = self.evaluator.headline
            seen = [(r[name], r["step"]) for r in self.run.read_metrics()
                    if r.get("kind") == "eval" and isinstance(r.get(name), (int, float)) and r.get("step", 0) <= ckpt.step]
            self.best = min(seen) if seen else None
        self.set_rng_state(ckpt.part("rng"), ckpt.state.get("device_type", "cpu"))
        self.last_checkpoint = ckpt.path

    @property
    def d_updates(self) -> int:
        """D updates completed: every step does exactly ``d_steps`` of them."""
        return self.step * self.cfg.optim.d_steps

    @property
    def epoch(self) -> float:
        """Passes over the data so far (each D update consumes one batch)."""
        return round(self.d_updates / self.batcher.steps_per_epoch, 4)

    # -- one step ----------------------------------------------------------------
    def _latents(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(n, self.cfg.model.nz, generator=self.z_gen, device=self.device)
        k = self.cfg.model.num_classes
        y = torch.randint(0, k, (n,), generator=self.z_gen, device=self.device) if k else None
        return z, y

    def _set_lr(self, step: int) -> None:
        o = self.cfg.optim
        f = lr_factor(o.lr_schedule, step, self.cfg.train.steps)
        for opt, base in ((self.opt_g, o.lr_g), (self.opt_d, o.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * f

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """``d_steps`` D updates then one G update (and the EMA update) at 0-based ``step``.

        Returns:
            Detached scalars of the last D update and the G update: ``loss_d``
            (with penalties), ``loss_g``, ``d_real`` / ``d_fake`` (mean D(x) and
            D(G(z)) before the update: probabilities for BCE losses, raw scores
            otherwise), and ``gp`` / ``r1`` when enabled.
        """
        cfg = self.cfg
        n_d = cfg.optim.d_steps
        self._set_lr(step)
        stats: dict[str, torch.Tensor] = {}
        for i in range(n_d):
            d_update = step * n_d + i  # also the index of the real batch
            real, y_real = self.batcher.batch(d_update)
            if not cfg.model.num_classes:
                y_real = None
            z, y_fake = self._latents(real.shape[0])
            last = i == n_d - 1
            if last:
                fake = self.G(z, y_fake)  # kept for the G update below
                fake_d = fake.detach()
            else:
                with torch.no_grad():
                    fake_d = self.G(z, y_fake)
            real_in, fake_in = self.augment(real), self.augment(fake_d)
            real_scores = self.D(real_in, y_real)
            fake_scores = self.D(fake_in, y_fake)
            loss_d = self.loss.d_loss(real_scores, fake_scores)
            if cfg.loss.gp_lambda:
                gp = gradient_penalty(lambda x: self.D(x, y_real), real_in, fake_in)
                loss_d = loss_d + cfg.loss.gp_lambda * gp
                stats["gp"] = gp.detach()
            if cfg.loss.r1_gamma and d_update % cfg.loss.r1_every == 0:
                r1 = r1_penalty(lambda x: self.D(x, y_real), real_in)
                loss_d = loss_d + (cfg.loss.r1_gamma / 2) * cfg.loss.r1_every * r1
                stats["r1"] = r1.detach()
            self.opt_d.zero_grad(set_to_none=True)
            if self._usable(loss_d, stats):
                loss_d.backward()
                self.opt_d.step()

        self.D.requires_grad_(False)
        loss_g = self.loss.g_loss(self.D(self.augment(fake), y_fake))
        self.opt_g.zero_grad(set_to_none=True)
        if self._usable(loss_g, stats):
            loss_g.backward()
            self.opt_g.step()
        self.D.requires_grad_(True)
        if self.G_ema is not None:
            ema_update_(self.G_ema, self.G, ema_beta(cfg.train.ema_decay, step))

        values = {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": self.loss.report(real_scores.detach()),
            "d_fake": self.loss.report(fake_scores.detach()),
        }
        stats.update(values)
        if self.cfg.train.nan_policy == "skip":  # keep NaN/Inf out of the logged means
            stats = {k: v for k, v in stats.items() if torch.isfinite(v).item()}
        return stats

    def _usable(self, loss: torch.Tensor, stats: dict[str, torch.Tensor]) -> bool:
        """With ``--nan-policy skip``, a non-finite loss skips its update (counted in
        ``stats["skipped"]``); with ``stop`` every update is applied and the NaN
        surfaces at the next log or checkpoint."""
        if self.cfg.train.nan_policy != "skip" or torch.isfinite(loss).item():
            return True
        stats["skipped"] = stats.get("skipped", torch.zeros((), device=loss.device)) + 1
        return False

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The EMA generator when enabled, else G."""
        return self.G_ema if self.G_ema is not None else self.G

    def write_samples(self) -> Path:
        """The fixed-z grid of the current step (EMA G when enabled): ``samples/step-<S>.png``;
        8x8, or one row per class for a conditional G."""
        images = generate(self.sampling_generator, self.fixed_z, self.fixed_y)
        path = save_grid(images, self.run.samples_dir / f"step-{self.step}.png", nrow=GRID_COLUMNS)
        self.reporter.detail(f"wrote samples {path}")
        return path

    # -- the loop ----------------------------------------------------------------
    def fit(self, should_stop=lambda: False) -> TrainResult:
        """Train from ``self.step`` to ``cfg.train.steps``.

        Args:
            should_stop: polled after every step; when it returns True the loop
                checkpoints and returns with ``interrupted=True``.

        Raises:
            GancliError: a loss or a weight became NaN/Inf (the message names the
                step and the last good checkpoint; no checkpoint of bad weights
                is written).
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
        try:
            while self.step < total:
                stats = self.train_step(self.step)
                self.step += 1
                for k, v in stats.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                    counts[k] = counts.get(k, 0) + 1
                self.reporter.advance(self.step)
                if self.step % t.log_every_steps == 0 or self.step == total:
                    # .item() syncs the device; "skipped" is a total, the rest are means
                    record = {k: v.item() / (1 if k == "skipped" else counts[k]) for k, v in sums.items()}
                    now = time.perf_counter()
                    self._check_finite(record)
                    record = {
                        "kind": "train",
                        "step": self.step,
                        "epoch": self.epoch,
                        **{k: round(v, 6) for k, v in record.items()},
                        "img_per_sec": round(images_per_step * (self.step - mark_step) / max(now - mark_time, 1e-9),
                                             1),
                        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    }
                    self.run.append_metrics(record)
                    self.reporter.log(record)
                    sums, counts = {}, {}
                    mark_time, mark_step = now, self.step
                if t.sample_every_steps and self.step % t.sample_every_steps == 0:
                    self.write_samples()
                if t.checkpoint_every_steps and self.step % t.checkpoint_every_steps == 0 and self.step < total:
                    self.save()
                if self.evaluator is not None and t.eval_every_steps and self.step % t.eval_every_steps == 0:
                    mark_time += self.evaluate()["seconds"]  # keep evaluation time out of img/s
                if should_stop():
                    interrupted = self.step < total
                    break
            if self.last_checkpoint is None or self.last_checkpoint.name != f"step-{self.step}.safetensors":
                self.save()
            if not interrupted and not (t.sample_every_steps and self.step % t.sample_every_steps == 0):
                self.write_samples()
            if not interrupted and self.evaluator is not None and self.step % t.eval_every_steps:
                self.evaluate()  # the final weights are always scored
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
        return TrainResult(
            step=self.step,
            total_steps=total,
            interrupted=interrupted,
            seconds=seconds,
            images_per_sec=images_per_step * (self.step - start_step) / max(seconds, 1e-9),
            last_checkpoint=self.last_checkpoint,
        )

    def evaluate(self) -> dict[str, Any]:
        """Score the sampling generator with ``self.evaluator``, append a ``"kind": "eval"``
        record to metrics.jsonl, and when the headline metric improves copy this step's
        checkpoint (saved now if needed) to ``checkpoints/best.safetensors``. Uses no global
        RNG and restores G's mode, so training continues exactly as without it."""
        from gancli.fsutil import atomic_path
        from gancli.runs import BEST_CHECKPOINT

        assert self.evaluator is not None
        name = self.evaluator.headline
        describe = {"run": self.run.id, "step": self.step, "weights": "ema" if self.G_ema is not None else "raw"}
        ev = self.evaluator(self.sampling_generator, describe)
        value = ev.values[name]
        record = {"kind": "eval", "step": self.step, "epoch": self.epoch, name: round(value, 6),
                  "results": ev.results, "seconds": round(ev.seconds, 2),
                  "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.run.append_metrics(record)
        improved = math.isfinite(value) and (self.best is None or value < self.best[0])
        if improved:
            if self.last_checkpoint is None or self.last_checkpoint.name != f"step-{self.step}.safetensors":
                self.save()
            with atomic_path(self.run.checkpoints_dir / BEST_CHECKPOINT) as tmp:
                shutil.copyfile(self.last_checkpoint, tmp)
            self.best = (value, self.step)
        best_value, best_step = self.best if self.best is not None else (float("nan"), 0)
        self.reporter.note(f"step {self.step}: {name} {value:.4g} ({ev.protocol['num_generated']} samples, "
                           f"{ev.seconds:.0f} s); best {best_value:.4g} at step {best_step}"
                           + (" -> checkpoints/best.safetensors" if improved else ""))
        return record

    def _check_weights_finite(self) -> None:
        """Refuse to checkpoint NaN/Inf weights (the last good checkpoint stays the newest)."""
        for name, module in (("generator", self.G), ("discriminator", self.D)):
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                self._diverged(f"{name} weights are not finite")

    def _diverged(self, what: str) -> None:
        last = self.last_checkpoint.name if self.last_checkpoint else "none"
        raise GancliError(
            f"training diverged at step {self.step} ({what}); last good checkpoint: {last}; "
            "try a lower --lr-g/--lr-d or another --loss"
        )

    def _check_finite(self, record: dict[str, float]) -> None:
        bad = {k: v for k, v in record.items() if not math.isfinite(v)}
        if bad:
            self._diverged(", ".join(f"{k}={v}" for k, v in bad.items()))
