"""``gan train --task paired`` (issue #24): pix2pix on a folder of image pairs, A/ and B/ matched
by file name or side-by-side A|B images (``--paired-layout ab``); exact resume; bad folders
refused in one line before any run directory; the image-to-image presets. CPU, tiny nets,
16 px PNGs written in tmp."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import assert_same
from gancli.checkpoint import load_checkpoint
from gancli.cli import app
from gancli.config import PAIRED_LAYOUTS, RunConfig, TaskConfig
from gancli.data import ImageData
from gancli.engine.launch import build_trainer, load_training_data
from gancli.resolve import build_config
from gancli.runs import RunStore
from gancli.translate import pairs

runner = CliRunner()
CPU = torch.device("cpu")
PARTS = ("generator", "discriminator", "generator_ema", "optim_g", "optim_d", "rng")
N_PAIRS = 12


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _pair_images(n: int = N_PAIRS, size: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` (A, B) RGB uint8 pairs: A random, B = 255 - A (so B's [-1, 1] image is -A's)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        out.append((a, 255 - a))
    return out


@pytest.fixture
def paired(tmp_path) -> Path:
    """A/xx.png and B/xx.png (some B as .bmp: names match without extension), 16x16 RGB."""
    root = tmp_path / "pairs"
    for d in ("A", "B"):
        (root / d).mkdir(parents=True)
    for i, (a, b) in enumerate(_pair_images()):
        Image.fromarray(a).save(root / "A" / f"{i:02d}.png")
        Image.fromarray(b).save(root / "B" / f"{i:02d}.{'bmp' if i % 3 == 0 else 'png'}")
    return root


@pytest.fixture
def ab_folder(tmp_path) -> Path:
    """pix2pix's layout: ROOT/train/xx.png, each 32x16, A the left half, B the right."""
    root = tmp_path / "facades"
    (root / "train").mkdir(parents=True)
    for i, (a, b) in enumerate(_pair_images()):
        Image.fromarray(np.concatenate([a, b], 1)).save(root / "train" / f"{i:02d}.png")
    return root


def tiny(root: Path, steps: int, *extra) -> list[str]:
    return ["train", "--task", "paired", "--dataset", root, "--image-size", 16, "--batch-size", 4, "--ngf", 4,
            "--ndf", 4, "--steps", steps, "--seed", 3, "--device", "cpu", "--log-every", 1, "--sample-every", 2,
            "--checkpoint-every", 2, "--keep", 0, *extra]


def _no_runs(home: Path) -> bool:
    return not (home / "runs").exists() or not any((home / "runs").iterdir())




def _parts(path: Path) -> dict[str, dict]:
    ckpt = load_checkpoint(path)
    return {name: ckpt.part(name) for name in PARTS}


# -- training through the CLI --------------------------------------------------------------------
def test_paired_folders_train_through_the_cli(paired, home):
    r = gan(*tiny(paired, 4))
    assert r.exit_code == 0, r.output
    assert "paired with unet" in r.output and f"({N_PAIRS} pairs, 3x16x16)" in r.output
    (run,) = RunStore(home).list()
    cfg = run.read_config()
    assert (cfg.task.name, cfg.task.paired_layout, cfg.model.arch) == ("paired", "folders", "unet")
    assert (cfg.model.img_channels, cfg.model.in_channels, cfg.model.img_resolution) == (3, 3, 16)
    assert (cfg.loss.l1_weight, cfg.optim.lr_g, cfg.optim.beta1) == (100.0, 2e-4, 0.5)
    records = [m for m in run.read_metrics() if m["kind"] == "train"]
    assert [m["step"] for m in records] == [1, 2, 3, 4]
    assert all(np.isfinite([m["loss_d"], m["loss_g"], m["l1"]]).all() for m in records)
    grid = np.asarray(Image.open(run.samples_dir / "step-4.png").convert("RGB"))
    assert grid.shape[:2] == (3 * 18 + 2, 8 * 18 + 2)  # input, output and target rows of 8 (2-px padding)
    # the grid's first input cell is A/00.png and its first target cell B/00.bmp (its pair)
    a0, b0 = _pair_images()[0]
    assert np.array_equal(grid[2:18, 2:18], a0) and np.array_equal(grid[2 + 36:18 + 36, 2:18], b0)
    assert json.loads(gan("runs", "list", "--json").output)[0]["task"] == "paired"


