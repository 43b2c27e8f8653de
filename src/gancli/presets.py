"""Named, known-good training recipes for ``gan train --preset NAME``.

A preset is a set of flat options (as on the command line) applied beneath
explicit flags. ``gan train --list-presets`` shows them with their cost and source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gancli.losses import LOSSES
from gancli.registry import Registry


@dataclass(frozen=True)
class Preset:
    summary: str
    options: dict[str, Any] = field(default_factory=dict)
    cost: str = ""  # expected cost, measured where stated
    source: str = ""  # where the recipe comes from


PRESETS: Registry[Preset] = Registry("preset")


def _add(name: str, preset: Preset) -> None:
    PRESETS.register(name, preset.summary)(preset)


def _loss_betas(loss: str) -> str:
    """``"b1, b2"``: the Adam betas ``loss``'s recipe brings (:data:`gancli.losses.LOSSES` defaults)."""
    defaults = LOSSES.entry(loss).defaults
    return f"{defaults['beta1']:g}, {defaults['beta2']:g}"


_add("mnist-dcgan", Preset(
    "the README's job: self-conditioned DCGAN on MNIST (20 k-means clusters in a UMAP embedding), "
    "non-saturating BCE, Adam(2e-4, 0.5, 0.999), batch 64, 5 epochs",
    {"dataset": "mnist", "arch": "dcgan", "loss": "bce", "clusters": 20, "cluster_features": "umap", "batch_size": 64,
     "epochs": 5.0},
    cost="4685 steps; measured 7m12s in all (6m33s of training, the rest UMAP, k-means and start-up), 1.21x "
         "dcgan-classic side by side, on a 2-core Intel Xeon (AVX-512), torch 2.14.1",
    source="Radford et al. 2015 (arXiv 1511.06434); Liu et al. 2020 (arXiv 2006.10728)",
))
_add("dcgan-classic", Preset(
    "the textbook DCGAN: BatchNorm D, non-saturating BCE, Adam(2e-4, 0.5, 0.999), batch 64, no "
    "self-conditioning (gancli's default recipe before self-conditioning), 5 epochs",
    {"arch": "dcgan", "loss": "bce", "clusters": 0, "d_norm": "batch", "spectral_norm": False, "nz": 100,
     "ngf": 64, "ndf": 64, "batch_size": 64, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999,
     "lr_schedule": "constant", "d_steps": 1, "ema_decay": 0.999, "augment": "", "epochs": 5.0},
    cost="MNIST: 4685 steps; measured 5m57s in all on a 2-core Intel Xeon (AVX-512), torch 2.14.1",
    source="Radford et al. 2015 (arXiv 1511.06434); pytorch/examples dcgan",
))
_add("mnist-mlp", Preset(
    "self-conditioned MLP GAN on MNIST, non-saturating BCE, R1 on D (the mlp recipe), 10 epochs",
    {"dataset": "mnist", "arch": "mlp", "loss": "bce", "batch_size": 64, "epochs": 10.0},
    cost="9370 steps; measured 4m49s-5m42s in all (UMAP clustering included) on a 2-core AMD EPYC (AVX2), "
         "torch 2.14.1",
    source="Goodfellow et al. 2014 (arXiv 1406.2661); R1: Mescheder et al. 2018 (arXiv 1801.04406)",
))
_add("mnist-wgan-gp", Preset(
    "self-conditioned DCGAN with a layer-normalised WGAN-GP critic (lambda 10), one critic step per G step, "
    "Adam(2e-4, 0, 0.9), batch 64, 3000 steps (the README job's wall time)",
    {"dataset": "mnist", "arch": "dcgan", "loss": "wgan-gp", "batch_size": 64, "d_steps": 1, "lr_g": 2e-4,
     "lr_d": 2e-4, "d_norm": "layer", "steps": 3000},
    cost="3000 steps; measured 6m22s of training + ~40 s of UMAP, k-means and start-up on a 2-core Intel Xeon "
         "(AVX-512), torch 2.14.1",
    source="Gulrajani et al. 2017 (arXiv 1704.00028: the loss, lambda 10, Adam betas, layer norm in the critic); "
           "one critic step per G step as in Karras et al. 2018 (arXiv 1710.10196)",
))
_add("mnist-hinge-sn", Preset(
    "self-conditioned DCGAN with spectral norm on D and the hinge loss, "
    f"Adam(2e-4, {_loss_betas('hinge')}) (the hinge recipe), 5 epochs",
    {"dataset": "mnist", "arch": "dcgan", "loss": "hinge", "spectral_norm": True, "epochs": 5.0},
    cost="4685 steps; measured 6m49s in all (UMAP clustering included) on a 2-core Intel Xeon (AVX-512), torch 2.14.1",
    source="Miyato et al. 2018 (arXiv 1802.05957)",
))
_add("mnist-cdcgan", Preset(
    "conditional DCGAN on MNIST: class embedding concatenated to z, projection D, BCE, 3 epochs",
    {"dataset": "mnist", "arch": "dcgan", "loss": "bce", "conditional": True, "batch_size": 64, "epochs": 3.0},
    cost="2811 steps; measured ~530 img/s on a 2-core Intel Xeon (1 CPU thread, another job running), about 6 min",
    source="Mirza & Osindero 2014 (arXiv 1411.1784); Miyato & Koyama 2018 (arXiv 1802.05637)",
))
_add("cifar10-sngan", Preset(
    "SNGAN ResNet on CIFAR-10: hinge, spectral norm, 5 D steps, Adam(2e-4, 0, 0.9), batch 64, 50k G steps",
    {"dataset": "cifar10", "arch": "resnet", "loss": "hinge", "spectral_norm": True, "d_steps": 5,
     "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.0, "beta2": 0.9, "batch_size": 64, "nz": 128, "steps": 50000,
     "lr_schedule": "linear"},
    cost="50k G steps; GPU recommended (days on a 2-core CPU)",
    source="Miyato et al. 2018 (arXiv 1802.05957), CIFAR-10 ResNet; mimicry SNGAN",
))

