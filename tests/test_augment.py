"""DiffAugment (Zhao et al. 2020, arXiv 2006.10738): parsing and the transforms.

Oracle tests replay the random draws in the reference implementation's order
(per policy: colour = brightness, saturation, contrast, each ``rand(N, 1, 1, 1)``;
translation/cutout = row then column ``randint(..., (N, 1, 1))``) and rebuild
the expected images with plain per-image slicing.
"""

from __future__ import annotations

import pytest
import torch

from gancli.augment.diffaug import DiffAugment, diff_augment
from gancli.augment.spec import AUGMENT_POLICIES, parse_augment
from gancli.errors import UsageError

ALL = ("color", "translation", "cutout")


def _images(n: int, c: int, h: int, w: int | None = None, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w or h, generator=g) * 2 - 1


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _half_round(size: int, ratio: float) -> int:
    return int(size * ratio + 0.5)


# --- parse_augment -----------------------------------------------------------


def test_policies_constant():
    assert AUGMENT_POLICIES == ALL


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", ()),
        ("none", ()),
        ("diffaug", ALL),
        ("diffaug:color,translation", ("color", "translation")),
        ("diffaug:cutout,color", ("cutout", "color")),
        ("diffaug:translation", ("translation",)),
        (" diffaug:color, cutout ", ("color", "cutout")),
    ],
)
def test_parse_valid(spec, expected):
    assert parse_augment(spec) == expected


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("foo", "'foo'"),
        ("color", "'color'"),
        ("diffaug:", "empty policy"),
        ("diffaug:foo", "'foo'"),
        ("diffaug:color,", "empty policy"),
        ("diffaug:color,color", "duplicate augmentation policy 'color'"),
        ("DiffAug", "'DiffAug'"),
        ("none:color", "'none:color'"),
    ],
)
def test_parse_invalid_names_value_and_choices(spec, named):
    with pytest.raises(UsageError) as info:
        parse_augment(spec)
    msg = str(info.value)
    assert named in msg
    assert "\n" not in msg
    assert "valid choices: none, diffaug, diffaug:<policies>" in msg
    assert all(p in msg for p in ALL)
    assert info.value.exit_code == 2


# --- general behaviour -------------------------------------------------------


def test_disabled_is_identity():
    x = _images(4, 3, 8)
    assert diff_augment(x, ()) is x
    assert torch.equal(DiffAugment(())(x), x)
    assert torch.equal(DiffAugment()(x), x)


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("size", [28, 32, 64])
def test_shape_dtype_preserved(c, size):
    x = _images(3, c, size)
    out = diff_augment(x, ALL, _gen(0))
    assert out.shape == x.shape
    assert out.dtype == x.dtype and out.device == x.device
    assert out.is_contiguous()
    assert torch.isfinite(out).all()


def test_non_square_and_double():
    x = _images(2, 3, 12, 20).double()
    out = diff_augment(x, ALL, _gen(0))
    assert out.shape == (2, 3, 12, 20) and out.dtype == torch.float64


@pytest.mark.parametrize("policies", [("color",), ("translation",), ("cutout",), ALL])
@pytest.mark.parametrize("c", [1, 3])
def test_gradients_flow_to_input(policies, c):
    x = _images(4, c, 16).requires_grad_()
    weights = torch.randn(4, c, 16, 16, generator=_gen(1))
    (diff_augment(x, policies, _gen(2)) * weights).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    for i in range(4):  # every image receives gradient
        assert x.grad[i].abs().sum() > 0


def test_seeded_generator_reproducible_and_seed_dependent():
    x = _images(8, 3, 32)
    a = diff_augment(x, ALL, _gen(123))
    b = diff_augment(x, ALL, _gen(123))
    c = diff_augment(x, ALL, _gen(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_global_rng_reproducible_from_saved_state():
    x = _images(8, 3, 16)
    state = torch.get_rng_state()
    a = diff_augment(x, ALL)
    after = torch.get_rng_state()
    torch.set_rng_state(state)
    b = diff_augment(x, ALL)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), after)  # same number of draws
    assert not torch.equal(state, after)  # it did use the global RNG


def test_each_image_gets_its_own_draw():
    x = _images(1, 3, 16).expand(16, -1, -1, -1).contiguous()
    out = diff_augment(x, ALL, _gen(0))
    assert not all(torch.equal(out[0], out[i]) for i in range(1, 16))


def test_bad_input_rejected():
    with pytest.raises(ValueError, match="N, C, H, W"):
        diff_augment(torch.zeros(3, 8, 8), ALL)
    with pytest.raises(ValueError, match="'flip'"):
        diff_augment(torch.zeros(1, 3, 8, 8), ("flip",))
    with pytest.raises(ValueError, match="'flip'"):
        DiffAugment(("flip",))


def test_module_matches_function():
    x = _images(4, 3, 16)
    module = DiffAugment(("color", "cutout"))
    assert module.policies == ("color", "cutout")
    assert "color" in repr(module)
    assert list(module.parameters()) == []
    assert torch.equal(module(x, _gen(5)), diff_augment(x, ("color", "cutout"), _gen(5)))


# --- color -------------------------------------------------------------------


@pytest.mark.parametrize("c", [1, 3])
def test_color_on_constant_image_is_brightness_only(c):
    # A constant image has no saturation (channel mean = pixel) and no contrast
    # (image mean = pixel) to scale, so only the brightness shift U(-0.5, 0.5) shows.
    n = 256
    x = torch.full((n, c, 8, 8), 0.25)
    out = diff_augment(x, ("color",), _gen(3))
    shift = out - x
    per_image = shift[:, 0, 0, 0]
    assert torch.allclose(shift, per_image.view(n, 1, 1, 1).expand_as(shift), atol=1e-6)
    assert per_image.min() >= -0.5 - 1e-6 and per_image.max() <= 0.5 + 1e-6
    assert per_image.min() < -0.4 and per_image.max() > 0.4  # the range is used
    expected = torch.rand(n, generator=_gen(3)) - 0.5  # the first draw is brightness
    assert torch.allclose(per_image, expected, atol=1e-6)


