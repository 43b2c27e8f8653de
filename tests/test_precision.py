"""Speed options: --precision (autocast bf16 / fp16 with loss scaling),
--channels-last and --compile; and the faster parts of the step (one D forward for
real and fake when D scores samples independently, the CPU dropout).

Each precision runs on the CPU where this PyTorch supports it and is skipped,
with the reason, elsewhere.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from gancli.checkpoint import load_checkpoint
from gancli.cli import app
from gancli.config import RunConfig
from gancli.engine.launch import check_precision
from gancli.engine.launch import build_trainer
from gancli.engine.trainer import Trainer
from gancli.errors import UsageError
from gancli.losses.regularizers import gradient_penalty, r1_penalty
from gancli.models.layers import Dropout
from gancli.models.mlp import MLPDiscriminator
from gancli.resolve import build_config
from gancli.runs import RunStore
from gancli.units import plural

CPU = torch.device("cpu")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _supported(precision: str) -> None:
    try:
        check_precision(precision, CPU)
    except UsageError as e:
        pytest.skip(f"--precision {precision} on this CPU: {e}")


def _cfg(precision="fp32", arch="dcgan", loss="bce", steps=4, **extra):
    return build_config(dict(arch=arch, loss=loss, nz=8, ngf=8, ndf=8, batch_size=16, steps=steps, seed=2,
                             device="cpu", sample_every=0, checkpoint_every=0, log_every=1, limit=96,
                             precision=precision, **extra))


def _state(t: Trainer) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v for k, v in t.G.state_dict().items()}
    out.update({f"D.{k}": v for k, v in t.D.state_dict().items()})
    return out


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("arch,loss,extra", [("dcgan", "bce", {}), ("mlp", "wgan-gp", {"r1_gamma": 1.0, "r1_every": 2})])
def test_precision_trains_under_autocast_and_resumes_bitwise(tmp_path, tiny_data, precision, arch, loss, extra):
    """D runs in the autocast dtype (the penalties in float32 under fp16); the
    losses (and GP, R1) stay finite; a run
    stopped at step 2 and resumed equals a straight one bitwise; fp16 checkpoints
    hold the GradScaler states."""
    _supported(precision)
    store = RunStore(tmp_path)
    steps = 2 if loss == "wgan-gp" else 4
    straight = build_trainer(_cfg(precision, arch, loss, steps, **extra), store.create(), CPU, tiny_data)
    seen: set[torch.dtype] = set()
    first_layer = next(m for m in straight.D.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    first_layer.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    straight.fit()
    penalties_in_fp32 = {torch.float32} if precision == "fp16" and loss == "wgan-gp" else set()
    assert seen == {DTYPES[precision]} | penalties_in_fp32
    records = straight.run.read_metrics()
    assert all(torch.isfinite(torch.tensor([r["loss_d"], r["loss_g"]])).all() for r in records)
    if loss == "wgan-gp":
        assert all(k in records[-1] for k in ("gp", "r1"))

    run = store.create()
    first = build_trainer(_cfg(precision, arch, loss, steps, **extra), run, CPU, tiny_data)
    first.fit(should_stop=lambda: first.step >= 1)
    ckpt = load_checkpoint(run.checkpoint_path())
    assert ckpt.has("scaler_d") == ckpt.has("scaler_g") == (precision == "fp16")
    torch.manual_seed(99)
    resumed = build_trainer(_cfg(precision, arch, loss, steps, **extra), run, CPU, tiny_data)
    resumed.restore(ckpt)
    resumed.fit()
    a, b = _state(straight), _state(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    if precision == "fp16":
        assert resumed.scaler_d.get_scale() == straight.scaler_d.get_scale()


def test_precision_may_change_on_resume(tmp_path, tiny_data):
    _supported("fp16")
    run = RunStore(tmp_path).create()
    build_trainer(_cfg("fp16", "mlp", steps=2), run, CPU, tiny_data).fit()
    cfg = build_config({"precision": "fp32", "steps": 4}, base=_cfg("fp16", "mlp", steps=2))
    assert cfg.train.precision == "fp32"
    t = build_trainer(cfg, run, CPU, tiny_data)
    t.restore(load_checkpoint(run.checkpoint_path()))  # the fp16 scaler states are not needed
    assert t.fit().step == 4
    assert not load_checkpoint(run.checkpoint_path()).has("scaler_d")


def _critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 14 * 14, 1),
                         nn.Flatten(0))


def test_penalties_under_bf16_autocast_match_fp32():
    """GP and R1 under bf16 autocast: float32 results close to the fp32 ones, with
    gradients for D. (Under fp16 the trainer runs them in float32.)"""
    _supported("bf16")
    critic = _critic()
    g = torch.Generator().manual_seed(1)
    real, fake = torch.rand(8, 1, 28, 28, generator=g) * 2 - 1, torch.rand(8, 1, 28, 28, generator=g) * 2 - 1
    eps = torch.rand(8, 1, 1, 1, generator=g)
    gp32, r132 = gradient_penalty(critic, real, fake, eps=eps), r1_penalty(critic, real)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(critic, real, fake, eps=eps)
        r1 = r1_penalty(critic, real)
    assert gp.dtype == r1.dtype == torch.float32
    torch.testing.assert_close(gp, gp32, rtol=0.05, atol=1e-3)
    torch.testing.assert_close(r1, r132, rtol=0.05, atol=1e-3)
    (gp + r1).backward()
    for layer in (critic[0], critic[3]):  # the biases do not enter the input gradient
        assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


def test_channels_last_layout_only(tmp_path, tiny_data):
    """channels_last changes the memory layout of conv weights and batches, not the
    maths (equal within float tolerance); the MLP is left alone."""
    store = RunStore(tmp_path)
    cl = build_trainer(_cfg(steps=3), store.create(), CPU, tiny_data)
    plain = build_trainer(_cfg(steps=3, channels_last=False), store.create(), CPU, tiny_data)
    assert cl.parts.memory_format == torch.channels_last and plain.parts.memory_format == torch.contiguous_format
    w = cl.D.body[2].weight  # (16, 8, 4, 4): the first conv has one input channel, for which both layouts agree
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    cl.fit()
    plain.fit()
    a, b = _state(cl), _state(plain)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    saved = load_checkpoint(cl.run.checkpoint_path())
    assert saved.tensors["discriminator.body.2.weight"].is_contiguous()
    mlp = build_trainer(_cfg(arch="mlp", steps=1), store.create(), CPU, tiny_data)
    assert mlp.parts.memory_format == torch.contiguous_format


def test_old_config_without_speed_options_loads():
    d = RunConfig().to_dict()
    for key in ("precision", "channels_last", "compile", "sync_bn"):
        del d["train"][key]
    cfg = RunConfig.from_dict(d)
    # fp32, not today's default auto: a run from before --precision auto resumes as it trained
    assert (cfg.train.precision, cfg.train.channels_last, cfg.train.compile, cfg.train.sync_bn) == (
        "fp32", True, False, False)
    assert RunConfig().train.precision == "auto"


def test_cli_speed_options(home):
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--steps", "3", "--precision", "bf16", "--no-channels-last", "--compile",
                            "--dry-run"])
    assert r.exit_code == 0, r.output
    train = json.loads(r.output)["train"]
    assert (train["precision"], train["channels_last"], train["compile"], train["sync_bn"]) == ("bf16", False, True,
                                                                                                 False)
    r = runner.invoke(app, ["train", "--precision", "fp64", "--dry-run"])
    assert r.exit_code == 2
    assert r.output.strip() == "error: unknown precision 'fp64' (did you mean 'fp16'?); valid choices: auto, fp32, bf16, fp16"


@pytest.mark.slow
def test_compile_trains_with_penalties(tmp_path, tiny_data):
    """--compile: G and D through torch.compile; the GP's double backward runs on the
    plain D (torch.compile has none). Minutes of compilation on a CPU."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    run = RunStore(tmp_path).create()
    t = build_trainer(_cfg(arch="mlp", loss="wgan-gp", steps=2, compile=True), run, CPU, tiny_data)
    assert t.parts.D_local is not t.D
    assert t.fit().step == 2
    assert "gp" in run.read_metrics()[-1]


