"""The image-to-image tasks in the one training loop (issue #24): ``gan train --task inpaint ...``
trains pix2pix, resumes bitwise, shows the task, and refuses bad task options before any run
directory exists. CPU, tiny widths, a tiny image folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import assert_same, write_shapes
from gancli.checkpoint import load_checkpoint
from gancli.cli import app
from gancli.config import MASK_KINDS, UPSAMPLE_MODES, RunConfig, TaskConfig
from gancli.data import ImageData
from gancli.engine.launch import build_trainer
from gancli.resolve import build_config
from gancli.runs import RunStore
from gancli.translate import corrupt

runner = CliRunner()
CPU = torch.device("cpu")
PARTS = ("generator", "discriminator", "generator_ema", "optim_g", "optim_d", "rng")


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def folder(tmp_path) -> Path:
    """24 grayscale 32x32 PNGs: a bright rectangle on black at a random place."""
    return write_shapes(tmp_path / "shapes")


def tiny(folder: Path, steps: int, *extra) -> list[str]:
    return ["train", "--task", "inpaint", "--dataset", folder, "--image-size", 32, "--channels", 1,
            "--batch-size", 8, "--ngf", 4, "--ndf", 4, "--steps", steps, "--seed", 3, "--device", "cpu",
            "--log-every", 1, "--sample-every", 2, "--checkpoint-every", 2, "--keep", 0, *extra]


def _parts(path: Path) -> dict[str, dict]:
    ckpt = load_checkpoint(path)
    return {name: ckpt.part(name) for name in PARTS}




# -- gan train --task inpaint, end to end --------------------------------------------------------
def test_inpaint_trains_on_an_image_folder_and_lists_its_task(folder, home):
    r = gan(*tiny(folder, 4))
    assert r.exit_code == 0, r.output
    assert "inpaint with unet" in r.output
    (run,) = RunStore(home).list()
    cfg = run.read_config()
    assert (cfg.task.name, cfg.model.arch, cfg.model.in_channels, cfg.loss.l1_weight) == ("inpaint", "unet", 2, 100.0)
    assert (cfg.optim.name, cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.beta1, cfg.optim.beta2) == \
        ("adam", 2e-4, 2e-4, 0.5, 0.999)
    records = [m for m in run.read_metrics() if m["kind"] == "train"]
    assert [m["step"] for m in records] == [1, 2, 3, 4]
    assert all(np.isfinite([m["loss_d"], m["loss_g"], m["l1"]]).all() for m in records)
    assert [s for s, _ in run.checkpoints()] == [2, 4]
    grid = np.asarray(Image.open(run.samples_dir / "step-4.png"))
    assert grid.shape[:2] == (3 * 34 + 2, 8 * 34 + 2)  # input, output and target rows of 8 (2-px padding)

    first = load_checkpoint(run.checkpoint_path(2)).part("generator")
    last = load_checkpoint(run.checkpoint_path(4)).part("generator")
    assert any(not torch.equal(first[k], last[k]) for k in first if first[k].is_floating_point())

    listed = json.loads(gan("runs", "list", "--json").output)
    assert listed[0]["task"] == "inpaint" and listed[0]["arch"] == "unet"
    assert "inpaint: unet bce" in gan("runs", "list").output
    r = gan("sample", run.id, "-o", home / "grid.png")  # no noise-to-image sampling of a translator
    assert r.exit_code == 2 and "is an image-to-image run (--task inpaint)" in r.output


def test_resume_is_bitwise_identical_to_a_straight_run(folder, home):
    """N steps + resume + N steps == 2N steps straight: weights, EMA, optimizers and RNG states
    (dropout draws from the saved global stream, the holes are a function of (seed, step))."""
    n = 3
    assert gan(*tiny(folder, 2 * n)).exit_code == 0  # run-1, straight
    assert gan(*tiny(folder, n)).exit_code == 0  # run-2: N steps...
    r = gan("train", "--resume", "run-2", "--steps", 2 * n)  # ...then N more in a fresh trainer
    assert r.exit_code == 0, r.output
    assert "resuming run-2 at step 3" in r.output
    store = RunStore(home)
    straight, resumed = (store.resolve(i).checkpoint_path(2 * n) for i in ("run-1", "run-2"))
    assert_same(_parts(straight), _parts(resumed))
    assert [m for m in store.resolve("run-1").read_metrics() if m["kind"] == "train"] != []


def test_resume_detects_a_corruption_that_is_not_the_straight_runs(tiny_rgb):
    """Guard that the bitwise comparison can fail: the second half trained on other holes differs."""
    cfg = _cfg("inpaint", tiny_rgb, steps=4)
    store = RunStore(tiny_rgb.home)
    straight = build_trainer(cfg, store.create(), CPU, tiny_rgb.data)
    straight.fit()
    run = store.create()
    half = build_trainer(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=2)), run, CPU,
                         tiny_rgb.data)
    half.fit()
    resumed = build_trainer(cfg, run, CPU, tiny_rgb.data)
    resumed.restore(load_checkpoint(run.checkpoint_path("latest")))
    resumed.parts.task_step.seed += 1  # other holes from step 2 on
    resumed.fit()
    a, b = straight.G.state_dict(), resumed.G.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


# -- every corruption task through the same loop -------------------------------------------------
class TinyData:
    def __init__(self, data: ImageData, home: Path):
        self.data, self.home = data, home


@pytest.fixture
def tiny_rgb(tmp_path) -> TinyData:
    g = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (32, 3, 16, 16), generator=g, dtype=torch.uint8)
    return TinyData(ImageData(images, torch.zeros(32, dtype=torch.int64), ["x"]), tmp_path)


def _cfg(task: str, tiny: TinyData, steps: int = 2, **options) -> RunConfig:
    """A resolved config of ``task`` for the in-memory tiny data (3x16x16), through the resolver."""
    base = build_config({"task": task, "ngf": 4, "ndf": 4, "batch_size": 8, "steps": steps, "seed": 5,
                         "device": "cpu", "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                         "limit": 32, "dataset": "cifar10", **options})  # cifar10: described only, never read
    return base.replace(model=dataclasses.replace(base.model, img_resolution=16))


@pytest.mark.parametrize("task", corrupt.TASKS.names())
def test_every_corruption_task_trains_a_step_and_grids_its_samples(task, tiny_rgb):
    cfg = _cfg(task, tiny_rgb)
    t = build_trainer(cfg, RunStore(tiny_rgb.home).create(), CPU, tiny_rgb.data)
    assert t.fit().step == 2
    record = [m for m in t.run.read_metrics() if m["kind"] == "train"][-1]
    assert np.isfinite([record["loss_d"], record["loss_g"], record["l1"]]).all()
    grid = t.parts.task_step.sample_grid(t)
    assert grid.shape == (24, 3, 16, 16) and grid.min() >= -1 and grid.max() <= 1


def test_inpaint_output_keeps_the_known_pixels(tiny_rgb):
    t = build_trainer(_cfg("inpaint", tiny_rgb), RunStore(tiny_rgb.home).create(), CPU, tiny_rgb.data)
    grid = t.parts.task_step.sample_grid(t)
    output, target = grid[8:16], grid[16:]
    holes = t.parts.task_step.grid_extra["mask"].expand_as(target) > 0.5
    assert holes.any() and not holes.all()
    assert torch.equal(output[~holes], target[~holes])
    assert not torch.equal(output[holes], target[holes])


def test_unet_generator_runs_at_sizes_that_are_not_its_multiple():
    from gancli.config import ModelConfig
    from gancli.models import build_discriminator, build_generator

    cfg = ModelConfig(arch="unet", ngf=4, ndf=4, img_channels=1, img_resolution=28, in_channels=2)
    G, D = build_generator(cfg), build_discriminator(cfg)
    x = torch.rand(2, 2, 28, 28) * 2 - 1
    y = G(x)
    assert y.shape == (2, 1, 28, 28) and G.multiple == 32 and G.config is cfg
    assert D(y, x).shape == (2, 1, *D.output_size(28, 28))


# -- config --------------------------------------------------------------------------------------
def test_task_config_defaults_are_the_corruptions_own():
    """TaskConfig (config.py, a leaf) restates the corruptions' option defaults and choices: they agree."""
    defaults = TaskConfig()
    for entry in corrupt.TASKS:
        for name, value in entry.obj.options.items():
            assert getattr(defaults, name) == value, (entry.name, name)
    assert MASK_KINDS == corrupt.MASK_KINDS and UPSAMPLE_MODES == corrupt.UPSAMPLE_MODES


