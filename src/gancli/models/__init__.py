"""Architectures, registered by name.

Each registry entry is a torch-free builder returning the ``(Generator,
Discriminator)`` classes of one architecture, so the CLI can list names without
importing torch. Build models from a :class:`~gancli.config.ModelConfig` with
:func:`build_generator` / :func:`build_discriminator`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gancli.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from gancli.config import ModelConfig

ARCHS: Registry[Callable[[], tuple[type, type]]] = Registry("arch")


#: The ``mlp`` recipe: R1 on D (Mescheder et al. 2018, arXiv 1801.04406), gamma 1, lazily (every
#: ``--r1-every`` = 16 D updates, arXiv 1912.04958). Without it the fully-connected D wins late in a
#: 10-epoch MNIST run: E|grad_x D(x)|^2 on real images grows ~60x, D(x) -> 1, D(G(z)) -> 0 and G
#: collapses (issue #28; docs/recipes.md).
MLP_RECIPE = {"r1_gamma": 1.0}


@ARCHS.register("mlp", "classic fully-connected GAN (Goodfellow et al. 2014, arXiv 1406.2661)", defaults=MLP_RECIPE)
def _mlp() -> tuple[type, type]:
    from gancli.models.mlp import MLPDiscriminator, MLPGenerator

    return MLPGenerator, MLPDiscriminator


@ARCHS.register("dcgan", "deep convolutional GAN (Radford et al. 2015, arXiv 1511.06434)")
def _dcgan() -> tuple[type, type]:
    from gancli.models.dcgan import DCGANDiscriminator, DCGANGenerator

    return DCGANGenerator, DCGANDiscriminator


@ARCHS.register("resnet", "SNGAN ResNet, conditional BN + projection D (Miyato et al. 2018, arXiv 1802.05957)")
def _resnet() -> tuple[type, type]:
    from gancli.models.resnet import ResNetDiscriminator, ResNetGenerator

    return ResNetGenerator, ResNetDiscriminator


@ARCHS.register("unet", "image-to-image: pix2pix's U-Net G + PatchGAN D (Isola et al. 2017, arXiv 1611.07004); "
                "for the image-to-image --task")
def _unet() -> tuple[type, type]:
    from gancli.models.pix2pix import Pix2PixDiscriminator, Pix2PixGenerator

    return Pix2PixGenerator, Pix2PixDiscriminator


@ARCHS.register("cyclegan", "image-to-image: CycleGAN's two ResNet Gs + two PatchGANs (Zhu et al. 2017, "
                "arXiv 1703.10593); for --task unpaired")
def _cyclegan() -> tuple[type, type]:
    from gancli.models.cyclegan import CycleGANDiscriminators, CycleGANGenerators

    return CycleGANGenerators, CycleGANDiscriminators


#: Architectures whose G translates an image (``G(x)``, :attr:`ModelConfig.in_channels` > 0)
#: instead of drawing one from ``z``: the image-to-image tasks' (:mod:`gancli.tasks`).
TRANSLATORS = ("unet", "cyclegan")


def noise_archs() -> list[str]:
    """The architectures whose G draws images from ``z`` (every one but :data:`TRANSLATORS`)."""
    return [name for name in ARCHS.names() if name not in TRANSLATORS]


def build_generator(cfg: ModelConfig) -> nn.Module:
    """The generator described by ``cfg`` (freshly initialised); ``cfg`` is kept as
    its ``config`` attribute. ``cfg.clusters > 0`` (unconditional) gives a
    :class:`~gancli.models.selfcond.SelfConditionedGenerator` around the architecture's
    conditional generator.

    Raises:
        UnknownNameError: ``cfg.arch`` is not registered.
        UsageError: the architecture does not support the image shape.
    """
    from gancli.conditioning import Conditioning

    g_cls, _ = ARCHS.get(cfg.arch)()
    cond = Conditioning.of(cfg)
    if cond.self_conditioned:
        from gancli.models.selfcond import SelfConditionedGenerator

        g = SelfConditionedGenerator(g_cls.from_config(cond.network_config(cfg)), cond.num_labels)
    else:
        g = g_cls.from_config(cfg)
    g.config = cfg  # what rebuilds it (written into exported bundles)
    return g


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """The discriminator described by ``cfg`` (freshly initialised), over the labels of its
    conditioning (:meth:`~gancli.conditioning.Conditioning.network_config`). Errors as
    :func:`build_generator`."""
    from gancli.conditioning import Conditioning

    _, d_cls = ARCHS.get(cfg.arch)()
    return d_cls.from_config(Conditioning.of(cfg).network_config(cfg))


def check_supported(cfg: ModelConfig) -> None:
    """Raise :class:`~gancli.errors.UsageError` if ``cfg.arch`` cannot make ``cfg``'s image shape."""
    g_cls, _ = ARCHS.get(cfg.arch)()
    g_cls.check_shape(cfg.img_channels, cfg.img_resolution)
