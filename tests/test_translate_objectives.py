"""gancli.translate.objectives: the pix2pix and CycleGAN update steps, on tiny networks (CPU)."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from gancli.errors import UnknownNameError
from gancli.translate.networks import PatchDiscriminator, ResnetGenerator, UNetGenerator
from gancli.translate.cyclegan import CycleGANStep
from gancli.translate.objectives import Pix2PixStep
from gancli.translate.pool import ImagePool

PX = 16


def _adam(*modules, lr=2e-4):
    return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=lr, betas=(0.5, 0.999))


def _images(n, c, seed):
    return torch.rand(n, c, PX, PX, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _pix2pix_nets(c_in=2, c_out=1, seed=0):
    torch.manual_seed(seed)
    G = UNetGenerator(c_in, c_out, ngf=4, image_size=PX, dropout=False)
    D = PatchDiscriminator(c_in + c_out, ndf=4, n_layers=1)
    return G, D


def _params(module):
    """Weights and buffers (BatchNorm statistics)."""
    return [p.detach().clone() for p in module.state_dict().values()]


def _weights(module):
    """Trainable weights only."""
    return [p.detach().clone() for p in module.parameters()]


def _same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


class Spy(nn.Module):
    """A module that records the first positional argument of each call, then runs ``inner``."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.seen: list[torch.Tensor] = []

    def forward(self, x, *args):
        self.seen.append(x.detach().clone())
        return self.inner(x, *args)


# -- pix2pix ------------------------------------------------------------------------------------


def test_pix2pix_step_updates_g_and_d_and_returns_finite_scalars():
    G, D = _pix2pix_nets()
    step = Pix2PixStep(G, D, _adam(G), _adam(D))
    g0, d0 = _weights(G), _weights(D)
    stats = step.step(_images(4, 2, 1), _images(4, 1, 2))
    assert set(stats) == {"loss_d", "loss_g", "l1", "g_adv", "d_real", "d_fake"}
    for key, value in stats.items():
        assert value.dim() == 0 and not value.requires_grad and torch.isfinite(value), key
    assert 0 < float(stats["d_real"]) < 1 and 0 < float(stats["d_fake"]) < 1  # BCE: probabilities
    assert float(stats["loss_g"]) == pytest.approx(100 * float(stats["l1"]) + float(stats["g_adv"]), rel=1e-6)
    assert not _same(_weights(G), g0)
    assert not _same(_weights(D), d0)
    assert step.d_updates == 1
    assert all(p.requires_grad for p in D.parameters())  # D unfrozen after G's update

    weighted = Pix2PixStep(G, D, _adam(G), _adam(D), l1_weight=50.0, adv_weight=0.5).step(_images(4, 2, 1),
                                                                                          _images(4, 1, 2))
    assert float(weighted["loss_g"]) == pytest.approx(50 * float(weighted["l1"]) + 0.5 * float(weighted["g_adv"]),
                                                      rel=1e-6)


def test_l1_only_baseline_leaves_d_untouched_and_is_a_pure_l1_step():
    G, D = _pix2pix_nets()
    G_ref = copy.deepcopy(G)
    opt_d = _adam(D)
    step = Pix2PixStep(G, D, _adam(G), opt_d, adv_weight=0.0)
    assert not step.uses_d
    x, y = _images(4, 2, 1), _images(4, 1, 2)
    d0 = _params(D)  # weights and BatchNorm buffers
    stats = step.step(x, y)
    assert set(stats) == {"loss_g", "l1"}
    assert _same(_params(D), d0)
    assert not opt_d.state and step.d_updates == 0

    opt_ref = _adam(G_ref)  # the same update by hand: L1 x 100, Adam
    out = G_ref(x)
    l1 = (out - y).abs().mean()
    loss = 100.0 * l1
    opt_ref.zero_grad()
    loss.backward()
    opt_ref.step()
    assert float(stats["l1"]) == pytest.approx(float(l1.detach()), abs=1e-7)
    assert _same(_params(G), _params(G_ref))


