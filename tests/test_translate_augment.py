"""``--augment`` (DiffAugment, Zhao et al. 2020, arXiv 2006.10738) on the image-to-image tasks
(issue #24): pix2pix's D sees (input, image) pairs, so both halves of a pair take the same
transform; CycleGAN augments every image either D sees. Both resume bitwise. CPU, tiny nets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import same, write_shapes
from gancli.augment.diffaug import DiffAugment, augment_pairs, diff_augment
from gancli.augment.spec import AUGMENT_POLICIES
from gancli.checkpoint import load_checkpoint
from gancli.cli import app
from gancli.engine.steps import CycleGANTrainStep, TranslateStep
from gancli.runs import RunStore

runner = CliRunner()
ALL = AUGMENT_POLICIES


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)




def _parts(path: Path, names) -> dict:
    ckpt = load_checkpoint(path)
    return {name: ckpt.part(name) for name in names}


# -- the same transform on an image and its condition ------------------------------------------
def test_identical_channels_in_give_identical_channels_out():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(6, 1, 16, 16, generator=g) * 2 - 1
    out_image, out_cond = augment_pairs(DiffAugment(ALL), image, image.clone())
    assert torch.equal(out_image, out_cond)
    assert not torch.allclose(out_image, image)  # something was done


def test_each_half_is_transformed_as_if_augmented_alone_with_the_same_draws():
    """groups: one set of draws per sample for every group, colour statistics per group."""
    g = torch.Generator().manual_seed(1)
    image, cond = torch.rand(5, 3, 12, 12, generator=g) * 2 - 1, torch.rand(5, 2, 12, 12, generator=g) * 2 - 1
    for policies in (ALL, ("color",), ("translation", "cutout")):
        both = diff_augment(torch.cat([image, cond], 1), policies, torch.Generator().manual_seed(7), groups=(3, 2))
        alone_image = diff_augment(image, policies, torch.Generator().manual_seed(7))
        alone_cond = diff_augment(cond, policies, torch.Generator().manual_seed(7))
        torch.testing.assert_close(both[:, :3], alone_image, rtol=0, atol=1e-6)
        torch.testing.assert_close(both[:, 3:], alone_cond, rtol=0, atol=1e-6)
    # without groups, colour statistics mix the halves: not the same as alone
    mixed = diff_augment(torch.cat([image, cond], 1), ("color",), torch.Generator().manual_seed(7))
    assert not torch.allclose(mixed[:, :3], diff_augment(image, ("color",), torch.Generator().manual_seed(7)))


def test_pairs_gradient_flows_and_bad_groups_are_refused():
    image = torch.zeros(2, 1, 8, 8, requires_grad=True)
    cond = torch.zeros(2, 2, 8, 8)
    a, c = augment_pairs(DiffAugment(("translation",)), image, cond)
    assert a.shape == image.shape and c.shape == cond.shape
    a.sum().backward()
    assert image.grad is not None
    off = DiffAugment(())
    assert augment_pairs(off, image, cond)[0] is image
    with pytest.raises(ValueError, match="must be channel counts >= 1 summing to C = 3"):
        diff_augment(torch.zeros(1, 3, 8, 8), ALL, groups=(1, 1))


def test_an_inpaint_pair_keeps_its_hole_mask_aligned_with_the_image():
    """TranslateStep.augment: the mask channel moves with the image (same shift and cut-out)."""
    g = torch.Generator().manual_seed(2)
    target = torch.rand(4, 1, 16, 16, generator=g) * 2 - 1
    mask = (torch.rand(4, 1, 16, 16, generator=g) > 0.5).float()
    source = torch.cat([target.masked_fill(mask > 0.5, 0.0), mask], 1)
    torch.manual_seed(3)
    image, src = TranslateStep.augment(DiffAugment(("translation", "cutout")), target, source, {"mask": mask})
    assert src.shape == source.shape
    expected = torch.where(src[:, 1:] > 0.5, torch.zeros_like(image), image)
    assert torch.equal(src[:, :1], expected)  # the damaged half is still the image with the (moved) holes
    assert not torch.equal(image, target)


# -- tiny runs: train and resume bitwise ---------------------------------------------------------
@pytest.fixture
def folder(tmp_path) -> Path:
    return write_shapes(tmp_path / "shapes", n=16, size=16, box=(6, 5), spread=8)


def _inpaint(folder: Path, steps: int, *extra) -> list:
    return ["train", "--task", "inpaint", "--dataset", folder, "--image-size", 16, "--channels", 1,
            "--batch-size", 4, "--ngf", 4, "--ndf", 4, "--steps", steps, "--seed", 3, "--device", "cpu",
            "--log-every", 1, "--sample-every", 0, "--checkpoint-every", 2, "--keep", 0, "--augment", "diffaug",
            *extra]


@pytest.fixture
def domains(tmp_path) -> Path:
    root = tmp_path / "squares"
    rng = np.random.default_rng(1)
    for name, n, inverted in (("A", 8, False), ("B", 6, True)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            a = np.zeros((16, 16), np.uint8)
            top, left = rng.integers(0, 10, 2)
            a[top:top + 6, left:left + 6] = 255
            Image.fromarray(255 - a if inverted else a).save(root / name / f"{i:02d}.png")
    return root


def _unpaired(root: Path, steps: int, *extra) -> list:
    return ["train", "--task", "unpaired", "--dataset", root, "--batch-size", 2, "--ngf", 4, "--ndf", 4,
            "--steps", steps, "--seed", 5, "--device", "cpu", "--log-every", 1, "--sample-every", 0,
            "--checkpoint-every", 2, "--keep", 0, "--augment", "diffaug", *extra]


PIX2PIX_PARTS = ("generator", "discriminator", "generator_ema", "optim_g", "optim_d", "rng")


@pytest.mark.parametrize("kind", ["inpaint", "unpaired"])
def test_augmented_runs_resume_bitwise(kind, folder, domains, home, monkeypatch):
    """N steps + resume + N == 2N straight, with --augment diffaug (the draws come from the
    global RNG, whose state the checkpoints hold); and the augmentation is in effect."""
    if kind == "inpaint":
        args, names = (lambda steps, *e: _inpaint(folder, steps, *e)), PIX2PIX_PARTS
    else:
        monkeypatch.setattr(CycleGANTrainStep, "POOL_SIZE", 2)
        args, names = (lambda steps, *e: _unpaired(domains, steps, *e)), PIX2PIX_PARTS + ("task_step",)
    n = 2
    r = gan(*args(2 * n))  # run-1, straight
    assert r.exit_code == 0, r.output
    assert gan(*args(n)).exit_code == 0  # run-2: N steps...
    r = gan("train", "--resume", "run-2", "--steps", 2 * n)  # ...then N more
    assert r.exit_code == 0, r.output
    assert gan(*args(2 * n, "--augment", "none")).exit_code == 0  # run-3: no augmentation
    store = RunStore(home)
    assert store.resolve("run-1").read_config().train.augment == "diffaug"
    assert store.resolve("run-3").read_config().train.augment in ("", "none")
    straight, resumed, plain = (_parts(store.resolve(i).checkpoint_path(2 * n), names)
                                for i in ("run-1", "run-2", "run-3"))
    for name in names:
        assert same(straight[name], resumed[name]), name
    assert not same(straight["discriminator"], plain["discriminator"])  # the augmentation did something
