"""The GAN training loop: one loop, pluggable parts.

One step = ``d_steps`` discriminator updates (each on a fresh real batch and a
batch of fakes; + gradient penalty, lazy R1), then one generator update through
the frozen discriminator, then the EMA update of G. The adversarial loss,
architecture, optimizer, LR schedule, augmentation and conditioning are chosen
by config. Everything random is seeded from the run seed and a checkpoint holds
everything the loop needs, so on CPU ``N steps + resume + N steps`` is bitwise
identical to ``2N`` steps straight.

The same loop runs in each process of a multi-process run
(:mod:`gancli.engine.distributed`): G and D are wrapped in
``DistributedDataParallel``, each process takes its slice of every global batch
and only rank 0 writes files. ``precision`` runs the forward passes under
autocast (bf16, or fp16 with gradient scaling), ``channels_last`` stores conv
models in that memory format, ``compile`` runs them through ``torch.compile``.
"""

from __future__ import annotations

import contextlib
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
from gancli.engine.distributed import SINGLE, Dist
from gancli.errors import GancliError
from gancli.losses import build_loss
from gancli.losses.regularizers import gradient_penalty, r1_penalty
from gancli.models import build_discriminator, build_generator
from gancli.runs import Run
from gancli.sampling import derive_seed, generate, grid_labels, latents, save_grid

#: Columns of the periodic fixed-z sample grid (8x8 unconditional; one row per class otherwise).
GRID_COLUMNS = 8