@pytest.mark.parametrize("c", [1, 3])
def test_color_matches_reference_formula(c):
    n = 6
    x = _images(n, c, 8)
    out = diff_augment(x, ("color",), _gen(4))
    g = _gen(4)
    bright, sat, con = (torch.rand(n, 1, 1, 1, generator=g) for _ in range(3))
    y = x + (bright - 0.5)
    m = y.mean(dim=1, keepdim=True)
    y = (y - m) * (sat * 2) + m
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - m) * (con + 0.5) + m
    assert torch.allclose(out, y, atol=1e-6)


def test_saturation_is_identity_for_one_channel():
    # For C = 1 colour must equal brightness + contrast alone.
    x = _images(6, 1, 8)
    out = diff_augment(x, ("color",), _gen(9))
    g = _gen(9)
    bright, _sat, con = (torch.rand(6, 1, 1, 1, generator=g) for _ in range(3))
    y = x + (bright - 0.5)
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(out, (y - m) * (con + 0.5) + m, atol=1e-6)


# --- translation -------------------------------------------------------------


@pytest.mark.parametrize("size", [28, 32])
def test_translation_moves_single_pixel_within_range(size):
    n, centre = 512, size // 2
    shift = _half_round(size, 1 / 8)  # reference: int(H * 0.125 + 0.5)
    x = torch.zeros(n, 1, size, size)
    x[:, :, centre, centre] = 1.0
    out = diff_augment(x, ("translation",), _gen(7))
    assert torch.equal(out.sum(dim=(1, 2, 3)), torch.ones(n))  # mass preserved
    assert ((out == 0) | (out == 1)).all()
    flat = out.view(n, -1).argmax(dim=1)
    dy, dx = flat // size - centre, flat % size - centre
    assert dy.abs().max() <= shift and dx.abs().max() <= shift
    assert set(dy.tolist()) == set(range(-shift, shift + 1))  # every shift occurs
    assert set(dx.tolist()) == set(range(-shift, shift + 1))


def test_translation_pads_with_zero():
    # Pad value is 0 (mid grey in [-1, 1]), as in the reference's F.pad.
    x = -torch.ones(64, 3, 16, 16)
    out = diff_augment(x, ("translation",), _gen(8))
    assert ((out == 0) | (out == -1)).all()
    assert (out == 0).any()


@pytest.mark.parametrize(("c", "h", "w"), [(1, 28, 28), (3, 16, 24)])
def test_translation_matches_slicing_oracle(c, h, w):
    n = 16
    x = _images(n, c, h, w)
    out = diff_augment(x, ("translation",), _gen(11))
    g = _gen(11)
    sh, sw = _half_round(h, 1 / 8), _half_round(w, 1 / 8)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=g).view(n).tolist()
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=g).view(n).tolist()
    expected = torch.zeros_like(x)
    for i in range(n):  # out[i, :, r, q] = x[i, :, r + dy, q + dx] where inside
        r0, r1 = max(0, -dy[i]), min(h, h - dy[i])
        q0, q1 = max(0, -dx[i]), min(w, w - dx[i])
        expected[i, :, r0:r1, q0:q1] = x[i, :, r0 + dy[i] : r1 + dy[i], q0 + dx[i] : q1 + dx[i]]
    assert torch.equal(out, expected)


# --- cutout ------------------------------------------------------------------


@pytest.mark.parametrize(("c", "size"), [(1, 28), (3, 32)])
def test_cutout_zeroes_one_clipped_square(c, size):
    n = 512
    side = _half_round(size, 1 / 2)
    out = diff_augment(torch.ones(n, c, size, size), ("cutout",), _gen(12))
    assert ((out == 0) | (out == 1)).all()
    assert torch.equal(out, out[:, :1].expand_as(out))  # same mask on every channel
    zero = out[:, 0] == 0
    area = zero.sum(dim=(1, 2))
    assert area.min() >= 1 and area.max() <= side * side
    assert area.max() == side * side  # unclipped squares occur...
    assert area.min() < side * side  # ...and so do squares clipped at a border
    for i in range(n):  # the zeros form one axis-aligned rectangle
        rows = zero[i].any(dim=1).nonzero().view(-1)
        cols = zero[i].any(dim=0).nonzero().view(-1)
        assert len(rows) <= side and len(cols) <= side
        assert area[i] == len(rows) * len(cols)
        assert zero[i, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()


@pytest.mark.parametrize(("h", "w"), [(28, 28), (15, 21)])
def test_cutout_matches_slicing_oracle(h, w):
    n = 32
    x = _images(n, 3, h, w)
    out = diff_augment(x, ("cutout",), _gen(13))
    g = _gen(13)
    sh, sw = _half_round(h, 1 / 2), _half_round(w, 1 / 2)
    cy = torch.randint(0, h + (1 - sh % 2), (n, 1, 1), generator=g).view(n).tolist()
    cx = torch.randint(0, w + (1 - sw % 2), (n, 1, 1), generator=g).view(n).tolist()
    expected = x.clone()
    for i in range(n):  # square centred on (cy, cx), clipped at the borders
        top, left = cy[i] - sh // 2, cx[i] - sw // 2
        expected[i, :, max(0, top) : max(0, top + sh), max(0, left) : max(0, left + sw)] = 0
    assert torch.equal(out, expected)
