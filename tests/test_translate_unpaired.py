"""``gan train --task unpaired``: CycleGAN (arXiv 1703.10593) through the one training loop
(issue #24): trains on a folder of two domains, checkpoints its pools, resumes bitwise, loads
as a translator in both directions, and refuses bad input before any run directory exists.
CPU, 16-px images, tiny widths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import same
from gancli.checkpoint import load_checkpoint
from gancli.cli import app
from gancli.config import DataConfig
from gancli.engine.steps import CycleGANTrainStep
from gancli.errors import UsageError
from gancli.runs import RunStore
from gancli.translate.load import load_translator
from gancli.translate.pairs import describe_unpaired

runner = CliRunner()
PARTS = ("generator", "discriminator", "generator_ema", "optim_g", "optim_d", "rng", "task_step")


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _write_domain(folder: Path, n: int, inverted: bool, rgb: bool = False, seed: int = 0) -> None:
    """``n`` 16x16 PNGs: a bright square on black (A) or a dark one on white (``inverted``, B)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        a = np.zeros((16, 16), np.uint8)
        top, left = rng.integers(0, 10, 2)
        a[top:top + 6, left:left + 6] = 255
        if inverted:
            a = 255 - a
        Image.fromarray(np.stack([a] * 3, -1) if rgb else a).save(folder / f"{i:02d}.png")


@pytest.fixture
def domains(tmp_path) -> Path:
    """``A/`` with 12 and ``B/`` with 10 grayscale 16x16 images."""
    root = tmp_path / "squares"
    _write_domain(root / "A", 12, inverted=False)
    _write_domain(root / "B", 10, inverted=True, seed=1)
    return root


def tiny(root: Path, steps: int, *extra) -> list:
    return ["train", "--task", "unpaired", "--dataset", root, "--batch-size", 4, "--ngf", 4, "--ndf", 4,
            "--steps", steps, "--seed", 5, "--device", "cpu", "--log-every", 1, "--sample-every", 2,
            "--checkpoint-every", 2, "--keep", 0, *extra]


def _parts(path: Path) -> dict:
    ckpt = load_checkpoint(path)
    return {name: ckpt.part(name) for name in PARTS}




# -- training through the CLI --------------------------------------------------------------------
def test_unpaired_trains_cyclegan_with_its_recipe_and_checkpoints_its_pools(domains, home):
    r = gan(*tiny(domains, 4))
    assert r.exit_code == 0, r.output
    assert "unpaired with cyclegan" in r.output and "rows: A, G_ab(A), B, G_ba(B)" in r.output
    (run,) = RunStore(home).list()
    cfg = run.read_config()
    assert (cfg.model.arch, cfg.model.img_channels, cfg.model.in_channels, cfg.model.img_resolution) == \
        ("cyclegan", 1, 1, 16)  # both domains grayscale: 1 channel; 16 px, the images' own size
    assert (cfg.loss.name, cfg.loss.adv_weight, cfg.loss.l1_weight, cfg.task.cycle_weight,
            cfg.task.identity_weight) == ("lsgan", 2.0, 0.0, 10.0, 0.5)
    assert (cfg.optim.name, cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.beta1, cfg.optim.beta2,
            cfg.train.monitor_every_steps) == ("adam", 2e-4, 2e-4, 0.5, 0.999, 0)
    records = [m for m in run.read_metrics() if m["kind"] == "train"]
    assert [m["step"] for m in records] == [1, 2, 3, 4]
    for m in records:
        assert np.isfinite([m[k] for k in ("loss_d", "loss_g", "cycle_a", "cycle_b", "idt_a", "idt_b")]).all()
    ckpt = load_checkpoint(run.checkpoint_path(4))
    pools = ckpt.part("task_step")
    assert pools["pool_a"]["count"] == pools["pool_b"]["count"] == 16  # 4 steps x 4 fakes, pools of 50
    assert pools["pool_b"]["images"].shape == (16, 1, 16, 16) and pools["d_updates"] == 4
    assert {k.split(".")[0] for k in ckpt.part("generator")} == {"g_ab", "g_ba"}
    assert {k.split(".")[0] for k in ckpt.part("discriminator")} == {"d_a", "d_b"}
    grid = np.asarray(Image.open(run.samples_dir / "step-4.png"))
    assert grid.shape[:2] == (4 * 18 + 2, 8 * 18 + 2)  # rows a, G_ab(a), b, G_ba(b) of 8 (2-px padding)
    listed = json.loads(gan("runs", "list", "--json").output)
    assert listed[0]["task"] == "unpaired" and listed[0]["arch"] == "cyclegan"
    r = gan("sample", run.id, "-o", home / "grid.png")  # no noise-to-image sampling of a translator
    assert r.exit_code == 2 and "is an image-to-image run (--task unpaired)" in r.output


