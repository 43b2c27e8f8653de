"""The image-to-image networks (gancli.translate): shapes at odd sizes, the U-Net's skips,
the PatchGAN's receptive field, CycleGAN's image pool, padding and tiling."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from gancli.translate.networks import (
    PatchDiscriminator,
    ResnetGenerator,
    UNetGenerator,
    init_weights,
    patch_layers,
    receptive_field,
    resnet_blocks,
    unet_depth,
)
from gancli.translate.pool import ImagePool
from gancli.translate.tiling import crop, pad_to_multiple, tiled_apply


def _images(n, c, h, w, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_package_import_is_torch_free():
    code = "import sys, gancli.translate; assert 'torch' not in sys.modules, 'torch imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


# --- U-Net -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,h,w", [(28, 28, 28), (32, 32, 32), (64, 64, 64), (32, 30, 45), (32, 32, 96)])
def test_unet_any_size_through_padding(size, h, w):
    torch.manual_seed(0)
    g = UNetGenerator(4, 3, ngf=4, image_size=size).eval()
    x = _images(2, 4, h, w)
    padded, pads = pad_to_multiple(x, g.multiple)
    assert padded.shape[-2] % g.multiple == 0 and padded.shape[-1] % g.multiple == 0
    with torch.no_grad():
        y = crop(g(padded), pads)
    assert y.shape == (2, 3, h, w)
    assert y.min() >= -1 and y.max() <= 1 and y.std() > 0


def test_unet_depth_rule_and_multiple():
    assert [unet_depth(s) for s in (2, 4, 28, 32, 64, 128, 256, 512, 1024)] == [2, 2, 5, 5, 6, 7, 8, 8, 8]
    g = UNetGenerator(1, 1, ngf=2, image_size=28)
    assert g.depth == 5 and g.multiple == 32
    assert sum(isinstance(m, nn.Conv2d) for m in g.modules()) == 5
    assert UNetGenerator(1, 1, ngf=2, depth=3).multiple == 8


def test_unet_256_matches_reference_plan():
    """pix2pix's unet_256: 8 levels, 64..512 channels, dropout in the three decoder levels above
    the innermost one, no norm at the bottleneck (in units of ngf = 1 to stay small)."""
    g = UNetGenerator(3, 3, ngf=1, image_size=256)
    downs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    ups = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in downs] == [(3, 1), (1, 2), (2, 4), (4, 8), (8, 8), (8, 8), (8, 8),
                                                                  (8, 8)]
    assert [(c.in_channels, c.out_channels) for c in ups] == [(8, 8), (16, 8), (16, 8), (16, 8), (16, 4), (8, 2), (4, 1),
                                                                (2, 3)]
    assert [any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in up) for up in g.up] == [False, True, True, True] + [False] * 4
    assert isinstance(g.down[-1], nn.Conv2d)  # innermost: the convolution alone
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 6 + 7
    assert not any(isinstance(m, nn.Dropout) for m in UNetGenerator(3, 3, ngf=1, dropout=False).modules())


def test_unet_rejects_sizes_off_its_multiple():
    g = UNetGenerator(1, 1, ngf=2, image_size=32)
    with pytest.raises(ValueError, match=r"multiples of 32, got 30x45"):
        g(torch.zeros(1, 1, 30, 45))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\) images, got shape \(1, 3, 32, 32\)"):
        g(torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("kwargs,match", [({"norm": "layer"}, "valid choices: batch, instance, none"),
                                          ({"depth": 1}, "depth must be an integer >= 2"),
                                          ({"ngf": 0}, "ngf must be an integer >= 1")])
def test_unet_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNetGenerator(1, 1, **kwargs)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_unet_batch_of_one_in_training_reaches_first_layer(norm):
    """A 1x1 bottleneck (32 px, depth 5) with one image in train mode: BatchNorm there would
    raise 'Expected more than 1 value per channel'; the gradient reaches the first layer."""
    torch.manual_seed(0)
    g = UNetGenerator(2, 1, ngf=4, image_size=32, norm=norm).train()
    y = g(_images(1, 2, 32, 32))
    assert y.shape == (1, 1, 32, 32) and torch.isfinite(y).all()
    y.square().mean().backward()
    assert g.down[0].weight.grad.abs().sum() > 0


def test_unet_skips_carry_the_input():
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, ngf=4, depth=4, norm="none", dropout=False).eval()
    a, b = _images(1, 1, 16, 16, seed=1), _images(1, 1, 16, 16, seed=2)
    with torch.no_grad():
        assert not torch.allclose(g(a), g(torch.zeros_like(a)))
        nn.init.zeros_(g.down[-1].weight)  # cut the bottleneck: it is now constant
        nn.init.zeros_(g.down[-1].bias)
        ya, yb = g(a), g(b)
    assert (ya - yb).abs().max() > 1e-3  # the input still reaches the output, through the skips only


def test_unet_dropout_is_noise_in_training_only():
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, ngf=4, image_size=32, norm="none")
    x = _images(1, 1, 32, 32)
    with torch.no_grad():
        assert not torch.equal(g.train()(x), g(x))
        assert torch.equal(g.eval()(x), g(x))


def test_init_weights_normal_002():
    torch.manual_seed(0)
    g = UNetGenerator(3, 3, ngf=16, image_size=64)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1) < 0.01 and 0.01 < bn.std().item() < 0.03
    init_weights(g, gain=0.5)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.Conv2d)])
    assert abs(w.std().item() - 0.5) < 0.02


# --- PatchGAN --------------------------------------------------------------------------------------

def test_patch_layers_rule():
    assert [patch_layers(s) for s in (28, 32, 48, 64, 128, 256, 512)] == [1, 1, 2, 2, 3, 3, 3]
    assert [receptive_field(n) for n in (1, 2, 3, 4)] == [16, 34, 70, 142]


@pytest.mark.parametrize("image_size,h,w,grid", [(28, 28, 28, (12, 12)), (32, 32, 32, (14, 14)), (64, 64, 64, (14, 14)),
                                                 (64, 64, 96, (14, 22)), (64, 30, 45, (5, 9)), (256, 256, 256, (30, 30))])
def test_patchgan_grid(image_size, h, w, grid):
    torch.manual_seed(0)
    d = PatchDiscriminator(3 + 1, ndf=2, image_size=image_size)
    out = d(_images(2, 1, h, w), _images(2, 3, h, w, seed=1))
    assert out.shape == (2, 1, *grid) and d.output_size(h, w) == grid
    assert torch.isfinite(out).all()


def test_patchgan_concatenates_the_condition_first():
    torch.manual_seed(0)
    d = PatchDiscriminator(3, ndf=4, image_size=32).eval()
    cond, img = _images(2, 2, 32, 32), _images(2, 1, 32, 32, seed=1)
    with torch.no_grad():
        assert torch.equal(d(img, cond), d(torch.cat([cond, img], 1)))
        assert not torch.equal(d(img, cond), d(img, -cond))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) images, got shape \(2, 4, 32, 32\)"):
        d(img, torch.cat([cond, img], 1))
    with pytest.raises(ValueError, match="same N, H, W"):
        d(img, cond[:, :, :16])
    with pytest.raises(ValueError, match=r"at least 6x6 px, got 5x32"):
        d(img[:, :, :5], cond[:, :, :5])


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_measured(n_layers):
    """The gradient of one score w.r.t. the input is nonzero on a square of receptive_field(n) px."""
    torch.manual_seed(0)
    d = PatchDiscriminator(1, ndf=2, n_layers=n_layers, norm="none").eval()
    size = 2 * receptive_field(n_layers) + 2**n_layers * 4
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = d(x)
    i, j = out.shape[-2] // 2, out.shape[-1] // 2
    out[0, 0, i, j].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    assert rows.min() > 0 and rows.max() < size - 1  # not clipped by the border
    assert rows.max() - rows.min() + 1 == receptive_field(n_layers) == d.receptive_field
    assert cols.max() - cols.min() + 1 == receptive_field(n_layers)


def test_patchgan_spectral_norm_and_batch_of_one():
    torch.manual_seed(0)
    d = PatchDiscriminator(2, ndf=4, image_size=64, spectral_norm=True).train()
    assert sum(hasattr(m, "parametrizations") for m in d.modules()) == 4
    out = d(_images(1, 2, 64, 64))
    out.mean().backward()
    assert d.net[0].parametrizations.weight.original.grad.abs().sum() > 0


# --- ResNet generator ------------------------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(28, 28), (32, 48), (8, 12)])
def test_resnet_generator_shapes(h, w):
    torch.manual_seed(0)
    g = ResnetGenerator(1, 3, ngf=4, image_size=28).train()
    assert g.multiple == 4 and g.n_blocks == 6
    y = g(_images(1, 1, h, w))
    assert y.shape == (1, 3, h, w) and y.min() >= -1 and y.max() <= 1
    y.square().mean().backward()
    assert g.net[1].weight.grad.abs().sum() > 0


def test_resnet_generator_rules_and_errors():
    assert [resnet_blocks(s) for s in (28, 128, 255, 256, 512)] == [6, 6, 6, 9, 9]
    g = ResnetGenerator(3, 3, ngf=2, image_size=256)
    assert g.n_blocks == 9 and sum(isinstance(m, nn.InstanceNorm2d) for m in g.modules()) == 5 + 2 * 9
    with pytest.raises(ValueError, match=r"multiples of 4, got 30x28"):
        g(torch.zeros(1, 3, 30, 28))
    with pytest.raises(ValueError, match=r"at least 8x8 px, got 4x8"):
        g(torch.zeros(1, 3, 4, 8))
    with pytest.raises(ValueError, match="n_blocks must be an integer >= 0"):
        ResnetGenerator(3, 3, n_blocks=-1)


# --- ImagePool -------------------------------------------------------------------------------------

def _batches(k, n=4):
    """k batches of n distinct 1x2x2 images (image i of batch b is the constant 100 b + i)."""
    return [torch.full((n, 1, 2, 2), 100.0 * b) + torch.arange(n).view(n, 1, 1, 1) for b in range(k)]


def _run(pool, gen, batches):
    return [pool.query(b, gen) for b in batches]


def test_image_pool_fills_then_swaps_half():
    pool, gen = ImagePool(8), torch.Generator().manual_seed(0)
    batches = _batches(40)
    out = _run(pool, gen, batches)
    assert torch.equal(out[0], batches[0]) and torch.equal(out[1], batches[1])  # filling: as is
    assert len(pool) == 8
    later = torch.cat(out[2:])
    fresh = torch.cat(batches[2:])
    swapped = (later != fresh).any(dim=(1, 2, 3)).float().mean().item()
    assert 0.35 < swapped < 0.65  # p = 0.5
    seen = {v.item() for v in torch.cat(batches)[:, 0, 0, 0]}
    assert {v.item() for v in later[:, 0, 0, 0]} <= seen  # only images it was given
    assert torch.equal(ImagePool(0).query(batches[3], gen), batches[3])  # size 0: off


def test_image_pool_deterministic_given_generator():
    batches = _batches(12)
    a = _run(ImagePool(5), torch.Generator().manual_seed(3), batches)
    b = _run(ImagePool(5), torch.Generator().manual_seed(3), batches)
    c = _run(ImagePool(5), torch.Generator().manual_seed(4), batches)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_image_pool_state_round_trip_continues_identically():
    batches = _batches(16)
    pool, gen = ImagePool(6), torch.Generator().manual_seed(7)
    _run(pool, gen, batches[:5])
    state, gen_state = pool.state_dict(), gen.get_state()
    assert state["count"] == 6 and state["images"].shape == (6, 1, 2, 2)
    rest = _run(pool, gen, batches[5:])
    resumed, gen2 = ImagePool(6), torch.Generator()
    resumed.load_state_dict({"images": state["images"].clone(), "count": state["count"]})
    gen2.set_state(gen_state)
    again = _run(resumed, gen2, batches[5:])
    assert all(torch.equal(x, y) for x, y in zip(rest, again, strict=True))
    fresh = _run(ImagePool(6), torch.Generator().manual_seed(7), batches)[5:]  # also = never interrupted
    assert all(torch.equal(x, y) for x, y in zip(rest, fresh, strict=True))
    empty = ImagePool(6)
    empty.load_state_dict(ImagePool(6).state_dict())
    assert len(empty) == 0


def test_image_pool_errors():
    with pytest.raises(ValueError, match="pool size must be an integer >= 0"):
        ImagePool(-1)
    pool = ImagePool(2)
    with pytest.raises(ValueError, match="bad image pool state: count 3"):
        pool.load_state_dict({"images": torch.zeros(3, 1, 2, 2), "count": 3})
    pool.query(torch.zeros(1, 1, 2, 2), torch.Generator())
    with pytest.raises(ValueError, match=r"shape \(1, 3, 3\) given to a pool of \(1, 2, 2\)"):
        pool.query(torch.zeros(1, 1, 3, 3), torch.Generator())


# --- padding and tiling ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
def test_pad_to_multiple_and_crop(mode):
    x = _images(2, 3, 30, 45)
    padded, pads = pad_to_multiple(x, 32, mode, value=-1.0)
    assert padded.shape == (2, 3, 32, 64) and pads == (1, 1, 9, 10)
    assert torch.equal(crop(padded, pads), x)
    if mode == "reflect":
        assert torch.equal(padded[..., 0, 9:-10], x[..., 1, :])  # mirrored, the edge row not repeated
    if mode == "constant":
        assert (padded[..., :, :9] == -1).all()
    square = x[..., :16, :32]
    same, pads = pad_to_multiple(square, 16, mode)
    assert same is square and pads == (0, 0, 0, 0)


def test_pad_reflect_wider_than_the_image():
    x = _images(1, 1, 5, 3)
    padded, pads = pad_to_multiple(x, 32)
    assert padded.shape == (1, 1, 32, 32) and torch.equal(crop(padded, pads), x)
    assert set(padded.unique().tolist()) <= set(x.unique().tolist())
    padded, _ = pad_to_multiple(torch.ones(1, 1, 1, 1), 4)
    assert torch.equal(padded, torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="unknown padding mode 'wrap'; valid choices: reflect, replicate, constant"):
        pad_to_multiple(x, 4, "wrap")


def test_crop_scale():
    assert crop(torch.zeros(1, 1, 16, 24), (1, 1, 2, 2), scale=2).shape == (1, 1, 12, 16)
    with pytest.raises(ValueError, match="cannot crop"):
        crop(torch.zeros(1, 1, 4, 4), (2, 2, 0, 0))


@pytest.mark.parametrize("tile,overlap,multiple", [(32, 8, 8), (32, 16, 16), (16, 0, 4), (64, 32, 1)])
def test_tiled_identity_is_exact(tile, overlap, multiple):
    x = _images(2, 3, 70, 93)
    assert torch.equal(tiled_apply(lambda t: t, x, tile, overlap, multiple), x)


def test_tiled_per_pixel_function_matches_untiled():
    torch.manual_seed(0)
    mix = nn.Conv2d(3, 2, 1)  # a per-pixel channel mix, then a pointwise nonlinearity

    def fn(t):
        return torch.tanh(mix(t)) + t[:, :2] ** 2

    x = _images(2, 3, 70, 93)
    with torch.no_grad():
        tiled, whole = tiled_apply(fn, x, 32, 12, 4), fn(x)
    assert tiled.shape == (2, 2, 70, 93)
    assert (tiled - whole).abs().max() <= 1e-6


def _conv_net():
    torch.manual_seed(0)
    net = nn.Sequential(*[m for i in range(4) for m in (nn.Conv2d(3 if i == 0 else 8, 3 if i == 3 else 8, 3, padding=1),
                                                        nn.Tanh())])
    return net.eval()


def test_tiled_conv_net_seams_are_small():
    """Measured on this CPU (fixed seeds), largest |tiled - one pass| on a 100x164 image:
    a 4-layer 3x3 conv net (PyTorch's default init, receptive field 9 px, output std 0.088) in
    32-px tiles: 0.0040 with 16-px overlaps (0.05 std; mean 0.00024), 0.035 with tiles abutting,
    0.015 with a linear ramp instead of the raised cosine; a U-Net (depth 4, ngf 8, PyTorch's
    default init, output std 0.125) in 64-px tiles: 0.0102 with 16-px overlaps (0.08 std; mean
    0.00023), 0.36 abutting, 0.031 with a linear ramp. Bounds: about 1.5x the measured figures."""
    x = _images(1, 3, 100, 164)
    net = _conv_net()
    torch.manual_seed(1)
    unet = UNetGenerator(3, 3, ngf=8, depth=4, norm="none").eval()
    for m in unet.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.reset_parameters()
    with torch.no_grad():
        whole = net(x)
        err = (tiled_apply(net, x, 32, 16) - whole).abs().max().item()
        abutting = (tiled_apply(net, x, 32, 0) - whole).abs().max().item()
        assert err < 0.006 and err < 0.2 * abutting and err < 0.07 * whole.std().item()
        padded, pads = pad_to_multiple(x, unet.multiple)
        whole = crop(unet(padded), pads)
        err = (tiled_apply(unet, x, 64, 16, unet.multiple) - whole).abs().max().item()
        abutting = (tiled_apply(unet, x, 64, 0, unet.multiple) - whole).abs().max().item()
        assert err < 0.015 and err < 0.05 * abutting and err < 0.12 * whole.std().item()


def test_tiled_apply_small_image_is_one_pass_and_errors():
    calls = []

    def fn(t):
        calls.append(tuple(t.shape))
        return t * 2

    x = _images(1, 1, 20, 30)
    assert torch.equal(tiled_apply(fn, x, 64, 16, 16), x * 2)
    assert calls == [(1, 1, 32, 32)]
    with pytest.raises(ValueError, match="tile must be a positive multiple of 16, got 40"):
        tiled_apply(fn, x, 40, 8, 16)
    with pytest.raises(ValueError, match=r"overlap must be an integer in \[0, 16\]"):
        tiled_apply(fn, x, 32, 17, 16)
    with pytest.raises(ValueError, match=r"fn must map \(N, C, h, w\) tiles to \(N, C', h, w\)"):
        tiled_apply(lambda t: t[..., ::2, ::2], x, 16, 4, 4)
