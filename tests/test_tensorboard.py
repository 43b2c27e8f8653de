"""`gan train --tensorboard`: the event files read back with TensorBoard's EventAccumulator
hold the scalars of metrics.jsonl at their steps, the fixed-z grids and the hparams."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gancli.cli import app
from gancli.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from gancli.engine import tensorboard as tb
from gancli.engine.launch import build_trainer
from gancli.resolve import build_config
from gancli.runs import RunStore

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

TINY = ["--arch", "mlp", "--limit", "256", "--batch-size", "32", "--nz", "16", "--ngf", "8", "--ndf", "8",
        "--device", "cpu", "--seed", "5"]


def gan(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def events(run_dir) -> EventAccumulator:
    ea = EventAccumulator(str(run_dir / tb.TENSORBOARD_DIR), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    ea.Reload()
    return ea


def scalars(ea: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def records(run_dir, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("kind") == kind]


def expected(rows: list[dict], key: str) -> list[tuple[int, float]]:
    """What TensorBoard stores of ``key``: float32."""
    return [(r["step"], float(np.float32(r[key]))) for r in rows if key in r]


def hparams_of(ea: EventAccumulator) -> tuple[dict, list[str]]:
    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    values = {k: v.string_value if v.HasField("string_value") else v.number_value
              for k, v in start.session_start_info.hparams.items()}
    return values, [m.name.tag for m in exp.experiment.metric_infos]


def test_train_writes_scalars_images_and_hparams_without_changing_training(home, mnist_dir):
    common = ["train", *TINY, "--steps", "6", "--log-every", "2", "--sample-every", "3", "--monitor-every", "3"]
    r = gan(*common, "--tensorboard")
    assert r.exit_code == 0, r.output
    run_dir = home / "runs" / "run-1"
    assert f"view them with: tensorboard --logdir {run_dir / 'tensorboard'}" in r.output  # issue #27
    ea = events(run_dir)
    train = records(run_dir, "train")
    assert [row["step"] for row in train] == [2, 4, 6]
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "lr_g", "lr_d"):
        assert scalars(ea, f"train/{key}") == expected(train, key), key
    assert scalars(ea, "perf/img_per_sec") == expected(train, "img_per_sec")
    assert not any(tag.endswith(("/step", "/epoch", "/time")) for tag in ea.Tags()["scalars"])

    monitor = records(run_dir, "monitor")
    assert [row["step"] for row in monitor] == [3, 6]
    for key in ("diversity", "duplicates", "classes_covered", "kl_to_uniform"):
        assert scalars(ea, f"monitor/{key}") == expected(monitor, key), key
    assert scalars(ea, "monitor/symptoms") == [(row["step"], len(row["symptoms"])) for row in monitor]

    images = ea.Images("samples/fixed_z")
    assert [im.step for im in images] == [3, 6]
    for im in images:  # the very pixels of samples/step-<S>.png
        png = Image.open(run_dir / "samples" / f"step-{im.step}.png").convert("RGB")
        assert (im.width, im.height) == png.size == (8 * 30 + 2, 8 * 30 + 2)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(im.encoded_image_string)).convert("RGB")),
                              np.asarray(png))

    hp, metric_tags = hparams_of(ea)
    assert hp["model.arch"] == "mlp" and hp["train.steps"] == 6 and hp["optim.lr_g"] == pytest.approx(2e-4)
    assert sorted(metric_tags) == ["hparams/loss_d", "hparams/loss_g"]
    assert scalars(ea, "hparams/loss_g") == expected(train[-1:], "loss_g")

    # the hook used no RNG: the same run without it trains the same weights
    r = gan(*common)
    assert r.exit_code == 0, r.output
    assert not (home / "runs" / "run-2" / tb.TENSORBOARD_DIR).exists()
    from safetensors.torch import load_file

    a = load_file(run_dir / "checkpoints" / "step-6.safetensors")
    b = load_file(home / "runs" / "run-2" / "checkpoints" / "step-6.safetensors")
    for k in a:
        if k.startswith(("generator", "discriminator")):
            assert torch.equal(a[k], b[k]), k


def test_resume_logs_to_the_same_directory_without_duplicate_points(home, mnist_dir):
    r = gan("train", *TINY, "--steps", "6", "--log-every", "1", "--sample-every", "2", "--monitor-every", "0",
            "--checkpoint-every", "3", "--keep", "0", "--tensorboard")
    assert r.exit_code == 0, r.output
    run_dir = home / "runs" / "run-1"
    (run_dir / "checkpoints" / "step-6.safetensors").unlink()  # as if the process died before its last checkpoint
    r = gan("train", "--resume", "run-1", "--steps", "8")  # the config keeps --tensorboard
    assert r.exit_code == 0, r.output
    assert len(list((run_dir / tb.TENSORBOARD_DIR).glob("events.out.tfevents.*"))) == 2
    ea = events(run_dir)
    train = records(run_dir, "train")
    assert [row["step"] for row in train] == list(range(1, 9))
    for key in ("loss_d", "loss_g"):  # steps 4-6 of the first process were purged, not shown twice
        assert scalars(ea, f"train/{key}") == expected(train, key), key
    assert [im.step for im in ea.Images("samples/fixed_z")] == [2, 4, 6, 8]
    assert [step for step, _ in scalars(ea, "hparams/loss_d")] == [8]


class FakeEvaluator:
    """Stands in for TrainingEvaluator: a number that depends on G's weights, no RNG, no data."""

    headline = "fd_lenet"

    def __call__(self, G, describe):
        value = float(sum(p.detach().abs().sum() for p in G.parameters())) / 1000
        results = [{"metric": "fd_lenet", "value": value},
                   {"metric": "kid", "value": value / 10, "std": 0.5},
                   {"metric": "classes_covered", "value": 7, "histogram": [1] * 10, "kl_to_uniform": 0.25}]
        return SimpleNamespace(values={"fd_lenet": value}, results=results, seconds=0.0,
                               protocol={"num_generated": 4})


