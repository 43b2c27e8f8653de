"""What a checkpoint holds of a training run, and putting it back: weights, EMA,
optimizer, loss-scaler and RNG states, and the step.

Every rank calls :func:`save` and :func:`restore` (they are collectives with several
processes: the RNG states of all ranks go into rank 0's file); rank 0 alone writes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gancli.checkpoint import Checkpoint, save_checkpoint
from gancli.engine.optim import load_optimizer_state
from gancli.engine.protocols import Diverged
from gancli.errors import GancliError
from gancli.seeding import derive_seed

if TYPE_CHECKING:
    from gancli.engine.trainer import Trainer


def rng_state(t: Trainer) -> dict[str, Any]:
    """This process's RNG states: global torch (and CUDA/MPS) and the z generator."""
    state = {"torch": torch.get_rng_state(), "z": t.parts.z_gen.get_state()}
    if t.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(t.device)
    elif t.device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def run_rng_state(t: Trainer) -> dict[str, Any]:
    """What a checkpoint stores (a collective with several processes): rank 0's
    states, plus ``ranks.<r>`` = the global torch (and CUDA) states of rank r > 0.
    The z generator is the same on every rank."""
    states = t.dist.gather(rng_state(t))
    out = states[0]
    if len(states) > 1:
        out["ranks"] = {str(r): {k: v for k, v in st.items() if k != "z"} for r, st in enumerate(states) if r}
    return out


def set_rng_state(t: Trainer, state: dict[str, Any], saved_device_type: str) -> None:
    """Restore the RNG states of a checkpoint. States of another device type
    (a run moved from CPU to CUDA, say) cannot be restored: then the z stream
    is re-seeded from (seed, step) and the run continues, no longer bitwise
    reproducible. Rank r > 0 takes the states saved for rank r; a rank the
    checkpoint has none for (more processes than before) re-seeds its global
    stream from (seed, rank, step)."""
    rank, seed = t.dist.rank, t.cfg.train.seed
    own = state if rank == 0 else state.get("ranks", {}).get(str(rank))
    if own is None:
        torch.manual_seed(derive_seed(seed, f"rank-{rank}-after-{t.step}"))
    else:
        torch.set_rng_state(own["torch"])
    if saved_device_type != t.device.type:
        t.parts.z_gen.manual_seed(derive_seed(seed, f"z-after-{t.step}"))
        t.reporter.note(
            f"resuming on {t.device.type} a run checkpointed on {saved_device_type}: "
            "the random stream of z is re-seeded, so the run is not bitwise reproducible"
        )
        return
    t.parts.z_gen.set_state(state["z"])
    if own is not None and t.device.type == "cuda" and "cuda" in own:
        torch.cuda.set_rng_state(own["cuda"], t.device)
    elif own is not None and t.device.type == "mps" and "mps" in own:
        torch.mps.set_rng_state(own["mps"])


def modules(t: Trainer) -> dict[str, Any]:
    """What a checkpoint holds, by name (a collective with several processes)."""
    p = t.parts
    out: dict[str, Any] = {"generator": p.G, "discriminator": p.D}
    if p.G_ema is not None:
        out["generator_ema"] = p.G_ema
    out.update({"optim_g": p.opt_g, "optim_d": p.opt_d, "rng": run_rng_state(t)})
    if p.scaler_d.is_enabled():
        out.update({"scaler_d": p.scaler_d, "scaler_g": p.scaler_g})
    step_state = getattr(p.task_step, "state_dict", None)  # a step that owns state (CycleGAN's pools)
    if step_state is not None:
        out["task_step"] = step_state()
    return out


