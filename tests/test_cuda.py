"""CUDA-specific tests: marker ``cuda``, run with ``pytest -m cuda`` (the default run
deselects them; ``scripts/device_check.sh`` runs them on a GPU machine). Every test is
skipped, with the reason, where ``torch.cuda.is_available()`` is False.

What they prove on the GPU, and with which tolerance (docs/gpu.md lists the same):

- **Resume is exact** (``test_resume_is_bitwise_on_cuda``): tolerance 0 (bitwise) for G, D,
  EMA G and the optimizer states, under ``torch.use_deterministic_algorithms(True)`` with
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8``. Without that mode the CUDA step is not
  deterministic: cuDNN may pick convolution / transposed-convolution backward algorithms
  that accumulate with atomics (the weight gradients of the DCGAN's ``Conv2d`` and
  ``ConvTranspose2d``), and cuBLAS may split reductions over several workspaces; the
  batch gather's backward (``index_add_``) would be non-deterministic too, but the data
  need no gradient. In deterministic mode PyTorch picks deterministic kernels for all of
  these, and raises (so the test fails, naming the op) on an op that has none.
- **A CPU checkpoint samples the same images on CUDA** (``test_cpu_checkpoint_samples_same_on_cuda``):
  with TF32 off, max |CPU - CUDA| <= 1e-4 on images in [-1, 1] (float32 rounding only);
  with TF32 on (cuDNN's default for convolutions on Ampere and newer), max <= 2e-2
  (2.5 levels of the uint8 images ``gan sample`` writes) and mean <= 1e-3.
- **Mixed precision** (``--precision bf16`` / ``fp16``) trains without NaN or Inf: the logged
  losses and every weight are finite, D runs in the autocast dtype.
- ``--device cuda:N`` for a GPU the machine lacks is the one-line error, exit 2.
- ``--device auto`` picks CUDA (the start line and ``config.json``).
- ``gan evaluate`` (LeNet protocol, -n 2048) runs on CUDA and agrees with the CPU:
  |FD-LeNet(CUDA) - FD-LeNet(CPU)| <= 1% + 0.05, |IS(CUDA) - IS(CPU)| <= 1% + 0.01.
- ``gan export`` of a CUDA-trained run (torchscript, safetensors bundle): both load and run
  on CUDA; the bundle samples as the run's checkpoint (max difference <= 1e-5, same device),
  the TorchScript module on CUDA matches it on the CPU within the TF32 tolerance above.
- The preloaded data are not copied per step: ``torch.profiler`` around a few
  ``Trainer.train_step`` calls (after the first, which copies the epoch's permutation)
  records CUDA kernels and no host-to-device memcpy.
"""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch
from typer.testing import CliRunner

from gancli.checkpoint import load_checkpoint, load_generator
from gancli.cli import app
from gancli.engine.launch import check_precision
from gancli.engine.launch import build_trainer
from gancli.engine.trainer import Trainer
from gancli.errors import UsageError
from gancli.resolve import build_config
from gancli.runs import RunStore
from gancli.seeding import latents

# cuBLAS reads this when it makes its first handle: before any test touches the GPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

NO_CUDA = "needs a CUDA GPU: torch.cuda.is_available() is False (run on a GPU machine: scripts/device_check.sh)"
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
runner = CliRunner()
#: a small DCGAN on real MNIST for the CLI tests
TINY = ["--arch", "dcgan", "--limit", "1024", "--batch-size", "64", "--nz", "32", "--ngf", "16", "--ndf", "16",
        "--log-every", "10", "--sample-every", "0", "--monitor-every", "0"]


def gan(*args, home=None):
    argv = (["--home", str(home)] if home is not None else []) + [str(a) for a in args]
    return runner.invoke(app, argv, catch_exceptions=False)


def _cfg(device: str = "cuda", arch: str = "dcgan", steps: int = 10, **extra):
    opts = dict(arch=arch, nz=16, ngf=16, ndf=16, batch_size=32, steps=steps, seed=3, device=device,
                sample_every=0, checkpoint_every=0, log_every=1, limit=128, monitor_every=0)
    return build_config({**opts, **extra})


def _state(t: Trainer) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v for k, v in t.G.state_dict().items()}
    out.update({f"D.{k}": v for k, v in t.D.state_dict().items()})
    if t.G_ema is not None:
        out.update({f"G_ema.{k}": v for k, v in t.G_ema.state_dict().items()})
    for name, opt in (("opt_g", t.opt_g), ("opt_d", t.opt_d)):
        for i, s in enumerate(opt.state.values()):
            out.update({f"{name}.{i}.{k}": v for k, v in s.items() if torch.is_tensor(v)})
    return out


