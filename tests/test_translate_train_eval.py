"""``gan train --eval-every`` on image-to-image runs (issue #24): the run's outputs are scored
during training with ``gan evaluate``'s protocol (same images, same corruption seed), every
figure lands in metrics.jsonl, the best checkpoint is kept, resume stays exact, and a run that
cannot be scored (no test pairs) is refused before its run directory exists. CPU, tiny nets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import assert_same, write_shapes, write_unpaired_mnist
from gancli.checkpoint import load_checkpoint
from gancli.cli import app
from gancli.config import RunConfig, TaskConfig
from gancli.metrics.translation_eval import TranslationTrainingEvaluator
from gancli.models import build_generator
from gancli.runs import Run

runner = CliRunner()
FIGURES = {"psnr", "ssim", "l1"}


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def evals(run: Path) -> list[dict]:
    return [r for r in Run(run).read_metrics() if r.get("kind") == "eval"]


def evaluate_json(run: Path) -> dict:
    r = gan("evaluate", run, "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.strip().splitlines()[-1])


def inpaint(folder: Path, steps: int, *extra) -> list:
    return ["train", "--task", "inpaint", "--dataset", folder, "--image-size", 32, "--channels", 1,
            "--batch-size", 8, "--ngf", 4, "--ndf", 4, "--steps", steps, "--seed", 3, "--device", "cpu",
            "--sample-every", 0, "--checkpoint-every", 2, "--keep", 0, "--eval-every", 2,
            "--eval-samples", 2048, *extra]


def test_inpaint_run_records_what_gan_evaluate_measures_and_keeps_the_best(tmp_path, home):
    folder = write_shapes(tmp_path / "shapes")
    r = gan(*inpaint(folder, 4))
    assert r.exit_code == 0, r.output
    run = home / "runs" / "run-1"
    records = evals(run)
    assert [x["step"] for x in records] == [2, 4]
    for x in records:  # 24 images: too few for a Fréchet distance, so PSNR is the headline
        assert FIGURES <= set(x) and "fd_lenet" not in x and "fid" not in x
        assert x["results"][0]["protocol"]["num_generated"] == 24
        assert x["results"][0]["protocol"]["task"] == "inpaint"
    assert "psnr" in r.output and "best" in r.output
    best = max(records, key=lambda x: x["psnr"])
    assert load_checkpoint(run / "checkpoints" / "best.safetensors").step == best["step"]
    # the last training evaluation is gan evaluate's figure of the final checkpoint (same images, seed, weights)
    doc = evaluate_json(run)
    assert doc["step"] == 4
    for name in FIGURES:
        assert math.isclose(doc["rows"]["run"][name], records[-1][name], rel_tol=1e-4, abs_tol=1e-6), name


def test_evaluation_during_training_leaves_resume_exact(tmp_path, home):
    folder = write_shapes(tmp_path / "shapes")
    assert gan(*inpaint(folder, 4)).exit_code == 0
    assert gan(*inpaint(folder, 2)).exit_code == 0
    r = gan("train", "--resume", "run-2", "--steps", 4)
    assert r.exit_code == 0, r.output
    straight = load_checkpoint(home / "runs" / "run-1" / "checkpoints" / "step-4.safetensors")
    resumed = load_checkpoint(home / "runs" / "run-2" / "checkpoints" / "step-4.safetensors")
    for part in ("generator", "discriminator", "generator_ema", "optim_g", "rng"):
        assert_same(straight.part(part), resumed.part(part), part)
    assert [x["psnr"] for x in evals(home / "runs" / "run-1")] == [x["psnr"] for x in evals(home / "runs" / "run-2")]


def test_unpaired_run_is_scored_a_to_b_on_its_test_pairs_with_label_preservation(tmp_path, home):
    root = write_unpaired_mnist(tmp_path / "um", 16)
    r = gan("train", "--task", "unpaired", "--dataset", root, "--batch-size", 4, "--ngf", 4, "--ndf", 4,
            "--steps", 2, "--seed", 5, "--device", "cpu", "--sample-every", 0, "--keep", 0,
            "--eval-every", 1, "--eval-samples", 2048)
    assert r.exit_code == 0, r.output
    run = home / "runs" / "run-1"
    records = evals(run)
    assert [x["step"] for x in records] == [1, 2]
    assert FIGURES | {"label_preservation"} <= set(records[-1])
    assert records[-1]["results"][0]["protocol"]["direction"] == "a2b"
    doc = evaluate_json(run)
    for name in FIGURES | {"label_preservation"}:
        assert math.isclose(doc["rows"]["run"][name], records[-1][name], rel_tol=1e-4, abs_tol=1e-6), name


def test_a_paired_run_without_test_pairs_is_refused_before_its_run_directory(tmp_path, home):
    root = tmp_path / "pp"
    rng = np.random.default_rng(0)
    for d in ("A", "B"):
        (root / d).mkdir(parents=True)
    for i in range(8):
        a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(a).save(root / "A" / f"{i}.png")
        Image.fromarray(255 - a).save(root / "B" / f"{i}.png")
    r = gan("train", "--task", "paired", "--dataset", root, "--image-size", 16, "--batch-size", 4, "--ngf", 4,
            "--ndf", 4, "--steps", 2, "--device", "cpu", "--eval-every", 1, "--eval-samples", 2048)
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.strip().splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: --eval-every scores a --task paired run on test pairs")
    assert str(root / "test" / "A") in errors[0] and "--pairs" not in errors[0] and "Traceback" not in r.output
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_the_evaluator_restores_the_generators_mode_and_scores_the_a_to_b_generator(tmp_path):
    folder = write_shapes(tmp_path / "shapes")
    from gancli.resolve import build_config

    cfg = build_config({"task": "inpaint", "dataset": str(folder), "image_size": 32, "channels": 1, "ngf": 4,
                        "ndf": 4, "steps": 2, "batch_size": 8})
    ev = TranslationTrainingEvaluator(cfg, tmp_path, 2048, "cpu", batch_size=7)
    G = build_generator(cfg.model).train()
    first = ev(G, {"run": "x", "step": 3, "weights": "raw"})
    assert G.training
    assert first.values == {"psnr": pytest.approx(first.figures["psnr"], abs=1e-5)}
    assert first.protocol["step"] == 3 and first.protocol["num_generated"] == 24
    # the figures are the outputs' own: another generator scores otherwise, the same one the same
    torch.manual_seed(1)
    other = ev(build_generator(cfg.model), {"run": "x", "step": 3, "weights": "raw"})
    assert other.figures["l1"] != first.figures["l1"]
    assert ev(G, {"run": "x", "step": 3, "weights": "raw"}).figures == first.figures


def test_monitor_every_with_a_task_points_to_eval_every(tmp_path, home):
    folder = write_shapes(tmp_path / "shapes")
    r = gan(*inpaint(folder, 2, "--monitor-every", 5))
    assert r.exit_code == 2
    assert "--monitor-every 5 is not available with --task inpaint" in r.output and "--eval-every" in r.output
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())
    assert RunConfig().task == TaskConfig()
