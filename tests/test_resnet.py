"""SNGAN ResNet (arXiv 1802.05957 appendix B; conditional: arXiv 1802.05637)."""

import pytest
import torch

from gancli.config import ModelConfig
from gancli.errors import UsageError
from gancli.models import ARCHS, build_discriminator, build_generator, check_supported
from gancli.models.resnet import (
    ConditionalBatchNorm2d,
    DBlock,
    GBlock,
    OptimizedDBlock,
    ResNetDiscriminator,
    ResNetGenerator,
)

NZ, W, K = 16, 8, 10  # latent dim, ngf = ndf, classes


def tiny(channels=3, resolution=32, num_classes=0, spectral_norm=False) -> ModelConfig:
    return ModelConfig(arch="resnet", nz=NZ, ngf=W, ndf=W, img_channels=channels, img_resolution=resolution,
                       num_classes=num_classes, spectral_norm=spectral_norm)


def labels(n: int) -> torch.Tensor:
    return torch.arange(n) % K


@pytest.mark.parametrize("num_classes", [0, K])
@pytest.mark.parametrize("channels,resolution", [(1, 28), (3, 32), (3, 64)])
def test_shapes_ranges_and_gradients(channels, resolution, num_classes):
    torch.manual_seed(0)
    cfg = tiny(channels, resolution, num_classes)
    g, d = build_generator(cfg), build_discriminator(cfg)
    assert isinstance(g, ResNetGenerator) and isinstance(d, ResNetDiscriminator)
    y = labels(4) if num_classes else None
    x = g(torch.randn(4, NZ), y)
    assert x.shape == (4, channels, resolution, resolution) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    scores = d(x, y)
    assert scores.shape == (4,) and torch.isfinite(scores).all()
    scores.sum().backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


def test_conditional_models_require_labels_and_unconditional_refuse_them():
    g, d = build_generator(tiny(num_classes=K)), build_discriminator(tiny(num_classes=K))
    with pytest.raises(ValueError, match="labels y are required"):
        g(torch.randn(2, NZ))
    with pytest.raises(ValueError, match="labels y are required"):
        d(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        g(torch.randn(2, NZ), labels(3))
    with pytest.raises(ValueError, match="unconditional"):
        build_generator(tiny())(torch.randn(2, NZ), labels(2))


def test_conditional_batchnorm_init_and_placement():
    g = build_generator(tiny(num_classes=K))
    cbns = [m for m in g.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(cbns) == 2 * 3  # two per residual block, 3 blocks at 32 px
    for m in cbns:
        assert m.gain.weight.shape == (K, 4 * W) and not m.bn.affine
        assert torch.equal(m.gain.weight, torch.ones_like(m.gain.weight))
        assert torch.equal(m.bias.weight, torch.zeros_like(m.bias.weight))
    # the unconditional generator has none
    assert not any(isinstance(m, ConditionalBatchNorm2d) for m in build_generator(tiny()).modules())


def test_conditional_generator_output_depends_on_label():
    torch.manual_seed(0)
    g = build_generator(tiny(num_classes=K))
    with torch.no_grad():  # gain 1 / bias 0 for all classes at init: make the classes differ, as training would
        for m in g.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.gain.weight.normal_(1.0, 0.2)
                m.bias.weight.normal_(0.0, 0.2)
    z = torch.randn(1, NZ).repeat(4, 1)
    x = g(z, torch.tensor([0, 0, 3, 7]))
    assert torch.allclose(x[0], x[1])
    assert (x[0] - x[2]).abs().max() > 1e-3
    assert (x[2] - x[3]).abs().max() > 1e-3


def test_projection_discriminator_output_depends_on_label():
    torch.manual_seed(0)
    d = build_discriminator(tiny(num_classes=K))
    x = torch.rand(1, 3, 32, 32).mul(2).sub(1).repeat(3, 1, 1, 1)
    s = d(x, torch.tensor([0, 0, 5]))
    assert torch.allclose(s[0], s[1])
    assert (s[0] - s[2]).abs() > 1e-4
    # the projection term is exactly <embed(y), h> on top of the unconditional score
    assert isinstance(d.projection.embed, torch.nn.Embedding) and d.projection.embed.weight.shape == (K, 2 * W)


@pytest.mark.parametrize("num_classes", [0, K])
def test_spectral_norm_bounds_every_weight(num_classes):
    torch.manual_seed(0)
    d = build_discriminator(tiny(num_classes=num_classes, spectral_norm=True))
    d.train()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y = labels(4) if num_classes else None
    for _ in range(5):
        d(x, y)
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding))]
    # optimized block 2 + 1x1, down block 2 + 1x1, two plain blocks 2 each, fc, [projection embedding]
    assert len(layers) == 3 + 3 + 2 * 2 + 1 + (1 if num_classes else 0)
    for m in layers:
        assert torch.nn.utils.parametrize.is_parametrized(m, "weight"), m
        with torch.no_grad():
            sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item()
        assert abs(sigma - 1) < 0.05, (m, sigma)
    # and without the flag nothing is parametrized
    plain = build_discriminator(tiny(num_classes=num_classes))
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in plain.modules())


