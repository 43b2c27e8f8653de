"""One training step per kind of task: what a batch is, what G and D are given, which terms the
objective adds. The loop (:class:`~gancli.engine.trainer.Trainer`) is the same for all: it sets
the learning rates, calls the run's step object, logs, checkpoints and runs the hooks.

* :class:`GenerateStep` (``--task generate``): ``d_steps`` D updates on real images and
  ``G(z)``, then one G update through the frozen D, then the EMA update.
* :class:`TranslateStep` (the pix2pix tasks, :mod:`gancli.tasks`): the same updates, with the
  batch corrupted on the fly (:func:`gancli.translate.corrupt.corrupt` at (seed, D update), so
  resume stays exact; drawn for the global batch, so it does not depend on the number of
  processes) or, for ``--task paired``, the batch's A images as inputs, ``G(input)``,
  a conditional D scoring (input, image) pairs and L1 added to G's loss (Isola et al. 2017,
  arXiv 1611.07004); ``--augment`` transforms each pair's image and input alike.
* :class:`CycleGANTrainStep` (``--task unpaired``): CycleGAN (Zhu et al. 2017, arXiv
  1703.10593) through :class:`gancli.translate.cyclegan.CycleGANStep`, on batches of domain A and
  random draws of domain B at (seed, step); its pools go into checkpoints.

A step object is built once per run by :func:`build_step` (in
:func:`~gancli.engine.parts.build_parts`) and implements :class:`TrainStep`. Neither uses the
global RNG outside what the networks draw (dropout, gradient-penalty mixing), so a checkpoint
of the loop's RNG states resumes it exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch

from gancli.conditioning import Conditioning
from gancli.engine.ema import ema_beta, ema_update_
from gancli.engine.precision import autocast

#: Columns of the periodic sample grid (a GAN's fixed-z grid: 8x8 unconditional, one row per
#: class otherwise; an image-to-image task's: input, output and target rows).
GRID_COLUMNS = 8

if TYPE_CHECKING:
    from gancli.augment.diffaug import DiffAugment
    from gancli.config import RunConfig
    from gancli.data import ImageData
    from gancli.engine.trainer import Trainer


class TrainStep(Protocol):
    """What the loop asks of a task (``t`` is the :class:`~gancli.engine.trainer.Trainer`,
    whose ``parts`` hold G, D, the optimizers, the objective and the batcher)."""

    def __call__(self, t: Trainer, step: int) -> dict[str, torch.Tensor]:
        """Train 0-based ``step`` (learning rates already set); returns detached scalars to log:
        ``loss_d``, ``loss_g``, ``d_real``, ``d_fake`` and the task's extra terms."""
        ...

    def sample_grid(self, t: Trainer) -> torch.Tensor:
        """The periodic sample grid of this step, ``(N, C, H, W)`` float32 in [-1, 1] on the CPU,
        :data:`GRID_COLUMNS` cells per row; no global RNG."""
        ...


def _apply_update(t: Trainer, loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                  stats: dict[str, torch.Tensor]) -> None:
    """Zero ``opt``'s gradients, then back-propagate ``loss`` and step unless the NaN policy skips it."""
    opt.zero_grad(set_to_none=True)
    if t.usable(loss, stats):
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()


def _g_update(t: Trainer, step: int, stats: dict[str, torch.Tensor], g_loss: Callable[[], Any]) -> Any:
    """The G update of a step: D frozen, ``g_loss()`` under autocast (returns the loss, or a
    tuple whose first item is the loss), the update, D unfrozen, then the EMA update of G.
    Returns what ``g_loss`` returned."""
    p = t.parts
    p.D.requires_grad_(False)
    with autocast(t.device, p.autocast_dtype):
        out = g_loss()
    _apply_update(t, out[0] if isinstance(out, tuple) else out, p.opt_g, p.scaler_g, stats)
    p.D.requires_grad_(True)
    if p.G_ema is not None:
        ema_update_(p.G_ema, p.G, ema_beta(t.cfg.train.ema_decay, step))
    return out