def test_each_batch_input_is_the_a_image_of_its_target(paired):
    """The step gathers A by the batch's labels (the pairs' indices): every input is its target's pair
    (here B = 255 - A, so input == -target in [-1, 1]), across epochs of shuffled batches."""
    cfg = build_config({"task": "paired", "dataset": str(paired), "image_size": 16, "batch_size": 4, "ngf": 4,
                        "ndf": 4, "steps": 6, "device": "cpu"})
    data = load_training_data(cfg, "/nonexistent")
    assert data.images.shape == data.inputs.shape == (N_PAIRS, 3, 16, 16)
    assert torch.equal(data.labels, torch.arange(N_PAIRS)) and data.classes == []
    assert torch.equal(data.inputs.int() + data.images.int(), torch.full_like(data.images, 255).int())
    from gancli.engine.parts import build_parts

    p = build_parts(cfg, CPU, data)
    step = p.task_step
    seen = set()
    for s in range(6):  # two epochs of 3 batches
        target, idx = p.batcher.batch(s)
        source = step.paired_inputs(idx, p.batcher.memory_format)
        torch.testing.assert_close(source, -target, atol=1e-6, rtol=0)
        seen |= set(idx.tolist())
    assert seen == set(range(N_PAIRS))
    torch.testing.assert_close(step.grid_input, -step.grid_target, atol=1e-6, rtol=0)


def test_ab_layout_trains_through_the_cli(ab_folder, home):
    r = gan(*tiny(ab_folder, 2, "--paired-layout", "ab"))
    assert r.exit_code == 0, r.output
    (run,) = RunStore(home).list()
    assert run.read_config().task.paired_layout == "ab"
    cfg = run.read_config()
    data = load_training_data(cfg, "/nonexistent")
    a0, b0 = _pair_images()[0]
    assert np.array_equal(data.inputs[0].permute(1, 2, 0).numpy(), a0)  # the left half
    assert np.array_equal(data.images[0].permute(1, 2, 0).numpy(), b0)  # the right half


def test_batch_size_one_trains_as_the_reference(paired, home):
    """pix2pix's facades recipe trains at batch 1: batch norm on a 1x1 bottleneck must not fail."""
    r = gan(*tiny(paired, 2, "--batch-size", 1))
    assert r.exit_code == 0, r.output


def test_resume_is_bitwise_identical_to_a_straight_run(paired, home):
    n = 3
    assert gan(*tiny(paired, 2 * n)).exit_code == 0  # run-1, straight
    assert gan(*tiny(paired, n)).exit_code == 0  # run-2: N steps...
    r = gan("train", "--resume", "run-2", "--steps", 2 * n)  # ...then N more in a fresh trainer
    assert r.exit_code == 0, r.output
    assert "resuming run-2 at step 3" in r.output
    store = RunStore(home)
    straight, resumed = (store.resolve(i).checkpoint_path(2 * n) for i in ("run-1", "run-2"))
    assert_same(_parts(straight), _parts(resumed))