def test_l1_only_baseline_never_calls_d():
    class Exploding(nn.Module):
        def forward(self, *args):
            raise AssertionError("D was called")

    G, _ = _pix2pix_nets()
    Pix2PixStep(G, Exploding(), _adam(G), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0),
                adv_weight=0.0).step(_images(2, 2, 1), _images(2, 1, 2))


def test_inpainting_keeps_the_known_pixels_exactly():
    G, D = _pix2pix_nets()
    spy = Spy(D)
    step = Pix2PixStep(G, spy, _adam(G), _adam(D))
    x, y = _images(4, 2, 1), _images(4, 1, 2)
    mask = (torch.rand(4, 1, PX, PX, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    with torch.no_grad():
        raw = copy.deepcopy(G)(x)  # what G makes of x (BatchNorm in training mode: batch statistics)
    stats = step.step(x, y, mask=mask)
    fake_seen = spy.seen[0]  # D's first input: the fake pair's image
    known, hole = mask.expand_as(y) < 0.5, mask.expand_as(y) > 0.5
    assert torch.equal(fake_seen[known], y[known])  # known pixels: the target's, bit for bit
    assert torch.equal(fake_seen[hole], raw[hole])  # holes: G's output
    expected_l1 = float(((raw - y).abs() * mask).mean())
    assert float(stats["l1"]) == pytest.approx(expected_l1, rel=1e-5)


def test_inpainting_without_holes_gives_g_no_l1_gradient():
    G, D = _pix2pix_nets()
    step = Pix2PixStep(G, D, _adam(G), _adam(D), adv_weight=0.0)
    g0 = _params(G)
    stats = step.step(_images(2, 2, 1), _images(2, 1, 2), mask=torch.zeros(2, 1, PX, PX))
    assert float(stats["l1"]) == 0.0
    assert _same([p for n, p in zip(G.state_dict(), _params(G)) if "running" not in n and "num_batches" not in n],
                 [p for n, p in zip(G.state_dict(), g0) if "running" not in n and "num_batches" not in n])


def test_pix2pix_augment_moves_condition_and_image_together():
    G, D = _pix2pix_nets(c_in=2, c_out=1)
    seen = []

    def augment(x):
        seen.append(x.shape[1])
        return torch.flip(x, dims=[3])

    spy = Spy(D)
    Pix2PixStep(G, spy, _adam(G), _adam(D), augment=augment).step(_images(2, 2, 1), _images(2, 1, 2))
    assert seen == [3, 3, 3]  # fake pair and real pair in D's update, fake pair in G's: condition + image
    assert torch.equal(spy.seen[1], torch.flip(_images(2, 1, 2), dims=[3]))  # the real pair's image, flipped


def test_pix2pix_with_an_objective_adds_its_penalty():
    from gancli.config import LossConfig
    from gancli.losses.objective import Objective

    G, D = _pix2pix_nets()
    step = Pix2PixStep(G, D, _adam(G), _adam(D), adv_loss=Objective(LossConfig(name="hinge", r1_gamma=1.0, r1_every=2)))
    x, y = _images(2, 2, 1), _images(2, 1, 2)
    first, second = step.step(x, y), step.step(x, y)
    assert "r1" in first and "r1" not in second  # lazy R1: D updates 0, 2, 4...
    assert step.state_dict() == {"d_updates": 2}
    fresh = Pix2PixStep(G, D, _adam(G), _adam(D))
    fresh.load_state_dict(step.state_dict())
    assert fresh.d_updates == 2
    with pytest.raises(ValueError, match="d_updates"):
        fresh.load_state_dict({})


def test_pix2pix_under_bf16_autocast():
    G, D = _pix2pix_nets()
    stats = Pix2PixStep(G, D, _adam(G), _adam(D), autocast_dtype=torch.bfloat16).step(_images(2, 2, 1), _images(2, 1, 2))
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in stats.values())


def test_grad_scalers_scale_both_updates():
    G, D = _pix2pix_nets()
    scalers = {"scaler_g": torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=1),
               "scaler_d": torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=1)}
    Pix2PixStep(G, D, _adam(G), _adam(D), **scalers).step(_images(2, 2, 1), _images(2, 1, 2))
    assert scalers["scaler_g"].get_scale() == scalers["scaler_d"].get_scale() == 8.0  # each stepped once, grown
    step = _cycle_parts(scaler_g=torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=1))
    step.step(_images(1, 1, 1), _images(1, 1, 2))
    assert step.scaler_g.get_scale() == 8.0


