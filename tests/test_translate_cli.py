"""``gan translate RUN INPUT... -o OUT`` (issue #24 item 3): files and folders in, PNGs out at each
input's own size, tiles with blended seams, --mask / --corrupt / --compare / --json, and the bad
inputs (wrong mask size, wrong channels, --direction on a pix2pix run) as one-line errors, exit 2.
Three tiny runs (inpaint and superres x4 on 32x32 grayscale shapes, colorize on RGB ones) are trained
once for the module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from gancli.cli import app
from gancli.cli import translate as translate_cli
from gancli.translate import apply, corrupt
from gancli.translate.load import load_translator

runner = CliRunner()


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_error_line(r, message: str) -> None:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.output
    assert "Traceback" not in r.output


def shapes(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    """Bright rectangles on black, uint8 (h, w)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = np.zeros((h, w), np.uint8)
        top, left = rng.integers(0, max(1, h - h // 3)), rng.integers(0, max(1, w - w // 3))
        a[top:top + max(2, h // 3), left:left + max(2, w // 4)] = 255
        out.append(a)
    return out


def save(a: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run directories of tiny inpaint and superres --scale 4 runs (32x32 grayscale) and a colorize run (RGB)."""
    root = tmp_path_factory.mktemp("translate-runs")
    data = root / "shapes"
    for i, a in enumerate(shapes(24, 32, 32)):
        save(a, data / f"{i:02d}.png")
    rgb = root / "colors"
    for i, a in enumerate(shapes(24, 32, 32, seed=1)):
        save(np.stack([a, a[::-1], np.full_like(a, 90)], -1), rgb / f"{i:02d}.png")
    out = {}
    for task, extra, folder, channels in (("inpaint", [], data, 1), ("superres", ["--scale", "4"], data, 1),
                                          ("colorize", [], rgb, 3)):
        home = root / task
        r = gan("--home", home, "train", "--task", task, *extra, "--dataset", folder, "--image-size", 32,
                "--channels", channels, "--batch-size", 8, "--ngf", 4, "--ndf", 4, "--steps", 3, "--seed", 3,
                "--device", "cpu", "--log-every", 1, "--sample-every", 0, "--checkpoint-every", 3)
        assert r.exit_code == 0, r.output
        (run,) = [p for p in (home / "runs").iterdir() if (p / "config.json").is_file()]
        out[task] = run
    return out


def png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode in ("L", "RGB")
        return np.asarray(im)


# -- one file, at its own size -------------------------------------------------------------------------
def test_one_file_at_an_odd_size_comes_back_at_that_size_with_the_known_pixels_kept(runs, tmp_path):
    (a,) = shapes(1, 23, 37, seed=1)
    src = save(a, tmp_path / "in.png")
    hole = np.zeros((23, 37), np.uint8)
    hole[5:15, 10:22] = 255
    mask = save(hole, tmp_path / "mask.png")
    r = gan("translate", runs["inpaint"], src, "--mask", mask, "-o", tmp_path / "out.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and "37x23" in r.output
    out = png(tmp_path / "out.png")
    assert out.shape == (23, 37)  # (H, W), one channel like the run's images
    known = hole == 0
    assert np.array_equal(out[known], a[known])  # inpainting keeps the known pixels exactly
    assert not np.array_equal(out[~known], a[~known])  # the hole is G's (the input's pixels were hidden from it)


def test_inpainting_in_tiles_keeps_the_known_pixels_too(runs, tmp_path):
    (a,) = shapes(1, 50, 90, seed=2)
    src = save(a, tmp_path / "in.png")
    hole = np.zeros((50, 90), np.uint8)
    hole[10:40, 30:70] = 255  # across a tile boundary
    mask = save(hole, tmp_path / "mask.png")
    r = gan("translate", runs["inpaint"], src, "--mask", mask, "-o", tmp_path / "out.png", "--device", "cpu",
            "--tile", 64, "--overlap", 16, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["files"][0]["tiled"] is True
    out = png(tmp_path / "out.png")
    assert out.shape == (50, 90) and np.array_equal(out[hole == 0], a[hole == 0])


def test_a_folder_of_several_sizes_keeps_names_and_sizes_and_the_json_manifest_parses(runs, tmp_path):
    sizes = [(20, 20), (31, 45), (17, 64)]  # (H, W)
    for k, (h, w) in enumerate(sizes):
        (a,) = shapes(1, h, w, seed=k)
        save(a, tmp_path / "in" / ("sub" if k == 2 else "") / f"img{k}.png")
    r = gan("translate", runs["inpaint"], tmp_path / "in", "--corrupt", "--seed", 5, "-o", tmp_path / "out",
            "--device", "cpu", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["task"] == "inpaint" and doc["corrupt"] is True and doc["seed"] == 5 and doc["step"] == 3
    files = {Path(f["input"]).name: f for f in doc["files"]}
    assert sorted(files) == ["img0.png", "img1.png", "img2.png"]
    for k, (h, w) in enumerate(sizes):
        f = files[f"img{k}.png"]
        rel = Path("sub", f"img{k}.png") if k == 2 else Path(f"img{k}.png")
        assert Path(f["output"]) == tmp_path / "out" / rel
        assert f["input_size"] == f["output_size"] == [w, h]
        assert png(Path(f["output"])).shape == (h, w)
        assert f["psnr"] is not None and f["psnr"] > 0  # against the clean input
        assert ("ssim" in f) == (min(h, w) >= 11)
    assert doc["mean"]["psnr"] == pytest.approx(np.mean([f["psnr"] for f in doc["files"]]))
    # the same command makes the same holes: (seed, k) per image
    r2 = gan("translate", runs["inpaint"], tmp_path / "in", "--corrupt", "--seed", 5, "-o", tmp_path / "again",
             "--device", "cpu")
    assert r2.exit_code == 0, r2.output
    assert np.array_equal(png(tmp_path / "again" / "img1.png"), png(tmp_path / "out" / "img1.png"))


def test_corrupt_draws_other_holes_for_each_image_and_each_seed(runs, tmp_path):
    (a,) = shapes(1, 32, 32)
    for name in ("a.png", "b.png"):  # the same picture twice
        save(a, tmp_path / "in" / name)

    def damaged(seed, out):
        r = gan("translate", runs["inpaint"], tmp_path / "in", "--corrupt", "--seed", seed, "--compare", "-o",
                tmp_path / out, "--device", "cpu")
        assert r.exit_code == 0, r.output
        return [png(tmp_path / out / f"{n}-compare.png")[:, :32] for n in ("a", "b")]

    first, second = damaged(0, "s0")
    assert not np.array_equal(first, second)  # image k gets (seed, k)
    assert not np.array_equal(damaged(1, "s1")[0], first)


def test_the_output_folder_must_be_new_or_empty_and_a_png_output_takes_one_file(runs, tmp_path):
    (a,) = shapes(1, 20, 20)
    src = save(a, tmp_path / "in" / "x.png")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    r = gan("translate", runs["inpaint"], src, "--corrupt", "-o", tmp_path / "full", "--device", "cpu")
    one_error_line(r, "already holds files; give a new or empty folder")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    r = gan("translate", runs["inpaint"], tmp_path / "in", "--corrupt", "-o", tmp_path / "x.png", "--device", "cpu")
    one_error_line(r, "is one file but the inputs hold 1 image; give a folder")
    r = gan("translate", runs["inpaint"], src, "--corrupt", "-o", tmp_path / "x.jpg", "--device", "cpu")
    one_error_line(r, "outputs are PNGs")


# -- superres and tiles -------------------------------------------------------------------------------
def test_superres_upsamples_a_low_res_input_by_the_runs_scale(runs, tmp_path):
    (a,) = shapes(1, 7, 9)
    src = save(a, tmp_path / "low.png")
    r = gan("translate", runs["superres"], src, "-o", tmp_path / "high.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert png(tmp_path / "high.png").shape == (28, 36)
    # --corrupt: a clean image, downscaled by 4 and brought back: its own size
    (b,) = shapes(1, 28, 36)
    clean = save(b, tmp_path / "clean.png")
    r = gan("translate", runs["superres"], clean, "--corrupt", "-o", tmp_path / "back.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert png(tmp_path / "back.png").shape == (28, 36)
    odd = save(shapes(1, 23, 37)[0], tmp_path / "odd.png")
    one_error_line(gan("translate", runs["superres"], odd, "--corrupt", "-o", tmp_path / "o.png", "--device", "cpu"),
                   "is 37x23 px; --corrupt on this superres run downscales by its scale 4")


def test_upsample_is_the_training_corruptions_own():
    x = torch.rand(2, 1, 16, 24) * 2 - 1
    for mode in corrupt.UPSAMPLE_MODES:
        made = corrupt.superres(x, 0, 0, scale=4, upsample=mode)
        assert torch.equal(apply.upsample(made.extra["low"], 4, mode), made.input), mode
    made = corrupt.superres(x, 0, 0, scale=4, upsample="nearest")
    assert not torch.equal(apply.upsample(made.extra["low"], 4, "bicubic"), made.input)  # the modes differ


def test_a_large_image_in_tiles_has_its_size_and_matches_one_pass(runs, tmp_path):
    """Through the CLI: 64-px tiles with 16-px overlaps (the 100x160 upsampled input has sides above the
    tile) give the one-pass output's size and, to 8-bit rounding, its pixels; abutting tiles do not."""
    low = np.asarray(Image.fromarray(shapes(1, 25, 40, seed=3)[0]).filter(ImageFilter.GaussianBlur(1)))
    src = save(low, tmp_path / "low.png")  # -> 100 x 160 after x4
    outs = {}
    for name, args in (("one", ["--tile", 0]), ("blend", ["--tile", 64, "--overlap", 16]),
                       ("abut", ["--tile", 64, "--overlap", 0])):
        r = gan("translate", runs["superres"], src, "-o", tmp_path / f"{name}.png", "--device", "cpu", "--json", *args)
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["files"][0]["tiled"] == (name != "one")
        outs[name] = png(tmp_path / f"{name}.png").astype(np.float64)
        assert outs[name].shape == (100, 160)
    blend = np.abs(outs["blend"] - outs["one"]).max()
    abut = np.abs(outs["abut"] - outs["one"]).max()
    assert blend <= 1 and abut > blend, (blend, abut)


def test_tiled_seams_are_blended(runs):
    """run_generator (what the command calls) on a G with wider weights (its default init, not
    pix2pix's N(0, 0.02), so the output varies): tiles with overlaps stay within a fifth of the output's
    std of one pass everywhere and a tenth of abutting tiles' largest difference, which the check sees."""
    tr = load_translator(runs["superres"])
    torch.manual_seed(0)
    for m in tr.G.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    source = apply.upsample(torch.nn.functional.avg_pool2d(torch.rand(1, 1, 100, 160) * 2 - 1, 4), 4)
    one, tiled = apply.run_generator(tr, source, None, tile=0)
    assert not tiled and one.shape == (1, 1, 100, 160)
    blend, tiled = apply.run_generator(tr, source, None, tile=64, overlap=16)
    assert tiled and blend.shape == one.shape
    abut, _ = apply.run_generator(tr, source, None, tile=64, overlap=0)
    d_blend, d_abut = (blend - one).abs().max().item(), (abut - one).abs().max().item()
    assert d_blend < 0.2 * one.std().item(), (d_blend, one.std().item())
    assert d_blend < 0.1 * d_abut, (d_blend, d_abut)


def test_colorize_takes_a_grayscale_image_and_gives_rgb(runs, tmp_path):
    (a,) = shapes(1, 23, 37)
    gray = save(a, tmp_path / "gray.png")
    r = gan("translate", runs["colorize"], gray, "-o", tmp_path / "color.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert png(tmp_path / "color.png").shape == (23, 37, 3)
    rgb = save(np.stack([a] * 3, -1), tmp_path / "rgb.png")
    one_error_line(gan("translate", runs["colorize"], rgb, "-o", tmp_path / "o.png", "--device", "cpu"),
                   f"{rgb} has 3 channels (RGB); the run takes 1 (grayscale)")
    # --corrupt: clean RGB in, its luma to G, the strip shows the luma gray beside the output and the target
    r = gan("translate", runs["colorize"], rgb, "--corrupt", "--compare", "-o", tmp_path / "c.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    strip = png(tmp_path / "c-compare.png")
    assert strip.shape == (23, 3 * 37 + 2 * apply.COMPARE_GAP, 3)
    luma = strip[:, :37]
    assert np.array_equal(luma[..., 0], luma[..., 1]) and np.abs(luma[..., 0].astype(int) - a).max() <= 1
    one_error_line(gan("translate", runs["colorize"], gray, "--corrupt", "-o", tmp_path / "o.png", "--device", "cpu"),
                   "has 1 channel (grayscale); the run takes 3 (RGB) clean images with --corrupt")


# -- --compare --------------------------------------------------------------------------------------
def test_compare_writes_input_output_target_strips(runs, tmp_path):
    (a,) = shapes(1, 23, 37)
    src = save(a, tmp_path / "in" / "x.png")
    r = gan("translate", runs["inpaint"], tmp_path / "in", "--corrupt", "--compare", "-o", tmp_path / "out",
            "--device", "cpu", "--json")
    assert r.exit_code == 0, r.output
    gap = apply.COMPARE_GAP
    strip = png(tmp_path / "out" / "x-compare.png")
    assert strip.shape == (23, 3 * 37 + 2 * gap)  # input | output | target
    assert np.array_equal(strip[:, -37:], a)  # the target is the clean input
    assert np.array_equal(strip[:, 37 + gap:2 * 37 + gap], png(tmp_path / "out" / "x.png"))
    assert json.loads(r.stdout)["files"][0]["compare"] == str(tmp_path / "out" / "x-compare.png")
    mask = save(np.full((23, 37), 255, np.uint8), tmp_path / "m.png")
    r = gan("translate", runs["inpaint"], src, "--mask", mask, "--compare", "-o", tmp_path / "y.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert png(tmp_path / "y-compare.png").shape == (23, 2 * 37 + gap)  # no target without --corrupt


# -- bad inputs -------------------------------------------------------------------------------------
def test_a_mask_of_another_size_is_one_line(runs, tmp_path):
    src = save(shapes(1, 23, 37)[0], tmp_path / "in.png")
    mask = save(np.zeros((20, 20), np.uint8), tmp_path / "mask.png")
    r = gan("translate", runs["inpaint"], src, "--mask", mask, "-o", tmp_path / "out.png", "--device", "cpu")
    one_error_line(r, f"--mask {mask} is 20x20 px but the input {src} is 37x23")
    assert not (tmp_path / "out.png").exists()


def test_an_input_of_another_channel_count_is_one_line(runs, tmp_path):
    rgb = np.stack([shapes(1, 20, 20)[0]] * 3, -1)
    src = save(rgb, tmp_path / "in" / "rgb.png")
    r = gan("translate", runs["superres"], tmp_path / "in", "-o", tmp_path / "out", "--device", "cpu")
    one_error_line(r, f"{src} has 3 channels (RGB); the run takes 1 (grayscale)")
    assert not (tmp_path / "out").exists()  # nothing written


def test_inpaint_needs_a_mask_or_corrupt_and_mask_is_for_inpaint_only(runs, tmp_path):
    src = save(shapes(1, 20, 20)[0], tmp_path / "in.png")
    one_error_line(gan("translate", runs["inpaint"], src, "-o", tmp_path / "o.png", "--device", "cpu"),
                   "is an inpaint run: give --mask PNG (white = hole, the input's size) or --corrupt")
    one_error_line(gan("translate", runs["superres"], src, "--mask", src, "-o", tmp_path / "o.png", "--device", "cpu"),
                   "--mask applies to inpaint runs")


def test_a_translator_bundle_translates_as_its_run(runs, tmp_path):
    """gan export --format safetensors of a translation run gives a bundle folder that gan translate takes
    as RUN: the same outputs as the run's checkpoint (the same weights and training corruption)."""
    bundle = tmp_path / "bundle"
    r = gan("export", runs["inpaint"], "--format", "safetensors", "-o", bundle)
    assert r.exit_code == 0, r.output
    (a,) = shapes(1, 20, 28)
    src = save(a, tmp_path / "in" / "a.png")
    outs = {}
    for name, run in (("run", runs["inpaint"]), ("bundle", bundle)):
        r = gan("translate", run, src, "--corrupt", "--seed", 4, "-o", tmp_path / f"{name}.png", "--device", "cpu",
                "--json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout.strip().splitlines()[-1])
        assert doc["task"] == "inpaint" and doc["files"][0]["output_size"] == [28, 20]
        outs[name] = png(tmp_path / f"{name}.png")
    assert doc["checkpoint"] == str(bundle)
    assert np.array_equal(outs["bundle"], outs["run"])
    r = gan("translate", bundle, src, "--checkpoint", "2", "-o", tmp_path / "c.png")
    one_error_line(r, "--checkpoint applies to runs")


def test_direction_on_a_pix2pix_run_is_one_line(runs, tmp_path):
    src = save(shapes(1, 20, 20)[0], tmp_path / "in.png")
    r = gan("translate", runs["superres"], src, "--direction", "b2a", "-o", tmp_path / "o.png", "--device", "cpu")
    one_error_line(r, "--direction applies to unpaired (CycleGAN) runs")


@pytest.mark.parametrize("args,message", [
    (["--tile", "48"], "--tile 48 is not a multiple of this generator's 32 px"),
    (["--tile", "64", "--overlap", "40"], "--overlap 40 is not valid; valid choices: 0 to 32"),
    (["--tile", "-1"], "--tile -1 is not valid"),
    (["--tile", "48", "--overlap", "8"], "--tile 48 is not a multiple of this generator's 32 px"),
    (["--tile", "32", "--overlap", "8"], "tiles start at multiples of this generator's 32 px"),
])
def test_bad_tiles_are_one_line(runs, tmp_path, args, message):
    src = save(shapes(1, 20, 20)[0], tmp_path / "in.png")
    one_error_line(gan("translate", runs["superres"], src, "-o", tmp_path / "o.png", "--device", "cpu", *args), message)


def test_gan_sample_on_a_translation_run_points_at_gan_translate(runs, tmp_path):
    r = gan("sample", runs["inpaint"], "-o", tmp_path / "grid.png", "--device", "cpu")
    one_error_line(r, "is an image-to-image run (--task inpaint)")
    assert "use gan translate RUN INPUT... -o OUT" in r.output


# -- the library --------------------------------------------------------------------------------------
def test_the_cli_defaults_are_the_librarys():
    assert (translate_cli.DEFAULT_TILE, translate_cli.DEFAULT_OVERLAP) == (apply.DEFAULT_TILE, apply.DEFAULT_OVERLAP)


def test_translate_image_runs_on_a_tensor_without_files(runs):
    tr = load_translator(runs["superres"])
    t = apply.translate_image(tr, torch.zeros(1, 1, 5, 7))
    assert t.output.shape == (1, 1, 20, 28) and t.input.shape == (1, 1, 20, 28) and t.target is None
    assert t.output.min() >= -1 and t.output.max() <= 1


def test_read_image_counts_color_channels_and_drops_alpha(tmp_path):
    a = np.zeros((4, 6, 4), np.uint8)
    a[..., 3] = 255
    Image.fromarray(a, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((4, 6, 2), 200, np.uint8), "LA").save(tmp_path / "la.png")
    assert apply.read_image(tmp_path / "rgba.png").shape == (1, 3, 4, 6)
    gray = apply.read_image(tmp_path / "la.png")
    assert gray.shape == (1, 1, 4, 6) and torch.allclose(gray, torch.full_like(gray, 200 / 127.5 - 1))