def test_dropout_statistics():
    torch.manual_seed(0)
    drop = Dropout(0.3)
    x = torch.ones(200, 1000, requires_grad=True)
    y = drop(x)
    zeroed = (y == 0).float().mean().item()
    assert abs(zeroed - 0.3) < 0.01
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.7))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * mask / 0.7) / dx
    assert torch.equal(drop.eval()(x), x)
    assert isinstance(drop, nn.Dropout) and drop.p == 0.3


@pytest.mark.parametrize("opts,joint", [({"arch": "mlp"}, True), ({"arch": "dcgan"}, False),
                                        ({"arch": "dcgan", "d_norm": "none"}, True),
                                        ({"arch": "mlp", "spectral_norm": True}, False)])
def test_joint_d_forward_only_for_per_sample_d(tmp_path, tiny_data, opts, joint):
    t = build_trainer(build_config(dict(nz=8, ngf=4, ndf=4, batch_size=16, steps=1, device="cpu", limit=96, **opts)),
                RunStore(tmp_path).create(), CPU, tiny_data)
    assert t.parts.joint_d == joint


def test_joint_d_forward_matches_two_forwards(tmp_path, tiny_data, monkeypatch):
    """Without dropout the MLP D scores samples independently: one forward of real and
    fake together trains like two (within float tolerance)."""
    def from_config(cls, cfg):
        return cls(cfg.img_channels, cfg.img_resolution, cfg.num_classes, cfg.spectral_norm, dropout=0.0)

    monkeypatch.setattr(MLPDiscriminator, "from_config", classmethod(from_config))
    store = RunStore(tmp_path)
    joint = build_trainer(_cfg(arch="mlp", steps=3, conditional=True), store.create(), CPU, tiny_data)
    apart = build_trainer(_cfg(arch="mlp", steps=3, conditional=True), store.create(), CPU, tiny_data)
    apart.parts.joint_d = False
    joint.fit()
    apart.fit()
    a, b = _state(joint), _state(apart)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6, msg=k)