def test_a_pool_generator_state_of_another_device_is_reseeded(domains):
    """A CUDA generator's state (16 bytes) cannot go into a CPU generator: the pools' generator
    is re-seeded from (seed, D updates), deterministically; the pools themselves are restored."""
    from gancli.resolve import build_config
    from gancli.translate.pairs import load_domains

    cfg = build_config({"task": "unpaired", "dataset": str(domains), "batch_size": 4, "ngf": 4, "ndf": 4,
                        "steps": 2, "device": "cpu"})
    data = load_domains(cfg.data)
    steps = [CycleGANTrainStep(cfg, data, torch.device("cpu")) for _ in range(2)]
    state = steps[0].state_dict()
    state = {**state, "generator": torch.zeros(16, dtype=torch.uint8), "d_updates": 7,
             "pool_a": {"images": torch.zeros(1, 1, 16, 16), "count": 1}}
    for s in steps:
        s.load_state_dict(state)
    a, b = (s.state_dict() for s in steps)
    assert torch.equal(a["generator"], b["generator"]) and a["d_updates"] == 7 and a["pool_a"]["count"] == 1
    assert not torch.equal(a["generator"], CycleGANTrainStep(cfg, data, torch.device("cpu")).state_dict()["generator"])


def test_resume_is_bitwise_identical_to_a_straight_run(domains, home, monkeypatch):
    """N steps + resume + N == 2N: weights, EMA, optimizers, RNG states and the step's own state
    (pools of 2, so they are full and swapping from step 1 on: the restored pool matters)."""
    monkeypatch.setattr(CycleGANTrainStep, "POOL_SIZE", 2)
    n = 2
    assert gan(*tiny(domains, 2 * n)).exit_code == 0  # run-1, straight
    assert gan(*tiny(domains, n)).exit_code == 0  # run-2: N steps...
    r = gan("train", "--resume", "run-2", "--steps", 2 * n)  # ...then N more in a fresh trainer
    assert r.exit_code == 0, r.output
    store = RunStore(home)
    straight, resumed = (_parts(store.resolve(i).checkpoint_path(2 * n)) for i in ("run-1", "run-2"))
    for name in PARTS:
        assert same(straight[name], resumed[name]), name
    assert straight["task_step"]["pool_a"]["count"] == 2

    # guard: the same resume without the pools' state restored ends elsewhere
    monkeypatch.setattr(CycleGANTrainStep, "load_state_dict", lambda self, state: None)
    assert gan(*tiny(domains, n)).exit_code == 0  # run-3
    assert gan("train", "--resume", "run-3", "--steps", 2 * n).exit_code == 0
    forgot = _parts(store.resolve("run-3").checkpoint_path(2 * n))
    assert not same(straight["generator"], forgot["generator"])


# -- the translator of an unpaired run -----------------------------------------------------------
def test_load_translator_gives_either_direction_at_any_size(domains, home):
    assert gan(*tiny(domains, 2, "--ema-decay", 0)).exit_code == 0
    (run,) = RunStore(home).list()
    weights = load_checkpoint(run.checkpoint_path(2)).part("generator")
    x = torch.rand(2, 1, 19, 23) * 2 - 1  # not a multiple of 4: padded and cropped back
    outs = {}
    for direction, prefix in ((None, "g_ab."), ("a2b", "g_ab."), ("b2a", "g_ba.")):
        tr = load_translator(run.path, direction=direction)
        assert tr.task == "unpaired" and tr.direction == (direction or "a2b") and not tr.uses_ema
        assert (tr.in_channels, tr.img_channels, tr.multiple, tr.corruption, tr.options) == (1, 1, 4, "", {})
        own = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        assert same(tr.G.state_dict(), own)
        out = tr.repair(x)
        assert out.shape == (2, 1, 19, 23) and out.abs().max() <= 1
        outs[direction] = out
        with pytest.raises(UsageError, match="--corrupt applies to repair tasks"):
            tr.corrupt(x, seed=0)
    assert torch.equal(outs[None], outs["a2b"]) and not torch.equal(outs["a2b"], outs["b2a"])
    with pytest.raises(UsageError, match="not one of a2b, b2a"):
        load_translator(run.path, direction="ab")


# -- the dataset's shape -------------------------------------------------------------------------
def test_domains_of_other_channel_counts_train_in_rgb_and_trainA_layout_is_read(tmp_path):
    root = tmp_path / "mixed"
    _write_domain(root / "trainA", 6, inverted=False)
    _write_domain(root / "trainB", 5, inverted=True, rgb=True)
    info = describe_unpaired(DataConfig(dataset=str(root)))
    assert (info.channels, info.resolution, info.num_classes, info.sizes) == (3, 16, 0, {"train": 6})
    info = describe_unpaired(DataConfig(dataset=str(root), channels=1, image_size=32))
    assert (info.channels, info.resolution) == (1, 32)