def test_spectral_norm_discriminator_trains():
    torch.manual_seed(0)
    cfg = tiny(num_classes=K, spectral_norm=True)
    g, d = build_generator(cfg), build_discriminator(cfg)
    y = labels(4)
    d(g(torch.randn(4, NZ), y), y).mean().backward()
    assert all(p.grad is not None for p in g.parameters())
    assert all(p.grad is not None for p in d.parameters())


def test_block_layout_32px():
    g = ResNetGenerator(nz=128, img_channels=3, img_resolution=32, ngf=W)
    gblocks = [m for m in g.modules() if isinstance(m, GBlock)]
    assert len(gblocks) == 3
    assert all(b.conv1.in_channels == b.conv2.out_channels == 4 * W for b in gblocks)
    assert (g.fc.in_features, g.fc.out_features) == (128, 4 * 4 * 4 * W)
    assert (g.conv_out.in_channels, g.conv_out.out_channels) == (4 * W, 3)

    d = ResNetDiscriminator(img_channels=3, img_resolution=32, ndf=W)
    assert [type(b) for b in d.blocks] == [OptimizedDBlock, DBlock, DBlock, DBlock]
    assert [getattr(b, "downsample", True) for b in d.blocks] == [True, True, False, False]
    assert d.blocks[0].conv1.in_channels == 3
    assert all(b.conv2.out_channels == 2 * W for b in d.blocks)
    assert (d.fc.in_features, d.fc.out_features) == (2 * W, 1)
    sizes, h = [], torch.zeros(1, 3, 32, 32)
    for b in d.blocks:
        h = b(h)
        sizes.append(h.shape[-1])
    assert sizes == [16, 8, 8, 8]


def test_block_layout_28px():
    g = ResNetGenerator(nz=NZ, img_channels=1, img_resolution=28, ngf=W)
    assert sum(isinstance(m, GBlock) for m in g.modules()) == 2 and g.base == 7
    d = ResNetDiscriminator(img_channels=1, img_resolution=28, ndf=W)
    sizes, h = [], torch.zeros(1, 1, 28, 28)
    for b in d.blocks:
        h = b(h)
        sizes.append(h.shape[-1])
    assert sizes == [14, 7, 7, 7]


def test_default_widths_match_sngan():
    g, d = ResNetGenerator(), ResNetDiscriminator()
    assert g.nz == 128 and g.ch == 256 and d.ch == 128
    assert sum(p.numel() for p in g.parameters()) == 4_276_739
    assert sum(p.numel() for p in d.parameters()) == 1_053_825


@pytest.mark.parametrize("resolution", [20, 30, 4, 7, 48])
def test_rejects_unsupported_resolution(resolution):
    with pytest.raises(UsageError, match=f"resnet does not support {resolution}x{resolution}.*4\\*2\\^k or 7\\*2\\^k"):
        check_supported(tiny(resolution=resolution))
    with pytest.raises(UsageError, match="resnet does not support"):
        build_generator(tiny(resolution=resolution))
    with pytest.raises(UsageError, match="resnet does not support"):
        build_discriminator(tiny(resolution=resolution))


def test_registered_with_from_config():
    assert "resnet" in ARCHS.names()
    cfg = tiny(1, 28, num_classes=K, spectral_norm=True)
    g, d = build_generator(cfg), build_discriminator(cfg)
    assert (g.nz, g.img_channels, g.img_resolution, g.num_classes, g.ch) == (NZ, 1, 28, K, 4 * W)
    assert (d.img_channels, d.img_resolution, d.num_classes, d.ch) == (1, 28, K, 2 * W)
    assert torch.nn.utils.parametrize.is_parametrized(d.fc)
