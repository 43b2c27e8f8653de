"""`gan export` and the Python API around it: every format x arch x conditional round-trips
with parity <= 1e-4 at batch sizes 1 and 7 and keeps its metadata; --uint8; onnxruntime
alone reproduces `gan sample`; the safetensors bundle loads in gancli.load_generator and
`gan sample`; Generator.sample; bad requests give one-line errors. Tiny models, CPU."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gancli.checkpoint import load_generator, save_checkpoint
from gancli.cli import app
from gancli.config import ModelConfig, RunConfig
from gancli.errors import GancliError
from gancli.export import export_generator
from gancli.export.graph import to_uint8
from gancli.generate.sampling import generate
from gancli.models import build_generator
from gancli.runs import RunStore
from gancli.seeding import latents, random_labels

NZ = 8
STEP = 3
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2", "safetensors": ""}
MODELS = [("dcgan", 0), ("dcgan", 10), ("mlp", 0), ("mlp", 10), ("resnet", 0), ("resnet", 10)]
runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_error_line(result, code):
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# -- tiny checkpoints ------------------------------------------------------------------
def _write_checkpoint(path: Path, arch: str, k: int) -> None:
    """G with BatchNorm statistics from two train-mode passes, and an EMA G that differs."""
    cfg = RunConfig(model=ModelConfig(arch=arch, nz=NZ, ngf=4, ndf=4, num_classes=k))
    torch.manual_seed(0)
    g = build_generator(cfg.model)
    with torch.no_grad():
        for _ in range(2):
            g(torch.randn(16, NZ), torch.randint(0, k, (16,)) if k else None)
    g_ema = copy.deepcopy(g)
    with torch.no_grad():
        for p in g_ema.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_checkpoint(path, cfg, {"step": STEP}, {"generator": g, "generator_ema": g_ema})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(arch, num_classes) -> path of a tiny checkpoint, made once per module."""
    root = tmp_path_factory.mktemp("ckpts")
    made: dict[tuple[str, int], Path] = {}

    def get(arch: str, k: int) -> Path:
        if (arch, k) not in made:
            made[arch, k] = root / f"{arch}-{k}.safetensors"
            _write_checkpoint(made[arch, k], arch, k)
        return made[arch, k]

    return get


def make_run(home: Path, ckpt: Path | None):
    """A run in the store holding ``ckpt`` as its step-3 checkpoint (none if None)."""
    run = RunStore(home).create()
    cfg = RunConfig(model=ModelConfig(arch="dcgan", nz=NZ, ngf=4, ndf=4))
    if ckpt is not None:
        from gancli.checkpoint import load_checkpoint

        cfg = load_checkpoint(ckpt, prefixes=()).config
        shutil.copy(ckpt, run.checkpoints_dir / f"step-{STEP}.safetensors")
    run.write_config(cfg.to_dict(), {})
    return run


@pytest.fixture
def run_of(home, checkpoint):
    return lambda arch="dcgan", k=0: make_run(home, checkpoint(arch, k))


# -- independent reloaders (not gancli's) -------------------------------------------------
def _decode(props: dict[str, str]) -> dict:
    out = {}
    for key, value in props.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def reload(fmt: str, path: Path):
    """(run(z, y) -> numpy images, metadata dict) through the format's own runtime."""
    if fmt == "onnx":
        import onnx
        import onnxruntime as ort

        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert isinstance(sess.get_inputs()[0].shape[0], str)  # symbolic batch axis
        assert [o.name for o in sess.get_outputs()] == ["images"]

        def run(z, y):
            feed = {"z": z.numpy()} | ({"labels": y.numpy()} if y is not None else {})
            assert [i.name for i in sess.get_inputs()] == list(feed)
            return sess.run(None, feed)[0]

        return run, _decode(sess.get_modelmeta().custom_metadata_map)
    if fmt in ("torchscript", "exported-program"):
        extra = {"metadata.json": ""}
        if fmt == "torchscript":
            module = torch.jit.load(str(path), _extra_files=extra)
        else:
            module = torch.export.load(str(path), extra_files=extra).module()

        def run(z, y):
            with torch.no_grad():
                return (module(z) if y is None else module(z, y)).numpy()

        return run, json.loads(extra["metadata.json"])
    g = load_generator(path)
    return (lambda z, y: generate(g, z, y).numpy()), json.loads((path / "config.json").read_text())["meta"]


