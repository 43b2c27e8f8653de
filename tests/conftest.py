"""Shared fixtures: isolated gancli home, real-MNIST location, tiny synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# --precision auto (the default) may pick bf16 on a CPU with AMX; the suite's runs, and the
# bitwise fixtures recorded from them, are fp32 on every CPU. Subprocesses inherit this.
# tests/test_precision.py checks auto itself with the variable removed.
os.environ["GANCLI_AUTO_PRECISION"] = "fp32"


def mnist_root() -> Path | None:
    """Folder holding MNIST/raw (GANCLI_DATA_DIR, else ../shared/data beside the repo)."""
    for cand in (os.environ.get("GANCLI_DATA_DIR"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return Path(cand)
    return None


def require_mnist() -> Path:
    """:func:`mnist_root`, or skip the test (or module fixture) saying where MNIST is looked for."""
    root = mnist_root()
    if root is None:
        pytest.skip("real MNIST not found: set GANCLI_DATA_DIR to a folder with MNIST/raw/")
    return root


@pytest.fixture
def mnist_dir() -> Path:
    return require_mnist()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets its own gancli home and no colours."""
    home = tmp_path / "home"
    monkeypatch.setenv("GANCLI_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    root = mnist_root()
    if root is not None:
        monkeypatch.setenv("GANCLI_DATA_DIR", str(root))
    else:
        monkeypatch.delenv("GANCLI_DATA_DIR", raising=False)
    return home


@pytest.fixture
def home(isolated_env) -> Path:
    return isolated_env


@pytest.fixture
def tiny_data():
    """128 random 28x28 grayscale uint8 images with labels, for fast engine tests."""
    import torch

    from gancli.data import ImageData

    g = torch.Generator().manual_seed(123)
    images = torch.randint(0, 256, (128, 1, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (128,), generator=g)
    return ImageData(images, labels, [str(i) for i in range(10)])


def write_shapes(root: Path, n: int = 24, size: int = 32, box: tuple[int, int] = (12, 8), spread: int = 20) -> Path:
    """``n`` grayscale ``size`` x ``size`` PNGs under ``root`` (created): a bright ``box`` (height,
    width) rectangle on black, its top-left corner drawn in [0, spread) from a fixed seed."""
    import numpy as np
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = np.zeros((size, size), np.uint8)
        top, left = rng.integers(0, spread, 2)
        a[top:top + box[0], left:left + box[1]] = 255
        Image.fromarray(a).save(root / f"{i:02d}.png")
    return root


def same(a, b) -> bool:
    """``a`` and ``b`` (tensors, or dicts / lists / tuples of them and of plain values, e.g. a
    checkpoint part or an optimizer state) are equal bit for bit, shapes included."""
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def assert_same(a, b, where: str = "") -> None:
    """Assert :func:`same`, naming the first path (``.key.0``...) where ``a`` and ``b`` differ."""
    import torch

    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}.{i}")
    else:
        assert a == b, where


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say loudly, at the very end, whether the bitwise fixture (tests/test_bitwise.py) was checked on
    this CPU kind: a skipped fixture means "behaviour unchanged" was not verified on this machine."""
    from bitwise_cases import cpu_signature

    def bitwise(reports):  # the per-case tests
        return [r for r in reports if "test_bitwise.py::test_same_checkpoint" in getattr(r, "nodeid", "")]

    skipped = [r for r in bitwise(terminalreporter.stats.get("skipped", []))
               if "no bitwise fixture" in str(getattr(r, "longrepr", ""))]
    ran = [r for r in bitwise(terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []))
           if r.when == "call"]
    if not skipped and not ran:
        return
    sig = cpu_signature()
    terminalreporter.section("bitwise fixture", sep="=", bold=True, red=bool(skipped), green=not skipped)
    if skipped:
        terminalreporter.write_line(
            f"NOT CHECKED: {len(skipped)} bitwise case(s) skipped, no fixture for them on CPU kind {sig}; record "
            "with python scripts/record_bitwise.py [--only CASE] on the code before a change", red=True, bold=True)
        if ran:
            terminalreporter.write_line(f"checked {len(ran)} other case(s) against the fixture of CPU kind {sig}")
    else:
        terminalreporter.write_line(f"checked {len(ran)} case(s) against the fixture of CPU kind {sig}", green=True)


def load_script(relpath: str):
    """A script of this repository (``scripts/...``, ``benchmarks/...``: not packages), loaded as
    a module named after its file."""
    import importlib.util

    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_unpaired_mnist(out: Path, limit: int) -> Path:
    """The unpaired MNIST benchmark's folders (trainA/B, testA/B with labels.json; the script's
    :func:`write_benchmark`) from real MNIST, ``limit`` images each, in ``out``; skips the test
    when MNIST is not found (:func:`require_mnist`)."""
    script = load_script("scripts/make_unpaired_mnist.py")
    data = require_mnist()
    script.write_benchmark(out, script.load_mnist(data, "train"), script.load_mnist(data, "test"), limit)
    return out
