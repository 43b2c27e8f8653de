"""gancli.translate.cyclegan's CycleGANStep and the step base of gancli.translate.objectives (loss,
precision, loss scaling, penalties), on tiny networks (CPU). pix2pix's update is the loop's
TranslateStep (tests/test_translate_train.py, tests/test_translate_paired.py)."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from gancli.errors import UnknownNameError
from gancli.translate.networks import PatchDiscriminator, ResnetGenerator
from gancli.translate.cyclegan import CycleGANStep
from gancli.translate.pool import ImagePool

PX = 16


def _adam(*modules, lr=2e-4):
    return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=lr, betas=(0.5, 0.999))


def _images(n, c, seed):
    return torch.rand(n, c, PX, PX, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _params(module):
    """Weights and buffers (BatchNorm statistics)."""
    return [p.detach().clone() for p in module.state_dict().values()]


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


# -- the step base: losses, precision, loss scaling, penalties ---------------------------------


def test_an_objective_adds_its_penalty_to_each_d_loss():
    from gancli.config import LossConfig
    from gancli.losses.objective import Objective

    step = _cycle_parts(adv_loss=Objective(LossConfig(name="hinge", r1_gamma=1.0, r1_every=2)))
    first, second = (step.step(_images(1, 1, 1), _images(1, 1, 2)) for _ in range(2))
    assert {"r1_a", "r1_b"} <= first.keys()  # one penalty per discriminator
    assert not {"r1_a", "r1_b"} & second.keys()  # lazy R1: D updates 0, 2, 4...
    assert step.d_updates == 2 and step.state_dict()["d_updates"] == 2
    assert "r1_a" not in _cycle_parts(adv_loss="hinge").step(_images(1, 1, 1), _images(1, 1, 2))  # a name: none


def test_under_bf16_autocast_the_statistics_stay_float32():
    stats = _cycle_parts(autocast_dtype=torch.bfloat16).step(_images(1, 1, 1), _images(1, 1, 2))
    assert all(v.dtype == torch.float32 and v.dim() == 0 and torch.isfinite(v) for v in stats.values())


def test_grad_scalers_scale_both_updates():
    scalers = {"scaler_g": torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=1),
               "scaler_d": torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=1)}
    _cycle_parts(**scalers).step(_images(1, 1, 1), _images(1, 1, 2))
    assert scalers["scaler_g"].get_scale() == scalers["scaler_d"].get_scale() == 8.0  # each stepped once, grown


def test_loss_objects_are_taken_as_they_are_and_anything_else_is_refused():
    from gancli.losses import build_loss
    from gancli.translate.objectives import adversarial_loss

    loss = build_loss("lsgan")
    assert adversarial_loss(loss) is loss
    with pytest.raises(UnknownNameError, match="valid choices: .*lsgan"):
        adversarial_loss("nope")
    with pytest.raises(TypeError, match="registered loss name or a loss object"):
        adversarial_loss(3)
