"""Closed forms of the adversarial losses and regularizers, EMA, spectral norm, schedules."""

import math

import pytest
import torch

from gancli.config import ModelConfig
from gancli.engine.ema import ema_beta, ema_update_
from gancli.engine.optim import lr_factor
from gancli.losses import LOSSES, build_loss
from gancli.losses.regularizers import gradient_penalty, r1_penalty
from gancli.models import build_discriminator


def test_registered_losses_and_recipe_defaults():
    assert LOSSES.names() == ["bce", "minimax", "lsgan", "wgan-gp", "hinge"]
    d = LOSSES.entry("wgan-gp").defaults
    assert d["gp_lambda"] == 10.0 and d["d_steps"] == 5
    assert (d["lr_g"], d["lr_d"], d["beta1"], d["beta2"]) == (1e-4, 1e-4, 0.0, 0.9)


def test_lsgan_at_known_outputs():
    loss = build_loss("lsgan")  # a=0, b=1, c=1
    real = torch.tensor([1.0, 0.0, 2.0])
    fake = torch.tensor([0.0, 1.0, -1.0])
    # 0.5 * mean((r-1)^2) + 0.5 * mean(f^2) = 0.5 * (0+1+1)/3 + 0.5 * (0+1+1)/3
    assert torch.isclose(loss.d_loss(real, fake), torch.tensor(2.0 / 3.0))
    # 0.5 * mean((f-1)^2) = 0.5 * (1 + 0 + 4) / 3
    assert torch.isclose(loss.g_loss(fake), torch.tensor(5.0 / 6.0))
    assert loss.d_loss(torch.ones(4), torch.zeros(4)) == 0 and loss.g_loss(torch.ones(4)) == 0


def test_hinge_at_known_margins():
    loss = build_loss("hinge")
    # real beyond the margin (>= 1) and fake beyond (<= -1): zero loss
    assert loss.d_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -2.0])) == 0
    # inside the margins: mean(1 - r) + mean(1 + f)
    assert torch.isclose(loss.d_loss(torch.tensor([0.5]), torch.tensor([0.25])), torch.tensor(0.5 + 1.25))
    assert torch.isclose(loss.g_loss(torch.tensor([0.5, -1.5])), torch.tensor(0.5))


def test_wasserstein_is_difference_of_means():
    loss = build_loss("wgan-gp")
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    assert torch.isclose(loss.d_loss(real, fake), torch.tensor(0.0 - 2.0))
    assert torch.isclose(loss.g_loss(fake), torch.tensor(0.0))
    assert not loss.probabilistic and build_loss("bce").probabilistic


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_gradient_penalty_of_linear_critic(scale):
    """f(x) = w.x has gradient w everywhere, so GP = (|w| - 1)^2 (times lambda)."""
    torch.manual_seed(0)
    w = torch.randn(1, 3, 4, 4)
    w = w / w.norm() * scale

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    gp = gradient_penalty(critic, real, fake)
    assert torch.isclose(gp, torch.tensor((scale - 1.0) ** 2), atol=1e-6)
    assert torch.isclose(10 * gp, torch.tensor(10 * (scale - 1.0) ** 2), atol=1e-5)


def test_gradient_penalty_interpolates_and_is_differentiable():
    """Quadratic critic f(x) = |x|^2 / 2: grad = x_hat, so GP depends on eps."""
    real, fake = torch.ones(2, 1, 2, 2), -torch.ones(2, 1, 2, 2)
    eps = torch.tensor([1.0, 0.5]).view(2, 1, 1, 1)
    a = torch.tensor(1.0, requires_grad=True)
    gp = gradient_penalty(lambda x: a * 0.5 * x.pow(2).flatten(1).sum(1), real, fake, eps=eps)
    # x_hat = real (norm 2) and 0 (norm 0): ((2a - 1)^2 + 1) / 2 at a = 1 -> 1
    assert torch.isclose(gp, torch.tensor(1.0))
    gp.backward()
    assert torch.isclose(a.grad, torch.tensor(2.0))  # d/da ((2a-1)^2 + 1)/2 = 2(2a-1)


def test_r1_penalty_closed_form():
    w = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
    assert torch.isclose(r1_penalty(lambda x: (x * w).flatten(1).sum(1), torch.randn(7, 2, 1, 1)),
                         torch.tensor(25.0))


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_spectral_norm_makes_top_singular_value_one(arch):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, ngf=8, ndf=8, spectral_norm=True, num_classes=10)
    d = build_discriminator(cfg)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    for _ in range(30):  # power iterations run in training-mode forwards
        d(x, y)
    weights = [m.weight for m in d.modules() if hasattr(m, "parametrizations") and hasattr(m.parametrizations, "weight")]
    assert weights, "no spectrally normalised weight"
    for w in weights:
        sigma = torch.linalg.matrix_norm(w.detach().flatten(1), ord=2)
        assert abs(sigma.item() - 1.0) < 0.05, sigma
    # and without it they are not all 1 (the test can fail)
    plain = build_discriminator(ModelConfig(arch=arch, ngf=8, ndf=8))
    sigmas = [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() for m in plain.modules()
              if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert any(abs(s - 1.0) > 0.05 for s in sigmas)


def test_dcgan_critic_without_batchnorm_for_gradient_penalty():
    d = build_discriminator(ModelConfig(arch="dcgan", d_norm="none"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    d = build_discriminator(ModelConfig(arch="dcgan"))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())


def test_ema_update_equals_formula():
    torch.manual_seed(0)
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in ema.parameters()]
    beta = 0.9
    ema_update_(ema, model, beta)
    for b, p_ema, p in zip(before, ema.parameters(), model.parameters()):
        assert torch.allclose(p_ema, beta * b + (1 - beta) * p)
    bn, bn_ema = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    bn(torch.randn(8, 3))
    ema_update_(bn_ema, bn, 0.99)
    assert torch.equal(bn_ema.running_mean, bn.running_mean)  # buffers are copied


def test_ema_warmup():
    assert ema_beta(0.999, 0) == pytest.approx(0.1)
    assert ema_beta(0.999, 90) == pytest.approx(91 / 100)
    assert ema_beta(0.999, 10**6) == 0.999


def test_lr_schedules():
    assert lr_factor("constant", 50, 100) == 1.0
    assert lr_factor("linear", 0, 100) == 1.0 and lr_factor("linear", 75, 100) == pytest.approx(0.25)
    assert lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 100, 100) == pytest.approx(0.0)
    assert lr_factor("cosine", 25, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