def test_eval_records_become_eval_scalars_and_the_best_an_hparams_metric(tmp_path, tiny_data):
    cfg = RunConfig(data=DataConfig(limit=128), model=ModelConfig(arch="mlp", nz=8, ngf=8, ndf=8),
                    train=TrainConfig(batch_size=16, steps=6, seed=7, device="cpu", log_every_steps=3,
                                      sample_every_steps=0, checkpoint_every_steps=0, keep_checkpoints=0,
                                      eval_every_steps=2, monitor_every_steps=0, tensorboard=True))
    run = RunStore(tmp_path).create()
    build_trainer(cfg, run, torch.device("cpu"), tiny_data, evaluator=FakeEvaluator()).fit()
    ea = events(run.path)
    evals = [r for r in run.read_metrics() if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [2, 4, 6]
    for metric in ("fd_lenet", "kid", "classes_covered"):
        got = scalars(ea, f"eval/{metric}")
        want = [(r["step"], float(np.float32(next(x["value"] for x in r["results"] if x["metric"] == metric))))
                for r in evals]
        assert got == want, metric
    assert scalars(ea, "eval/kid_std") == [(2, 0.5), (4, 0.5), (6, 0.5)]
    assert scalars(ea, "eval/kl_to_uniform") == [(2, 0.25), (4, 0.25), (6, 0.25)]
    best = min(r["results"][0]["value"] for r in evals)
    assert scalars(ea, "hparams/best_fd_lenet") == [(6, float(np.float32(best)))]
    _, metric_tags = hparams_of(ea)
    assert "hparams/best_fd_lenet" in metric_tags
    assert [step for step, _ in scalars(ea, "train/loss_d")] == [3, 6]


def test_tag_mapping_of_records():
    assert tb.train_scalars({"kind": "train", "step": 4, "epoch": 0.5, "loss_d": 1.0, "gp": 0.1, "lr_g": 1e-4,
                             "img_per_sec": 99.0, "time": "t"}) == {
        "train/loss_d": 1.0, "train/gp": 0.1, "train/lr_g": 1e-4, "perf/img_per_sec": 99.0}
    assert tb.monitor_scalars({"kind": "monitor", "step": 3, "diversity": 0.8, "duplicates": 0.0,
                               "histogram": [1, 2], "symptoms": ["low diversity"], "seconds": 0.1}) == {
        "monitor/diversity": 0.8, "monitor/duplicates": 0.0, "monitor/symptoms": 1}
    flat = tb.flat_hparams(RunConfig().to_dict())
    assert flat["train.tensorboard"] is False and flat["model.arch"] == "dcgan" and "train.epochs" not in flat


def test_missing_package_is_one_line_before_the_run_exists(home, monkeypatch):
    monkeypatch.setattr(tb, "tensorboard_available", lambda: False)
    r = CliRunner().invoke(app, ["train", "--arch", "mlp", "--steps", "1", "--device", "cpu", "--tensorboard"])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert lines == [f"error: {tb.MISSING_MESSAGE}"], r.output
    assert "Traceback" not in r.output
    assert not (home / "runs").exists()
    r = CliRunner().invoke(app, ["train", "--arch", "mlp", "--steps", "1", "--device", "cpu", "--dry-run"])
    assert r.exit_code == 0, r.output  # only --tensorboard needs the package


def test_installed_but_broken_package_is_refused_before_the_run_exists(home, mnist_dir, monkeypatch):
    """Issue #26: tensorboard found but PyTorch's writer does not import (a protobuf mismatch,
    say): the error came after run-1 was made; now it is exit 2 with no run directory."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` of it raises ImportError
    r = CliRunner().invoke(app, ["train", "--arch", "mlp", "--steps", "1", "--device", "cpu", "--limit", "256",
                                 "--clusters", "0", "--tensorboard"])
    assert r.exit_code == 2 and "it is installed but does not import" in r.output, r.output
    assert "Traceback" not in r.output and not (home / "runs").exists()


def test_missing_package_error_imports_no_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom gancli.cli import app\n"
            "import gancli.engine.tensorboard as tb\ntb.tensorboard_available = lambda: False\n"
            "r = CliRunner().invoke(app, ['train', '--steps', '1', '--tensorboard'])\n"
            "print(r.exit_code, 'torch' in sys.modules)\nprint(r.output)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("2 False"), out
    assert tb.MISSING_MESSAGE in out


def test_option_round_trips_the_config_and_dry_run_shows_it(home):
    r = CliRunner().invoke(app, ["train", "--arch", "mlp", "--steps", "3", "--tensorboard", "--dry-run"])
    assert r.exit_code == 0, r.output
    cfg = RunConfig.from_json(r.output)
    assert cfg.train.tensorboard is True
    assert RunConfig.from_json(cfg.to_json()) == cfg
    r = CliRunner().invoke(app, ["train", "--arch", "mlp", "--steps", "3", "--dry-run"])
    assert json.loads(r.output)["train"]["tensorboard"] is False
    # a config.json written before the option existed loads with it off
    old = cfg.to_dict()
    del old["train"]["tensorboard"]
    assert RunConfig.from_dict(old).train.tensorboard is False
    # it may be switched on or off when a run is resumed (it does not change the training)
    assert build_config({"tensorboard": False}, base=cfg).train.tensorboard is False
    r = CliRunner().invoke(app, ["train", "--help-all"], env={"COLUMNS": "300"})
    assert "pip install 'gancli[tensorboard]'" in r.output