def test_a_config_written_before_the_task_section_loads_as_generate():
    doc = RunConfig().to_dict()
    del doc["task"]
    assert RunConfig.from_dict(doc) == RunConfig()
    cfg = RunConfig(task=TaskConfig(name="denoise", noise_std=0.5))
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_generate_configs_are_unchanged_by_the_task_fields():
    cfg = build_config({"steps": 5, "limit": 256})
    assert cfg.task == TaskConfig() and cfg.model.in_channels == 0 and cfg.model.arch == "dcgan"
    assert (cfg.loss.l1_weight, cfg.loss.adv_weight, cfg.train.monitor_every_steps) == (0.0, 1.0, 500)


# -- bad task options: one line, exit 2, no run directory ----------------------------------------
@pytest.mark.parametrize("extra,message", [
    (["--task", "superres", "--scale", "3"], "--scale 3 is not valid; valid choices: 2, 4, 8"),
    (["--task", "superres", "--scale", "8", "--image-size", "36"],
     "--scale 8 does not divide the image size 36x36; valid scales for it: 2, 4"),
    (["--task", "colorize"], "task colorize needs RGB images (3 channels), got 1 channel"),
    (["--task", "denoise", "--scale", "2"], "--task denoise takes no --scale; its options: --noise-std"),
    (["--task", "denoise", "--noise-std", "0"], "--noise-std must be in (0, 2], got 0.0"),
    (["--task", "inpaint", "--mask-size", "40"], "--mask-size 40 is not valid; valid choices: 1 to 32 pixels"),
    (["--task", "inpaint", "--mask", "blob"], "unknown mask 'blob'; valid choices: box, free, mixed"),
    (["--task", "inpaint", "--arch", "dcgan"], "--arch dcgan draws images from noise; --task inpaint needs"),
    (["--task", "inpaint", "--conditional"], "--conditional is not available with --task inpaint"),
    (["--task", "inpaint", "--clusters", "4"], "--clusters 4 is not available with --task inpaint"),
    (["--task", "inpaint", "--monitor-every", "5"], "--monitor-every 5 is not available with --task inpaint: the"),
    (["--task", "inpaint", "--l1-weight", "0", "--adv-weight", "0"], "leave --task inpaint nothing to learn"),
    (["--task", "paint"], "unknown task 'paint' (did you mean 'inpaint'?); valid choices: generate, inpaint"),
    (["--arch", "unet"], "--arch unet translates images; give it an image-to-image --task"),
    (["--l1-weight", "10"], "--task generate takes no --l1-weight"),
])
def test_bad_task_options_are_one_line_and_leave_no_run_directory(folder, home, extra, message):
    args = ["train", "--dataset", folder, "--image-size", "32", "--channels", "1", "--steps", "2",
            "--batch-size", "8", "--device", "cpu", *extra]
    r = gan(*args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.output
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())