@pytest.fixture
def deterministic():
    """``torch.use_deterministic_algorithms(True)`` for one test (restored after)."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.benchmark = before[2]


@pytest.fixture
def tf32():
    """Set TF32 for cuDNN convolutions and cuBLAS matmuls during one test (restored after)."""
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)

    def set_(on: bool) -> None:
        torch.backends.cudnn.allow_tf32 = on
        torch.backends.cuda.matmul.allow_tf32 = on

    yield set_
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


# -- the trainer on CUDA ------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_resume_is_bitwise_on_cuda(tmp_path, tiny_data, deterministic, arch):
    """5 steps, stop (checkpoint), a fresh trainer restores and trains to 10 == 10 steps
    straight, bitwise (128 images / batch 32 = 4 steps an epoch: the resume lands mid-epoch).
    Tolerance 0 in deterministic mode; see the module docstring for the ops concerned."""
    n = 5
    store = RunStore(tmp_path)
    straight = build_trainer(_cfg(arch=arch, steps=2 * n), store.create(), CUDA, tiny_data)
    straight.fit()

    run = store.create()
    first = build_trainer(_cfg(arch=arch, steps=2 * n), run, CUDA, tiny_data)
    first.fit(should_stop=lambda: first.step >= n)
    assert first.step == n
    torch.manual_seed(999)  # scramble the global RNGs as a new process would have them
    torch.cuda.manual_seed_all(999)
    resumed = build_trainer(_cfg(arch=arch, steps=2 * n), run, CUDA, tiny_data)
    resumed.restore(load_checkpoint(run.checkpoint_path()))
    assert resumed.step == n
    resumed.fit()
    assert resumed.step == 2 * n
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].device.type == "cuda" or k.endswith(".step"), k
        assert torch.equal(a[k], b[k]), f"{k} differs after resume on CUDA (max {(a[k] - b[k]).abs().max()})"


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
@pytest.mark.parametrize("use_tf32", [False, True], ids=["tf32-off", "tf32-on"])
def test_cpu_checkpoint_samples_same_on_cuda(tmp_path, tiny_data, tf32, arch, use_tf32):
    """A checkpoint trained on the CPU (30 steps) rebuilds G on CUDA and draws the same
    images from the same seed (latents are drawn on the CPU; see the module docstring for
    the tolerances, on images in [-1, 1])."""
    run = RunStore(tmp_path).create()
    t = build_trainer(_cfg("cpu", arch=arch, steps=30, nz=32, ngf=32, ndf=32), run, CPU, tiny_data)
    t.fit()
    path = run.checkpoint_path()
    tf32(use_tf32)
    on_cpu = load_generator(path, device="cpu").sample(64, seed=0)
    g = load_generator(path, device="cuda")
    assert next(g.parameters()).device.type == "cuda"
    on_cuda = g.sample(64, seed=0)
    assert on_cuda.device.type == "cpu" and on_cuda.shape == on_cpu.shape
    diff = (on_cpu - on_cuda).abs()
    if use_tf32:
        assert diff.max() <= 2e-2 and diff.mean() <= 1e-3, (diff.max().item(), diff.mean().item())
    else:
        assert diff.max() <= 1e-4, diff.max().item()
    # the comparison means something: the images vary, and another seed gives other images
    assert on_cpu.std() > 0.02 and (g.sample(64, seed=1) - on_cuda).abs().max() > 0.1


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("arch,loss", [("dcgan", "bce"), ("mlp", "wgan-gp")])
def test_mixed_precision_trains_on_cuda_without_nan(tmp_path, tiny_data, precision, arch, loss):
    try:
        check_precision(precision, CUDA)
    except UsageError as e:
        pytest.skip(f"--precision {precision} on this GPU: {e}")
    steps = 20 if loss == "bce" else 6  # wgan-gp: 5 D updates per step
    run = RunStore(tmp_path).create()
    t = build_trainer(_cfg(arch=arch, loss=loss, steps=steps, precision=precision), run, CUDA, tiny_data)
    seen: set[torch.dtype] = set()
    first_layer = next(m for m in t.D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    first_layer.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    result = t.fit()
    assert result.step == steps
    assert {"bf16": torch.bfloat16, "fp16": torch.float16}[precision] in seen
    records = [r for r in run.read_metrics() if "loss_d" in r]
    assert len(records) == steps
    for r in records:
        assert torch.isfinite(torch.tensor([r["loss_d"], r["loss_g"]])).all(), r
        assert not r.get("skipped"), r
    for k, v in _state(t).items():
        if v.is_floating_point():
            assert torch.isfinite(v).all(), k
    if precision == "fp16":
        assert 0 < t.scaler_d.get_scale() < float("inf")


# -- the CLI on CUDA ------------------------------------------------------------------------
def test_missing_gpu_index_is_one_line_error(home):
    """``--device cuda:N`` for the first index this machine lacks (``cuda:1`` with one GPU)."""
    missing = f"cuda:{torch.cuda.device_count()}"
    r = gan("train", "--arch", "mlp", "--steps", "1", "--device", missing)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    assert missing in lines[0] and "cuda:0" in lines[0], lines[0]  # names the bad value and the valid ones
    assert not list((home / "runs").glob("run-*"))


def test_device_auto_picks_cuda(home, mnist_dir):
    r = gan("train", *TINY, "--steps", "3", "--device", "auto")
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "device cuda (auto)" in said or "device cuda:0 (auto)" in said, r.output
    meta = RunStore(home).resolve("latest").read_config_doc()["meta"]
    assert meta["device"].startswith("cuda"), meta


@pytest.fixture
def cuda_run(home, mnist_dir):
    """A short DCGAN run trained on CUDA (real MNIST)."""
    r = gan("train", *TINY, "--steps", "30", "--device", "cuda")
    assert r.exit_code == 0, r.output
    run = RunStore(home).resolve("latest")
    assert run.read_config_doc()["meta"]["device"].startswith("cuda")
    return run


def test_evaluate_lenet_on_cuda_agrees_with_cpu(cuda_run):
    args = ["evaluate", "latest", "-n", "2048", "--real", "mnist:test", "--protocol", "lenet", "--json"]
    r = gan(*args, "--device", "cuda")
    assert r.exit_code == 0, r.output
    on_cuda = json.loads(r.stdout)
    assert on_cuda["step"] == 30
    r = gan(*args, "--device", "cpu")
    assert r.exit_code == 0, r.output
    on_cpu = json.loads(r.stdout)
    for key in ("fd_lenet", "is_lenet"):
        assert key in on_cuda and torch.isfinite(torch.tensor(on_cuda[key])), on_cuda
    assert abs(on_cuda["fd_lenet"] - on_cpu["fd_lenet"]) <= 0.01 * on_cpu["fd_lenet"] + 0.05, (on_cuda, on_cpu)
    assert abs(on_cuda["is_lenet"] - on_cpu["is_lenet"]) <= 0.01 * on_cpu["is_lenet"] + 0.01, (on_cuda, on_cpu)


def test_export_of_cuda_run_runs_on_cuda(cuda_run, tmp_path):
    pt, bundle = tmp_path / "g.pt", tmp_path / "g-bundle"
    r = gan("export", "latest", "--format", "torchscript", "-o", pt)
    assert r.exit_code == 0, r.output
    r = gan("export", "latest", "--format", "safetensors", "-o", bundle)
    assert r.exit_code == 0, r.output

    reference = load_generator(cuda_run.path, device="cuda").sample(16, seed=0)
    from_bundle = load_generator(bundle, device="cuda").sample(16, seed=0)
    assert (reference - from_bundle).abs().max() <= 1e-5

    z = latents(16, 32, seed=0)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
        on_cuda = torch.jit.load(str(pt), map_location="cuda")(z.to(CUDA)).float().cpu()
        on_cpu = torch.jit.load(str(pt), map_location="cpu")(z).float()
    assert on_cuda.shape == (16, 1, 28, 28)
    diff = (on_cuda - on_cpu).abs()
    assert diff.max() <= 2e-2 and diff.mean() <= 1e-3, (diff.max().item(), diff.mean().item())


# -- the data path ------------------------------------------------------------------------
def test_preloaded_data_are_not_copied_per_step(tmp_path, tiny_data):
    """The dataset lives on the GPU as uint8; a step gathers its batch there. Steps 1-4
    (one epoch is 8 steps: no new permutation) run no host-to-device memcpy."""
    from torch.profiler import ProfilerActivity, profile

    t = build_trainer(_cfg(arch="dcgan", steps=100, batch_size=16), RunStore(tmp_path).create(), CUDA, tiny_data)
    assert t.batcher.images.device.type == "cuda" and t.batcher.images.dtype == torch.uint8
    assert t.batcher.steps_per_epoch == 8
    t.train_step(0)  # the first step copies the epoch's permutation and allocates the optimizer states
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for step in range(1, 5):
            t.train_step(step)
        torch.cuda.synchronize()
    events = list(prof.events())
    on_gpu = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    assert on_gpu, "the profiler recorded no CUDA activity (CUPTI missing?): the check below would prove nothing"
    h2d = sorted({e.name for e in events if "htod" in e.name.lower().replace(" ", "")})
    assert not h2d, f"host-to-device copies inside train_step: {h2d}"