def test_pix2pix_bad_arguments():
    G, D = _pix2pix_nets()
    with pytest.raises(UnknownNameError, match="valid choices: .*lsgan"):
        Pix2PixStep(G, D, _adam(G), _adam(D), adv_loss="nope")
    with pytest.raises(ValueError, match="l1_weight"):
        Pix2PixStep(G, D, _adam(G), _adam(D), l1_weight=-1)
    with pytest.raises(ValueError, match="both 0"):
        Pix2PixStep(G, D, _adam(G), _adam(D), l1_weight=0, adv_weight=0)
    step = Pix2PixStep(G, D, _adam(G), _adam(D))
    with pytest.raises(ValueError, match="mask must be"):
        step.step(_images(2, 2, 1), _images(2, 1, 2), mask=torch.zeros(2, 1, PX, PX - 1))
    with pytest.raises(ValueError, match="differ in N, H or W"):
        step.step(_images(3, 2, 1), _images(2, 1, 2))


# -- CycleGAN -----------------------------------------------------------------------------------


def _cycle_parts(c_a=1, c_b=1, seed=0, pool_size=2, gen_seed=7, **kwargs):
    torch.manual_seed(seed)
    G_ab = ResnetGenerator(c_a, c_b, ngf=4, n_blocks=1)
    G_ba = ResnetGenerator(c_b, c_a, ngf=4, n_blocks=1)
    D_a = PatchDiscriminator(c_a, ndf=4, n_layers=1, norm="instance")
    D_b = PatchDiscriminator(c_b, ndf=4, n_layers=1, norm="instance")
    step = CycleGANStep(G_ab, G_ba, D_a, D_b, _adam(G_ab, G_ba), _adam(D_a, D_b), ImagePool(pool_size),
                        ImagePool(pool_size), torch.Generator().manual_seed(gen_seed), **kwargs)
    return step


def _modules(step):
    return [step.G_ab, step.G_ba, step.D_a, step.D_b]


def _lsgan_g(scores):
    return 0.5 * ((scores.float() - 1) ** 2).mean()  # Mao et al.'s 1/2 (E[(D(G(x)) - 1)^2] / 2)