def test_resume_comparison_fails_when_the_pairs_differ(paired, tmp_path):
    """Guard that the bitwise comparison can fail: the second half trained on other inputs differs."""
    cfg = build_config({"task": "paired", "dataset": str(paired), "image_size": 16, "batch_size": 4, "ngf": 4,
                        "ndf": 4, "steps": 4, "seed": 5, "device": "cpu", "log_every": 1, "sample_every": 0,
                        "checkpoint_every": 0})
    data = load_training_data(cfg, "/nonexistent")
    store = RunStore(tmp_path / "h")
    straight = build_trainer(cfg, store.create(), CPU, data)
    straight.fit()
    run = store.create()
    build_trainer(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=2)), run, CPU, data).fit()
    resumed = build_trainer(cfg, run, CPU, data)
    resumed.restore(load_checkpoint(run.checkpoint_path("latest")))
    resumed.parts.task_step.inputs = resumed.parts.task_step.inputs.flip(0)  # other pairs from step 2 on
    resumed.fit()
    a, b = straight.G.state_dict(), resumed.G.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_the_step_refuses_data_without_inputs(paired):
    cfg = build_config({"task": "paired", "dataset": str(paired), "image_size": 16, "batch_size": 4, "ngf": 4,
                        "ndf": 4, "steps": 2, "device": "cpu"})
    images = torch.zeros(N_PAIRS, 3, 16, 16, dtype=torch.uint8)
    from gancli.engine.steps import TranslateStep

    with pytest.raises(ValueError, match="--task paired needs ImageData.inputs"):
        TranslateStep(cfg, ImageData(images, torch.arange(N_PAIRS), []), CPU)


# -- bad input: one line, exit 2, no run directory -------------------------------------------------
def _break(kind: str, root: Path) -> list[str]:
    """Damage the paired folder ``root`` as ``kind`` says; returns extra options."""
    if kind == "unmatched":
        (root / "A" / "00.png").rename(root / "A" / "zz.png")
        (root / "B" / "05.png").unlink()
    elif kind == "empty":
        for f in (root / "B").iterdir():
            f.unlink()
    elif kind == "aspect":
        Image.new("RGB", (16, 20)).save(root / "B" / "04.png")
    elif kind == "no-b":
        for f in (root / "B").iterdir():
            f.unlink()
        (root / "B").rmdir()
    return []


@pytest.mark.parametrize("kind,extra,message", [
    ("unmatched", [], "unmatched images: 2 of 12 in"),
    ("unmatched", [], "have no match in B/ (05, zz)"),
    ("unmatched", [], "1 of 11 in"),
    ("empty", [], "/B holds no image; accepted extensions"),
    ("no-b", [], "needs the subfolders A/ and B/"),
    ("aspect", [], "04.png is 16x16 pixels but"),
    ("aspect", [], "is 16x20: the two images of a pair must have the same size, or at least the same aspect ratio"),
    ("", ["--paired-layout", "ab"], "holds the subfolders A/ and B/: that is --paired-layout folders"),
    ("", ["--paired-layout", "zigzag"], "--paired-layout 'zigzag' is not valid; valid choices: folders"),
    ("", ["--dataset", "mnist"], "--task paired needs --dataset FOLDER, a folder of image pairs"),
    ("", ["--task", "inpaint", "--paired-layout", "ab"], "--task inpaint takes no --paired-layout"),
    ("", ["--task", "generate", "--arch", "dcgan", "--paired-layout", "folders"], "--task generate takes no --paired-layout"),
    ("", ["--scale", "2"], "--task paired takes no --scale; its options: --paired-layout"),
    ("", ["--arch", "dcgan"], "--arch dcgan draws images from noise; --task paired needs"),
])
def test_bad_paired_input_is_one_line_and_leaves_no_run_directory(paired, home, kind, extra, message):
    _break(kind, paired)
    r = gan(*tiny(paired, 2), *extra)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.output
    assert _no_runs(home)


def test_odd_width_ab_image_is_refused_before_a_run_directory(ab_folder, home):
    Image.new("RGB", (31, 16)).save(ab_folder / "train" / "99.png")
    r = gan(*tiny(ab_folder, 2, "--paired-layout", "ab"))
    assert r.exit_code == 2 and "99.png is 31x16 pixels: a side-by-side A|B image needs an even width" in r.output
    assert _no_runs(home)


def test_same_aspect_ratio_at_another_size_is_conformed(paired, home):
    a, b = _pair_images(1, 32)[0]
    Image.fromarray(b).save(paired / "B" / "01.png")  # B/01 at 32x32 against A/01 at 16x16
    r = gan(*tiny(paired, 2))
    assert r.exit_code == 0, r.output