def test_precision_warning_without_native_support():
    from gancli.engine.precision import precision_warning

    cpu = torch.device("cpu")
    assert "is emulated" in precision_warning("bf16", cpu, flags={"avx2", "avx512f"})
    assert "AVX512-BF16 or AMX-BF16" in precision_warning("bf16", cpu, flags={"avx2"})
    assert precision_warning("bf16", cpu, flags={"avx512_bf16"}) is None
    assert precision_warning("bf16", cpu, flags={"amx_bf16"}) is None
    assert "AVX512-FP16" in precision_warning("fp16", cpu, flags={"amx_bf16"})
    assert precision_warning("fp32", cpu, flags=set()) is None
    assert precision_warning("bf16", cpu, flags=None) in (None, precision_warning("bf16", cpu))  # unknown: read


def test_train_warns_on_emulated_bf16_and_names_precision(tmp_path, monkeypatch, mnist_dir):
    """A CPU without native bf16 (simulated): one warning line; the start line names precision and threads."""
    from typer.testing import CliRunner

    from gancli.cli import app
    from gancli.engine import precision

    args = ["--home", str(tmp_path), "train", "--limit", "64", "--batch-size", "32", "--steps", "1", "--ngf", "8",
            "--ndf", "8", "--device", "cpu", "--sample-every", "0", "--monitor-every", "0"]
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: 0.8)  # 1.25x slower: kept, with the ratio
    r = CliRunner().invoke(app, [*args, "--precision", "bf16"])
    assert r.exit_code == 0, r.output
    assert r.stderr.count("--precision bf16 on this CPU (no AVX512-BF16 or AMX-BF16) is emulated: measured "
                          "1/1.2x fp32's speed on this CPU") == 1
    assert "precision bf16" in r.stdout and plural(torch.get_num_threads(), "CPU thread") in r.stdout
    monkeypatch.setattr(precision, "cpu_signature", lambda flags=None: "a slower CPU")  # another probe cache entry
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: 0.094)  # issue #27's box: 10.6x slower
    r = CliRunner().invoke(app, [*args, "--precision", "bf16"])
    assert r.exit_code == 0, r.output
    assert ("--precision bf16 measured 10.6x slower than fp32 on this CPU (probe): training in fp32; add --force "
            "to train in bf16 anyway") in r.stderr
    assert "precision fp32" in r.stdout
    runs = sorted((tmp_path / "runs").glob("run-*"), key=lambda p: int(p.name.split("-")[1]))
    assert json.loads((runs[-1] / "config.json").read_text())["config"]["train"]["precision"] == "fp32"
    r = CliRunner().invoke(app, [*args, "--precision", "bf16", "--force"])
    assert r.exit_code == 0 and "precision bf16" in r.stdout, r.output
    assert "is emulated: measured 1/10.6x fp32's speed on this CPU" in r.stderr
    forced = max((tmp_path / "runs").glob("run-*"), key=lambda p: int(p.name.split("-")[1]))
    r = CliRunner().invoke(app, ["--home", str(tmp_path), "train", "--resume", forced.name, "--steps", "2"])
    assert r.exit_code == 0 and "precision bf16" in r.stdout, r.output  # the run goes on as it trained
    assert "training in fp32" not in r.stderr
    assert json.loads((forced / "config.json").read_text())["config"]["train"]["precision"] == "bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    r = CliRunner().invoke(app, [*args, "--precision", "bf16"])
    assert r.exit_code == 0 and "emulated" not in r.stderr


# -- --precision auto -------------------------------------------------------------------------
def _never():
    raise AssertionError("the probe ran where it must not")