@pytest.mark.parametrize("adv_weight, cycle_weight, identity_weight", [(1.0, 10.0, 0.5), (2.0, 5.0, 0.3)])
def test_cyclegan_g_update_equals_the_hand_computed_one(adv_weight, cycle_weight, identity_weight):
    step = _cycle_parts(adv_weight=adv_weight, cycle_weight=cycle_weight, identity_weight=identity_weight)
    ref = copy.deepcopy(step)
    a, b = _images(1, 1, 1), _images(1, 1, 2)
    stats = step.step(a, b)

    fake_b, fake_a = ref.G_ab(a), ref.G_ba(b)
    rec_a, rec_b = ref.G_ba(fake_b), ref.G_ab(fake_a)
    cycle_a, cycle_b = (rec_a - a).abs().mean(), (rec_b - b).abs().mean()
    idt_a, idt_b = (ref.G_ba(a) - a).abs().mean(), (ref.G_ab(b) - b).abs().mean()
    g_adv = _lsgan_g(ref.D_b(fake_b)) + _lsgan_g(ref.D_a(fake_a))
    loss_g = adv_weight * g_adv + cycle_weight * (cycle_a + cycle_b) + cycle_weight * identity_weight * (idt_a + idt_b)
    for key, value in {"cycle_a": cycle_a, "cycle_b": cycle_b, "idt_a": idt_a, "idt_b": idt_b, "g_adv": g_adv,
                       "loss_g": loss_g}.items():
        assert float(stats[key]) == pytest.approx(float(value.detach()), rel=1e-5), key
    ref.opt_g.zero_grad()
    loss_g.backward()
    ref.opt_g.step()
    for mine, theirs in ((step.G_ab, ref.G_ab), (step.G_ba, ref.G_ba)):
        for p, q in zip(mine.parameters(), theirs.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


def test_cyclegan_d_update_uses_the_pooled_fakes_and_the_registry_loss():
    step = _cycle_parts(pool_size=0)  # pool off: D sees this step's fakes
    ref = copy.deepcopy(step)
    a, b = _images(1, 1, 1), _images(1, 1, 2)
    with torch.no_grad():
        fake_b, fake_a = ref.G_ab(a), ref.G_ba(b)
    stats = step.step(a, b)
    with torch.no_grad():
        d_b = 0.5 * ((ref.D_b(b) - 1) ** 2).mean() + 0.5 * (ref.D_b(fake_b) ** 2).mean()
        d_a = 0.5 * ((ref.D_a(a) - 1) ** 2).mean() + 0.5 * (ref.D_a(fake_a) ** 2).mean()
    assert float(stats["loss_d_b"]) == pytest.approx(float(d_b), rel=1e-5)
    assert float(stats["loss_d_a"]) == pytest.approx(float(d_a), rel=1e-5)
    assert float(stats["loss_d"]) == pytest.approx(float(d_a + d_b), rel=1e-5)


def test_discriminators_are_updated_on_the_pooled_fakes():
    """What each D scores as fake in its update is what a replica of its pool, drawing from a
    generator of the same seed, gives back for this step's fakes (pool_b first, then pool_a)."""
    step = _cycle_parts(pool_size=2, gen_seed=7)
    step.D_a, step.D_b = Spy(step.D_a), Spy(step.D_b)
    replica_a, replica_b, gen = ImagePool(2), ImagePool(2), torch.Generator().manual_seed(7)
    swapped = 0
    for i in range(5):
        step.step(_images(1, 1, 100 + i), _images(1, 1, 200 + i))
        # calls per step of each D: the fake in G's update, then the real and the pooled fake in D's
        fake_b, pooled_b = step.D_b.seen[3 * i], step.D_b.seen[3 * i + 2]
        fake_a, pooled_a = step.D_a.seen[3 * i], step.D_a.seen[3 * i + 2]
        assert torch.equal(pooled_b, replica_b.query(fake_b, gen))
        assert torch.equal(pooled_a, replica_a.query(fake_a, gen))
        swapped += not torch.equal(pooled_b, fake_b)
    assert swapped  # some step's D_b saw an older fake


def test_identity_term_is_off_when_channels_differ():
    step = _cycle_parts(c_a=1, c_b=3)
    ref = copy.deepcopy(step)
    calls = {"ab": 0}
    inner = step.G_ab.forward

    def counting(x):
        calls["ab"] += 1
        return inner(x)

    step.G_ab.forward = counting
    assert not step.uses_identity(1, 3) and step.uses_identity(3, 3)
    a, b = _images(1, 1, 1), _images(1, 3, 2)
    stats = step.step(a, b)
    assert "idt_a" not in stats and "idt_b" not in stats
    assert calls["ab"] == 2  # fake_b and rec_b: no G_ab(b)
    with torch.no_grad():
        fake_b, fake_a = ref.G_ab(a), ref.G_ba(b)
        loss_g = (_lsgan_g(ref.D_b(fake_b)) + _lsgan_g(ref.D_a(fake_a))
                  + 10 * ((ref.G_ba(fake_b) - a).abs().mean() + (ref.G_ab(fake_a) - b).abs().mean()))
    assert float(stats["loss_g"]) == pytest.approx(float(loss_g), rel=1e-5)


def test_identity_weight_zero_turns_the_identity_term_off():
    stats = _cycle_parts(identity_weight=0.0).step(_images(1, 1, 1), _images(1, 1, 2))
    assert "idt_a" not in stats
    assert "idt_a" in _cycle_parts().step(_images(1, 1, 1), _images(1, 1, 2))


def _run(step, n_steps, first=0):
    out = []
    for i in range(first, first + n_steps):
        stats = step.step(_images(1, 1, 100 + i), _images(1, 1, 200 + i))
        out.append({k: v.clone() for k, v in stats.items()})
    return out


def test_pool_draws_from_the_given_generator_only():
    """Two fresh runs with the same generator seed are bitwise equal, whatever the global RNG does
    between them; another generator seed changes which fakes D sees."""
    one = _cycle_parts(pool_size=2, gen_seed=7)
    stats_one = _run(one, 5)
    two = _cycle_parts(pool_size=2, gen_seed=7)
    torch.rand(1000)  # the global RNG moves on: the step must not care
    stats_two = _run(two, 5)
    for s1, s2 in zip(stats_one, stats_two):
        assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    for m1, m2 in zip(_modules(one), _modules(two)):
        assert _same(_params(m1), _params(m2))
    assert torch.equal(one.pool_a.state_dict()["images"], two.pool_a.state_dict()["images"])

    other = _cycle_parts(pool_size=2, gen_seed=8)
    _run(other, 5)
    assert not _same(_params(one.D_a), _params(other.D_a))


def _checkpoint(step):
    """Everything a resumed run would save, through torch.save / torch.load(weights_only=True)."""
    state = {"modules": [m.state_dict() for m in _modules(step)], "opt_g": step.opt_g.state_dict(),
             "opt_d": step.opt_d.state_dict(), "step": step.state_dict()}
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _restore(state, with_step_state=True):
    step = _cycle_parts(seed=123, gen_seed=999)  # other weights, other generator: all must come from the state
    for m, s in zip(_modules(step), state["modules"]):
        m.load_state_dict(s)
    step.opt_g.load_state_dict(state["opt_g"])
    step.opt_d.load_state_dict(state["opt_d"])
    if with_step_state:
        step.load_state_dict(state["step"])
    return step


def test_state_dict_round_trip_continues_identically():
    straight = _cycle_parts()
    expected = _run(straight, 4)
    first = _cycle_parts()
    _run(first, 2)
    state = _checkpoint(first)
    assert state["step"]["d_updates"] == 2 and state["step"]["pool_a"]["count"] == 2
    resumed = _restore(state)
    got = _run(resumed, 2, first=2)
    for s1, s2 in zip(expected[2:], got):
        assert all(torch.equal(s1[k], s2[k]) for k in s1)
    for m1, m2 in zip(_modules(straight), _modules(resumed)):
        assert _same(_params(m1), _params(m2))
    assert torch.equal(straight.pool_b.state_dict()["images"], resumed.pool_b.state_dict()["images"])
    assert torch.equal(straight.generator.get_state(), resumed.generator.get_state())

    # without the step's own state (empty pools, another generator) the run goes elsewhere
    lost = _restore(state, with_step_state=False)
    _run(lost, 2, first=2)
    assert not _same(_params(straight.D_a), _params(lost.D_a))


def test_cyclegan_bad_arguments():
    with pytest.raises(ValueError, match="cycle_weight"):
        _cycle_parts(cycle_weight=float("nan"))
    with pytest.raises(ValueError, match="adv_weight must be > 0"):
        _cycle_parts(adv_weight=0.0)
    with pytest.raises(UnknownNameError, match="unknown loss 'mse'"):
        _cycle_parts(adv_loss="mse")
    step = _cycle_parts()
    with pytest.raises(ValueError, match="missing pool_a"):
        step.load_state_dict({"pool_b": None, "generator": None, "d_updates": 0})
    with pytest.raises(ValueError, match=r"real_b must be \(N, C, H, W\)"):
        step.step(_images(1, 1, 1), _images(1, 1, 2)[0])
