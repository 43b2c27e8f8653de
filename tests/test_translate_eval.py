"""``gan evaluate`` on an image-to-image run (issue #24 item 4): PSNR / SSIM / L1 / FD / label
preservation of the run beside the identity baseline, ``--baseline RUN`` and the real targets, on
the held-out split corrupted at a fixed evaluation seed; bad baselines and options refused. CPU,
tiny nets, a few training steps on the first MNIST images (the figures are not meant to be good)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import require_mnist, write_shapes
from gancli.cli import app
from gancli.config import DataConfig
from gancli.data import load_split
from gancli.metrics.translation_eval import (CORRUPT_CHUNK, ROWS, SEED_PURPOSE, TranslationEvalSettings,
                                             evaluate_translation, identity_output,
                                             repaired_sets)
from gancli.runs import Run
from gancli.seeding import derive_seed
from gancli.translate import quality
from gancli.translate.corrupt import HOLE_FILL
from gancli.translate.load import load_translator, translation_task

runner = CliRunner()
N = 64
FIGURES = {"psnr", "ssim", "l1", "label_preservation"}


def gan(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


def one_error_line(result) -> str:
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip() and not ln.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


MNIST_TINY = ["--dataset", "mnist", "--limit", 64, "--batch-size", 8, "--ngf", 4, "--ndf", 4, "--seed", 3,
              "--device", "cpu", "--sample-every", 2, "--checkpoint-every", 2, "--keep", 0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run directories trained once for the module: ``inpaint`` (2 steps), ``l1only`` (inpaint,
    --adv-weight 0), ``superres`` (--scale 4) and ``generate`` (dcgan), all on the first MNIST images."""
    data = require_mnist()
    home = tmp_path_factory.mktemp("home")
    env = {"GANCLI_HOME": str(home), "GANCLI_DATA_DIR": str(data), "NO_COLOR": "1"}
    for args in (["--task", "inpaint", "--steps", 2],
                 ["--task", "inpaint", "--adv-weight", 0, "--steps", 2],
                 ["--task", "superres", "--scale", 4, "--steps", 2],
                 ["--steps", 1, "--nz", 16]):
        r = gan("train", *MNIST_TINY, *args, env=env)
        assert r.exit_code == 0, r.output
    return {name: home / "runs" / f"run-{i}" for i, name in enumerate(("inpaint", "l1only", "superres", "generate"), 1)}


