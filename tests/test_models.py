import pytest
import torch

from gancli.config import ModelConfig
from gancli.errors import UsageError
from gancli.models import build_discriminator, build_generator, check_supported, noise_archs

SHAPES = [(1, 28), (3, 32), (3, 64), (1, 32)]


@pytest.mark.parametrize("arch", noise_archs())  # --arch unet: tests/test_translate_train.py
@pytest.mark.parametrize("channels,resolution", SHAPES)
def test_shapes_and_ranges(arch, channels, resolution):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, nz=16, ngf=8, ndf=8, img_channels=channels, img_resolution=resolution)
    g, d = build_generator(cfg), build_discriminator(cfg)
    z = torch.randn(5, 16)
    x = g(z)
    assert x.shape == (5, channels, resolution, resolution)
    assert x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    logits = d(x)
    assert logits.shape == (5,)
    assert torch.isfinite(logits).all()
    # gradients flow from D's output back into G
    logits.sum().backward()
    assert all(p.grad is not None for p in g.parameters())


def test_dcgan_layer_plan_matches_paper_for_64px():
    cfg = ModelConfig(arch="dcgan", nz=100, ngf=64, ndf=64, img_channels=3, img_resolution=64)
    g = build_generator(cfg)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(100, 512), (512, 256), (256, 128), (128, 64), (64, 3)]
    d = build_discriminator(cfg)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1)]


def test_dcgan_init_is_normal_002():
    torch.manual_seed(0)
    g = build_generator(ModelConfig(arch="dcgan", ngf=64))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(w.std().item() - 0.02) < 0.002
    assert abs(w.mean().item()) < 0.001


def test_mlp_layer_widths():
    g = build_generator(ModelConfig(arch="mlp", nz=100))
    d = build_discriminator(ModelConfig(arch="mlp"))
    gl = [m.out_features for m in g.modules() if isinstance(m, torch.nn.Linear)]
    dl = [m.out_features for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert gl == [256, 512, 1024, 784]
    assert dl == [1024, 512, 256, 1]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in d.modules()) == 3


@pytest.mark.parametrize("resolution", [20, 30, 8])
def test_dcgan_rejects_unsupported_resolution(resolution):
    with pytest.raises(UsageError, match=f"dcgan does not support {resolution}x{resolution}"):
        check_supported(ModelConfig(arch="dcgan", img_resolution=resolution))


def test_bad_latent_shape_is_reported():
    g = build_generator(ModelConfig(arch="dcgan", nz=10, ngf=8))
    with pytest.raises(ValueError, match=r"z must have shape \(N, 10\)"):
        g(torch.randn(2, 11))


def test_conditional_dcgan_projection_reads_the_whole_feature_map():
    """The projection term must see where the strokes are: a sum-pooled map of the
    2-layer 28-px D cannot tell digits apart and collapses each class (see dcgan.py)."""
    from gancli.models.dcgan import DCGANDiscriminator

    D = DCGANDiscriminator(1, 28, ndf=8, num_classes=10).eval()
    x = torch.randn(3, 1, 28, 28)
    h = D.body(x)
    assert D.projection.embed.weight.shape == (10, h[0].numel())
    # two feature maps with the same per-channel sums but different layouts score differently
    torch.nn.init.zeros_(D.head.weight)
    h2 = h.flip(-1)
    y = torch.tensor([1, 2, 3])
    assert torch.allclose(h.sum((2, 3)), h2.sum((2, 3)))
    assert not torch.allclose(D.projection(h.flatten(1), y), D.projection(h2.flatten(1), y))


@pytest.mark.parametrize("channels_last", [False, True])
def test_dcgan_generator_lift_equals_the_transposed_convolution(channels_last):
    """G's first layer runs as a matrix product; it must compute what its ConvTranspose2d computes,
    in either memory format, and keep the weight's format."""
    torch.manual_seed(0)
    G = build_generator(ModelConfig(arch="dcgan", nz=16, ngf=8, img_channels=1, img_resolution=28, num_classes=3))
    if channels_last:
        G = G.to(memory_format=torch.channels_last)
    z = torch.randn(5, 16 + G.embed.embedding_dim)
    lifted = G._lift(z)
    reference = G.net[0](z[:, :, None, None])
    assert lifted.shape == reference.shape == (5, G.net[0].out_channels, 7, 7)
    torch.testing.assert_close(lifted, reference, rtol=1e-5, atol=1e-5)
    assert lifted.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize("channels_last", [False, True])
def test_projection_reads_feature_maps_in_nchw_order(channels_last):
    from gancli.models.layers import Projection

    torch.manual_seed(0)
    proj = Projection(4, 3 * 2 * 2)
    h = torch.randn(6, 3, 2, 2, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    expected = (proj.embed(y) * h.detach().flatten(1)).sum(1)  # the layout of earlier checkpoints
    x = h.to(memory_format=torch.channels_last) if channels_last else h
    out = proj(x, y)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    torch.testing.assert_close(h.grad, proj.embed(y).detach().view(6, 3, 2, 2))


def test_dcgan_layer_norm_critic_treats_each_sample_alone():
    """--d-norm layer: GroupNorm(1, C) after the hidden convolutions; a sample's logit does not
    depend on the rest of the batch (what a gradient penalty needs), unlike BatchNorm's."""
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    outs = {}
    for norm in ("layer", "batch"):
        D = build_discriminator(ModelConfig(arch="dcgan", ndf=8, img_channels=1, img_resolution=28, d_norm=norm))
        kinds = {type(m).__name__ for m in D.modules()}
        assert ("GroupNorm" in kinds) == (norm == "layer") and ("BatchNorm2d" in kinds) == (norm == "batch")
        outs[norm] = (D(x)[:4], D(x[:4]))
    torch.testing.assert_close(outs["layer"][0], outs["layer"][1])
    assert not torch.allclose(outs["batch"][0], outs["batch"][1])
