"""Build what the training loop runs: G, D, EMA G, optimizers, objective, augmentation,
the data batcher, the latent streams and the task's step, from a run's config. The loop
(:class:`~gancli.engine.trainer.Trainer`) receives them built. G and D come from the
architecture registry whatever the task (an image-to-image task's ``--arch unet`` builds
pix2pix's U-Net and PatchGAN from the same :class:`~gancli.config.ModelConfig`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from gancli.augment.diffaug import DiffAugment
from gancli.augment.spec import parse_augment
from gancli.conditioning import Conditioning
from gancli.conditioning.store import ClusterAssignment
from gancli.config import RunConfig
from gancli.data import ImageData
from gancli.data.batcher import DeviceBatcher
from gancli.engine.distributed import SINGLE, Dist
from gancli.engine.optim import build_optimizer
from gancli.engine.precision import autocast_dtype, resolve_precision
from gancli.engine.steps import GRID_COLUMNS, TrainStep, build_step
from gancli.generate.sampling import grid_labels
from gancli.losses.objective import Objective
from gancli.models import build_discriminator, build_generator
from gancli.seeding import derive_seed, latents


def labelled_data(cfg: RunConfig, data: ImageData, clusters: ClusterAssignment | None = None) -> ImageData:
    """``data`` with the labels D is trained on: a self-conditioned run's cluster of each
    image (``clusters``, found now when None: :func:`~gancli.conditioning.store.find_clusters`,
    seeded from ``--seed``); ``data`` itself otherwise.

    Raises:
        ValueError: ``clusters`` for other images or another number of clusters.
    """
    import dataclasses

    cond = Conditioning.of(cfg.model)
    if not cond.self_conditioned:
        return data
    if clusters is None:
        from gancli.conditioning.store import find_clusters

        clusters = find_clusters(data.images, cond.num_labels, cond.cluster_features,
                                 derive_seed(cfg.train.seed, "clusters"))
    if clusters.labels.shape != (len(data.images),) or clusters.counts.shape != (cond.num_labels,):
        raise ValueError(f"cluster assignment of {clusters.labels.numel()} images into {clusters.counts.numel()} "
                         f"clusters does not fit {len(data.images)} images and {cond.num_labels} clusters")
    return dataclasses.replace(data, labels=clusters.labels, classes=[f"cluster {i}" for i in range(cond.num_labels)])


@dataclass
class Parts:
    """The built pieces of one run in one process.

    ``G``, ``D`` and ``G_ema`` are the plain modules (what checkpoints hold, no
    ``module.`` or ``_orig_mod.`` prefixes). ``G_call`` / ``D_call`` are how the D
    update and the G update's G forward call them: through DistributedDataParallel
    when several processes train (it averages their gradients over the ranks) and
    torch.compile when enabled. ``G_local`` / ``D_local``: the same without DDP. D's
    forward in the G update goes through ``D_local``: D is frozen there, so DDP would
    wait for gradients of D that never come, while running it outside DDP needs no
    ``find_unused_parameters`` search on every step; G's gradients still reach G
    through the DDP-wrapped G forward. G's forwards without gradients (extra D
    updates) skip DDP as well.
    """

    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module | None  # None when ema_decay == 0
    G_call: Any
    D_call: Any
    G_local: Any
    D_local: Any
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    objective: Objective
    augment: DiffAugment
    autocast_dtype: torch.dtype | None  # None = fp32 (autocast off)
    memory_format: torch.memory_format
    joint_d: bool  # D scores samples independently: real and fake may share one forward
    z_gen: torch.Generator  # the z (and fake label) stream, the same on every rank
    batcher: DeviceBatcher
    fixed_z: torch.Tensor  # (rows * GRID_COLUMNS, nz): the latents of the periodic sample grid
    fixed_y: torch.Tensor | None  # its labels (one row per class) for a conditional G
    task_step: TrainStep  # one step of the run's task (gancli.engine.steps)

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The EMA generator when enabled, else G."""
        return self.G_ema if self.G_ema is not None else self.G


def _has_conv(module: torch.nn.Module) -> bool:
    return any(p.dim() == 4 for p in module.parameters())


