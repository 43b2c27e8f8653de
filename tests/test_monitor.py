"""The mode-collapse monitor: flags one-image and one-class generators, not real data."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from gancli.cli import app
from gancli.config import DataConfig
from gancli.data import load_split
from gancli.metrics.lenet import lenet_outputs, load_lenet
from gancli.metrics.monitor import BATCH, CollapseMonitor, symptoms

runner = CliRunner()


@pytest.fixture(scope="module")
def mnist(mnist_root_dir):
    data = load_split(DataConfig(), mnist_root_dir)
    return data.images.float().div(127.5).sub(1.0), data.labels


@pytest.fixture(scope="module")
def mnist_root_dir():
    from conftest import require_mnist

    return require_mnist()


@pytest.fixture(scope="module")
def monitor(mnist):
    lenet = load_lenet("cpu")
    images, _ = mnist
    return CollapseMonitor(images[:BATCH], classifier=lambda x: lenet_outputs(lenet, x)[1])


def test_real_batches_are_not_flagged(monitor, mnist):
    images, _ = mnist
    for start in (1000, 5000, 30000, 59000):
        scores = monitor.score(images[start:start + BATCH])
        assert symptoms(scores) == [], scores
        assert 0.9 < scores["diversity"] < 1.1 and scores["duplicates"] < 0.001
        assert scores["classes_covered"] == 10


def test_one_image_generator_is_flagged(monitor, mnist):
    images, _ = mnist
    scores = monitor.score(images[7:8].repeat(BATCH, 1, 1, 1))
    kinds = [s.split(" (")[0] for s in symptoms(scores)]
    assert kinds == ["low diversity", "near-duplicate samples", "classes missing"]
    assert scores["diversity"] == 0.0 and scores["duplicates"] == 1.0


def test_one_class_generator_is_flagged(monitor, mnist):
    """Varied images, but all of one digit: only the class check sees it."""
    images, labels = mnist
    sevens = images[labels == 7][:BATCH]
    scores = monitor.score(sevens)
    found = symptoms(scores)
    assert any(s.startswith("classes missing (1/10 covered") for s in found), found
    assert not any(s.startswith("near-duplicate") for s in found)


def test_training_warns_and_logs_monitor_records(mnist_dir, home):
    """A DCGAN's EMA generator a few steps in is still its constant initialisation: the first
    check after the baseline check (step 2) flags it, once."""
    r = runner.invoke(app, ["train", "--arch", "dcgan", "--ngf", "8", "--ndf", "8", "--nz", "8", "--limit", "128",
                            "-b", "16", "--steps", "6", "--monitor-every", "2", "--log-every", "2",
                            "--sample-every", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "mode collapse? low diversity" in r.output and "at step 4;" in r.output
    assert r.output.count("mode collapse?") == 1  # symptoms still there at step 6: no second warning
    rows = [json.loads(x) for x in (home / "runs" / "run-1" / "metrics.jsonl").read_text().splitlines()]
    mon = [x for x in rows if x["kind"] == "monitor"]
    assert [x["step"] for x in mon] == [2, 4, 6]
    assert mon[0]["symptoms"]  # the baseline check records what it sees, without a warning
    assert {"diversity", "duplicates", "classes_covered", "kl_to_uniform", "histogram", "symptoms"} <= set(mon[0])


STOP_ARGS = ["-q", "train", "--arch", "dcgan", "--ngf", "8", "--ndf", "8", "--nz", "8", "--limit", "128", "-b", "16",
             "--steps", "12", "--monitor-every", "4", "--checkpoint-every", "2", "--sample-every", "0", "--device", "cpu",
             "--stop-on-collapse"]


@pytest.fixture
def stop_early(monkeypatch):
    """--stop-on-collapse acts from step 0 (gan train: from step 200), for runs of a few steps."""
    from gancli.engine import hooks

    monkeypatch.setattr(hooks, "STOP_FROM_STEP", 0)


def test_stop_on_collapse_never_stops_before_step_200_nor_with_the_monitor_off(mnist_dir, home):
    """Issue #26: --monitor-every 1 --stop-on-collapse stopped a new run at step 2 (its second
    check, a generator two steps old); now checks before step 200 warn but do not stop."""
    args = ["-q", "train", "--arch", "mlp", "--clusters", "0", "--limit", "256", "-b", "32", "--steps", "5",
            "--sample-every", "0", "--stop-on-collapse"]
    r = runner.invoke(app, [*args, "--monitor-every", "1"])
    assert r.exit_code == 0, r.output
    assert "mode collapse? " in r.output and "stopped" not in r.output
    r = runner.invoke(app, [*args, "--monitor-every", "0"])
    assert r.exit_code == 2 and "--stop-on-collapse needs the collapse monitor" in r.output


@pytest.mark.usefixtures("stop_early")
def test_stop_on_collapse_names_no_good_checkpoint_when_every_check_saw_symptoms(mnist_dir, home):
    """A DCGAN a few steps old is its constant initialisation at every check (steps 4 and 8):
    no checkpoint is good, and the message says so rather than naming the newest one."""
    r = runner.invoke(app, STOP_ARGS)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "stopped at step 8 on mode collapse" in r.output
    assert "no checkpoint is known good: every check saw symptoms, the first (step 4) included; newest checkpoint: " \
           "step-6.safetensors" in r.output


@pytest.mark.usefixtures("stop_early")
def test_stop_on_collapse_names_the_checkpoint_of_the_last_clean_check(mnist_dir, home, monkeypatch):
    """Checks at steps 4 and 8 clean (scores stubbed), 12 collapsed: the last good checkpoint is the
    newest one at or before step 8, not the newest one written (step 10)."""
    import gancli.metrics.monitor as monitor_mod

    real_symptoms, calls = monitor_mod.symptoms, []

    def stubbed(scores):
        calls.append(1)
        return [] if len(calls) <= 2 else real_symptoms(scores)

    monkeypatch.setattr(monitor_mod, "symptoms", stubbed)
    r = runner.invoke(app, [*STOP_ARGS[:STOP_ARGS.index("--steps") + 1], "16", *STOP_ARGS[STOP_ARGS.index("--steps") + 2:]])
    assert r.exit_code == 1, r.output
    assert "stopped at step 12 on mode collapse" in r.output
    assert "last good checkpoint: step-8.safetensors (the last check without symptoms was at step 8)" in r.output


def test_monitor_draws_no_global_random_numbers(tiny_data, tmp_path):
    """Training with the monitor checking every step gives the same weights as without it."""
    from gancli.config import LossConfig, ModelConfig, RunConfig, TrainConfig
    from gancli.engine.launch import build_trainer
    from gancli.runs import RunStore

    def cfg(every):
        return RunConfig(data=DataConfig(limit=128), model=ModelConfig(arch="mlp", nz=8), loss=LossConfig("bce"),
                         train=TrainConfig(batch_size=16, steps=4, seed=3, device="cpu", sample_every_steps=0,
                                           checkpoint_every_steps=0, monitor_every_steps=every))

    store = RunStore(tmp_path)
    a = build_trainer(cfg(1), store.create(), torch.device("cpu"), tiny_data)
    a.fit()
    b = build_trainer(cfg(0), store.create(), torch.device("cpu"), tiny_data)
    b.fit()
    for (k, v), w in zip(a.G.state_dict().items(), b.G.state_dict().values()):
        assert torch.equal(v, w), k
    assert any(r["kind"] == "monitor" for r in a.run.read_metrics())


def test_resume_keeps_monitor_records_and_state_bitwise(mnist_dir, tmp_path):
    """4 steps + resume + 4 steps == 8 steps straight: the same weights, the same monitor
    records, and the resumed run does not warn again about a symptom it already reported."""
    common = ["--arch", "dcgan", "--ngf", "8", "--ndf", "8", "--nz", "8", "--limit", "128", "-b", "16",
              "--monitor-every", "1", "--checkpoint-every", "4", "--sample-every", "0", "--device", "cpu"]
    straight = runner.invoke(app, ["--home", str(tmp_path / "a"), "train", *common, "--steps", "8"])
    assert straight.exit_code == 0, straight.output
    first = runner.invoke(app, ["--home", str(tmp_path / "b"), "train", *common, "--steps", "4"])
    again = runner.invoke(app, ["--home", str(tmp_path / "b"), "train", "--resume", "latest", "--steps", "8"])
    assert again.exit_code == 0, again.output
    assert "mode collapse?" in first.output and "mode collapse?" not in again.output

    def monitor_rows(home):
        rows = [json.loads(x) for x in (home / "runs" / "run-1" / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k not in ("time", "seconds")} for r in rows if r["kind"] == "monitor"]

    assert monitor_rows(tmp_path / "a") == monitor_rows(tmp_path / "b")
    from gancli.checkpoint import load_checkpoint

    a = load_checkpoint(tmp_path / "a" / "runs" / "run-1" / "checkpoints" / "step-8.safetensors")
    b = load_checkpoint(tmp_path / "b" / "runs" / "run-1" / "checkpoints" / "step-8.safetensors")
    for k in a.tensors:
        assert torch.equal(a.tensors[k], b.tensors[k]), k


# -- the verdict on a checkpoint, from the monitor's records --------------------------------
def _check(step, *symptoms_, baseline=False):
    return {"kind": "monitor", "step": step, "symptoms": list(symptoms_), **({"baseline": True} if baseline else {})}


def test_verdict_of_a_step_comes_from_the_newest_check_at_or_before_it():
    from gancli.metrics.monitor import last_good_checkpoint, verdict

    records = [_check(500, "low diversity", baseline=True), {"kind": "train", "step": 500, "loss_d": 1.0},
               _check(1000), _check(1500), _check(2000, "classes missing"), _check(2500, "low diversity", "classes missing")]
    assert verdict(records, 400) is None  # no check yet
    assert verdict(records, 999) is None  # only the baseline: an immature G is not a collapsed one
    healthy = verdict(records, 1700)
    assert healthy.step == 1500 and not healthy.collapsed and healthy.clean_step == 1500
    v = verdict(records, 2600)
    assert v.collapsed and v.step == 2500 and v.symptoms == ("low diversity", "classes missing")
    assert v.since == 2000 and v.clean_step == 1500
    assert last_good_checkpoint([1000, 2000, 2600], v.clean_step) == 1000
    assert last_good_checkpoint([2000, 2600], v.clean_step) is None
    assert last_good_checkpoint([1000], None) is None


def test_verdict_counts_a_clean_baseline_but_not_a_collapsed_one():
    from gancli.metrics.monitor import verdict

    assert verdict([_check(4, baseline=True), _check(8, "low diversity")], 8).clean_step == 4
    v = verdict([_check(4, "low diversity", baseline=True), _check(8, "low diversity")], 8)
    assert v.collapsed and v.clean_step is None and v.since == 8


def test_run_that_ends_collapsed_says_so_keeps_its_last_good_checkpoint_and_sampling_warns(mnist_dir, home,
                                                                                            monkeypatch, tmp_path):
    """Checks at steps 4 (baseline) and 8 clean (stubbed), 12 and the final one at 14 collapsed (a tiny
    DCGAN's EMA G is still its constant initialisation): the end of training says so and names
    step-8, which --keep 2 does not prune; gan sample / export of the newest checkpoint warn and
    name --checkpoint 8; sampling step 8 does not warn."""
    import gancli.metrics.monitor as monitor_mod

    real_symptoms, calls = monitor_mod.symptoms, []

    def stubbed(scores):
        calls.append(1)
        return [] if len(calls) <= 2 else real_symptoms(scores)

    monkeypatch.setattr(monitor_mod, "symptoms", stubbed)
    r = runner.invoke(app, ["train", "--arch", "dcgan", "--ngf", "8", "--ndf", "8", "--nz", "8", "--limit", "128",
                            "-b", "16", "--steps", "14", "--monitor-every", "4", "--checkpoint-every", "2", "--keep", "2",
                            "--sample-every", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "run-1 ended with mode collapse: the monitor's last check (step 14) saw " in r.output
    assert ("last good checkpoint: step-8.safetensors (the last check without symptoms was at step 8); "
            "sample it with --checkpoint 8") in r.output
    run_dir = home / "runs" / "run-1"
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step-*")) == [
        "step-12.safetensors", "step-14.safetensors", "step-8.safetensors"]
    mon = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if '"monitor"' in x]
    assert [(m["step"], bool(m.get("baseline"))) for m in mon] == [(4, True), (8, False), (12, False), (14, False)]

    monkeypatch.setattr(monitor_mod, "symptoms", real_symptoms)
    r = runner.invoke(app, ["sample", "latest", "-n", "4", "-o", str(tmp_path / "a.png")])
    assert r.exit_code == 0, r.output
    assert "run-1 step-14.safetensors: the collapse monitor saw mode collapse (" in r.output
    assert "at step 14, since step 12; the last checkpoint without symptoms is step 8: pass --checkpoint 8" in r.output
    r = runner.invoke(app, ["export", "latest", "--format", "safetensors", "-o", str(tmp_path / "g")])
    assert r.exit_code == 0 and "pass --checkpoint 8" in r.output, r.output
    r = runner.invoke(app, ["sample", "latest", "--checkpoint", "8", "-n", "4", "-o", str(tmp_path / "b.png")])
    assert r.exit_code == 0 and "warning" not in r.output and "collapse monitor" not in r.output, r.output


def test_advice_leaves_out_what_the_run_already_does():
    """A hinge + spectral norm run that collapses was told to try hinge + spectral norm."""
    from gancli.metrics.monitor import ADVICE, advice

    assert advice("bce", False, "") == ADVICE
    assert advice("hinge", True, "") == "try a lower --lr-g/--lr-d, or --augment diffaug"
    assert advice("hinge", False, "") == ADVICE  # hinge without spectral norm: the pair is still advice
    assert advice("hinge", True, "diffaug:color,translation") == "try a lower --lr-g/--lr-d"
    assert advice("lsgan", False, "diffaug") == "try --loss hinge --spectral-norm, or a lower --lr-g/--lr-d"