# -- image-to-image (issue #24) ------------------------------------------------------------------
#: Length of the MNIST image-to-image presets (``mnist-inpaint``, ``mnist-superres4``), epochs at
#: :data:`MNIST_TRANSLATION_BATCH`: a first budget (about the README job's wall time on a 2-core
#: CPU is the aim), to be tuned from measurements.
MNIST_TRANSLATION_EPOCHS = 2.0
#: Batch size of the MNIST image-to-image presets.
MNIST_TRANSLATION_BATCH = 64
#: Width (``--ngf`` / ``--ndf``) of the MNIST image-to-image presets: half the reference's 64, for the CPU.
MNIST_TRANSLATION_WIDTH = 32
#: pix2pix's facades recipe (Isola et al. 2017; junyanz/pytorch-CycleGAN-and-pix2pix): 256 px,
#: batch 1, 200 epochs (the reference: 100 at the base rate + 100 decaying linearly to 0).
PIX2PIX_IMAGE_SIZE, PIX2PIX_BATCH, PIX2PIX_EPOCHS = 256, 1, 200.0

_MNIST_I2I = {"dataset": "mnist", "arch": "unet", "ngf": MNIST_TRANSLATION_WIDTH, "ndf": MNIST_TRANSLATION_WIDTH,
              "batch_size": MNIST_TRANSLATION_BATCH, "epochs": MNIST_TRANSLATION_EPOCHS}
