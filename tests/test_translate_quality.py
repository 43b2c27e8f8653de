"""gancli.translate.quality: PSNR / SSIM through torchmetrics checked against independent
formulas, L1, and label preservation with the shipped LeNet on real MNIST digits."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from gancli.translate.quality import image_quality, l1_distance, label_preservation, psnr, ssim


def _pair(n=5, c=1, h=28, w=28, noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, c, h, w, generator=g) * 2 - 1
    output = (target + noise * torch.randn(n, c, h, w, generator=g)).clamp(-1, 1)
    return output, target


def _psnr_by_hand(output, target):
    """10 log10(1 / MSE) per image on [0, 1] images, averaged over images."""
    o, t = (output.double() + 1) / 2, (target.double() + 1) / 2
    mse = ((o - t) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


def _ssim_by_hand(output, target, size=11, sigma=1.5, k1=0.01, k2=0.03):
    """SSIM of Wang et al. 2004 (eq. 13) with a Gaussian window, data range 1, on [0, 1] images
    reflection-padded by half the window (one value per pixel), averaged over pixels and
    channels, then images."""
    x, y = (output.double() + 1) / 2, (target.double() + 1) / 2
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-coords**2 / (2 * sigma**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(x.shape[1], 1, size, size)

    pad = size // 2

    def blur(z):
        return F.conv2d(F.pad(z, (pad, pad, pad, pad), mode="reflect"), window, groups=x.shape[1])

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = (blur(x * x) - mu_x**2).clamp(min=0), (blur(y * y) - mu_y**2).clamp(min=0)
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.flatten(1).mean(1).mean())


def test_identical_images_psnr_inf_ssim_one_l1_zero():
    """PSNR of an exact reproduction is inf (MSE 0; torchmetrics applies no cap), SSIM 1, L1 0."""
    x, _ = _pair()
    assert psnr(x, x.clone()) == math.inf
    assert ssim(x, x.clone()) == pytest.approx(1.0, abs=1e-6)
    assert l1_distance(x, x.clone()) == 0.0


def test_psnr_matches_the_mse_formula():
    out, tgt = _pair(noise=0.3)
    assert psnr(out, tgt) == pytest.approx(_psnr_by_hand(out, tgt), abs=1e-4)
    # a uniform offset of 0.2 in [-1, 1] units is 0.1 on [0, 1]: MSE 0.01, PSNR 20 dB exactly
    tgt = torch.rand(3, 3, 16, 16) * 1.6 - 1
    assert psnr(tgt + 0.2, tgt) == pytest.approx(20.0, abs=1e-4)


def test_psnr_is_the_mean_of_per_image_values_not_of_the_pooled_mse():
    out1, tgt1 = _pair(n=1, noise=0.05, seed=1)
    out2, tgt2 = _pair(n=1, noise=0.5, seed=2)
    both = psnr(torch.cat([out1, out2]), torch.cat([tgt1, tgt2]))
    assert both == pytest.approx((psnr(out1, tgt1) + psnr(out2, tgt2)) / 2, abs=1e-4)


def test_ssim_matches_an_independent_gaussian_ssim():
    for c, noise in ((1, 0.3), (3, 0.1)):
        out, tgt = _pair(n=4, c=c, h=28, w=32, noise=noise)
        value = ssim(out, tgt)
        assert 0 < value < 1
        assert value == pytest.approx(_ssim_by_hand(out, tgt), abs=1e-4)


def test_l1_is_the_mean_absolute_difference_in_minus_one_one_units():
    out, tgt = _pair()
    assert l1_distance(out, tgt) == pytest.approx(float((out.double() - tgt.double()).abs().mean()), abs=1e-9)
    # values outside [-1, 1] are not clipped for L1 (they are for PSNR / SSIM)
    assert l1_distance(torch.full((1, 1, 4, 4), 2.0), torch.full((1, 1, 4, 4), -1.0)) == pytest.approx(3.0)
    assert psnr(torch.full((1, 1, 4, 4), 2.0), torch.full((1, 1, 4, 4), -1.0)) == pytest.approx(0.0)


def test_batching_does_not_change_the_figures():
    out, tgt = _pair(n=7)
    whole = image_quality(out, tgt)
    assert set(whole) == {"psnr", "ssim", "l1"}
    for key, value in image_quality(out, tgt, batch_size=3).items():
        assert value == pytest.approx(whole[key], abs=1e-6), key


def test_bad_inputs_are_one_line_errors():
    out, tgt = _pair()
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(out, tgt[:, :, :27])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ssim(out[0], tgt[0])
    with pytest.raises(ValueError, match="at least 11"):
        ssim(out[..., :8, :8], tgt[..., :8, :8])
    with pytest.raises(ValueError, match="empty"):
        l1_distance(out[:0], tgt[:0])
    with pytest.raises(ValueError, match="batch_size"):
        psnr(out, tgt, batch_size=0)
    assert "ssim" not in image_quality(out[..., :8, :8], tgt[..., :8, :8])


@pytest.fixture(scope="module")
def mnist_test_digits():
    from conftest import require_mnist

    from gancli.config import DataConfig
    from gancli.data import load_split

    data = load_split(DataConfig(dataset="mnist", split="test", limit=32, download=False), require_mnist())
    return data.images.float() / 127.5 - 1, data.labels.long()


def test_label_preservation_of_real_digits(mnist_test_digits):
    images, labels = mnist_test_digits
    before = torch.random.get_rng_state()
    assert label_preservation(images, labels) >= 0.9
    assert torch.equal(torch.random.get_rng_state(), before)  # loading the LeNet kept the global RNG
    # the wrong labels (each shifted by one class) are almost never what LeNet reads
    assert label_preservation(images, (labels + 1) % 10) <= 0.1


def test_label_preservation_bad_inputs(mnist_test_digits):
    images, labels = mnist_test_digits
    with pytest.raises(ValueError, match="one label per image"):
        label_preservation(images, labels[:-1])
    with pytest.raises(ValueError, match="digits 0-9"):
        label_preservation(images, labels + 10)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        label_preservation(images[..., :27, :27], labels)