def build_parts(cfg: RunConfig, device: torch.device, data: ImageData, dist: Dist | None = None,
                clusters: ClusterAssignment | None = None) -> Parts:
    """Everything a run's loop needs, freshly initialised from ``cfg.train.seed``.

    The order of the random draws is part of the run's reproducibility: weights are
    initialised after ``torch.manual_seed(seed)`` (the same on every rank), then ranks
    r > 0 re-seed their global stream (dropout, augmentation, GP mixing differ per rank).

    Args:
        cfg: the resolved config. device: this process's device.
        data: the training split (uint8 images), preloaded on ``device`` by the batcher;
            a self-conditioned run replaces its labels by its k-means clusters
            (:func:`labelled_data`).
        dist: this process's rank; default one process.
        clusters: a self-conditioned run's stored assignment
            (:func:`~gancli.conditioning.store.run_clusters`); None = find it now.
    """
    from torch.nn.parallel import DistributedDataParallel

    dist = dist or SINGLE
    t, o = cfg.train, cfg.optim
    torch.manual_seed(t.seed)  # weight init (the same on every rank), then dropout, augmentation, GP mixing
    cond = Conditioning.of(cfg.model)
    data = labelled_data(cfg, data, clusters)  # a self-conditioned run's labels are its k-means clusters
    G = build_generator(cfg.model).to(device)
    D = build_discriminator(cfg.model).to(device)
    if cond.self_conditioned:
        G.set_cluster_frequencies(torch.bincount(data.labels, minlength=cond.num_labels).to(device))
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if t.ema_decay > 0 else None
    if dist.enabled and t.sync_bn:  # BatchNorm statistics over the global batch (G_ema keeps BatchNorm)
        G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(G)
        D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(D)
    conv = t.channels_last and _has_conv(D)
    memory_format = torch.channels_last if conv else torch.contiguous_format
    if conv:
        for m in (G, D, G_ema):
            if m is not None:
                m.to(memory_format=torch.channels_last)
    if dist.rank > 0:  # the random streams of dropout, augmentation and GP differ per rank
        torch.manual_seed(derive_seed(t.seed, f"rank-{dist.rank}"))

    compile_ = torch.compile if t.compile else (lambda m: m)
    G_local, D_local = compile_(G), compile_(D)
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        G_call = compile_(DistributedDataParallel(G, device_ids=ids, gradient_as_bucket_view=True))
        D_call = compile_(DistributedDataParallel(D, device_ids=ids, gradient_as_bucket_view=True))
    else:
        G_call, D_call = G_local, D_local
    # D scores each sample on its own (no batch statistics, no spectral-norm power
    # iteration per call): real and fake may go through it in one forward.
    joint_d = not cfg.model.spectral_norm and not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in D.modules())
    precision, _ = resolve_precision(t.precision, device, force=True)  # "auto" outside launch.train; bf16 as asked
    fp16 = precision == "fp16"
    scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
    scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)
    objective = Objective(cfg.loss)
    augment = DiffAugment(parse_augment(t.augment))
    opt_g = build_optimizer(o.name, G.parameters(), o.lr_g, o.beta1, o.beta2, o.momentum)
    opt_d = build_optimizer(o.name, D.parameters(), o.lr_d, o.beta1, o.beta2, o.momentum)
    z_gen = torch.Generator(device=device).manual_seed(derive_seed(t.seed, "z"))
    batcher = DeviceBatcher(data.images, data.labels, t.batch_size, derive_seed(t.seed, "data") % 2**31,
                            device, rank=dist.rank, world_size=dist.world_size, memory_format=memory_format)
    k = cond.generator_classes
    rows = k if k else GRID_COLUMNS
    fixed_z = latents(rows * GRID_COLUMNS, cfg.model.nz, derive_seed(t.seed, "fixed-z"), device)
    fixed_y = grid_labels(k, GRID_COLUMNS, device) if k else None
    return Parts(G, D, G_ema, G_call, D_call, G_local, D_local, opt_g, opt_d, scaler_g, scaler_d, objective, augment,
                 autocast_dtype(precision), memory_format, joint_d, z_gen, batcher, fixed_z, fixed_y,
                 build_step(cfg, data, device))
