import pytest
import torch

from gancli.checkpoint import load_checkpoint
from gancli.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from gancli.data.batcher import DeviceBatcher
from gancli.engine.launch import build_trainer
from gancli.errors import GancliError
from gancli.losses import LOSSES
from gancli.runs import RunStore


def _cfg(arch="dcgan", steps=6, loss="bce", **train):
    return RunConfig(
        data=DataConfig(limit=128),
        model=ModelConfig(arch=arch, nz=8, ngf=8, ndf=8),
        loss=LossConfig(loss),
        train=TrainConfig(**{**dict(batch_size=16, steps=steps, seed=7, device="cpu", log_every_steps=2,
                                    sample_every_steps=0, checkpoint_every_steps=0, keep_checkpoints=0), **train}),
    )


def _weights(trainer):
    sd = {f"G.{k}": v for k, v in trainer.G.state_dict().items()}
    sd.update({f"D.{k}": v for k, v in trainer.D.state_dict().items()})
    return sd


def _assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
@pytest.mark.parametrize("loss", ["bce", "minimax"])
def test_resume_is_bitwise_identical(tmp_path, tiny_data, arch, loss):
    """N steps + checkpoint + fresh process state + N steps == 2N steps straight.

    128 images / batch 16 = 8 steps per epoch, so 12 steps cross an epoch."""
    n = 6
    store = RunStore(tmp_path)
    straight = build_trainer(_cfg(arch, 2 * n, loss), store.create(), torch.device("cpu"), tiny_data)
    straight.fit()

    run = store.create()
    first = build_trainer(_cfg(arch, n, loss), run, torch.device("cpu"), tiny_data)
    first.fit()
    torch.manual_seed(999)  # scramble the global RNG as a new process would have it
    second = build_trainer(_cfg(arch, 2 * n, loss), run, torch.device("cpu"), tiny_data)
    second.restore(load_checkpoint(run.checkpoint_path("latest")))
    assert second.step == n
    second.fit()
    assert second.step == 2 * n
    _assert_bitwise_equal(_weights(straight), _weights(second))
    for o1, o2 in ((straight.opt_g, second.opt_g), (straight.opt_d, second.opt_d)):
        for s1, s2 in zip(o1.state.values(), o2.state.values()):
            for key in s1:
                assert torch.equal(s1[key], s2[key])


def test_resume_without_restore_differs(tmp_path, tiny_data):
    """Guard that the bitwise test can fail: skipping the restore changes the weights."""
    store = RunStore(tmp_path)
    a = build_trainer(_cfg("mlp", 4), store.create(), torch.device("cpu"), tiny_data)
    a.fit()
    b = build_trainer(_cfg("mlp", 4), store.create(), torch.device("cpu"), tiny_data)
    b.step = 2
    b.fit()
    assert any(not torch.equal(x, y) for x, y in zip(_weights(a).values(), _weights(b).values()))


def test_training_moves_weights_and_logs(tmp_path, tiny_data):
    run = RunStore(tmp_path).create()
    t = build_trainer(_cfg("dcgan", 4, sample_every_steps=2), run, torch.device("cpu"), tiny_data)
    before = {k: v.clone() for k, v in _weights(t).items()}
    result = t.fit()
    assert result.step == 4 and not result.interrupted
    assert any(not torch.equal(before[k], v) for k, v in _weights(t).items() if v.is_floating_point())
    records = run.read_metrics()
    assert [r["step"] for r in records] == [2, 4]
    for r in records:
        assert {"loss_d", "loss_g", "d_real", "d_fake", "img_per_sec", "epoch"} <= r.keys()
        assert 0 <= r["d_real"] <= 1 and 0 <= r["d_fake"] <= 1
    assert sorted(p.name for p in run.samples_dir.iterdir()) == ["step-2.png", "step-4.png"]
    assert [s for s, _ in run.checkpoints()] == [4]


def test_keep_prunes_old_checkpoints(tmp_path, tiny_data):
    run = RunStore(tmp_path).create()
    build_trainer(_cfg("mlp", 10, checkpoint_every_steps=2, keep_checkpoints=2), run, torch.device("cpu"),
            tiny_data).fit()
    assert [s for s, _ in run.checkpoints()] == [8, 10]


def test_stop_request_checkpoints_current_step(tmp_path, tiny_data):
    run = RunStore(tmp_path).create()
    t = build_trainer(_cfg("mlp", 10), run, torch.device("cpu"), tiny_data)
    result = t.fit(should_stop=lambda: t.step >= 3)
    assert result.interrupted and result.step == 3
    assert load_checkpoint(run.checkpoint_path("latest")).step == 3


def test_nan_loss_stops_with_clear_message(tmp_path, tiny_data, monkeypatch):
    run = RunStore(tmp_path).create()
    t = build_trainer(_cfg("mlp", 6), run, torch.device("cpu"), tiny_data)
    real_d_loss = t.parts.objective.d_loss
    monkeypatch.setattr(t.parts.objective, "d_loss", lambda r, f: real_d_loss(r, f) * float("nan"))
    with pytest.raises(GancliError, match=r"training diverged at step 2 \(loss_d=nan"):
        t.fit()