def read_pngs(folder: Path) -> np.ndarray:
    """``gan sample --individual`` PNGs of a 1-channel run -> (N, H, W) uint8 (PNGs are RGB, R = G = B)."""
    rgb = np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])
    assert (rgb == rgb[..., :1]).all()
    return rgb[..., 0]


def _inputs(n: int, seed: int, k: int):
    y = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed)) if k else None
    return latents(n, NZ, seed), y


def _matrix():
    for fmt in SUFFIX:
        for arch, k in MODELS:
            yield pytest.param(fmt, arch, k, id=f"{fmt}-{arch}-{'cond' if k else 'uncond'}")


# -- every format x arch x conditional ---------------------------------------------------
@pytest.mark.parametrize("fmt,arch,k", list(_matrix()))
def test_export_round_trip(tmp_path, checkpoint, fmt, arch, k):
    g = load_generator(checkpoint(arch, k))
    path = tmp_path / f"g{SUFFIX[fmt]}"
    res = export_generator(g, fmt, path, source={"source_run": "run-9", "source_checkpoint": "step-3.safetensors"})
    assert path.exists() and res.max_abs_diff is not None and res.max_abs_diff <= 1e-4
    assert res.bytes > 0 and res.export_seconds > 0 and res.batch_sizes == (1, 7)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    run, meta = reload(fmt, path)
    for seed, n in ((11, 1), (12, 7)):  # other inputs than the built-in verification's
        z, y = _inputs(n, seed, k)
        want = generate(g, z, y).numpy()
        got = run(z, y)
        assert got.shape == (n, 1, 28, 28) and got.dtype == np.float32
        assert np.abs(got - want).max() <= 1e-4
    assert meta["nz"] == NZ and meta["num_classes"] == k and meta["arch"] == arch
    assert meta["image_shape"] == [1, 28, 28] and meta["value_range"] == [-1, 1] and meta["dtype"] == "float32"
    assert meta["inputs"] == (["z", "labels"] if k else ["z"]) and meta["outputs"] == ["images"]
    assert meta["step"] == STEP and meta["ema"] is True and meta["source_run"] == "run-9"
    assert meta["source_checkpoint"] == "step-3.safetensors" and meta["gancli_version"]


@pytest.mark.parametrize("fmt,k", [("onnx", 10), ("exported-program", 0), ("torchscript", 10)])
def test_uint8_output(tmp_path, checkpoint, fmt, k):
    g = load_generator(checkpoint("dcgan", k))
    path = tmp_path / f"u8{SUFFIX[fmt]}"
    res = export_generator(g, fmt, path, uint8=True)
    assert res.max_abs_diff <= 1
    run, meta = reload(fmt, path)
    assert meta["dtype"] == "uint8" and meta["value_range"] == [0, 255]
    for seed, n in ((3, 1), (4, 7)):
        z, y = _inputs(n, seed, k)
        got = run(z, y)
        want = to_uint8(generate(g, z, y)).numpy()
        assert got.dtype == np.uint8 and got.shape == (n, 1, 28, 28)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    # the [-1, 1] -> [0, 255] mapping itself: -1 -> 0, 0 -> 128 (round half up), 1 -> 255
    assert to_uint8(torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0])).tolist() == [0, 0, 128, 255, 255]


