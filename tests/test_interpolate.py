"""Latent interpolation, class walks and the training timelapse of ``gan sample``
(gancli.generate.walks, gancli.generate.timeline, gancli.generate.gif): maths on plain tensors, tiny
generators built in memory, and the CLI on tiny runs through CliRunner."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gancli.cli import app
from gancli.generate.gif import MIN_GIF_PX, upscale, write_gif
from gancli.generate.timeline import label_font_px, stored_grids, timeline_frames
from gancli.generate.walks import (
    class_walk,
    class_walk_columns,
    frame_nrow,
    generate_soft,
    latent_paths,
    latent_walk,
    lerp,
    slerp,
    walk_frames,
)
from gancli.seeding import latents

runner = CliRunner()


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_error_line(result) -> str:
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def _gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("L")))
    return frames


# -- slerp / lerp ---------------------------------------------------------------------------
def test_lerp_midpoint_is_the_mean_and_ends_are_exact():
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    out = lerp(a, b, torch.linspace(0, 1, 3, dtype=torch.float64))
    assert out.shape == (5, 3, 7) and out.dtype == torch.float32
    assert torch.allclose(out[:, 1], (a + b) / 2, atol=1e-6)
    assert torch.equal(out[:, 0], a) and torch.equal(out[:, 2], b)


def test_slerp_keeps_the_norm_of_equal_norm_endpoints():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 32, generator=g), torch.randn(64, 32, generator=g)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)
    out = slerp(a, b, torch.linspace(0, 1, 9, dtype=torch.float64))
    assert torch.allclose(out.norm(dim=2), a.norm(dim=1, keepdim=True).expand(64, 9), rtol=1e-5)


def test_slerp_norm_moves_linearly_and_angle_at_constant_speed():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(16, 100, generator=g), 3 * torch.randn(16, 100, generator=g)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    out = slerp(a, b, t).double()
    na, nb = a.double().norm(dim=1, keepdim=True), b.double().norm(dim=1, keepdim=True)
    assert torch.allclose(out.norm(dim=2), (1 - t) * na + t * nb, rtol=1e-5)
    u = out / out.norm(dim=2, keepdim=True)
    steps = torch.arccos((u[:, 1:] * u[:, :-1]).sum(2).clamp(-1, 1))  # (16, 10) angles between neighbours
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=1e-4)


def test_slerp_keeps_gaussian_latents_on_their_shell_where_lerp_shrinks_them():
    a, b = latents(256, 128, 0), latents(256, 128, 1)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    s, li = slerp(a, b, t).norm(dim=2), lerp(a, b, t).norm(dim=2)
    lo = torch.minimum(a.norm(dim=1), b.norm(dim=1))[:, None] - 1e-4
    hi = torch.maximum(a.norm(dim=1), b.norm(dim=1))[:, None] + 1e-4
    assert bool(((s >= lo) & (s <= hi)).all())
    assert abs(s[:, 3].mean().item() / math.sqrt(128) - 1) < 0.05
    assert abs(li[:, 3].mean().item() / math.sqrt(128) - math.sqrt(0.5)) < 0.05  # ~ sqrt(nz / 2)


def test_slerp_falls_back_to_lerp_for_parallel_and_opposite_latents():
    a = torch.randn(3, 8)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    for b in (2 * a, -a, a.clone()):
        out = slerp(a, b, t)
        assert torch.isfinite(out).all()
        assert torch.allclose(out, lerp(a, b, t), atol=1e-6)
    with pytest.raises(ValueError, match="non-zero"):
        slerp(torch.zeros(1, 4), torch.ones(1, 4), t)
    with pytest.raises(ValueError, match="steps >= 2"):
        latent_paths(2, 4, 1, 0)


def test_latent_paths_run_from_seed_s_to_seed_s_plus_one():
    for method in ("slerp", "lerp"):
        z = latent_paths(6, 16, 5, seed=7, method=method)
        assert z.shape == (6, 5, 16)
        assert torch.equal(z[:, 0], latents(6, 16, 7)) and torch.equal(z[:, -1], latents(6, 16, 8))
    with pytest.raises(ValueError, match="valid choices: slerp, lerp"):
        latent_paths(2, 4, 3, 0, method="cubic")


def test_class_walk_columns():
    cols = class_walk_columns(4, 3)
    assert cols.shape == ((4 - 1) * (3 - 1) + 1, 4)
    assert torch.allclose(cols.sum(1), torch.ones(len(cols)))
    assert cols.argmax(1).tolist() == [0, 0, 1, 1, 2, 2, 3]  # ties at midpoints go to the lower class
    assert torch.equal(cols[::2], torch.eye(4))  # every class itself, one-hot
    assert torch.equal(class_walk_columns(4, None), torch.eye(4))


def test_frame_nrow_fills_rectangles():
    assert [frame_nrow(p) for p in (1, 4, 8, 9, 10, 7, 16)] == [1, 2, 4, 3, 5, 3, 4]


# -- generators in memory -----------------------------------------------------------------
def _selfcond():
    from gancli.models.mlp import MLPGenerator
    from gancli.models.selfcond import SelfConditionedGenerator

    torch.manual_seed(0)
    return SelfConditionedGenerator(MLPGenerator(nz=16, num_classes=4), 4)


def _conditional(arch: str):
    from gancli.models.dcgan import DCGANGenerator
    from gancli.models.mlp import MLPGenerator
    from gancli.models.resnet import ResNetGenerator

    torch.manual_seed(0)
    if arch == "mlp":
        return MLPGenerator(nz=16, num_classes=5)
    if arch == "dcgan":
        return DCGANGenerator(nz=16, ngf=4, num_classes=5)
    return ResNetGenerator(nz=16, img_channels=3, img_resolution=32, ngf=2, num_classes=5)


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_walk_endpoints_are_the_images_of_gan_sample(method):
    g = _selfcond()
    walk = latent_walk(g, 6, 4, seed=3, method=method)
    assert walk.shape == (6, 4, 1, 28, 28)
    torch.testing.assert_close(walk[:, 0], g.sample(6, seed=3), atol=1e-6, rtol=0)
    torch.testing.assert_close(walk[:, -1], g.sample(6, seed=4), atol=1e-6, rtol=0)


def test_conditional_walk_keeps_the_classes_of_the_first_column():
    g = _conditional("mlp")
    walk = latent_walk(g, 6, 3, seed=2)
    torch.testing.assert_close(walk[:, 0], g.sample(6, seed=2), atol=1e-6, rtol=0)  # random classes of seed 2
    walk = latent_walk(g, 4, 3, seed=2, labels=1)
    torch.testing.assert_close(walk[:, -1], g.sample(4, seed=3, labels=1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_soft_labels_one_hot_equal_hard_labels(arch):
    g = _conditional(arch)
    z = latents(5, 16, 0)
    y = torch.tensor([0, 1, 2, 3, 4])
    hard = g.sample(5, seed=0, labels=y)
    soft = generate_soft(g, z, torch.eye(5)[y])
    torch.testing.assert_close(soft, hard, atol=1e-5, rtol=0)
    half = generate_soft(g, z[:1], torch.tensor([[0.5, 0.5, 0, 0, 0]]))
    assert not torch.allclose(half, hard[:1]) and not torch.allclose(half, hard[1:2])


def test_class_walk_columns_are_gan_sample_of_each_class():
    g = _conditional("dcgan")
    walk = class_walk(g, 3, steps=3, seed=5)
    assert walk.shape == (3, 9, 1, 28, 28)  # 5 classes, 2 legs... (5 - 1) * (3 - 1) + 1
    for c in range(5):
        torch.testing.assert_close(walk[:, 2 * c], g.sample(3, seed=5, labels=c), atol=1e-5, rtol=0)
    discrete = class_walk(g, 3, seed=5)
    assert discrete.shape[1] == 5
    torch.testing.assert_close(discrete, walk[:, ::2], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="conditional"):
        class_walk(_selfcond(), 2)


# -- GIF frames ---------------------------------------------------------------------------
def test_walk_gif_has_one_frame_per_step_upscaled(tmp_path):
    steps = 5
    images = torch.linspace(-1, 1, steps)[None, :, None, None, None].expand(8, steps, 1, 28, 28).contiguous()
    frames = walk_frames(images)
    assert len(frames) == steps
    grid_w, grid_h = 4 * 30 + 2, 2 * 30 + 2  # 8 paths as 4 x 2
    factor = math.ceil(MIN_GIF_PX / grid_w)
    assert frames[0].size == (grid_w * factor, grid_h * factor) and frames[0].mode == "L"
    assert len(walk_frames(images, pingpong=True)) == 2 * steps - 2
    out = write_gif(frames, tmp_path / "w.gif", 100)
    with Image.open(out) as im:
        assert im.n_frames == steps and im.size == frames[0].size and im.info["duration"] == 100
    assert upscale(Image.new("L", (300, 10))).size == (300, 10)


# -- the timelapse ------------------------------------------------------------------------
def _fake_run(root, steps, size=(62, 32)):
    """A run directory whose samples/ holds grids of one gray level per step."""
    run = root / "run-7"
    (run / "samples").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"format": "gancli-run"}))
    for i, step in enumerate(steps):
        Image.new("RGB", size, (40 + 20 * i,) * 3).save(run / "samples" / f"step-{step}.png")
    return run


def test_stored_grids_sort_by_step_number(tmp_path):
    run = _fake_run(tmp_path, [1000, 500, 20, 4685])
    (run / "samples" / "notes.txt").write_text("x")
    assert [s for s, _ in stored_grids(run / "samples")] == [20, 500, 1000, 4685]
    assert stored_grids(tmp_path / "nowhere") == []


def test_timeline_gif_frames_in_step_order_with_labels(tmp_path):
    steps = [1000, 500, 1500]
    run = _fake_run(tmp_path, steps)
    out = tmp_path / "t.gif"
    r = gan("sample", run, "--timeline", "-o", out, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["frames"] == 3 and doc["steps"] == [500, 1000, 1500] and doc["files"][0]["path"] == str(out)
    frames = _gif_frames(out)
    assert len(frames) == 3
    factor = math.ceil(MIN_GIF_PX / 62)
    band = label_font_px(62 * factor) * 3 // 2
    assert frames[0].shape == (32 * factor + band, 62 * factor)
    # the grids below the band, in step order: 500 was written second (gray 60), 1000 first (40)
    assert [int(f[band + 5, 5]) for f in frames] == [60, 40, 80]
    bands = [f[:band] for f in frames]
    assert all(b.max() == 255 for b in bands)  # white label text
    assert not np.array_equal(bands[0], bands[1]) and not np.array_equal(bands[1], bands[2])


def test_timeline_frames_of_another_size_are_resized(tmp_path):
    run = _fake_run(tmp_path, [1, 2])
    Image.new("RGB", (30, 30), (200, 0, 0)).save(run / "samples" / "step-3.png")
    frames = timeline_frames(stored_grids(run / "samples"))
    assert len({f.size for f in frames}) == 1 and frames[0].mode == "RGB"


def test_timeline_errors(tmp_path):
    run = _fake_run(tmp_path, [])
    r = gan("sample", run, "--timeline", "-o", tmp_path / "t.gif")
    assert r.exit_code == 1 and "has no stored sample grids" in _one_error_line(r)
    assert not (tmp_path / "t.gif").exists()
    r = gan("sample", run, "--timeline", "-o", tmp_path / "t.png")
    assert r.exit_code == 2 and "-o must end in .gif" in _one_error_line(r)
    r = gan("sample", tmp_path / "x.safetensors", "--timeline", "-o", tmp_path / "t.gif")
    assert r.exit_code == 2 and "--timeline needs a run" in _one_error_line(r)
    r = gan("sample", run, "--timeline", "-n", "4", "-o", tmp_path / "t.gif")
    assert r.exit_code == 2 and "-n does not apply to --timeline" in _one_error_line(r)


@pytest.mark.parametrize("args,fragment", [
    (["--interpolate", "4", "--timeline"], "--interpolate and --timeline cannot be combined"),
    (["--interpolate", "4", "--individual"], "--interpolate and --individual cannot be combined"),
    (["--class-walk", "--class-grid"], "--class-walk and --class-grid cannot be combined"),
    (["--timeline", "--class-grid"], "--timeline and --class-grid cannot be combined"),
    (["--class-walk", "--interpolate", "3", "--timeline"], "--class-walk and --timeline cannot be combined"),
    (["--class-walk", "--class", "2"], "--class and --class-walk cannot be combined"),
    (["--interpolate", "1"], "--interpolate must be >= 2"),
    (["--lerp"], "--slerp/--lerp choose how --interpolate moves z"),
    (["--class-walk", "--lerp"], "--class-walk keeps z fixed"),
    (["--interpolate", "3", "--seed", str(2**63 - 1)], "must be in [0, 2^63 - 2] with --interpolate (it walks to seed S+1)"),
    (["--zoom", "0"], "--zoom must be in 1..32 (times the grid's own size), got 0"),
    (["--zoom", "33"], "--zoom must be in 1..32"),
    (["--zoom", "2", "--individual"], "--zoom applies to grid images (-o *.png, .jpg, ...), not to --individual"),
    (["--zoom", "2", "--dataset-out", "synth"], "not to --dataset-out: those files keep the images' own size"),
    (["--zoom", "2", "--timeline"], "not to --timeline"),
    (["--zoom", "2", "--interpolate", "3", "-o", "w.gif"], "not to a walk GIF"),
])
def test_option_clashes_are_one_line_errors(args, fragment):
    r = gan("sample", "latest", *args)
    assert r.exit_code == 2
    assert fragment in _one_error_line(r)


# -- the CLI on tiny trained runs ---------------------------------------------------------
TINY = ["--limit", "256", "--batch-size", "32", "--nz", "16", "--ngf", "8", "--ndf", "8", "--device", "cpu",
        "--steps", "2", "--sample-every", "1"]


@pytest.fixture(scope="module")
def runs_home(tmp_path_factory):
    """run-1: self-conditioned (default unconditional) DCGAN; run-2: conditional DCGAN."""
    from conftest import require_mnist

    root = require_mnist()
    home = tmp_path_factory.mktemp("walkhome")
    for extra in ([], ["--conditional"]):
        r = gan("--home", home, "--data-dir", root, "train", "--arch", "dcgan", *extra, *TINY)
        assert r.exit_code == 0, r.output
    return home


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")).astype(int)


def test_cli_walk_png_first_and_last_columns_are_gan_sample(runs_home, tmp_path):
    h = ["--home", runs_home]
    r = gan(*h, "sample", "run-1", "--interpolate", "6", "--seed", "4", "-n", "5", "-o", tmp_path / "big.png")
    assert r.exit_code == 0 and "546 x 456 px (3x)" in r.output, r.output  # enlarged to >= 480 px by default
    r = gan(*h, "sample", "run-1", "--interpolate", "6", "--seed", "4", "-n", "5", "-o", tmp_path / "walk.png",
            "--zoom", "1")
    assert r.exit_code == 0, r.output
    walk = _png(tmp_path / "walk.png")
    assert walk.shape == (5 * 30 + 2, 6 * 30 + 2)
    assert np.array_equal(_png(tmp_path / "big.png"), walk.repeat(3, axis=0).repeat(3, axis=1))
    for seed, name in ((4, "s4.png"), (5, "s5.png")):
        assert gan(*h, "sample", "run-1", "--seed", seed, "-n", "5", "--nrow", "1", "-o", tmp_path / name,
                   "--zoom", "1").exit_code == 0
    first, last = _png(tmp_path / "s4.png"), _png(tmp_path / "s5.png")
    assert first.shape == (5 * 30 + 2, 32)
    assert np.abs(walk[:, :32] - first).max() <= 1  # batches of another size: at most float rounding
    assert np.abs(walk[:, -32:] - last).max() <= 1
    assert not np.array_equal(walk[:, 60:92], first)  # the steps between differ
    r = gan(*h, "sample", "run-1", "--interpolate", "6", "-o", tmp_path / "walk.tiff")
    assert r.exit_code == 2 and "valid choices: .gif, .png" in _one_error_line(r)


def test_cli_walk_gif_frames_and_json(runs_home, tmp_path):
    out = tmp_path / "walk.gif"
    r = gan("--home", runs_home, "sample", "run-1", "--interpolate", "7", "--lerp", "-o", out, "--json",
            "--duration-ms", "50")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["mode"] == "interpolate" and doc["paths"] == 8 and doc["steps"] == 7 and doc["method"] == "lerp"
    assert doc["seed"] == 0 and doc["end_seed"] == 1 and doc["frames"] == 7
    import hashlib

    assert doc["files"][0]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    with Image.open(out) as im:
        factor = math.ceil(MIN_GIF_PX / (4 * 30 + 2))
        assert im.n_frames == 7 and im.size == ((4 * 30 + 2) * factor, (2 * 30 + 2) * factor)
    r = gan("--home", runs_home, "sample", "run-1", "--interpolate", "4", "--pingpong", "-n", "2", "--nrow", "1",
            "-o", tmp_path / "pp.gif")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "pp.gif").n_frames == 6
    r = gan("--home", runs_home, "sample", "run-1", "--interpolate", "4", "--nrow", "2", "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "--nrow applies to walk GIFs" in _one_error_line(r)


def test_cli_class_walk(runs_home, tmp_path):
    h = ["--home", runs_home]
    r = gan(*h, "sample", "run-2", "--class-walk", "-n", "3", "-o", tmp_path / "cw.png", "--zoom", "1")
    assert r.exit_code == 0, r.output
    assert _png(tmp_path / "cw.png").shape == (3 * 30 + 2, 10 * 30 + 2)  # one column per class
    r = gan(*h, "sample", "run-2", "--class-walk", "--interpolate", "3", "-n", "2", "-o", tmp_path / "cw.gif",
            "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["mode"] == "class-walk" and doc["steps"] == 19 and doc["method"] == "blended classes"
    assert Image.open(tmp_path / "cw.gif").n_frames <= 19
    # the column of class 3 is `gan sample --class 3` for the same z
    assert gan(*h, "sample", "run-2", "--class", "3", "-n", "3", "--nrow", "1", "-o", tmp_path / "c3.png",
               "--zoom", "1").exit_code == 0
    walk, c3 = _png(tmp_path / "cw.png"), _png(tmp_path / "c3.png")
    assert np.abs(walk[:, 3 * 30:3 * 30 + 32] - c3).max() <= 1
    r = gan(*h, "sample", "run-1", "--class-walk", "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "--class-walk needs a conditional run" in _one_error_line(r)


def test_cli_timeline_of_a_trained_run(runs_home, tmp_path):
    r = gan("--home", runs_home, "sample", "run-1", "--timeline", "-o", tmp_path / "t.gif")
    assert r.exit_code == 0, r.output
    assert len(_gif_frames(tmp_path / "t.gif")) == 2  # steps 1 and 2