def evaluate_json(*args):
    r = gan("evaluate", *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_json_holds_every_row_and_the_protocol_and_is_recorded_in_the_run(runs):
    before = len(Run(runs["inpaint"]).read_metrics())
    doc = evaluate_json(runs["inpaint"], "-n", N, "--baseline", runs["l1only"])
    assert set(doc) >= {"kind", "task", "options", "step", "protocol", "run", "baseline", "rows", "notes", "seconds",
                        "metrics_file"}
    assert (doc["kind"], doc["task"], doc["options"], doc["step"]) == ("translation", "inpaint",
                                                                       {"mask": "box", "mask_size": 0}, 2)
    p = doc["protocol"]
    assert p["images"] == {"dataset": "mnist", "split": "test", "held_out": True}
    assert (p["num"], p["seed"], p["corruption_seed"], p["corrupt_chunk"]) == (N, 0, derive_seed(0, SEED_PURPOSE),
                                                                               CORRUPT_CHUNK)
    assert p["fd"] is None and any("too few for a Fréchet distance" in n for n in doc["notes"])  # 64 < 2048
    assert doc["run"]["weights"] == "ema" and doc["run"]["step"] == 2
    assert doc["baseline"]["checkpoint"].startswith(str(runs["l1only"]))
    assert tuple(doc["rows"]) == ROWS == ("run", "identity", "baseline", "real")
    for row in ("run", "identity", "baseline"):
        assert set(doc["rows"][row]) == FIGURES, row
        assert all(isinstance(v, float) and math.isfinite(v) for v in doc["rows"][row].values()), row
    assert doc["rows"]["run"] != doc["rows"]["baseline"]  # two different generators
    assert set(doc["rows"]["real"]) == {"label_preservation"}
    assert doc["rows"]["real"]["label_preservation"] > 0.9  # the LeNet reads real test digits
    assert doc["rows"]["identity"]["label_preservation"] < doc["rows"]["real"]["label_preservation"]  # holes hurt

    records = Run(runs["inpaint"]).read_metrics()
    assert len(records) == before + 1
    rec = records[-1]
    assert (rec["kind"], rec["step"], rec["task"]) == ("eval", 2, "inpaint")
    assert rec["rows"] == doc["rows"] and rec["psnr"] == doc["rows"]["run"]["psnr"]
    assert {r["metric"] for r in rec["results"]} == FIGURES


def test_figures_are_those_of_the_corrupted_inputs_and_outputs(runs):
    """identity PSNR == quality.psnr(corrupted input, clean); the run row is G's repair of the same inputs."""
    doc = evaluate_json(runs["inpaint"], "-n", N)
    translator = load_translator(runs["inpaint"])
    data = load_split(DataConfig(dataset="mnist", split="test", limit=N), require_mnist())
    clean = data.images.float() / 127.5 - 1
    source, extra = translator.corrupt(clean, derive_seed(0, SEED_PURPOSE), 0)
    damaged = source[:, :1]
    assert doc["rows"]["identity"]["psnr"] == pytest.approx(quality.psnr(damaged, clean), abs=1e-6)
    assert doc["rows"]["identity"]["l1"] == pytest.approx(quality.l1_distance(damaged, clean), abs=1e-6)
    assert doc["rows"]["run"]["ssim"] == pytest.approx(quality.ssim(translator.repair(source, extra), clean), abs=1e-6)
    assert doc["rows"]["run"]["label_preservation"] == pytest.approx(
        quality.label_preservation(translator.repair(source, extra), data.labels))
    assert "baseline" not in doc["rows"] and doc["baseline"] is None

    other = evaluate_json(runs["inpaint"], "-n", N, "--seed", 1)  # another seed, other holes
    assert other["protocol"]["corruption_seed"] == derive_seed(1, SEED_PURPOSE)
    assert other["rows"]["identity"]["psnr"] != doc["rows"]["identity"]["psnr"]
    assert other["rows"]["real"] == doc["rows"]["real"]  # the same clean digits


def test_inpaint_outputs_keep_the_known_pixels_and_do_not_depend_on_batch_size(runs):
    translator = load_translator(runs["inpaint"])
    images = load_split(DataConfig(dataset="mnist", split="test", limit=CORRUPT_CHUNK + 20), require_mnist()).images
    seed = derive_seed(0, SEED_PURPOSE)
    clean, sets = repaired_sets(translator, images, seed, batch_size=64)
    holes = torch.cat([translator.corrupt(clean[i:i + CORRUPT_CHUNK], seed, k).extra["mask"]
                       for k, i in enumerate(range(0, len(clean), CORRUPT_CHUNK))]) > 0.5
    known = ~holes.expand_as(clean)
    assert holes.any() and known.any()
    assert torch.equal(sets["run"][known], clean[known])  # keep-known: the output is the target outside the holes
    assert not torch.equal(sets["run"][~known], clean[~known])  # G fills the holes (an untrained G, badly)
    assert torch.all(sets["identity"][~known] == HOLE_FILL)  # the damaged image, mask channel dropped
    _, again = repaired_sets(translator, images, seed, batch_size=7)
    assert torch.allclose(again["run"], sets["run"], atol=1e-5) and torch.equal(again["identity"], sets["identity"])


def test_fd_lenet_of_every_row_from_2048_images(runs):
    report = evaluate_translation(runs["superres"], TranslationEvalSettings(num=2048, batch_size=512),
                                  data_root=require_mnist(), device="cpu")
    rows, fd = report.doc["rows"], report.doc["protocol"]["fd"]
    assert fd["metric"] == "fd_lenet" and fd["protocol"] == "lenet" and len(fd["weights_sha256"]) == 64
    assert rows["run"]["fd_lenet"] > 0 and rows["identity"]["fd_lenet"] > 0
    assert rows["identity"]["fd_lenet"] != rows["run"]["fd_lenet"]
    assert report.doc["options"] == {"scale": 4, "upsample": "bicubic"} and not report.notes
    assert "metrics_file" not in report.doc  # no run given: nothing recorded


def test_a_baseline_of_another_task_or_a_generation_run_is_refused(runs):
    r = gan("evaluate", runs["inpaint"], "-n", N, "--baseline", runs["superres"])
    assert r.exit_code == 2
    assert "differs from the run evaluated in its task: superres vs inpaint" in one_error_line(r)
    r = gan("evaluate", runs["inpaint"], "-n", N, "--baseline", runs["generate"])
    assert r.exit_code == 2 and "is a generation run (--task generate)" in one_error_line(r)
    r = gan("evaluate", runs["generate"], "-n", N, "--baseline", runs["inpaint"])
    assert r.exit_code == 2 and "--baseline applies to image-to-image runs" in one_error_line(r)
    n = len(Run(runs["inpaint"]).read_metrics())
    for args, named in ((["--kid"], "--kid"), (["--cas"], "--cas"), (["--fast", "--pr"], "--pr, --fast"),
                        (["--no-cache"], "--no-cache")):
        r = gan("evaluate", runs["inpaint"], "-n", N, *args)
        line = one_error_line(r)
        assert r.exit_code == 2 and f"{named} apply to generation runs only" in line, (args, r.output)
    assert len(Run(runs["inpaint"]).read_metrics()) == n  # nothing recorded by refused commands


def test_pairs_and_direction_are_for_paired_and_unpaired_runs(runs, tmp_path):
    r = gan("evaluate", runs["inpaint"], "-n", N, "--pairs", tmp_path)
    assert r.exit_code == 2 and "--pairs applies to paired and unpaired runs" in one_error_line(r)
    r = gan("evaluate", runs["inpaint"], "-n", N, "--direction", "b2a")
    assert r.exit_code == 2 and "--direction applies to unpaired (CycleGAN) runs" in one_error_line(r)
    for flag, value in (("--pairs", tmp_path), ("--direction", "a2b")):
        r = gan("evaluate", runs["generate"], "-n", N, flag, value)
        assert r.exit_code == 2 and f"{flag} applies to image-to-image runs" in one_error_line(r)


def _translator(task="inpaint", options=None, dataset="mnist", channels=1, size=28):
    from types import SimpleNamespace

    data = SimpleNamespace(dataset=dataset, image_size=size)
    return SimpleNamespace(task=task, options=options or {"mask": "box", "mask_size": 0}, img_channels=channels,
                           config=SimpleNamespace(data=data))


@pytest.mark.parametrize("base, what", [
    (_translator(options={"mask": "free", "mask_size": 0}), "task options: {'mask': 'free'"),
    (_translator(dataset="fashion-mnist"), "dataset: fashion-mnist vs mnist"),
    (_translator(size=32), "images (channels x size): (1, 32) vs (1, 28)"),
    (_translator(channels=3), "images (channels x size): (3, 28) vs (1, 28)"),
])
def test_a_baseline_must_share_task_options_and_data(base, what):
    from gancli.errors import UsageError
    from gancli.metrics.translation_eval import _check_baseline

    _check_baseline(_translator(), _translator(), "run-2")  # the same: accepted
    with pytest.raises(UsageError, match="--baseline run-2 differs from the run evaluated in its ") as e:
        _check_baseline(_translator(), base, "run-2")
    assert what in str(e.value)


def test_real_picks_other_clean_images(runs):
    doc = evaluate_json(runs["inpaint"], "-n", 16, "--real", "mnist:train")
    assert doc["protocol"]["images"] == {"dataset": "mnist", "split": "train", "held_out": None}
    assert doc["protocol"]["num"] == 16 and "real" in doc["rows"]
    r = gan("evaluate", runs["inpaint"], "-n", 16, "--real", "mnist:validation")
    assert r.exit_code == 2 and "unknown split 'validation' for mnist" in one_error_line(r)


def test_table_shows_the_rows_with_directions(runs):
    r = gan("evaluate", runs["inpaint"], "-n", N, "--baseline", runs["l1only"])
    assert r.exit_code == 0, r.output
    assert "psnr ↑" in r.output and "l1 ↓" in r.output and "label_preservation ↑" in r.output
    for row in ("run (G's output)", "identity (the corrupted input)", "baseline (--baseline", "real (the clean"):
        assert row in r.output
    assert "64 clean images of mnist:test" in r.output and 'derive_seed(0, "eval-corrupt")' in r.output


def test_a_folder_run_is_scored_on_its_own_images_and_says_so(tmp_path, home):
    root = write_shapes(tmp_path / "shapes")
    r = gan("train", "--task", "inpaint", "--dataset", root, "--image-size", 32, "--channels", 1, "--batch-size", 8,
            "--ngf", 4, "--ndf", 4, "--steps", 2, "--device", "cpu", "--keep", 0)
    assert r.exit_code == 0, r.output
    doc = evaluate_json("latest")
    assert doc["protocol"]["images"]["held_out"] is False and doc["protocol"]["num"] == 24
    assert any("has no held-out split" in n for n in doc["notes"])
    assert list(doc["rows"]) == ["run", "identity"]  # no labels: no label preservation, no real row
    assert set(doc["rows"]["run"]) == {"psnr", "ssim", "l1"}
    checkpoint = Run(home / "runs" / "run-1").checkpoint_path("latest")
    assert translation_task(checkpoint) == "inpaint"


def test_identity_output_takes_the_image_channels():
    x = torch.arange(2 * 2 * 4 * 4, dtype=torch.float32).reshape(2, 2, 4, 4)
    assert torch.equal(identity_output(x, 1), x[:, :1])  # inpaint: damaged image + mask -> the image
    gray = x[:, :1]
    assert identity_output(gray, 3).shape == (2, 3, 4, 4) and torch.equal(identity_output(gray, 3)[:, 2], gray[:, 0])


def test_a_translator_bundle_evaluates_as_its_run(runs, tmp_path):
    """gan evaluate BUNDLE of an exported translator scores the same outputs as the run it came from
    (it does not fall into the generation path)."""
    bundle = tmp_path / "bundle"
    r = gan("export", runs["inpaint"], "--format", "safetensors", "-o", bundle)
    assert r.exit_code == 0, r.output
    from_bundle = evaluate_json(bundle, "-n", N)
    from_run = evaluate_json(runs["inpaint"], "-n", N)
    assert from_bundle["kind"] == "translation" and from_bundle["task"] == "inpaint"
    assert from_bundle["rows"] == from_run["rows"]