#: ``--precision`` -> autocast dtype (None = autocast off).
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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
    (Tieleman & Hinton 2012) over ``params``. Adam uses PyTorch's fused kernel
    (one pass over each parameter, on CPU and CUDA) where this build has one."""
    if name == "adam":
        params = list(params)
        try:
            return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), fused=True)
        except (RuntimeError, TypeError):  # no fused kernel for this device or dtype
            return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}")


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``opt.load_state_dict(state)``, keeping ``opt``'s own implementation choice
    (``fused`` / ``foreach``; the saved state carries the saving optimizer's),
    so a checkpoint of a run without the fused kernel resumes with it and back.
    Per-parameter state tensors take their parameter's memory layout (checkpoints
    store them contiguous; the fused kernel needs channels_last moments for
    channels_last weights)."""
    impl = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in opt.param_groups]
    opt.load_state_dict(state)
    for group, kv in zip(opt.param_groups, impl):
        group.update(kv)
        for p in group["params"]:
            st = opt.state.get(p, {})
            for key, value in st.items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    st[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)
            if kv.get("fused") and isinstance(st.get("step"), torch.Tensor):  # the fused kernel's step count
                st["step"] = st["step"].to(device=p.device, dtype=torch.float32)


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
    arXiv 1710.10196; Yazici et al. 2019, arXiv 1806.04498). One multi-tensor
    kernel per list on CUDA (the same values as a per-tensor ``lerp_``)."""
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - beta)
    buffers = list(ema.buffers())
    if buffers:
        torch._foreach_copy_(buffers, list(model.buffers()))


def _has_conv(module: torch.nn.Module) -> bool:
    return any(p.dim() == 4 for p in module.parameters())


class Trainer:
    """Holds G, D, EMA G, their optimizers, the data and the RNGs of one run.

    ``G``, ``D`` and ``G_ema`` are the plain modules (what checkpoints hold, no
    ``module.`` or ``_orig_mod.`` prefixes); the training step calls them through
    their DDP / ``torch.compile`` wrappers when those are on.

    Args:
        cfg: the run's config (validated).
        run: where checkpoints, samples and metrics go (rank 0 only writes).
        device: the training device of this process.
        data: the training split (uint8 images), preloaded on ``device``.
        reporter: progress sink; ``None`` = silent.
        evaluator: for ``eval_every_steps``: a
            :class:`~gancli.metrics.evaluate.TrainingEvaluator` (``evaluator(G, describe)``
            -> an ``Evaluation`` whose ``values[evaluator.headline]`` is lower-is-better).
            With several processes only rank 0 has one (the others pass None).
        dist: this process's rank among the run's processes; default one process.
    """

    def __init__(self, cfg: RunConfig, run: Run, device: torch.device, data: ImageData,
                 reporter: Reporter | None = None, evaluator: Callable[..., Any] | None = None,
                 dist: Dist | None = None):
        self.cfg = cfg
        self.run = run
        self.device = device
        self.dist = dist or SINGLE
        self.reporter = reporter or NullReporter()
        t, o = cfg.train, cfg.optim
        torch.manual_seed(t.seed)  # weight init (the same on every rank), then dropout, augmentation, GP mixing
        self.G = build_generator(cfg.model).to(device)
        self.D = build_discriminator(cfg.model).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if t.ema_decay > 0 else None
        if self.dist.enabled and t.sync_bn:  # BatchNorm statistics over the global batch (G_ema keeps BatchNorm)
            self.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        conv = t.channels_last and _has_conv(self.D)
        self.memory_format = torch.channels_last if conv else torch.contiguous_format
        if conv:
            for m in (self.G, self.D, self.G_ema):
                if m is not None:
                    m.to(memory_format=torch.channels_last)
        if self.dist.rank > 0:  # the random streams of dropout, augmentation and GP differ per rank
            torch.manual_seed(derive_seed(t.seed, f"rank-{self.dist.rank}"))
        self._wrap_models()
        # D scores each sample on its own (no batch statistics, no spectral-norm power
        # iteration per call): real and fake may go through it in one forward.
        self.joint_d = not cfg.model.spectral_norm and not any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.D.modules())
        self.autocast_dtype = AUTOCAST_DTYPES[t.precision]
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")
        self.loss = build_loss(cfg.loss.name)
        self.augment = DiffAugment(parse_augment(t.augment))
        self.opt_g = build_optimizer(o.name, self.G.parameters(), o.lr_g, o.beta1, o.beta2, o.momentum)
        self.opt_d = build_optimizer(o.name, self.D.parameters(), o.lr_d, o.beta1, o.beta2, o.momentum)
        self.z_gen = torch.Generator(device=device).manual_seed(derive_seed(t.seed, "z"))
        self.batcher = DeviceBatcher(data.images, data.labels, t.batch_size, derive_seed(t.seed, "data") % 2**31,
                                     device, rank=self.dist.rank, world_size=self.dist.world_size,
                                     memory_format=self.memory_format)
        k = cfg.model.num_classes
        rows = k if k else GRID_COLUMNS
        self.fixed_z = latents(rows * GRID_COLUMNS, cfg.model.nz, derive_seed(t.seed, "fixed-z"), device)
        self.fixed_y = grid_labels(k, GRID_COLUMNS, device) if k else None
        self.step = 0
        self.last_checkpoint: Path | None = None
        self.evaluator = evaluator
        self.evaluating = self.dist.from_main(lambda: evaluator is not None)  # rank 0 evaluates for all
        self.best: tuple[float, int] | None = None  # (headline value, step) of best.safetensors

    def _wrap_models(self) -> None:
        """The callables of the training step.

        ``_G`` / ``_D``: G and D as the D update and the G update's G forward call
        them, through DistributedDataParallel when several processes train (it
        averages their gradients over the ranks) and torch.compile when enabled.
        ``_G_local`` / ``_D_local``: the same without DDP. D's forward in the G
        update goes through ``_D_local``: D is frozen there, so DDP would wait for
        gradients of D that never come (and fail at the next D update), while
        running it outside DDP needs no ``find_unused_parameters`` search on every
        step; G's gradients still reach G through the DDP-wrapped G forward.
        G's forwards without gradients (extra D updates) skip DDP as well.
        """
        from torch.nn.parallel import DistributedDataParallel

        compile_ = torch.compile if self.cfg.train.compile else (lambda m: m)
        self._G_local, self._D_local = compile_(self.G), compile_(self.D)
        if not self.dist.enabled:
            self._G, self._D = self._G_local, self._D_local
            return
        ids = [self.device.index] if self.device.type == "cuda" else None
        self._G = compile_(DistributedDataParallel(self.G, device_ids=ids, gradient_as_bucket_view=True))
        self._D = compile_(DistributedDataParallel(self.D, device_ids=ids, gradient_as_bucket_view=True))

    def _autocast(self, penalty: bool = False):
        """Autocast to ``--precision`` around forward passes; nothing for fp32, and
        float32 for the penalties under fp16."""
        if self.autocast_dtype is None or (penalty and self.autocast_dtype == torch.float16):
            return torch.autocast(self.device.type, enabled=False) if penalty else contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # -- state -----------------------------------------------------------------
    def rng_state(self) -> dict[str, Any]:
        """This process's RNG states: global torch (and CUDA/MPS) and the z generator."""
        state = {"torch": torch.get_rng_state(), "z": self.z_gen.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps":
            state["mps"] = torch.mps.get_rng_state()
        return state

    def run_rng_state(self) -> dict[str, Any]:
        """What a checkpoint stores (a collective with several processes): rank 0's
        states, plus ``ranks.<r>`` = the global torch (and CUDA) states of rank r > 0.
        The z generator is the same on every rank."""
        states = self.dist.gather(self.rng_state())
        out = states[0]
        if len(states) > 1:
            out["ranks"] = {str(r): {k: v for k, v in st.items() if k != "z"} for r, st in enumerate(states) if r}
        return out

    def set_rng_state(self, state: dict[str, Any], saved_device_type: str) -> None:
        """Restore the RNG states of a checkpoint. States of another device type
        (a run moved from CPU to CUDA, say) cannot be restored: then the z stream
        is re-seeded from (seed, step) and the run continues, no longer bitwise
        reproducible. Rank r > 0 takes the states saved for rank r; a rank the
        checkpoint has none for (more processes than before) re-seeds its global
        stream from (seed, rank, step)."""
        rank = self.dist.rank
        own = state if rank == 0 else state.get("ranks", {}).get(str(rank))
        if own is None:
            torch.manual_seed(derive_seed(self.cfg.train.seed, f"rank-{rank}-after-{self.step}"))
        else:
            torch.set_rng_state(own["torch"])
        if saved_device_type != self.device.type:
            self.z_gen.manual_seed(derive_seed(self.cfg.train.seed, f"z-after-{self.step}"))
            self.reporter.note(
                f"resuming on {self.device.type} a run checkpointed on {saved_device_type}: "
                "the random stream of z is re-seeded, so the run is not bitwise reproducible"
            )
            return
        self.z_gen.set_state(state["z"])
        if own is not None and self.device.type == "cuda" and "cuda" in own:
            torch.cuda.set_rng_state(own["cuda"], self.device)
        elif own is not None and self.device.type == "mps" and "mps" in own:
            torch.mps.set_rng_state(own["mps"])

    def modules(self) -> dict[str, Any]:
        """What a checkpoint holds, by name (a collective with several processes)."""
        out: dict[str, Any] = {"generator": self.G, "discriminator": self.D}
        if self.G_ema is not None:
            out["generator_ema"] = self.G_ema
        out.update({"optim_g": self.opt_g, "optim_d": self.opt_d, "rng": self.run_rng_state()})
        if self.scaler_d.is_enabled():
            out.update({"scaler_d": self.scaler_d, "scaler_g": self.scaler_g})
        return out

    def save(self) -> Path:
        """Checkpoint the current step into ``checkpoints/step-<S>.safetensors`` and
        prune old ones (``keep_checkpoints``). Every rank calls it; rank 0 writes."""
        path = self.run.checkpoints_dir / f"step-{self.step}.safetensors"
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device_type": self.device.type,
            "world_size": self.dist.world_size,
        }
        self._check_weights_finite()
        modules = self.modules()
        if self.dist.is_main:
            save_checkpoint(path, self.cfg, state, modules)
            self.run.prune_checkpoints(self.cfg.train.keep_checkpoints)
            self.reporter.detail(f"saved checkpoint {path}")
        self.last_checkpoint = path
        return path

    def restore(self, ckpt: Checkpoint) -> None:
        """Load G, D, EMA G, optimizers, RNG states and the step from ``ckpt``."""
        try:
            self.G.load_state_dict(ckpt.part("generator"))
            self.D.load_state_dict(ckpt.part("discriminator"))
            if self.G_ema is not None:
                self.G_ema.load_state_dict(ckpt.part("generator_ema"))
            load_optimizer_state(self.opt_g, ckpt.part("optim_g"))
            load_optimizer_state(self.opt_d, ckpt.part("optim_d"))
            if self.scaler_d.is_enabled() and ckpt.has("scaler_d"):  # else a fresh scale (fp16 newly on)
                self.scaler_d.load_state_dict(ckpt.part("scaler_d"))
                self.scaler_g.load_state_dict(ckpt.part("scaler_g"))
        except (RuntimeError, ValueError, KeyError) as e:
            raise GancliError(f"checkpoint {ckpt.path} does not match the run ({str(e).splitlines()[0]})") from None
        self.step = ckpt.step
        if self.evaluating:  # the best so far, from the evaluations up to this step (rank 0's run directory)

            def best() -> tuple[float, int] | None:
                name = self.evaluator.headline
                seen = [(r[name], r["step"]) for r in self.run.read_metrics() if r.get("kind") == "eval"
                        and isinstance(r.get(name), (int, float)) and r.get("step", 0) <= ckpt.step]
                return min(seen) if seen else None

            self.best = self.dist.from_main(best)
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
    def _latents(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's slice of the global batch's latents ``z (b, nz)`` (and fake
        labels ``(b,)``). Every rank draws the whole global batch from the shared z
        generator, so z does not depend on the number of processes."""
        n, b, r = self.cfg.train.batch_size, self.batcher.local_batch_size, self.dist.rank
        z = torch.randn(n, self.cfg.model.nz, generator=self.z_gen, device=self.device)
        k = self.cfg.model.num_classes
        y = torch.randint(0, k, (n,), generator=self.z_gen, device=self.device) if k else None
        if self.dist.enabled:
            z = z[r * b:(r + 1) * b]
            y = y[r * b:(r + 1) * b] if y is not None else None
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
            Detached scalars of the last D update and the G update, this process's
            means: ``loss_d`` (with penalties), ``loss_g``, ``d_real`` / ``d_fake``
            (mean D(x) and D(G(z)) before the update: probabilities for BCE losses,
            raw scores otherwise), and ``gp`` / ``r1`` when enabled.
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
            z, y_fake = self._latents()
            last = i == n_d - 1
            with self._autocast():
                if last:
                    fake = self._G(z, y_fake)  # kept for the G update below
                    fake_d = fake.detach()
                else:
                    with torch.no_grad():
                        fake_d = self._G_local(z, y_fake)
                real_in, fake_in = self.augment(real), self.augment(fake_d)
                if self.joint_d:  # one forward of twice the batch: larger matmuls, one gradient sum fewer
                    y = torch.cat([y_real, y_fake]) if y_real is not None else None
                    scores = self._D(torch.cat([real_in, fake_in]), y).float()
                    real_scores, fake_scores = scores[:real.shape[0]], scores[real.shape[0]:]
                else:
                    real_scores = self._D(real_in, y_real).float()
                    fake_scores = self._D(fake_in, y_fake).float()
                loss_d = self.loss.d_loss(real_scores, fake_scores)
            # The penalties call the plain D: torch.compile has no double backward, and DDP's
            # hooks sit on D's parameters, so their gradients are averaged all the same.
            # Under fp16 they run in float32 (see gancli.losses.regularizers).
            with self._autocast(penalty=True):
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
                self.scaler_d.scale(loss_d).backward()
                self.scaler_d.step(self.opt_d)
                self.scaler_d.update()

        self.D.requires_grad_(False)
        with self._autocast():
            loss_g = self.loss.g_loss(self._D_local(self.augment(fake), y_fake).float())
        self.opt_g.zero_grad(set_to_none=True)
        if self._usable(loss_g, stats):
            self.scaler_g.scale(loss_g).backward()
            self.scaler_g.step(self.opt_g)
            self.scaler_g.update()
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
        surfaces at the next log or checkpoint. With several processes the update
        is skipped on every rank when the loss is not finite on one."""
        if self.cfg.train.nan_policy != "skip" or self.dist.all(torch.isfinite(loss)):
            return True
        stats["skipped"] = stats.get("skipped", torch.zeros((), device=loss.device)) + 1
        return False

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The EMA generator when enabled, else G."""
        return self.G_ema if self.G_ema is not None else self.G

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
                    record = self._reduce_stats(sums, counts)
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
                    if self.dist.is_main:
                        self.run.append_metrics(record)
                    self.reporter.log(record)
                    sums, counts = {}, {}
                    mark_time, mark_step = now, self.step
                if t.sample_every_steps and self.step % t.sample_every_steps == 0:
                    self.write_samples()
                if t.checkpoint_every_steps and self.step % t.checkpoint_every_steps == 0 and self.step < total:
                    self.save()
                if self.evaluating and t.eval_every_steps and self.step % t.eval_every_steps == 0:
                    mark_time += self.evaluate()["seconds"]  # keep evaluation time out of img/s
                if self.dist.any(should_stop()):  # every rank stops after the same step
                    interrupted = self.step < total
                    break
            if self.last_checkpoint is None or self.last_checkpoint.name != f"step-{self.step}.safetensors":
                self.save()
            if not interrupted and not (t.sample_every_steps and self.step % t.sample_every_steps == 0):
                self.write_samples()
            if not interrupted and self.evaluating and self.step % t.eval_every_steps:
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

    def _reduce_stats(self, sums: dict[str, torch.Tensor], counts: dict[str, int]) -> dict[str, float]:
        """The logged values of a log interval, over all ranks: means per update,
        except ``skipped``, a total. One device sync (and one all-reduce)."""
        keys = list(sums)
        if self.dist.enabled:  # the same keys everywhere (a rank may lack one under --nan-policy skip)
            keys = list(dict.fromkeys(k for rank_keys in self.dist.gather(keys) for k in rank_keys))
        if not keys:
            return {}
        zero = torch.zeros((), device=self.device)
        table = torch.stack([torch.stack([sums.get(k, zero).float(), torch.tensor(float(counts.get(k, 0)),
                                                                                   device=self.device)])
                             for k in keys])
        values = self.dist.sum_(table).tolist()
        out = {}
        for k, (total, n) in zip(keys, values):
            if k == "skipped":  # every rank counts each skipped update
                out[k] = total / self.dist.world_size
            elif n:
                out[k] = total / n
        return out

    def write_samples(self) -> Path:
        """The fixed-z grid of the current step (EMA G when enabled): ``samples/step-<S>.png``;
        8x8, or one row per class for a conditional G. Written by rank 0 only."""
        path = self.run.samples_dir / f"step-{self.step}.png"
        if self.dist.is_main:
            images = generate(self.sampling_generator, self.fixed_z, self.fixed_y)
            save_grid(images, path, nrow=GRID_COLUMNS)
            self.reporter.detail(f"wrote samples {path}")
        return path

    def evaluate(self) -> dict[str, Any]:
        """Score the sampling generator with ``self.evaluator``, append a ``"kind": "eval"``
        record to metrics.jsonl, and when the headline metric improves copy this step's
        checkpoint (saved now if needed) to ``checkpoints/best.safetensors``. Uses no global
        RNG and restores G's mode, so training continues exactly as without it. With several
        processes rank 0 evaluates while the others wait; a new best is saved by all (the
        checkpoint is a collective) and copied by rank 0."""
        from gancli.fsutil import atomic_path
        from gancli.runs import BEST_CHECKPOINT

        def score() -> tuple[dict[str, Any], str, float, int]:
            assert self.evaluator is not None
            name = self.evaluator.headline
            describe = {"run": self.run.id, "step": self.step, "weights": "ema" if self.G_ema is not None else "raw"}
            ev = self.evaluator(self.sampling_generator, describe)
            value = ev.values[name]
            record = {"kind": "eval", "step": self.step, "epoch": self.epoch, name: round(value, 6),
                      "results": ev.results, "seconds": round(ev.seconds, 2),
                      "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            self.run.append_metrics(record)
            return record, name, value, ev.protocol["num_generated"]

        record, name, value, num_generated = self.dist.from_main(score)
        improved = math.isfinite(value) and (self.best is None or value < self.best[0])
        if improved:
            if self.last_checkpoint is None or self.last_checkpoint.name != f"step-{self.step}.safetensors":
                self.save()
            if self.dist.is_main:
                with atomic_path(self.run.checkpoints_dir / BEST_CHECKPOINT) as tmp:
                    shutil.copyfile(self.last_checkpoint, tmp)
            self.best = (value, self.step)
        best_value, best_step = self.best if self.best is not None else (float("nan"), 0)
        self.reporter.note(f"step {self.step}: {name} {value:.4g} ({num_generated} samples, "
                           f"{record['seconds']:.0f} s); best {best_value:.4g} at step {best_step}"
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