_mnist_steps = int(MNIST_TRANSLATION_EPOCHS * (60000 // MNIST_TRANSLATION_BATCH))

_add("mnist-inpaint", Preset(
    f"pix2pix inpainting on MNIST: random 12x12 boxes, U-Net G + PatchGAN D (ngf/ndf {MNIST_TRANSLATION_WIDTH}), "
    f"L1 100 + BCE, Adam(2e-4, 0.5, 0.999), batch {MNIST_TRANSLATION_BATCH}, {MNIST_TRANSLATION_EPOCHS:g} epochs",
    {"task": "inpaint", "mask": "box", "mask_size": 12, **_MNIST_I2I},
    cost=f"{_mnist_steps} steps; measured 340-376 img/s of training and 5m57s start to exit (one run) on a "
         "2-core AMD EPYC (AVX2), torch 2.14.1",
    source="Isola et al. 2017 (arXiv 1611.07004: U-Net, PatchGAN, L1 100, Adam); holes as Pathak et al. 2016 "
           "(arXiv 1604.07379)",
))
_add("mnist-superres4", Preset(
    f"pix2pix 4x super-resolution on MNIST (7x7 -> 28x28, bicubic upsampling in), U-Net G + PatchGAN D "
    f"(ngf/ndf {MNIST_TRANSLATION_WIDTH}), L1 100 + BCE, Adam(2e-4, 0.5, 0.999), batch {MNIST_TRANSLATION_BATCH}, "
    f"{MNIST_TRANSLATION_EPOCHS:g} epochs",
    {"task": "superres", "scale": 4, **_MNIST_I2I},
    cost=f"{_mnist_steps} steps; measured 340-376 img/s of training and 5m57s start to exit (one run) on a "
         "2-core AMD EPYC (AVX2), torch 2.14.1",
    source="Isola et al. 2017 (arXiv 1611.07004); super-resolution as a pix2pix task (cf. SRGAN, Ledig et al. "
           "2017, arXiv 1609.04802)",
))
_add("pix2pix-folder", Preset(
    f"pix2pix's facades recipe for a folder of pairs (give --dataset FOLDER: A/ and B/ matched by name, or "
    f"--paired-layout ab for side-by-side A|B images), A -> B at {PIX2PIX_IMAGE_SIZE} px, U-Net G (depth 8) + "
    f"70x70 PatchGAN D (ngf/ndf 64), L1 100 + BCE, Adam(2e-4, 0.5, 0.999), batch {PIX2PIX_BATCH}, "
    f"{PIX2PIX_EPOCHS:g} epochs at a constant rate (the reference decays it over the last 100)",
    {"task": "paired", "arch": "unet", "image_size": PIX2PIX_IMAGE_SIZE, "ngf": 64, "ndf": 64,
     "batch_size": PIX2PIX_BATCH, "epochs": PIX2PIX_EPOCHS},
    cost="facades (400 pairs): 80,000 steps; not measured; GPU recommended",
    source="Isola et al. 2017 (arXiv 1611.07004); junyanz/pytorch-CycleGAN-and-pix2pix (facades: batch 1, "
           "200 epochs)",
))
_add("cyclegan-folder", Preset(
    f"CycleGAN's recipe for a folder of two domains (give --dataset FOLDER holding A/ and B/, or trainA/ and "
    f"trainB/), A <-> B at {PIX2PIX_IMAGE_SIZE} px, two ResNet G (9 blocks) + two 70x70 PatchGAN D (ngf/ndf 64), "
    f"LSGAN, cycle 10, identity 0.5, 50-image pools, Adam(2e-4, 0.5, 0.999), batch 1, {PIX2PIX_EPOCHS:g} epochs "
    f"at a constant rate (the reference decays it over the last 100)",
    {"task": "unpaired", "arch": "cyclegan", "image_size": PIX2PIX_IMAGE_SIZE, "ngf": 64, "ndf": 64,
     "batch_size": 1, "epochs": PIX2PIX_EPOCHS},
    cost="horse2zebra (1,067 A images): 213,400 steps; not measured; GPU recommended",
    source="Zhu et al. 2017 (arXiv 1703.10593); junyanz/pytorch-CycleGAN-and-pix2pix (batch 1, 200 epochs)",
))