# -- onnxruntime alone = gan sample -------------------------------------------------------
ORT_ALONE = """
import sys
import numpy as np
import onnxruntime as ort
model, z_file, labels_file, out_file = sys.argv[1:]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
feed = {"z": np.load(z_file)}
if labels_file != "-":
    feed["labels"] = np.load(labels_file)
images = session.run(["images"], feed)[0]                        # (N, C, H, W) float32 in [-1, 1]
pixels = np.floor((np.clip(images, -1, 1) + 1) / 2 * 255 + 0.5).astype(np.uint8)
np.save(out_file, pixels)
assert "torch" not in sys.modules, "onnxruntime alone must not import torch"
print("NO-TORCH", images.dtype, images.min() >= -1, images.max() <= 1)
"""


@pytest.mark.parametrize("arch,k", [("dcgan", 0), ("resnet", 10)])
def test_onnxruntime_alone_matches_gan_sample(tmp_path, run_of, arch, k):
    run_of(arch, k)
    assert gan("export", "latest", "--format", "onnx", "-o", tmp_path / "g.onnx").exit_code == 0
    n, seed = 6, 5
    assert gan("sample", "latest", "-n", n, "--seed", seed, "--individual", "-o", tmp_path / "png").exit_code == 0
    np.save(tmp_path / "z.npy", latents(n, NZ, seed).numpy())
    labels = "-"
    if k:  # the random classes `gan sample --seed` draws
        np.save(tmp_path / "y.npy", random_labels(n, k, seed).numpy())
        labels = str(tmp_path / "y.npy")
    out = subprocess.run([sys.executable, "-c", ORT_ALONE, str(tmp_path / "g.onnx"), str(tmp_path / "z.npy"), labels,
                          str(tmp_path / "ort.npy")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["NO-TORCH", "float32", "True", "True"]
    ort_pixels = np.load(tmp_path / "ort.npy")
    pngs = read_pngs(tmp_path / "png")
    assert ort_pixels.shape == (n, 1, 28, 28) and pngs.shape == (n, 28, 28)
    assert np.abs(ort_pixels[:, 0].astype(int) - pngs.astype(int)).max() <= 1


# -- the safetensors bundle ----------------------------------------------------------------
def test_bundle_round_trip_and_gan_sample(tmp_path, run_of, checkpoint):
    run_of("dcgan", 10)
    bundle = tmp_path / "bundle"
    r = gan("export", "latest", "--format", "safetensors", "-o", bundle)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "generator.safetensors"]
    doc = json.loads((bundle / "config.json").read_text())
    assert doc["format"] == "gancli-generator" and doc["format_version"] == 1
    assert doc["model"]["arch"] == "dcgan" and doc["model"]["num_classes"] == 10
    assert doc["meta"]["source_run"] == "run-1" and doc["meta"]["step"] == STEP and doc["meta"]["ema"] is True

    g = load_generator(checkpoint("dcgan", 10))
    b = load_generator(bundle)
    assert b.model_config == g.model_config and b.checkpoint_step == STEP and b.uses_ema is True and not b.training
    sd_g, sd_b = g.state_dict(), b.state_dict()
    assert sd_g.keys() == sd_b.keys() and all(torch.equal(sd_g[key], sd_b[key]) for key in sd_g)
    import gancli

    assert torch.equal(gancli.load_generator(bundle).sample(3, seed=2), g.sample(3, seed=2))

    # `gan sample BUNDLE` == `gan sample RUN`, byte for byte
    assert gan("sample", bundle, "-n", 4, "--seed", 1, "-o", tmp_path / "a.png").exit_code == 0
    assert gan("sample", "latest", "-n", 4, "--seed", 1, "-o", tmp_path / "b.png").exit_code == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    line = one_error_line(gan("sample", bundle, "--no-ema", "-o", tmp_path / "c.png"), 1)
    assert "holds only the EMA weights" in line
    assert "checkpoint applies to runs" in one_error_line(gan("sample", bundle, "--checkpoint", "3"), 2)

    # an existing non-empty target needs --force; the swap leaves no temp folders
    assert "already exists and is not empty; pass --force" in one_error_line(
        gan("export", "latest", "--format", "safetensors", "-o", bundle), 2)
    (bundle / "stray.txt").write_text("x")
    assert gan("export", "latest", "--format", "safetensors", "-o", bundle, "--force").exit_code == 0
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "generator.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    (tmp_path / "empty").mkdir()  # an empty folder is fine without --force
    assert gan("export", "latest", "--format", "safetensors", "-o", tmp_path / "empty").exit_code == 0

    # a flipped byte in the weights is caught by the checksum
    data = bytearray((bundle / "generator.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (bundle / "generator.safetensors").write_bytes(bytes(data))
    with pytest.raises(GancliError, match="checksum mismatch"):
        load_generator(bundle)


# -- Generator.sample ----------------------------------------------------------------------
@pytest.mark.parametrize("arch,k", [("mlp", 0), ("resnet", 10)])
def test_generator_sample_is_reproducible_and_matches_gan_sample(tmp_path, run_of, checkpoint, arch, k):
    g = load_generator(checkpoint(arch, k))
    g.train()
    x = g.sample(5, seed=3)
    assert g.training  # mode restored
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, g.sample(5, seed=3)) and not torch.equal(x, g.sample(5, seed=4))
    assert torch.equal(x, generate(g, latents(5, NZ, 3), random_labels(5, k, 3) if k else None))
    assert torch.allclose(x, g.sample(5, seed=3, batch_size=2), atol=1e-6)  # BLAS may round per batch shape
    if k:
        assert torch.equal(g.sample(4, seed=0, labels=7), generate(g, latents(4, NZ, 0), torch.full((4,), 7)))
        assert torch.equal(g.sample(2, seed=0, labels=[1, 2]), generate(g, latents(2, NZ, 0), torch.tensor([1, 2])))
        with pytest.raises(ValueError, match="classes in"):
            g.sample(2, labels=10)
    else:
        with pytest.raises(ValueError, match="unconditional"):
            g.sample(2, labels=1)
    # the same images as `gan sample --seed 3`
    run_of(arch, k)
    assert gan("sample", "latest", "-n", 5, "--seed", 3, "--individual", "-o", tmp_path / "png").exit_code == 0
    pngs = read_pngs(tmp_path / "png")
    assert np.array_equal(to_uint8(x)[:, 0].numpy(), pngs)


# -- the command ---------------------------------------------------------------------------
def test_cli_report_provenance_and_no_ema(tmp_path, run_of, checkpoint, monkeypatch):
    run_of("mlp", 10)
    monkeypatch.chdir(tmp_path)
    r = gan("export", "latest", "--format", "exported-program")  # default output name
    assert r.exit_code == 0, r.output
    out = r.output
    assert re.search(r"^wrote run-1-step3\.pt2 \(exported-program, [\d.]+ [KM]B, exported in [\d.]+s with ", out), out
    assert "from run-1 step 3, EMA G" in out and "verified with torch.export.load" in out
    assert "at batch sizes 1 and 7: max abs difference 0 (limit 1e-4)" in out
    _, meta = reload("exported-program", tmp_path / "run-1-step3.pt2")
    assert meta["source_run"] == "run-1" and meta["source_checkpoint"] == "step-3.safetensors"

    r = gan("export", "1", "--no-ema", "-o", "raw.pt")  # no --format: torchscript, from the suffix
    assert r.exit_code == 0 and "raw G" in r.output and "(torchscript, " in r.output
    run, meta = reload("torchscript", tmp_path / "raw.pt")
    assert meta["ema"] is False
    z, y = _inputs(4, 0, 10)
    raw = load_generator(checkpoint("mlp", 10), ema=False)
    assert np.abs(run(z, y) - generate(raw, z, y).numpy()).max() <= 1e-6
    assert np.abs(run(z, y) - generate(load_generator(checkpoint("mlp", 10)), z, y).numpy()).max() > 1e-3


def test_failed_verification_removes_the_artifact(tmp_path, run_of, monkeypatch):
    from gancli.export import formats

    run_of()
    real_load = formats.TorchScriptFormat.load

    def off_by_a_bit(path):
        loaded = real_load(path)
        inner = loaded.run
        loaded.run = lambda z, y: inner(z, y) + 1e-3
        return loaded

    monkeypatch.setattr(formats.TorchScriptFormat, "load", staticmethod(off_by_a_bit))
    target = tmp_path / "g.pt"
    line = one_error_line(gan("export", "latest", "--format", "torchscript", "-o", target), 1)
    assert "verification of" in line and "max abs difference 0.001 > 0.0001" in line and "nothing was written" in line
    assert not target.exists()
    target.write_bytes(b"previous export")  # with --force, a failed export leaves the old file alone
    one_error_line(gan("export", "latest", "--format", "torchscript", "-o", target, "--force"), 1)
    assert target.read_bytes() == b"previous export"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    r = gan("export", "latest", "--format", "torchscript", "-o", target, "--force", "--no-verify")
    assert r.exit_code == 0 and "not verified (--no-verify)" in r.output and target.read_bytes() != b"previous export"


@pytest.mark.parametrize("missing,flags", [("onnxscript", []), ("onnxruntime", []), ("onnx", ["--no-verify"])])
def test_missing_export_extra_is_one_line(tmp_path, run_of, monkeypatch, missing, flags):
    run_of()
    monkeypatch.setitem(sys.modules, missing, None)  # `import <missing>` raises ImportError
    line = one_error_line(gan("export", "latest", "--format", "onnx", "-o", tmp_path / "g.onnx", *flags), 1)
    assert missing in line and "pip install 'gancli[export]'" in line
    assert not (tmp_path / "g.onnx").exists()


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--format", "tflite", "-o", "g.tflite"],
         "unknown export format 'tflite'; valid choices: onnx, torchscript, exported-program, safetensors"),
        (["--format", "onnx", "-o", "nowhere/g.onnx"], "directory nowhere does not exist (for -o nowhere/g.onnx)"),
        (["--format", "onnx", "-o", "g.pt"], "-o g.pt: --format onnx writes a .onnx file; use a name ending in .onnx"),
        (["-o", "g.tflite"], "--format onnx writes a .onnx file"),  # no --format, unknown suffix: onnx
        (["--format", "torchscript", "-o", "g.onnx"], "use a name ending in .pt"),
        (["--format", "exported-program", "-o", "g.pt"], "use a name ending in .pt2"),
        (["--format", "safetensors", "-o", "g.safetensors"], "--format safetensors writes a bundle folder"),
        (["--format", "safetensors", "--uint8", "-o", "bundle"], "--uint8 applies to graph formats"),
        (["--format", "torchscript", "-o", "g.pt", "--checkpoint", "99"], "run run-1 has no checkpoint at step 99"),
        (["--format", "torchscript", "-o", "exists.pt"], "exists.pt already exists; pass --force to replace it"),
    ],
)
def test_bad_requests_exit_2(tmp_path, run_of, monkeypatch, args, fragment):
    run_of()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exists.pt").write_text("x")
    line = one_error_line(gan("export", "latest", *args), 2)
    assert fragment in line, line


def test_bad_sources(tmp_path, home, checkpoint):
    assert "unknown run 'run-7'" in one_error_line(gan("export", "run-7", "-o", tmp_path / "g.pt2"), 2)
    ckpt = checkpoint("dcgan", 0)
    assert "--checkpoint applies to runs" in one_error_line(
        gan("export", ckpt, "-c", "3", "-f", "torchscript", "-o", tmp_path / "g.pt"), 2)
    make_run(home, None)  # a run without checkpoints: exit 1
    assert "has no checkpoints yet" in one_error_line(gan("export", "latest", "-f", "torchscript", "-o",
                                                          tmp_path / "g.pt"), 1)
    r = gan("export", ckpt, "-f", "torchscript", "-o", tmp_path / "file.pt")  # a checkpoint file alone works
    assert r.exit_code == 0 and f"from {ckpt.name} step 3" in r.output