def test_auto_precision_resolves_by_device_flags_and_measured_speed(tmp_path, monkeypatch):
    from gancli.engine.precision import AUTO_PRECISION_ENV, resolve_precision

    monkeypatch.delenv(AUTO_PRECISION_ENV, raising=False)
    assert resolve_precision("fp16", CPU, tmp_path, measure=_never) == ("fp16", "")  # explicit: kept as given
    # no native bf16 (e.g. an AMD EPYC with AVX2, or an Intel CPU without AMX): fp32, no probe
    name, why = resolve_precision("auto", CPU, tmp_path, flags={"avx2", "fma"}, measure=_never)
    assert name == "fp32" and "no native bf16" in why
    assert resolve_precision("auto", torch.device("cuda"), tmp_path, measure=_never)[0] == "fp32"
    assert resolve_precision("auto", torch.device("mps"), tmp_path, measure=_never)[0] == "fp32"
    # native bf16: the measured speed-up decides (cached per machine: measured once)
    name, why = resolve_precision("auto", CPU, tmp_path / "a", flags={"amx_bf16"}, measure=lambda: 1.9)
    assert name == "bf16" and "measured 1.9x" in why and "(probe)" in why
    name, why = resolve_precision("auto", CPU, tmp_path / "a", flags={"amx_bf16"}, measure=_never)
    assert name == "bf16" and "(cached probe)" in why
    name, why = resolve_precision("auto", CPU, tmp_path / "b", flags={"avx512_bf16"}, measure=lambda: 1.1)
    assert name == "fp32" and "1.10x" in why and "below 1.3x" in why


def test_auto_precision_pinned_by_the_environment(tmp_path, monkeypatch):
    from gancli.engine.precision import AUTO_PRECISION_ENV, resolve_precision

    monkeypatch.setenv(AUTO_PRECISION_ENV, "bf16")
    assert resolve_precision("auto", CPU, tmp_path, flags=set(), measure=_never)[0] == "bf16"
    assert resolve_precision("fp32", CPU, tmp_path, measure=_never)[0] == "fp32"  # an explicit choice wins
    monkeypatch.setenv(AUTO_PRECISION_ENV, "fp8")
    with pytest.raises(UsageError, match="GANCLI_AUTO_PRECISION='fp8' .*valid choices: fp32, bf16"):
        resolve_precision("auto", CPU, tmp_path, measure=_never)


def test_probe_cache_survives_damage_and_keys_by_machine(tmp_path, monkeypatch):
    from gancli.engine import precision

    path = precision.probe_cache_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert precision.cached_bf16_speedup(tmp_path, lambda: 2.5) == (2.5, False)  # damaged: measured again
    assert precision.cached_bf16_speedup(tmp_path, _never) == (2.5, True)
    monkeypatch.setattr(precision, "cpu_signature", lambda flags=None: "another CPU")
    assert precision.cached_bf16_speedup(tmp_path, lambda: 0.2) == (0.2, False)
    assert len(json.loads(path.read_text())) == 2


def test_bf16_probe_measures_a_positive_ratio():
    from gancli.engine.precision import measure_bf16_speedup

    _supported("bf16")
    assert 0.0 < measure_bf16_speedup(repeats=1) < 100.0


def test_train_stores_what_auto_became_and_says_why(tmp_path, monkeypatch, mnist_dir):
    """A new run with the default --precision auto: config.json holds fp32 or bf16 (so a resume
    trains as the run began), the start line says how auto chose."""
    from gancli.engine import precision

    monkeypatch.delenv(precision.AUTO_PRECISION_ENV, raising=False)
    args = ["--home", str(tmp_path), "train", "--limit", "64", "--batch-size", "32", "--steps", "1", "--ngf", "8",
            "--ndf", "8", "--device", "cpu", "--sample-every", "0", "--monitor-every", "0", "--clusters", "0"]
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "precision fp32 (auto: no native bf16 (AMX-BF16, AVX512-BF16) on this CPU)" in r.stdout
    cfg = json.loads((tmp_path / "runs" / "run-1" / "config.json").read_text())
    assert cfg["config"]["train"]["precision"] == "fp32"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"amx_bf16"})
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: 2.0)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "precision bf16 (auto: bf16 measured 2.0x fp32's speed on this CPU (probe))" in r.stdout
    cfg = json.loads((tmp_path / "runs" / "run-2" / "config.json").read_text())
    assert cfg["config"]["train"]["precision"] == "bf16"
    # the resume trains in what the run began with, whatever auto would say now
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    r = CliRunner().invoke(app, ["--home", str(tmp_path), "train", "--resume", "run-2", "--steps", "2"])
    assert r.exit_code == 0, r.output
    assert "precision bf16" in r.stdout and "auto:" not in r.stdout
