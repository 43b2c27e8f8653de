"""Every registered loss x arch x conditional combination trains a few steps and
resumes bitwise on CPU; the recipe features (SN, R1, DiffAugment, EMA, schedules,
other optimizers) ride along."""

import itertools

import pytest
import torch

from gancli.checkpoint import load_checkpoint, load_generator
from gancli.data import ImageData
from gancli.engine.launch import build_trainer
from gancli.losses import LOSSES
from gancli.models import noise_archs
from gancli.resolve import build_config
from gancli.runs import RunStore

EXTRAS = [
    {},
    {"spectral_norm": True, "augment": "diffaug", "lr_schedule": "cosine"},
    {"r1_gamma": 1.0, "r1_every": 2, "optimizer": "rmsprop", "momentum": 0.1, "lr_schedule": "linear"},
]


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(5)
    return ImageData(torch.randint(0, 256, (96, 1, 28, 28), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (96,), generator=g), [str(i) for i in range(10)])


def _cfg(loss, arch, conditional, extra, steps):
    opts = dict(loss=loss, arch=arch, conditional=conditional, nz=8, ngf=4, ndf=4, batch_size=16, steps=steps,
                seed=11, device="cpu", sample_every=0, checkpoint_every=0, log_every=1, limit=96, ema_decay=0.9,
                **extra)
    return build_config(opts)


def _state(t):
    out = {f"G.{k}": v for k, v in t.G.state_dict().items()}
    out.update({f"D.{k}": v for k, v in t.D.state_dict().items()})
    out.update({f"E.{k}": v for k, v in t.G_ema.state_dict().items()})
    return out


COMBOS = list(itertools.product(LOSSES.names(), noise_archs(), [False, True]))  # unet: test_translate_train.py


@pytest.mark.parametrize("loss,arch,conditional", COMBOS)
def test_combination_trains_and_resumes_bitwise(tmp_path, data, loss, arch, conditional):
    extra = EXTRAS[COMBOS.index((loss, arch, conditional)) % len(EXTRAS)]
    store = RunStore(tmp_path)
    cpu = torch.device("cpu")
    straight = build_trainer(_cfg(loss, arch, conditional, extra, 4), store.create(), cpu, data)
    result = straight.fit()
    assert result.step == 4
    records = straight.run.read_metrics()
    assert all(torch.isfinite(torch.tensor(r["loss_d"])) for r in records)

    run = store.create()
    first = build_trainer(_cfg(loss, arch, conditional, extra, 4), run, cpu, data)
    assert first.fit(should_stop=lambda: first.step >= 2).interrupted  # as Ctrl-C at step 2
    torch.manual_seed(1234)
    resumed = build_trainer(_cfg(loss, arch, conditional, extra, 4), run, cpu, data)
    resumed.restore(load_checkpoint(run.checkpoint_path()))
    resumed.fit()
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

    g = load_generator(run.checkpoint_path())  # EMA weights by default
    assert g.uses_ema and g.num_classes == (10 if conditional else 0)
    z = torch.randn(3, 8)
    y = torch.tensor([0, 1, 2]) if conditional else None
    assert g(z, y).shape == (3, 1, 28, 28)
    raw = load_generator(run.checkpoint_path(), ema=False)
    assert not raw.uses_ema
    assert any(not torch.equal(p, q) for p, q in zip(g.parameters(), raw.parameters()))


def test_d_steps_consume_batches(tmp_path, data):
    cfg = _cfg("wgan-gp", "mlp", False, {}, 3)
    assert cfg.optim.d_steps == 5 and cfg.loss.gp_lambda == 10.0 and cfg.model.d_norm == "none"
    t = build_trainer(cfg, RunStore(tmp_path).create(), torch.device("cpu"), data)
    t.fit()
    assert t.d_updates == 15
    assert t.run.read_metrics()[-1]["epoch"] == round(15 / 6, 4)  # 96 / 16 = 6 batches per epoch
    assert "gp" in t.run.read_metrics()[-1]