def check_weights_finite(t: Trainer) -> None:
    """Refuse to checkpoint NaN/Inf weights or optimizer moments (the last good checkpoint
    stays the newest): an Adam ``exp_avg_sq`` that overflowed to inf freezes the model for good.

    Raises:
        Diverged: a weight or a moment is not finite (the loop records and reports it; saving
            never calls back into the loop or its hooks).
    """
    for name, module in (("generator", t.parts.G), ("discriminator", t.parts.D)):
        if not all(torch.isfinite(p).all() for p in module.parameters()):
            raise Diverged(f"{name} weights are not finite", t.step)
    for name, opt in (("generator", t.parts.opt_g), ("discriminator", t.parts.opt_d)):
        for st in opt.state.values():
            for key, value in st.items():
                if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
                    raise Diverged(f"the {name} optimizer's {key} is not finite", t.step)


def save(t: Trainer) -> Path:
    """Checkpoint the current step into ``checkpoints/step-<S>.safetensors`` and
    prune old ones (``keep_checkpoints``). Every rank calls it; rank 0 writes."""
    path = t.run.checkpoints_dir / f"step-{t.step}.safetensors"
    state = {
        "step": t.step,
        "epoch": t.epoch,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device_type": t.device.type,
        "world_size": t.dist.world_size,
    }
    check_weights_finite(t)
    parts = modules(t)
    if t.dist.is_main:
        save_checkpoint(path, t.cfg, state, parts)
        protect = set().union(*(hook.protected_steps(t) for hook in t.hooks))  # e.g. the monitor's last good one
        t.run.prune_checkpoints(t.cfg.train.keep_checkpoints, protect)
        t.reporter.detail(f"saved checkpoint {path}")
    t.last_checkpoint = path
    return path


def restore(t: Trainer, ckpt: Checkpoint) -> None:
    """Load G, D, EMA G, optimizers, loss scalers, the task step's own state (CycleGAN's pools),
    RNG states and the step from ``ckpt``. Parts a salvaged checkpoint lost
    (:attr:`~gancli.checkpoint.Checkpoint.lost`) start afresh: RNG re-seeded (:func:`reseed_rng`),
    a new loss scale, empty image pools.

    Raises:
        GancliError: the checkpoint's tensors do not fit this run's models.
    """
    p = t.parts
    try:
        p.G.load_state_dict(ckpt.part("generator"))
        p.D.load_state_dict(ckpt.part("discriminator"))
        if p.G_ema is not None:
            p.G_ema.load_state_dict(ckpt.part("generator_ema"))
        load_optimizer_state(p.opt_g, ckpt.part("optim_g"))
        load_optimizer_state(p.opt_d, ckpt.part("optim_d"))
        if p.scaler_d.is_enabled() and ckpt.has("scaler_d"):  # else a fresh scale (fp16 newly on)
            p.scaler_d.load_state_dict(ckpt.part("scaler_d"))
            p.scaler_g.load_state_dict(ckpt.part("scaler_g"))
        if hasattr(p.task_step, "load_state_dict") and "task_step" not in ckpt.lost:  # lost: pools refill
            p.task_step.load_state_dict(ckpt.part("task_step"))
    except (RuntimeError, ValueError, KeyError) as e:
        raise GancliError(f"checkpoint {ckpt.path} does not match the run ({str(e).splitlines()[0]})") from None
    t.step = ckpt.step
    for hook in t.hooks:
        hook.on_restore(t, ckpt)
    if "rng" in ckpt.lost:  # a salvaged checkpoint (--from damaged/step-N): continue on fresh streams
        reseed_rng(t)
    else:
        set_rng_state(t, ckpt.part("rng"), ckpt.state.get("device_type", "cpu"))
    t.last_checkpoint = ckpt.path


def reseed_rng(t: Trainer) -> None:
    """Seed this rank's global torch stream from (seed, rank, step) and the z generator from
    (seed, step), for a checkpoint whose RNG states were lost: the run continues, reproducibly
    from here on for the same seed, but not bitwise as if it had never stopped."""
    torch.manual_seed(derive_seed(t.cfg.train.seed, f"rank-{t.dist.rank}-after-{t.step}"))
    t.parts.z_gen.manual_seed(derive_seed(t.cfg.train.seed, f"z-after-{t.step}"))