# -- bad input: one line, exit 2, no run directory -----------------------------------------------
def _bad_folder(tmp_path: Path, kind: str) -> Path:
    root = tmp_path / kind
    _write_domain(root / "A", 6, inverted=False)
    if kind == "empty_b":
        (root / "B").mkdir()
    return root


BAD = [
    ("no_b", [], "domain folder"),
    ("empty_b", [], "holds no image"),
    ("ok", ["--cycle-weight", "5", "--task", "inpaint"], "--task inpaint takes no --cycle-weight"),
    ("ok", ["--identity-weight", "0"], "--task generate takes no --identity-weight"),
    ("ok", ["--l1-weight", "10"], "--task unpaired takes no --l1-weight"),
    ("ok", ["--mask", "free"], "--task unpaired takes no --mask"),
    ("ok", ["--arch", "unet"], "--arch unet does not fit --task unpaired"),
    ("ok", ["--arch", "dcgan"], "--arch dcgan draws images from noise"),
    ("ok", ["--adv-weight", "0"], "--adv-weight 0 is not valid with --task unpaired"),
    ("ok", ["--d-steps", "2"], "--d-steps 2 is not available with --task unpaired"),
    ("ok", ["--cycle-weight", "-1"], "--cycle-weight must be >= 0"),
    ("ok", ["--nan-policy", "skip"], "--nan-policy skip is not available with --task unpaired"),
    ("mnist", [], "takes a folder with the domain folders A/ and B/"),
]


@pytest.mark.parametrize(("kind", "extra", "message"), BAD, ids=[f"{k}{' '.join(e)}" for k, e, _ in BAD])
def test_bad_unpaired_input_is_one_line_and_leaves_no_run_directory(tmp_path, home, domains, kind, extra, message):
    dataset = {"ok": domains, "mnist": "mnist"}.get(kind) or _bad_folder(tmp_path, kind)
    task = [] if "--task" in extra or "--identity-weight" in extra else ["--task", "unpaired"]
    r = gan("train", *task, "--dataset", dataset, "--steps", 2, "--batch-size", 4, "--device", "cpu", *extra)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.output
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_cyclegan_arch_needs_the_unpaired_task(domains, home):
    r = gan("train", "--task", "inpaint", "--arch", "cyclegan", "--dataset", domains / "A", "--steps", 1,
            "--batch-size", 4, "--device", "cpu")
    assert r.exit_code == 2 and "--arch cyclegan does not fit --task inpaint; its architecture: unet" in r.output


# -- --arch cyclegan -----------------------------------------------------------------------------
def test_cyclegan_arch_builds_both_pairs_from_a_config_at_any_size():
    from gancli.config import ModelConfig
    from gancli.models import build_discriminator, build_generator, check_supported

    cfg = ModelConfig(arch="cyclegan", ngf=4, ndf=4, img_channels=3, img_resolution=30, in_channels=3)
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert G.config == cfg and G.multiple == 4 and G.takes_image
    x = torch.rand(2, 3, 30, 26) * 2 - 1  # neither side a multiple of 4
    assert G(x).shape == G.g_ba(x).shape == (2, 3, 30, 26)
    assert torch.equal(G(x), G.g_ab(x))
    assert D.d_a(x).shape == D.d_b(x).shape == D(x).shape and D(x).shape[:2] == (2, 1)
    assert D.d_a.norm == "instance" and G.g_ab.net.norm == "instance"
    with pytest.raises(UsageError, match="cyclegan does not support 1x7x7 images"):
        check_supported(ModelConfig(arch="cyclegan", img_channels=1, img_resolution=7, in_channels=1))


def test_export_of_an_unpaired_run_is_its_a2b_generator_at_any_size(domains, home, tmp_path):
    """gan export writes the A -> B generator of a CycleGAN run (verified at two sizes by the export
    itself); the file maps an odd-sized batch as load_translator's a2b generator does."""
    assert gan(*tiny(domains, 2, "--ema-decay", 0)).exit_code == 0
    out = tmp_path / "cyc.pt"
    r = gan("--home", home, "export", "latest", "--format", "torchscript", "-o", out)
    assert r.exit_code == 0, r.output
    (run,) = RunStore(home).list()
    x = torch.rand(3, 1, 19, 23) * 2 - 1
    got = torch.jit.load(str(out))(x)
    want = load_translator(run.path, direction="a2b").repair(x)
    assert got.shape == (3, 1, 19, 23)
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, load_translator(run.path, direction="b2a").repair(x), atol=1e-3)
