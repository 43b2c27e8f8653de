"""The GAN training loop.

One step = one discriminator update on a real batch and a batch of fakes, then
one generator update through the (frozen) discriminator, with the adversarial
loss chosen by name (``gancli.losses``). Everything random is seeded from the
run seed, and a checkpoint holds everything the loop needs, so on CPU
``N steps + resume + N steps`` is bitwise identical to ``2N`` steps straight.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import torch

from gancli.checkpoint import Checkpoint, save_checkpoint
from gancli.config import RunConfig
from gancli.data import ImageData
from gancli.data.batcher import DeviceBatcher
from gancli.errors import GancliError
from gancli.losses import build_loss
from gancli.models import build_discriminator, build_generator
from gancli.runs import Run
from gancli.sampling import derive_seed, generate, latents, save_grid

#: Number of fixed latents behind the periodic 8x8 sample grid.
GRID_SAMPLES = 64


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


class Trainer:
    """Holds G, D, their optimizers, the data and the RNGs of one run.

    Args:
        cfg: the run's config (validated).
        run: where checkpoints, samples and metrics go.
        device: the training device.
        data: the training split (uint8 images), preloaded on ``device``.
        reporter: progress sink; ``None`` = silent.
    """

    def __init__(self, cfg: RunConfig, run: Run, device: torch.device, data: ImageData,
                 reporter: Reporter | None = None):
        self.cfg = cfg
        self.run = run
        self.device = device
        self.reporter = reporter or NullReporter()
        t = cfg.train
        torch.manual_seed(t.seed)  # weight init and dropout
        self.G = build_generator(cfg.model).to(device)
        self.D = build_discriminator(cfg.model).to(device)
        self.loss = build_loss(cfg.loss.name)
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2))
        self.z_gen = torch.Generator(device=device).manual_seed(derive_seed(t.seed, "z"))
        self.batcher = DeviceBatcher(data.images, data.labels, t.batch_size, derive_seed(t.seed, "data") % 2**31,
                                     device)
        self.fixed_z = latents(GRID_SAMPLES, cfg.model.nz, derive_seed(t.seed, "fixed-z"), device)
        self.step = 0
        self.last_checkpoint: Path | None = None

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

    def save(self) -> Path:
        """Checkpoint the current step into ``checkpoints/step-<S>.safetensors`` and
        prune old ones (``keep_checkpoints``)."""
        path = self.run.checkpoints_dir / f"step-{self.step}.safetensors"
        state = {
            "step": self.step,
            "epoch": self.step / self.batcher.steps_per_epoch,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device_type": self.device.type,
        }
        modules = {"generator": self.G, "discriminator": self.D, "optim_g": self.opt_g, "optim_d": self.opt_d,
                   "rng": self.rng_state()}
        self._check_weights_finite()
        save_checkpoint(path, self.cfg, state, modules)
        self.last_checkpoint = path
        self.run.prune_checkpoints(self.cfg.train.keep_checkpoints)
        self.reporter.detail(f"saved checkpoint {path}")
        return path

    def restore(self, ckpt: Checkpoint) -> None:
        """Load G, D, optimizers, RNG states and the step from ``ckpt``."""
        try:
            self.G.load_state_dict(ckpt.part("generator"))
            self.D.load_state_dict(ckpt.part("discriminator"))
            self.opt_g.load_state_dict(ckpt.part("optim_g"))
            self.opt_d.load_state_dict(ckpt.part("optim_d"))
        except (RuntimeError, ValueError, KeyError) as e:
            raise GancliError(f"checkpoint {ckpt.path} does not match the run ({str(e).splitlines()[0]})") from None
        self.step = ckpt.step
        self.set_rng_state(ckpt.part("rng"), ckpt.state.get("device_type", "cpu"))
        self.last_checkpoint = ckpt.path

    # -- one step ----------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """One D update then one G update at 0-based ``step``.

        Returns:
            Detached scalars: ``loss_d``, ``loss_g``, ``d_real`` = mean D(x) and
            ``d_fake`` = mean D(G(z)) (probabilities in [0, 1], before the updates).
        """
        real, _ = self.batcher.batch(step)
        z = torch.randn(real.shape[0], self.cfg.model.nz, generator=self.z_gen, device=self.device)
        fake = self.G(z)

        real_logits = self.D(real)
        fake_logits = self.D(fake.detach())
        loss_d = self.loss.d_loss(real_logits, fake_logits)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        self.D.requires_grad_(False)
        loss_g = self.loss.g_loss(self.D(fake))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)

        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(real_logits.detach()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
        }

    def write_samples(self) -> Path:
        """The fixed-z grid of the current step: ``samples/step-<S>.png``."""
        images = generate(self.G, self.fixed_z)
        path = save_grid(images, self.run.samples_dir / f"step-{self.step}.png", nrow=8)
        self.reporter.detail(f"wrote samples {path}")
        return path

    # -- the loop ----------------------------------------------------------------
    def fit(self, should_stop=lambda: False) -> TrainResult:
        """Train from ``self.step`` to ``cfg.train.steps``.

        Args:
            should_stop: polled after every step; when it returns True the loop
                checkpoints and returns with ``interrupted=True``.

        Raises:
            GancliError: a loss became NaN/Inf (the message names the step and the
                last good checkpoint).
        """
        t = self.cfg.train
        total = t.steps
        start_step = self.step
        self.reporter.start(total, start_step)
        t0 = time.perf_counter()
        mark_time, mark_step = t0, self.step
        sums: dict[str, torch.Tensor] = {}
        n = 0
        interrupted = False
        try:
            while self.step < total:
                stats = self.train_step(self.step)
                self.step += 1
                for k, v in stats.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                n += 1
                self.reporter.advance(self.step)
                if self.step % t.log_every_steps == 0 or self.step == total:
                    record = {k: v.item() / n for k, v in sums.items()}  # .item() syncs the device
                    now = time.perf_counter()
                    self._check_finite(record)
                    record = {
                        "kind": "train",
                        "step": self.step,
                        "epoch": round(self.step / self.batcher.steps_per_epoch, 4),
                        **{k: round(v, 6) for k, v in record.items()},
                        "img_per_sec": round(t.batch_size * (self.step - mark_step) / max(now - mark_time, 1e-9), 1),
                        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    }
                    self.run.append_metrics(record)
                    self.reporter.log(record)
                    sums, n = {}, 0
                    mark_time, mark_step = now, self.step
                if t.sample_every_steps and self.step % t.sample_every_steps == 0:
                    self.write_samples()
                if t.checkpoint_every_steps and self.step % t.checkpoint_every_steps == 0 and self.step < total:
                    self.save()
                if should_stop():
                    interrupted = self.step < total
                    break
            if self.last_checkpoint is None or self.last_checkpoint.name != f"step-{self.step}.safetensors":
                self.save()
            if not interrupted and not (t.sample_every_steps and self.step % t.sample_every_steps == 0):
                self.write_samples()
        finally:
            self.reporter.stop()
        seconds = time.perf_counter() - t0
        return TrainResult(
            step=self.step,
            total_steps=total,
            interrupted=interrupted,
            seconds=seconds,
            images_per_sec=t.batch_size * (self.step - start_step) / max(seconds, 1e-9),
            last_checkpoint=self.last_checkpoint,
        )

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