def test_losses_at_known_logits():
    zero = torch.zeros(4)
    big = torch.full((4,), 30.0)
    ln2 = torch.log(torch.tensor(2.0))
    bce, minimax = LOSSES.get("bce")(), LOSSES.get("minimax")()
    # D(x) = D(G(z)) = 1/2: -log(1/2) - log(1/2)
    assert torch.allclose(bce.d_loss(zero, zero), 2 * ln2)
    assert torch.allclose(bce.g_loss(zero), ln2)  # -log(1/2)
    assert torch.allclose(minimax.g_loss(zero), -ln2)  # log(1 - 1/2)
    # confident and right D: loss ~ 0; non-saturating G loss large, minimax G loss ~ 0 (saturated)
    assert bce.d_loss(big, -big) < 1e-10
    assert torch.allclose(bce.g_loss(-big), big)
    assert minimax.g_loss(-big).abs() < 1e-10


def test_batcher_order_depends_only_on_seed_and_step(tiny_data):
    b1 = DeviceBatcher(tiny_data.images, tiny_data.labels, 16, seed=3, device=torch.device("cpu"))
    b2 = DeviceBatcher(tiny_data.images, tiny_data.labels, 16, seed=3, device=torch.device("cpu"))
    x1, _ = b1.batch(13)
    for s in range(13):
        b2.batch(s)
    x2, _ = b2.batch(13)
    assert torch.equal(x1, x2)
    assert x1.min() >= -1 and x1.max() <= 1 and x1.shape == (16, 1, 28, 28)
    # one epoch covers every image exactly once
    seen = torch.cat([b1.batch(s)[0] for s in range(8)])
    assert seen.shape[0] == 128
    expect = tiny_data.images.float() / 127.5 - 1
    assert torch.equal(seen.flatten(1).sort(0).values, expect.flatten(1).sort(0).values)
    other = DeviceBatcher(tiny_data.images, tiny_data.labels, 16, seed=4, device=torch.device("cpu"))
    assert not torch.equal(other.batch(0)[0], b1.batch(0)[0])


def test_cost_estimate_after_warm_up(tmp_path, tiny_data):
    """From the first seconds: measured img/s, the current losses and the time left, once."""
    from gancli.engine.protocols import NullReporter

    class Notes(NullReporter):
        def __init__(self):
            self.notes = []

        def note(self, text):
            self.notes.append(text)

    rep = Notes()
    t = build_trainer(_cfg("mlp", 50, log_every_steps=1000, monitor_every_steps=0), RunStore(tmp_path).create(),
                      torch.device("cpu"), tiny_data, reporter=rep)
    t.fit()
    estimates = [n for n in rep.notes if n.startswith("measured ")]
    assert len(estimates) == 1, rep.notes
    assert " img/s over steps 6-25 (loss_d " in estimates[0] and "loss_g " in estimates[0]
    assert "for the remaining 25 steps" in estimates[0]
    rep = Notes()
    build_trainer(_cfg("mlp", 49, monitor_every_steps=0), RunStore(tmp_path).create(), torch.device("cpu"), tiny_data,
                  reporter=rep).fit()
    assert not [n for n in rep.notes if n.startswith("measured ")]  # too short to bother


def test_first_look_grid_and_monitor_check_at_step_200(tmp_path, tiny_data, monkeypatch):
    """Issue #25: with the default intervals (500) a new run still writes its fixed-z grid and the
    monitor's first (baseline) check at step 200; an interval of 200 or less keeps its own grid."""
    from gancli.engine import hooks

    assert hooks.FIRST_LOOK_STEP == 200
    assert [s for s in range(1, 1001) if hooks.due(s, 500)] == [200, 500, 1000]
    assert [s for s in range(1, 401) if hooks.due(s, 150)] == [150, 300]
    assert [s for s in range(1, 401) if hooks.due(s, 200)] == [200, 400]
    assert not any(hooks.due(s, 0) for s in range(1, 401))
    monkeypatch.setattr(hooks, "FIRST_LOOK_STEP", 3)  # the hooks' wiring, in a short run
    run = RunStore(tmp_path).create()
    t = build_trainer(_cfg("mlp", 7, sample_every_steps=5, monitor_every_steps=5), run, torch.device("cpu"), tiny_data)
    t.fit()
    assert sorted(p.name for p in run.samples_dir.iterdir()) == ["step-3.png", "step-5.png", "step-7.png"]
    monitor = [r for r in run.read_metrics() if r.get("kind") == "monitor"]
    assert [(r["step"], r.get("baseline")) for r in monitor] == [(3, True), (5, True)]


def test_plain_eta_uses_the_speed_of_the_last_half_minute():
    """A run whose first steps were slow: the ETA follows the recent speed, not the average since
    the start (which overestimated the README job's remaining time by ~20%)."""
    from gancli.console import eta_seconds

    # 100 slow steps (0.2 s each), then 10 steps/s
    marks = [(0, 0.0), (100, 20.0)] + [(100 + 100 * i, 20.0 + 10.0 * i) for i in range(1, 6)]
    now, step = 70.0, 600
    kept = list(marks)
    assert eta_seconds(kept, step, 1600, now) == pytest.approx(100.0)  # 1000 steps at 10 steps/s
    assert kept[0] == (300, 40.0)  # the newest mark at least 30 s old; older ones dropped
    average = (1600 - step) * now / step
    assert average > 110  # what the average since step 0 says
    assert eta_seconds([(0, 0.0)], 50, 100, 5.0) == pytest.approx(5.0)  # one mark: the speed since it
