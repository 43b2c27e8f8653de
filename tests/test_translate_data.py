"""The data side of the image-to-image tasks (issue #24): training corruptions
(gancli.translate.corrupt), pairs and domains (gancli.translate.pairs), the MNIST restyling and
the unpaired-benchmark script. Tiny tensors and folders written with Pillow; no training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import load_script
from gancli.data.batcher import DeviceBatcher
from gancli.errors import GancliError, UnknownNameError, UsageError
from gancli.translate import corrupt as C
from gancli.translate.pairs import (
    UnpairedSampler,
    b_indices,
    domain_folders,
    load_paired,
    load_unpaired,
    scan_paired,
)
from gancli.translate.restyle import restyle_mnist



def images(n: int = 8, c: int = 1, h: int = 28, w: int = 28, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) * 2 - 1


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (h, w, 3)).copy()


# -- inpaint ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1, 3])
def test_inpaint_box_shapes_values_and_hole_size(c):
    x = images(6, c)
    inp, extra = C.corrupt("inpaint", x, seed=1, step=0)
    mask, damaged = extra["mask"], extra["damaged"]
    assert inp.shape == (6, c + 1, 28, 28) and mask.shape == (6, 1, 28, 28)
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert C.default_mask_size(28, 28) == 12
    assert mask.sum((1, 2, 3)).tolist() == [144.0] * 6  # one 12x12 square each
    rows, cols = mask[0, 0].any(1).nonzero(), mask[0, 0].any(0).nonzero()
    assert rows.max() - rows.min() == 11 and cols.max() - cols.min() == 11  # and a square
    hole = mask.expand_as(x) > 0.5
    assert torch.equal(damaged[hole], torch.full_like(damaged[hole], C.HOLE_FILL))
    assert torch.equal(damaged[~hole], x[~hole])
    assert torch.equal(inp[:, :c], damaged) and torch.equal(inp[:, c:], mask)
    assert C.corrupt("inpaint", x, 1, 0, mask_size=5).extra["mask"].sum().item() == 6 * 25


def test_inpaint_free_and_mixed_masks():
    n = 32
    free = C.corrupt("inpaint", images(n), 0, 3, mask="free").extra["mask"]
    cover = free.mean((1, 2, 3))
    assert set(free.unique().tolist()) == {0.0, 1.0}
    assert (cover > 0).all() and (cover < 0.9).all()

    def is_square(m: torch.Tensor) -> bool:
        r, c = m.any(1).nonzero(), m.any(0).nonzero()
        return bool(m.sum() == (r.max() - r.min() + 1) * (c.max() - c.min() + 1)) and bool(m.sum() == 144)

    assert sum(is_square(m[0]) for m in free) < n // 4  # strokes, not boxes
    mixed = C.corrupt("inpaint", images(n), 0, 3, mask="mixed").extra["mask"]
    squares = sum(is_square(m[0]) for m in mixed)
    assert 4 <= squares <= n - 4  # both kinds, about half each


def test_free_masks_scale_with_the_image():
    big = C.make_masks(2, 256, 192, C.corruption_generator(0, 0), "free")
    assert big.shape == (2, 1, 256, 192)
    assert 0.01 < big.mean() < 0.7


@pytest.mark.parametrize("task,options", [("inpaint", {"mask": "box"}), ("inpaint", {"mask": "free"}),
                                          ("inpaint", {"mask": "mixed"}), ("denoise", {})])
def test_random_corruptions_are_a_function_of_seed_and_step(task, options):
    x = images(4, 3, 32, 32)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = C.corrupt(task, x, seed=7, step=10, **options).input
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is neither used nor moved
    assert torch.equal(first, C.corrupt(task, x.clone(), seed=7, step=10, **options).input)
    assert not torch.equal(first, C.corrupt(task, x, seed=7, step=11, **options).input)
    assert not torch.equal(first, C.corrupt(task, x, seed=8, step=10, **options).input)
    # the same images as another slice of a larger global batch get other draws
    assert not torch.equal(first, C.corrupt(task, x, seed=7, step=10, global_batch=8, offset=4, **options).input)


@pytest.mark.parametrize("task,options", [("inpaint", {"mask": "box"}), ("inpaint", {"mask": "free"}),
                                          ("inpaint", {"mask": "mixed"}), ("denoise", {}),
                                          ("superres", {"scale": 2}), ("edges", {})])
def test_a_batch_corrupted_in_slices_equals_the_batch_corrupted_at_once(task, options):
    """A process's slice of a multi-process batch gets the corruption the single process gives
    those rows: drawn for the global batch, independent of the number of processes."""
    x = images(8, 3, 32, 32)
    whole = C.corrupt(task, x, seed=7, step=10, **options)
    for parts in (2, 4):
        b = 8 // parts
        slices = [C.corrupt(task, x[r * b:(r + 1) * b], seed=7, step=10, global_batch=8, offset=r * b, **options)
                  for r in range(parts)]
        assert torch.equal(torch.cat([s.input for s in slices]), whole.input), parts
        for key in whole.extra:
            assert torch.equal(torch.cat([s.extra[key] for s in slices]), whole.extra[key]), (parts, key)
    # guard: a slice corrupted as a batch of its own does not match (the draws depend on the batch)
    if task in ("inpaint", "denoise"):
        alone = C.corrupt(task, x[4:], seed=7, step=10, **options).input
        assert not torch.equal(alone, whole.input[4:])


def test_a_slice_outside_the_global_batch_is_refused():
    with pytest.raises(ValueError, match="images 6 to 10 do not fit a global batch of 8"):
        C.corrupt("inpaint", images(4, 1, 16, 16), 0, 0, global_batch=8, offset=6)
    with pytest.raises(ValueError, match="do not fit a global batch of 4"):
        C.corrupt("denoise", images(4, 1, 16, 16), 0, 0, offset=1)


def test_masks_do_not_depend_on_the_pixels():
    """A resumed run or an evaluation with other images at the same step gets the same holes."""
    m1 = C.inpaint(images(4, seed=1), 3, 9, mask="mixed").extra["mask"]
    m2 = C.inpaint(images(4, seed=2), 3, 9, mask="mixed").extra["mask"]
    assert torch.equal(m1, m2)


def test_keep_known_keeps_known_pixels_exactly():
    x = images(3, 3)
    _, extra = C.inpaint(x, 0, 0, mask="mixed")
    out = (images(3, 3, seed=5) * 10).requires_grad_()  # far outside the range: no accidental match
    repaired = C.keep_known(out, x, extra["mask"])
    hole = extra["mask"].expand_as(x) > 0.5
    assert torch.equal(repaired[~hole], x[~hole])
    assert torch.equal(repaired[hole], out[hole])
    repaired.sum().backward()
    assert torch.equal(out.grad, hole.to(out.dtype))  # the generator is trained on the holes only


def test_inpaint_bad_options():
    with pytest.raises(UsageError, match=r"--mask 'disc' is not valid; valid choices: box, free, mixed"):
        C.corrupt("inpaint", images(1), 0, 0, mask="disc")
    with pytest.raises(ValueError, match=r"--mask-size 29 .*1 to 28 pixels for 28x28"):
        C.check_task("inpaint", 1, 28, 28, mask_size=29)


# -- superres, denoise, colorize, edges -------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_superres_downscales_by_area_and_keeps_the_size(scale):
    x = images(2, 3, 32, 32)
    inp, extra = C.corrupt("superres", x, 0, 0, scale=scale)
    low = extra["low"]
    assert inp.shape == x.shape and low.shape == (2, 3, 32 // scale, 32 // scale)
    assert inp.min() >= -1 and inp.max() <= 1
    block = x[:, :, :scale, :scale].mean((2, 3))
    torch.testing.assert_close(low[:, :, 0, 0], block)
    nearest = C.corrupt("superres", x, 0, 0, scale=scale, upsample="nearest").input
    assert torch.equal(nearest, low.repeat_interleave(scale, 2).repeat_interleave(scale, 3))
    flat = low.repeat_interleave(scale, 2).repeat_interleave(scale, 3)  # already blocky: area keeps it
    torch.testing.assert_close(C.superres(flat, 0, 0, scale=scale).extra["low"], low)


def test_superres_bad_scales_name_the_size_and_the_valid_scales():
    with pytest.raises(ValueError, match=r"--scale 3 is not valid; valid choices: 2, 4, 8"):
        C.corrupt("superres", images(1), 0, 0, scale=3)
    with pytest.raises(UsageError, match=r"--scale 8 does not divide the image size 28x28; valid scales for it: 2, 4$"):
        C.superres(images(1), 0, 0, scale=8)
    with pytest.raises(ValueError, match=r"30x30; valid scales for it: 2$"):
        C.check_task("superres", 1, 30, 30, scale=4)
    with pytest.raises(ValueError, match=r"--upsample 'bilinear' is not valid; valid choices: bicubic, nearest"):
        C.check_task("superres", 1, 32, 32, upsample="bilinear")


def test_denoise_adds_noise_of_the_given_std_and_clamps():
    x = torch.zeros(8, 3, 32, 32)
    inp = C.corrupt("denoise", x, 0, 0, noise_std=0.1).input
    assert inp.shape == x.shape
    assert abs(inp.std().item() - 0.1) < 0.005 and abs(inp.mean().item()) < 0.005
    loud = C.corrupt("denoise", images(2), 0, 0, noise_std=1.5).input
    assert loud.min() == -1 and loud.max() == 1
    with pytest.raises(ValueError, match=r"--noise-std 0 is not valid"):
        C.corrupt("denoise", x, 0, 0, noise_std=0)


def test_colorize_gives_bt601_luma_and_refuses_grayscale():
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    inp, extra = C.corrupt("colorize", red, 0, 0)
    assert inp.shape == (2, 1, 4, 4) and extra == {}
    torch.testing.assert_close(inp, torch.full_like(inp, 0.299 - 0.587 - 0.114))
    gray = C.colorize(torch.full((1, 3, 2, 2), 0.5), 0, 0).input
    torch.testing.assert_close(gray, torch.full_like(gray, 0.5))  # weights sum to 1
    with pytest.raises(ValueError, match=r"colorize needs RGB images \(3 channels\), got 1 channel;"):
        C.corrupt("colorize", images(2, 1), 0, 0)
    with pytest.raises(UsageError, match=r"got 1 channel"):
        C.check_task("colorize", 1, 28, 28)


@pytest.mark.parametrize("c", [1, 3])
def test_edges_are_black_lines_on_white_at_the_steps(c):
    x = -torch.ones(2, c, 16, 16)
    x[..., 8:] = 1.0  # a vertical step between columns 7 and 8
    inp, _ = C.corrupt("edges", x, 0, 0)
    assert inp.shape == (2, 1, 16, 16)
    assert set(inp.unique().tolist()) == {-1.0, 1.0}
    edge_cols = (inp[0, 0] == -1).all(0).nonzero().flatten().tolist()
    assert edge_cols == [7, 8] and (inp[0, 0] == -1).sum() == 32
    flat = C.corrupt("edges", torch.full((1, c, 16, 16), 0.3), 0, 0).input
    assert (flat == 1).all()  # no edges, not even at the border
    assert (C.corrupt("edges", x, 0, 0, edge_threshold=1.2).input == 1).all()


def test_tasks_declare_channels_options_and_rgb():
    assert TASK_NAMES == C.TASKS.names()
    assert {t.name: (t.obj.input_channels(1), t.obj.input_channels(3)) for t in C.TASKS} == {
        "inpaint": (2, 4), "superres": (1, 3), "denoise": (1, 3), "colorize": (1, 1), "edges": (1, 1)}
    assert [t.name for t in C.TASKS if t.obj.needs_rgb] == ["colorize"]
    for t in C.TASKS:  # the declared input channels are what the corruption makes
        c = 3
        assert t.obj.apply(images(1, c, 16, 16), 0, 0).input.shape[1] == t.obj.input_channels(c)
        assert t.summary and t.defaults == t.obj.options
    assert C.check_task("superres", 3, 64, 64, scale=2) == {"scale": 2, "upsample": "bicubic"}
    assert C.check_task("inpaint", 1, 28, 28) == {"mask": "box", "mask_size": 0}


TASK_NAMES = ["inpaint", "superres", "denoise", "colorize", "edges"]


def test_unknown_tasks_and_options_name_the_choices():
    with pytest.raises(UnknownNameError, match="valid choices: inpaint, superres, denoise, colorize, edges"):
        C.corrupt("deblur", images(1), 0, 0)
    with pytest.raises(UsageError, match=r"task denoise takes no --scale; its options: --noise-std$"):
        C.check_task("denoise", 1, 28, 28, scale=2)
    with pytest.raises(ValueError, match=r"task colorize takes no --mask; its options: none"):
        C.corrupt("colorize", images(1, 3), 0, 0, mask="box")
    with pytest.raises(ValueError, match="float"):
        C.corrupt("denoise", torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 0, 0)


# -- restyle ----------------------------------------------------------------------------------------


def test_restyle_mnist_dilates_by_two_pixels_and_inverts():
    x = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    x[0, 0, 4, 4] = 200
    y = restyle_mnist(x)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    expected = torch.full((9, 9), 255, dtype=torch.uint8)
    expected[2:7, 2:7] = 55
    assert torch.equal(y[0, 0], expected)
    as_float = restyle_mnist(x.float() / 127.5 - 1)
    torch.testing.assert_close(as_float, y.float() / 127.5 - 1)
    with pytest.raises(ValueError, match="uint8 or float"):
        restyle_mnist(torch.zeros(1, 1, 4, 4, dtype=torch.int64))


# -- paired folders ---------------------------------------------------------------------------------


def test_paired_folders_match_by_name_and_conform(tmp_path):
    colours = {"cat": (255, 0, 0), "dog": (0, 255, 0), "sub/eel": (0, 0, 255)}
    for k, (name, rgb) in enumerate(colours.items()):
        save(tmp_path / "A" / f"{name}.png", solid(12, 12, rgb))
        save(tmp_path / "B" / f"{name}.{'bmp' if k else 'png'}", np.full((20, 20), 40 * k, dtype=np.uint8))
    data = load_paired(tmp_path, channels=3, channels_b=1, size=8)
    assert data.names == ["cat", "dog", "sub/eel"]
    assert data.a.shape == (3, 3, 8, 8) and data.b.shape == (3, 1, 8, 8) and data.a.dtype == torch.uint8
    for k, rgb in enumerate(colours.values()):
        assert data.a[k, :, 0, 0].tolist() == list(rgb)
        assert (data.b[k] == 40 * k).all()
    gray = load_paired(tmp_path, channels=1, size=8, limit=2)
    assert gray.a.shape == (2, 1, 8, 8) and gray.b.shape == (2, 1, 8, 8)
    assert [p[0] for p in scan_paired(tmp_path)] == data.names


def test_unmatched_names_list_the_first_few_of_each_side(tmp_path):
    for k in range(7):
        save(tmp_path / "A" / f"a{k}.png", np.zeros((4, 4), np.uint8))
    for name in ("shared", "b0"):
        save(tmp_path / "A" / f"{name}.png" if name == "shared" else tmp_path / "B" / f"{name}.png",
             np.zeros((4, 4), np.uint8))
    save(tmp_path / "B" / "shared.jpg", np.zeros((4, 4), np.uint8))
    with pytest.raises(UsageError) as err:
        load_paired(tmp_path)
    msg = str(err.value)
    assert "7 of 8 in" in msg and "a0, a1, a2, a3, a4, ..." in msg and "a5" not in msg
    assert "1 of 2 in" in msg and "(b0)" in msg and "shared" not in msg
    assert "\n" not in msg and err.value.exit_code == 2


def test_paired_empty_or_missing_domain(tmp_path):
    save(tmp_path / "A" / "x.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "notes.txt").write_text("not an image")
    with pytest.raises(UsageError, match=rf"domain folder {tmp_path / 'B'} holds no image"):
        load_paired(tmp_path)
    with pytest.raises(UsageError, match=r"needs the subfolders A/ and B/.*not found"):
        scan_paired(tmp_path / "A")
    with pytest.raises(UsageError, match=r"--paired-layout 'side' is not valid; valid choices: folders .*ab "):
        scan_paired(tmp_path, layout="side")
    with pytest.raises(UsageError, match="not found"):
        scan_paired(tmp_path / "nowhere")


def test_ab_layout_splits_left_and_right(tmp_path):
    ab = np.concatenate([solid(10, 10, (255, 0, 0)), solid(10, 10, (0, 0, 255))], 1)  # 20 wide
    save(tmp_path / "train" / "1.png", ab)
    save(tmp_path / "train" / "2.png", ab[:, ::-1].copy())
    save(tmp_path / "val" / "9.png", ab)
    data = load_paired(tmp_path, layout="ab", size=10)
    assert data.names == ["1", "2"] and data.a.shape == data.b.shape == (2, 3, 10, 10)
    assert data.a[0, :, 5, 5].tolist() == [255, 0, 0] and data.b[0, :, 5, 5].tolist() == [0, 0, 255]
    assert data.a[1, :, 5, 5].tolist() == [0, 0, 255] and data.b[1, :, 5, 5].tolist() == [255, 0, 0]
    assert load_paired(tmp_path, layout="ab", split="val", size=10).names == ["9"]
    with pytest.raises(UsageError, match=r"no test split"):
        scan_paired(tmp_path, layout="ab", split="test")
    save(tmp_path / "train" / "3.png", solid(10, 21, (0, 0, 0)))
    with pytest.raises(UsageError, match=r"3\.png is 21x10 pixels: a side-by-side A\|B image needs an even width"):
        load_paired(tmp_path, layout="ab", size=10)


def test_unreadable_pair_fails_or_is_skipped(tmp_path):
    for name in ("x", "y"):
        save(tmp_path / "A" / f"{name}.png", np.zeros((4, 4), np.uint8))
        save(tmp_path / "B" / f"{name}.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "B" / "y.png").write_bytes(b"broken")
    with pytest.raises(GancliError, match=r"cannot read image .*y\.png"):
        load_paired(tmp_path, size=4)
    data = load_paired(tmp_path, size=4, skip_bad=True)
    assert data.names == ["x"] and data.a.shape[0] == data.b.shape[0] == 1
    assert data.skipped == [str(tmp_path / "B" / "y.png")]


# -- unpaired domains -------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [("A", "B"), ("trainA", "trainB")])
def test_unpaired_layouts_and_sizes(tmp_path, layout):
    for k in range(3):
        save(tmp_path / layout[0] / f"a{k}.png", np.full((6, 6), k, np.uint8))
    for k in range(5):
        save(tmp_path / layout[1] / f"b{k}.png", solid(6, 6, (k, k, k)))
    data = load_unpaired(tmp_path, channels=1, size=6)
    assert data.a.shape == (3, 1, 6, 6) and data.b.shape == (5, 1, 6, 6)
    assert data.names_a == ["a0.png", "a1.png", "a2.png"] and data.names_b[-1] == "b4.png"
    assert data.b[4].unique().tolist() == [4]
    assert load_unpaired(tmp_path, channels=3, size=6, limit=2).b.shape == (2, 3, 6, 6)


def test_unpaired_test_split_and_errors(tmp_path):
    with pytest.raises(UsageError, match=r"no train domains in .*: expected the subfolders trainA/ and trainB/ or A/ and B/"):
        domain_folders(tmp_path)
    save(tmp_path / "testA" / "1.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(UsageError, match=rf"domain folder {tmp_path / 'testB'} not found"):
        load_unpaired(tmp_path, split="test")
    (tmp_path / "testB").mkdir()
    with pytest.raises(UsageError, match=rf"domain folder {tmp_path / 'testB'} holds no image"):
        load_unpaired(tmp_path, split="test")
    save(tmp_path / "testB" / "deep" / "2.png", np.zeros((4, 4), np.uint8))
    data = load_unpaired(tmp_path, split="test", channels=1, size=4)
    assert data.names_b == ["deep/2.png"]


# -- unpaired sampler -------------------------------------------------------------------------------


def test_unpaired_sampler_is_a_function_of_seed_and_step():
    s = UnpairedSampler(10, 7, 4, seed=3)
    walked = [s.indices(k) for k in range(6)]  # crosses epochs (2 steps each)
    fresh = UnpairedSampler(10, 7, 4, seed=3).indices(5)  # a resume at step 5
    assert torch.equal(walked[5][0], fresh[0]) and torch.equal(walked[5][1], fresh[1])
    assert not torch.equal(walked[0][1], walked[1][1])
    assert not torch.equal(UnpairedSampler(10, 7, 4, seed=4).indices(0)[1], walked[0][1])
    for idx_a, idx_b in walked:
        assert idx_a.shape == idx_b.shape == (4,) and idx_b.min() >= 0 and idx_b.max() < 7
        assert idx_a.unique().numel() == 4  # no A repeated within a batch


def test_unpaired_sampler_a_follows_the_device_batcher_and_b_is_independent():
    n_a, bs, seed = 12, 4, 5
    batcher = DeviceBatcher(torch.arange(n_a, dtype=torch.uint8).view(n_a, 1, 1, 1), torch.zeros(n_a, dtype=torch.int64),
                            bs, seed, torch.device("cpu"))
    s = UnpairedSampler(n_a, 9, bs, seed)
    for step in range(7):
        x, _ = batcher.batch(step)
        assert (x.flatten() + 1) * 127.5 == pytest.approx(s.indices(step)[0].float())
    other = UnpairedSampler(30, 9, bs, seed)  # another A domain: the same B
    assert all(torch.equal(other.indices(k)[1], s.indices(k)[1]) for k in range(4))
    assert torch.equal(s.indices(2)[1], b_indices(9, bs, seed, 2))
    halves = [UnpairedSampler(n_a, 9, bs, seed, rank=r, world_size=2).indices(3) for r in range(2)]
    assert torch.equal(torch.cat([h[0] for h in halves]), s.indices(3)[0])
    assert torch.equal(torch.cat([h[1] for h in halves]), s.indices(3)[1])
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 12\]"):
        UnpairedSampler(n_a, 9, 13, seed)


# -- the unpaired MNIST benchmark script ------------------------------------------------------------


def _read(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path)))


def test_benchmark_script_on_fake_mnist(tmp_path):
    script = load_script("scripts/make_unpaired_mnist.py")
    g = torch.Generator().manual_seed(0)
    train = (torch.randint(0, 256, (8, 1, 28, 28), generator=g, dtype=torch.uint8), torch.arange(8) % 10)
    test = (torch.randint(0, 256, (5, 1, 28, 28), generator=g, dtype=torch.uint8), torch.arange(5) + 2)
    counts = script.write_benchmark(tmp_path, train, test, limit=3)
    assert counts == {"trainA": 3, "trainB": 3, "testA": 3, "testB": 3}
    assert sorted(p.name for p in (tmp_path / "trainB").glob("*.png")) == ["00004.png", "00005.png", "00006.png"]
    assert json.loads((tmp_path / "trainB" / "labels.json").read_text()) == {"00004.png": 4, "00005.png": 5, "00006.png": 6}
    assert json.loads((tmp_path / "testA" / "labels.json").read_text()) == {"00000.png": 2, "00001.png": 3, "00002.png": 4}
    assert torch.equal(_read(tmp_path / "trainA" / "00001.png"), train[0][1, 0])
    assert torch.equal(_read(tmp_path / "trainB" / "00005.png"), restyle_mnist(train[0][5:6])[0, 0])
    assert torch.equal(_read(tmp_path / "testB" / "00002.png"), restyle_mnist(test[0][2:3])[0, 0])
    assert json.loads((tmp_path / "benchmark.json").read_text())["counts"] == counts
    data = load_unpaired(tmp_path, split="test", channels=1, size=28)
    assert data.names_a == data.names_b and torch.equal(data.b, restyle_mnist(data.a))
    with pytest.raises(GancliError, match="already exists; pass --force"):
        script.write_benchmark(tmp_path, train, test, limit=3)


def test_benchmark_script_on_real_mnist(tmp_path, mnist_dir, capsys):
    script = load_script("scripts/make_unpaired_mnist.py")
    out = tmp_path / "um"
    assert script.main([str(out), "--data-dir", str(mnist_dir), "--limit", "4"]) == 0
    assert "trainA 4, trainB 4, testA 4, testB 4" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "trainB").glob("*.png"))[0] == "30000.png"
    labels = json.loads((out / "testA" / "labels.json").read_text())
    assert list(labels.values()) == [7, 2, 1, 0]  # the first MNIST test digits
    assert script.main([str(out), "--data-dir", str(mnist_dir), "--limit", "4"]) == 1  # exists
    assert script.main([str(out), "--data-dir", str(mnist_dir), "--limit", "2", "--force"]) == 0
    assert len(list((out / "testB").glob("*.png"))) == 2
    assert script.main([str(out), "--data-dir", str(tmp_path / "none"), "--force"]) == 1