def _step_stats(t: Trainer, loss_d: torch.Tensor, loss_g: torch.Tensor, real_scores: torch.Tensor,
                fake_scores: torch.Tensor) -> dict[str, torch.Tensor]:
    """The detached scalars every step logs: the last D loss, G's loss, mean D(x) and D(G(z))."""
    report = t.parts.objective.report
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "d_real": report(real_scores.detach()),
            "d_fake": report(fake_scores.detach())}


class GenerateStep:
    """A GAN's step: ``d_steps`` D updates (each on a fresh real batch and a batch of fakes;
    + the objective's regularizers: gradient penalty, lazy R1), then one G update through the
    frozen D, then the EMA update of G. Labels: the dataset's classes (``--conditional``) or
    the k-means clusters (self-conditioned, G drawing its cluster from ``z``)."""

    def __init__(self, cfg: RunConfig, data: ImageData, device: torch.device):
        self.cond = Conditioning.of(cfg.model)

    def latents(self, t: Trainer) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's slice of the global batch's latents ``z (b, nz)`` (and D's fake
        labels ``(b,)``: random classes, or the clusters of a self-conditioned G). Every
        rank draws the whole global batch from the shared z generator, so z does not
        depend on the number of processes."""
        n, b, r = t.cfg.train.batch_size, t.parts.batcher.local_batch_size, t.dist.rank
        z_gen = t.parts.z_gen
        z = torch.randn(n, t.cfg.model.nz, generator=z_gen, device=t.device)
        k = self.cond.generator_classes
        y = torch.randint(0, k, (n,), generator=z_gen, device=t.device) if k else None
        if t.dist.enabled:
            z = z[r * b:(r + 1) * b]
            y = y[r * b:(r + 1) * b] if y is not None else None
        if self.cond.self_conditioned:  # D's labels: the clusters G draws from z
            y = t.parts.G.cluster_of(z)
        return z, y

    def __call__(self, t: Trainer, step: int) -> dict[str, torch.Tensor]:
        """Returns the detached scalars of the last D update and the G update, this process's
        means: ``loss_d`` (with penalties), ``loss_g``, ``d_real`` / ``d_fake`` (mean D(x) and
        D(G(z)) before the update: probabilities for BCE losses, raw scores otherwise), and
        ``gp`` / ``r1`` when enabled."""
        cfg, p = t.cfg, t.parts
        n_d = cfg.optim.d_steps
        stats: dict[str, torch.Tensor] = {}
        for i in range(n_d):
            d_update = step * n_d + i  # also the index of the real batch
            real, y_real = p.batcher.batch(d_update)
            if not self.cond.labelled:
                y_real = None
            z, y_fake = self.latents(t)
            y_g = None if self.cond.self_conditioned else y_fake  # a self-conditioned G takes z alone
            last = i == n_d - 1
            with autocast(t.device, p.autocast_dtype):
                if last:
                    fake = p.G_call(z, y_g)  # kept for the G update below
                    fake_d = fake.detach()
                else:
                    with torch.no_grad():
                        fake_d = p.G_local(z, y_g)
                real_in, fake_in = p.augment(real), p.augment(fake_d)
                if p.joint_d:  # one forward of twice the batch: larger matmuls, one gradient sum fewer
                    y = torch.cat([y_real, y_fake]) if y_real is not None else None
                    scores = p.D_call(torch.cat([real_in, fake_in]), y).float()
                    real_scores, fake_scores = scores[:real.shape[0]], scores[real.shape[0]:]
                else:
                    real_scores = p.D_call(real_in, y_real).float()
                    fake_scores = p.D_call(fake_in, y_fake).float()
                loss_d = p.objective.d_loss(real_scores, fake_scores)
            # The penalties call the plain D: torch.compile has no double backward, and DDP's
            # hooks sit on D's parameters, so their gradients are averaged all the same.
            # Under fp16 they run in float32 (see gancli.losses.regularizers).
            with autocast(t.device, p.autocast_dtype, penalty=True):
                loss_d = p.objective.regularize(loss_d, lambda x: p.D(x, y_real), real_in, fake_in, d_update, stats)
            _apply_update(t, loss_d, p.opt_d, p.scaler_d, stats)

        loss_g = _g_update(t, step, stats, lambda: p.objective.g_loss(p.D_local(p.augment(fake), y_fake).float()))
        stats.update(_step_stats(t, loss_d, loss_g, real_scores, fake_scores))
        return stats

    def sample_grid(self, t: Trainer) -> torch.Tensor:
        """The fixed-z grid: 8x8, or one row per class for a conditional G."""
        from gancli.generate.sampling import generate

        return generate(t.parts.sampling_generator, t.parts.fixed_z, t.parts.fixed_y)


class TranslateStep:
    """pix2pix's step (Isola et al. 2017, arXiv 1611.07004) on a corruption task: each real batch
    (the target) is corrupted at (seed, D update) into G's input (``--task paired``: G's input is
    the A image of each target, gathered by the batch's labels, which are the pairs' indices:
    :attr:`~gancli.data.ImageData.inputs`); D's loss is halved, as the
    paper does to slow D; G's loss is ``adv_weight * adversarial + l1_weight * |G(x) - y|_1``.
    Tasks whose corruption reports a hole ``mask`` (inpaint) keep the known pixels: G's output
    only fills the holes (:func:`~gancli.translate.corrupt.keep_known`). ``--augment`` applies
    one random transform per sample to both halves of each pair D sees (:meth:`augment`), real
    and fake pairs drawn apart, in D's update and G's.

    The pix2pix losses live here: :meth:`d_loss` and :meth:`g_loss` (CycleGAN's step, by
    contrast, runs :class:`gancli.translate.cyclegan.CycleGANStep`).

    Args:
        cfg: the run's config (task, its corruption options, loss weights, seed).
        data: the training split; its first :data:`GRID_COLUMNS` images,
            corrupted once with a seed of their own (paired: their A images), are the sample
            grid's inputs. A paired split's ``inputs`` are held on ``device`` (uint8).
        device: where the grid's inputs (and a paired split's inputs) live.
    """

    def __init__(self, cfg: RunConfig, data: ImageData, device: torch.device):
        from gancli.seeding import derive_seed
        from gancli.tasks import TRAINING_TASKS

        task = TRAINING_TASKS.get(cfg.task.name)
        self.corruption = task.corruption
        self.options = task.corruption_options(cfg.task)
        self.seed = cfg.train.seed
        self.l1_weight, self.adv_weight = cfg.loss.l1_weight, cfg.loss.adv_weight
        clean = data.images[:GRID_COLUMNS].to(device).float().div(127.5).sub(1.0)
        self.grid_target = clean
        #: a paired split's inputs ``(N, C_in, H, W)`` uint8 on the device; None = corrupt the targets
        self.inputs: torch.Tensor | None = None
        if task.paired:
            if data.inputs is None or data.inputs.shape[0] != data.images.shape[0]:
                raise ValueError(f"--task {task.name} needs ImageData.inputs, one per image "
                                 f"({data.images.shape[0]}), got {None if data.inputs is None else data.inputs.shape[0]}")
            self.inputs = data.inputs.to(device)
            self.grid_input, self.grid_extra = self.paired_inputs(torch.arange(clean.shape[0], device=device)), {}
        else:
            self.grid_input, self.grid_extra = self.corrupt(clean, derive_seed(self.seed, "fixed-input"), 0)

    def paired_inputs(self, idx: torch.Tensor,
                      memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
        """The A images of pairs ``idx`` ``(b,)`` int64: ``(b, C_in, H, W)`` float32 in [-1, 1]
        (as :meth:`~gancli.data.batcher.DeviceBatcher.batch` makes the targets, in ``memory_format``)."""
        assert self.inputs is not None
        x = self.inputs.index_select(0, idx).to(torch.float32).div_(127.5).sub_(1.0)
        return x if memory_format == torch.contiguous_format else x.contiguous(memory_format=memory_format)

    def corrupt(self, images: torch.Tensor, seed: int, index: int, global_batch: int = 0,
                offset: int = 0) -> tuple[torch.Tensor, dict]:
        """G's input ``(N, C', H, W)`` and the corruption's extras for clean ``images``, rows
        ``offset:offset + N`` of a batch of ``global_batch`` (0 = N)
        (:func:`gancli.translate.corrupt.corrupt`)."""
        from gancli.translate.corrupt import corrupt

        return corrupt(self.corruption, images, seed, index, global_batch=global_batch, offset=offset,
                       **self.options)

    @staticmethod
    def compose(output: torch.Tensor, extra: dict[str, torch.Tensor]) -> torch.Tensor:
        """G's output as the task's result: the known pixels kept where the corruption made holes."""
        if "mask" in extra:
            from gancli.translate.corrupt import keep_known

            return keep_known(output, extra["damaged"], extra["mask"])
        return output

    @staticmethod
    def augment(augment: DiffAugment, image: torch.Tensor, source: torch.Tensor,
                extra: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """D's pair ``(image, source)`` under ``--augment`` (DiffAugment, arXiv 2006.10738): one
        random transform per sample, the same for the image and its condition, so they stay
        aligned (:func:`~gancli.augment.diffaug.augment_pairs`; the hole mask of an inpaint input
        is a colour group of its own). No policies: the pair itself. Draws from the global RNG of
        the device, as :class:`GenerateStep`'s augmentation (the loop checkpoints its state)."""
        if not augment.policies:
            return image, source
        from gancli.augment.diffaug import augment_pairs

        if "mask" in extra:  # (damaged image, mask): the mask's statistics are not the image's
            out, damaged, mask = augment_pairs(augment, image, source[:, :-1], source[:, -1:])
            return out, torch.cat([damaged, mask], 1)
        return augment_pairs(augment, image, source)

    def d_loss(self, t: Trainer, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        """D's loss on its patch logits, halved (pix2pix, section 3.3)."""
        return 0.5 * t.parts.objective.d_loss(real_scores, fake_scores)

    def g_loss(self, t: Trainer, fake: torch.Tensor, target: torch.Tensor,
               fake_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss_g, l1)``: the weighted sum of the adversarial and the L1 terms, and the L1 term."""
        l1 = (fake.float() - target.float()).abs().mean()
        return self.adv_weight * t.parts.objective.g_loss(fake_scores) + self.l1_weight * l1, l1

    def __call__(self, t: Trainer, step: int) -> dict[str, torch.Tensor]:
        """Returns ``loss_d``, ``loss_g``, ``d_real``, ``d_fake`` (as :class:`GenerateStep`) and
        ``l1``, the mean absolute error of G's output (unweighted)."""
        cfg, p = t.cfg, t.parts
        n_d = cfg.optim.d_steps
        stats: dict[str, torch.Tensor] = {}
        for i in range(n_d):
            d_update = step * n_d + i  # the index of the real batch and of its corruption
            target, labels = p.batcher.batch(d_update)
            if self.inputs is not None:  # paired: the labels are the pairs' indices
                source, extra = self.paired_inputs(labels, p.batcher.memory_format), {}
            else:
                # drawn for the global batch, this process's rows kept: the same on any number of processes
                source, extra = self.corrupt(target, self.seed, d_update, cfg.train.batch_size,
                                             t.dist.rank * p.batcher.local_batch_size)
            last = i == n_d - 1
            with autocast(t.device, p.autocast_dtype):
                if last:
                    fake = self.compose(p.G_call(source), extra)  # kept for the G update below
                    fake_d = fake.detach()
                else:
                    with torch.no_grad():
                        fake_d = self.compose(p.G_local(source), extra)
                real_in, real_src = self.augment(p.augment, target, source, extra)
                fake_in, fake_src = self.augment(p.augment, fake_d, source, extra)
                real_scores = p.D_call(real_in, real_src).float()
                fake_scores = p.D_call(fake_in, fake_src).float()
                loss_d = self.d_loss(t, real_scores, fake_scores)
            # the penalties judge images under the real pair's (augmented) condition
            with autocast(t.device, p.autocast_dtype, penalty=True):
                loss_d = p.objective.regularize(loss_d, lambda x: p.D(x, real_src), real_in, fake_in, d_update, stats)
            _apply_update(t, loss_d, p.opt_d, p.scaler_d, stats)

        def g_loss() -> tuple[torch.Tensor, torch.Tensor]:
            fake_in, fake_src = self.augment(p.augment, fake, source, extra)  # G's gradient flows through
            return self.g_loss(t, fake, target, p.D_local(fake_in, fake_src).float())

        loss_g, l1 = _g_update(t, step, stats, g_loss)
        stats.update(_step_stats(t, loss_d, loss_g, real_scores, fake_scores), l1=l1.detach())
        return stats

    @torch.no_grad()
    def sample_grid(self, t: Trainer) -> torch.Tensor:
        """Three rows of :data:`GRID_COLUMNS`: the inputs (their first C
        channels, a 1-channel input repeated), the outputs of the sampling G in eval mode, the targets."""
        G = t.parts.sampling_generator
        was_training = G.training
        G.eval()
        try:
            output = self.compose(G(self.grid_input), self.grid_extra)
        finally:
            G.train(was_training)
        c = self.grid_target.shape[1]
        shown = self.grid_input[:, :c] if self.grid_input.shape[1] >= c else self.grid_input.repeat(1, c, 1, 1)
        return torch.cat([shown, output, self.grid_target]).float().cpu().clamp_(-1, 1)


class CycleGANTrainStep:
    """CycleGAN's step (``--task unpaired``; Zhu et al. 2017, arXiv 1703.10593) in the loop: the
    update itself is :class:`gancli.translate.cyclegan.CycleGANStep`'s (both generators, then both
    discriminators on 50-image pools of fakes), then the EMA update of the generator pair.

    Data: domain A is the batcher's images (batch of step ``s`` as any dataset's); domain B
    (``data.b``, preloaded on the device) is drawn at random with replacement at ``(data seed,
    s)`` (:func:`gancli.translate.pairs.b_indices`, as
    :class:`~gancli.translate.pairs.UnpairedSampler`), so resume stays exact. The pools draw
    from a generator of their own, seeded ``derive_seed(seed, "image-pool")``; its state, the
    pools' images and the D-update count go into checkpoints (:meth:`state_dict`, part
    ``task_step``).

    The CycleGAN step is bound to the run's ``G.g_ab``, ``G.g_ba``, ``D.d_a``, ``D.d_b``,
    ``opt_g``, ``opt_d``, loss scalers and ``--augment`` (DiffAugment on every image either D
    sees, drawing from the global RNG as :class:`GenerateStep`'s) at the first call. One process only, no
    ``--compile`` and ``--nan-policy`` has no effect on its updates (the loss is checked by the
    loop after the step; the resolver refuses the rest, :mod:`gancli.tasks`).

    Args:
        cfg: the run's config (loss, ``cycle_weight``, ``identity_weight``, ``adv_weight``, seed).
        data: a :class:`~gancli.translate.pairs.DomainData`; the first :data:`GRID_COLUMNS`
            images of each domain (repeated when a domain has fewer) are the sample grid's.
        device: where domain B and the pools live.
    """

    #: images kept by each pool (CycleGAN's 50)
    POOL_SIZE = 50

    def __init__(self, cfg: RunConfig, data: ImageData, device: torch.device):
        from gancli.seeding import derive_seed
        from gancli.translate.cyclegan import CycleGANStep
        from gancli.translate.pool import ImagePool

        b = getattr(data, "b", None)
        if b is None:
            raise ValueError("--task unpaired needs a gancli.translate.pairs.DomainData (domains A and B)")
        self.seed = cfg.train.seed
        self.b = b.to(device)
        self.data_seed = derive_seed(cfg.train.seed, "data") % 2**31  # the batcher's seed (gancli.engine.parts)
        generator = torch.Generator(device=device).manual_seed(derive_seed(cfg.train.seed, "image-pool"))
        # the networks, optimizers and scalers are the run's parts: bound at the first call (_bind)
        self.step = CycleGANStep(None, None, None, None, None, None, ImagePool(self.POOL_SIZE),
                                 ImagePool(self.POOL_SIZE), generator, "lsgan", cfg.task.cycle_weight,
                                 cfg.task.identity_weight, adv_weight=cfg.loss.adv_weight)
        self._bound = False

        def first(images: torch.Tensor) -> torch.Tensor:
            idx = torch.arange(GRID_COLUMNS) % images.shape[0]
            return images[idx].to(device).float().div(127.5).sub(1.0)

        self.grid_a, self.grid_b = first(data.images), first(b)

    def _bind(self, t: Trainer) -> None:
        p, s = t.parts, self.step
        if t.dist.enabled:
            raise ValueError("--task unpaired trains in one process for now")
        s.G_ab, s.G_ba, s.D_a, s.D_b = p.G.g_ab, p.G.g_ba, p.D.d_a, p.D.d_b
        s.opt_g, s.opt_d, s.scaler_g, s.scaler_d = p.opt_g, p.opt_d, p.scaler_g, p.scaler_d
        s.loss, s.autocast_dtype = p.objective, p.autocast_dtype  # the run's loss (+ its penalties)
        s.augment = p.augment if p.augment.policies else None  # --augment: on every image either D sees
        self._bound = True

    def batch_b(self, t: Trainer, step: int) -> torch.Tensor:
        """Domain B's batch of 0-based ``step``: ``(b, C, H, W)`` float32 in [-1, 1]."""
        from gancli.translate.pairs import b_indices

        idx = b_indices(self.b.shape[0], t.parts.batcher.local_batch_size, self.data_seed, step)
        x = self.b.index_select(0, idx.to(self.b.device)).to(torch.float32).div_(127.5).sub_(1.0)
        return x.contiguous(memory_format=t.parts.memory_format)

    def __call__(self, t: Trainer, step: int) -> dict[str, torch.Tensor]:
        """Returns :meth:`CycleGANStep.step <gancli.translate.cyclegan.CycleGANStep.step>`'s
        scalars: ``loss_g``, ``loss_d`` (both Ds), ``d_real``, ``d_fake``, ``g_adv``, ``cycle_a``,
        ``cycle_b``, ``idt_a``, ``idt_b`` (identity on), ``loss_d_a``, ``loss_d_b``."""
        if not self._bound:
            self._bind(t)
        p = t.parts
        real_a, _ = p.batcher.batch(step)
        stats = self.step.step(real_a, self.batch_b(t, step))
        if p.G_ema is not None:
            ema_update_(p.G_ema, p.G, ema_beta(t.cfg.train.ema_decay, step))
        return stats

    def state_dict(self) -> dict[str, Any]:
        """The pools, their generator's state and the D-update count
        (:meth:`gancli.translate.cyclegan.CycleGANStep.state_dict`)."""
        return self.step.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (pools moved to this run's device at their next use). A
        generator state of another device type (a run moved from CUDA to the CPU, say) cannot be
        restored: the pools' generator is then re-seeded from (seed, D updates), as the loop does
        for z, and the run is no longer bitwise reproducible.

        Raises:
            ValueError: a state that does not fit (see ``CycleGANStep.load_state_dict``).
        """
        from gancli.seeding import derive_seed

        g = self.step.generator
        saved = state.get("generator") if isinstance(state, dict) else None
        if isinstance(saved, torch.Tensor) and saved.numel() != g.get_state().numel():
            d_updates = state.get("d_updates")
            state = {**state, "generator": g.manual_seed(
                derive_seed(self.seed, f"image-pool-after-{d_updates}")).get_state()}
        self.step.load_state_dict(state)

    @torch.no_grad()
    def sample_grid(self, t: Trainer) -> torch.Tensor:
        """Four rows of :data:`GRID_COLUMNS`: domain A images, ``G_ab`` of them, domain B images,
        ``G_ba`` of them (the sampling G pair in eval mode)."""
        G = t.parts.sampling_generator
        was_training = G.training
        G.eval()
        try:
            rows = [self.grid_a, G.g_ab(self.grid_a), self.grid_b, G.g_ba(self.grid_b)]
        finally:
            G.train(was_training)
        return torch.cat(rows).float().cpu().clamp_(-1, 1)


#: ``Task.step`` (:mod:`gancli.tasks`) -> the step class; each is built as ``cls(cfg, data, device)``.
STEPS: dict[str, Any] = {"generate": GenerateStep, "pix2pix": TranslateStep, "cyclegan": CycleGANTrainStep}


def build_step(cfg: RunConfig, data: ImageData, device: torch.device) -> TrainStep:
    """The step object of ``cfg``'s task."""
    from gancli.tasks import TRAINING_TASKS

    return STEPS[TRAINING_TASKS.get(cfg.task.name).step](cfg, data, device)