# -- config and presets ----------------------------------------------------------------------------
def test_paired_layouts_agree_and_old_task_sections_load():
    assert PAIRED_LAYOUTS == tuple(pairs.PAIRED_LAYOUTS)
    doc = RunConfig(task=TaskConfig(name="inpaint")).to_dict()
    del doc["task"]["paired_layout"]  # a task section written before the option
    assert RunConfig.from_dict(doc).task == TaskConfig(name="inpaint", paired_layout="folders")


def _dry(*args) -> dict:
    r = gan("train", *args, "--dry-run")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.mark.parametrize("preset,task", [("mnist-inpaint", {"name": "inpaint", "mask": "box", "mask_size": 12}),
                                         ("mnist-superres4", {"name": "superres", "scale": 4})])
def test_mnist_translation_presets_resolve_to_their_recipe(preset, task):
    from gancli.presets import MNIST_TRANSLATION_BATCH, MNIST_TRANSLATION_EPOCHS, MNIST_TRANSLATION_WIDTH

    cfg = _dry("--preset", preset)
    assert {k: cfg["task"][k] for k in task} == task
    assert cfg["data"]["dataset"] == "mnist"
    m, o, t = cfg["model"], cfg["optim"], cfg["train"]
    assert (m["arch"], m["ngf"], m["ndf"], m["img_channels"], m["img_resolution"]) == \
        ("unet", MNIST_TRANSLATION_WIDTH, MNIST_TRANSLATION_WIDTH, 1, 28)
    assert (cfg["loss"]["l1_weight"], o["name"], o["lr_g"], o["lr_d"], o["beta1"], o["beta2"]) == \
        (100.0, "adam", 2e-4, 2e-4, 0.5, 0.999)
    assert (t["batch_size"], t["epochs"]) == (MNIST_TRANSLATION_BATCH, MNIST_TRANSLATION_EPOCHS)
    assert t["steps"] == MNIST_TRANSLATION_EPOCHS * (60000 // MNIST_TRANSLATION_BATCH) == 1874
    assert _dry("--preset", preset, "--ngf", 8, "--steps", 10)["model"]["ngf"] == 8  # explicit flags win


def test_pix2pix_folder_preset_is_the_reference_recipe(paired, ab_folder):
    cfg = _dry("--preset", "pix2pix-folder", "--dataset", paired)
    m, t = cfg["model"], cfg["train"]
    assert (cfg["task"]["name"], cfg["task"]["paired_layout"], m["arch"], m["ngf"], m["ndf"]) == \
        ("paired", "folders", "unet", 64, 64)
    assert (m["img_resolution"], m["img_channels"], m["in_channels"]) == (256, 3, 3)
    assert (t["batch_size"], t["epochs"], t["steps"]) == (1, 200.0, 200 * N_PAIRS)
    assert (cfg["loss"]["l1_weight"], cfg["optim"]["lr_g"], cfg["optim"]["beta1"]) == (100.0, 2e-4, 0.5)
    cfg = _dry("--preset", "pix2pix-folder", "--dataset", ab_folder, "--paired-layout", "ab", "--epochs", 1)
    assert (cfg["task"]["paired_layout"], cfg["train"]["steps"]) == ("ab", N_PAIRS)
    r = gan("train", "--preset", "pix2pix-folder", "--dry-run")  # no --dataset: MNIST is no folder of pairs
    assert r.exit_code == 2 and "--task paired needs --dataset FOLDER" in r.output


def test_translation_presets_are_listed_with_flags_that_reproduce_them(paired):
    from gancli.cli.train import preset_flags
    from gancli.presets import PRESETS

    listing = " ".join(gan("train", "--list-presets").output.split())
    for name in ("mnist-inpaint", "mnist-superres4", "pix2pix-folder"):
        flags = preset_flags(PRESETS.get(name).options)
        assert flags in listing, name
        extra = ["--dataset", paired] if name == "pix2pix-folder" else []
        assert _dry("--preset", name, *extra) == _dry(*shlex.split(flags), *extra), name
