"""Several processes training one run: two gloo processes on the CPU.

The engine tests spawn two processes with torch.multiprocessing that join a gloo
process group as torchrun's would (RANK, WORLD_SIZE, MASTER_ADDR/PORT) and run
``gancli.engine.launch.train``; the CLI test runs ``gan train --nproc 2``, which
goes through torchrun's launcher. Tiny data, a few steps.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp

from gancli.checkpoint import load_checkpoint
from gancli.data import ImageData
from gancli.data.batcher import DeviceBatcher
from gancli.engine import launch
from gancli.engine.launch import build_trainer
from gancli.engine.trainer import Trainer
from gancli.errors import UsageError
from gancli.models.mlp import MLPDiscriminator
from gancli.resolve import build_config
from gancli.runs import Run, RunStore

CPU = torch.device("cpu")


def _data() -> ImageData:
    g = torch.Generator().manual_seed(5)
    return ImageData(torch.randint(0, 256, (96, 1, 28, 28), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (96,), generator=g), [str(i) for i in range(10)])


def _mlp_cfg(steps: int):
    """The MLP GAN, made deterministic per sample below (no dropout): with neither
    BatchNorm nor dropout, 2 processes x B/2 must match 1 process x B."""
    return build_config(dict(arch="mlp", nz=8, batch_size=16, steps=steps, seed=3, device="cpu", sample_every=0,
                             checkpoint_every=0, log_every=1, limit=96, ema_decay=0.9, lr_g=1e-3, lr_d=1e-3))


def _bn_cfg():
    """Everything that takes another path with several processes: BatchNorm in G and D,
    conditional (sliced labels), 2 D steps (a G forward without gradients), lazy R1
    (a double backward through the plain D), DiffAugment, --nan-policy skip (a
    collective per update), samples, checkpoints and evaluation during training."""
    return build_config(dict(arch="dcgan", nz=8, ngf=4, ndf=4, conditional=True, batch_size=16, steps=6, seed=4,
                             device="cpu", d_steps=2, r1_gamma=1.0, r1_every=3, augment="diffaug", nan_policy="skip",
                             sample_every=2, checkpoint_every=2, keep=0, log_every=2, limit=96, eval_every=2))


class _StubEvaluator:
    """Stands in for ``gancli.metrics.evaluate.TrainingEvaluator`` (which needs real
    data): a headline value that falls with the step."""

    headline = "fd_lenet"

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, generator, describe):
        return SimpleNamespace(values={"fd_lenet": 100.0 / describe["step"]}, results=[], seconds=0.0,
                               protocol={"num_generated": 2048})


def _no_dropout(setattr_) -> None:
    def from_config(cls, cfg):
        return cls(cfg.img_channels, cfg.img_resolution, cfg.num_classes, cfg.spectral_norm, dropout=0.0)

    setattr_(MLPDiscriminator, "from_config", classmethod(from_config))


def _weights(t: Trainer) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v.clone() for k, v in t.G.state_dict().items()}
    out.update({f"D.{k}": v.clone() for k, v in t.D.state_dict().items()})
    out.update({f"E.{k}": v.clone() for k, v in t.G_ema.state_dict().items()})
    return out


def _params(t: Trainer) -> dict[str, torch.Tensor]:
    return {f"{m}.{k}": v.detach().clone() for m, mod in (("G", t.G), ("D", t.D)) for k, v in mod.named_parameters()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _record_writes(home: str, writes: list[str]):
    """An audit hook noting every file or folder this process creates, renames or
    opens for writing below ``home`` (safetensors writes through a temp file that
    gancli renames, so the rename shows)."""

    def hook(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], str) and isinstance(args[1], str) and set(args[1]) & set("wax+"):
            path = args[0]
        elif event in ("os.rename", "os.mkdir", "os.remove") and isinstance(args[0], str):
            path = args[0]
        else:
            return
        if os.path.abspath(path).startswith(home):
            writes.append(f"{event} {path}")

    return hook


def _capture_trainer(setattr_, into: dict, key: str) -> None:
    """Keep the trainer launch.train builds next, as ``into[key]``."""
    real = build_trainer

    def capture(*args, **kwargs):
        into[key] = real(*args, **kwargs)
        return into[key]

    setattr_(launch, "build_trainer", capture)


def _worker(rank: int, world: int, port: int, home: str, out: str, resume_path: str) -> None:
    """One rank: resume the MLP run at ``resume_path`` to step 4, then train a new
    BatchNorm run; save what the parent checks under ``out``."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from gancli.engine import distributed

    _no_dropout(setattr)
    launch.load_split = lambda cfg, root: _data()  # noqa: ARG005 -- tiny data instead of MNIST
    import gancli.metrics.evaluate

    gancli.metrics.evaluate.TrainingEvaluator = _StubEvaluator
    writes: list[str] = []
    if rank > 0:
        sys.addaudithook(_record_writes(home, writes))
    dist, device = distributed.setup("cpu")
    store = RunStore(home)
    results = {"writes": writes}
    try:
        trainers: dict[str, Trainer] = {}
        _capture_trainer(setattr, trainers, "mlp")
        _, res = launch.train(_mlp_cfg(4), store, home, resume=Run(resume_path), dist=dist, device=device)
        results["mlp"] = _weights(trainers["mlp"])
        results["mlp_step"] = res.step

        def stop() -> bool:  # only rank 1 is asked to stop; both must stop after the same step
            return rank == 1 and trainers["bn"].step >= 3

        _capture_trainer(setattr, trainers, "bn")
        run, res = launch.train(_bn_cfg(), store, home, dist=dist, device=device, should_stop=stop)
        results["bn"] = _params(trainers["bn"])
        results["bn_step"], results["bn_interrupted"], results["bn_run"] = res.step, res.interrupted, run.id
    finally:
        distributed.teardown(dist)
    torch.save(results, Path(out) / f"rank{rank}.pt")


def test_two_processes_train_like_one(tmp_path, monkeypatch):
    """1 process to step 2 -> 2 processes to step 4 -> 1 process to step 6 matches
    1 process straight to 4 and 6 (no BatchNorm, no dropout: within float
    tolerance); the ranks end with identical weights; only rank 0 writes files;
    a stop request seen by one rank stops both after the same step."""
    _no_dropout(monkeypatch.setattr)
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    store = RunStore(home)
    data = _data()

    straight = build_trainer(_mlp_cfg(4), store.create(), CPU, data)
    straight.fit()
    w4 = _weights(straight)
    straight6 = build_trainer(_mlp_cfg(6), straight.run, CPU, data)
    straight6.restore(load_checkpoint(straight.run.checkpoint_path()))
    straight6.fit()
    w6 = _weights(straight6)

    chain = store.create()
    chain.write_config(_mlp_cfg(2).to_dict(), {})
    build_trainer(_mlp_cfg(2), chain, CPU, data).fit()
    runs_before = {r.id for r in store.list()}
    mp.start_processes(_worker, args=(2, _free_port(), str(home), str(out), str(chain.path)), nprocs=2,
                       start_method="spawn")
    r0, r1 = (torch.load(out / f"rank{r}.pt") for r in (0, 1))

    assert r0["mlp_step"] == r1["mlp_step"] == 4
    for k in r0["mlp"]:
        assert torch.equal(r0["mlp"][k], r1["mlp"][k]), f"ranks differ in {k}"
        torch.testing.assert_close(r0["mlp"][k], w4[k], rtol=1e-4, atol=1e-5, msg=f"2 x B/2 != 1 x B in {k}")
    ckpt = load_checkpoint(chain.checkpoint_path())
    assert ckpt.step == 4 and ckpt.state["world_size"] == 2
    assert not any(k.startswith(("generator.module.", "discriminator.module.")) for k in ckpt.tensors)
    assert "rng.ranks.1.torch" in ckpt.tensors

    # a 2-process checkpoint resumes in 1 process
    monkeypatch.setattr(launch, "load_split", lambda cfg, root: data)
    last: dict[str, Trainer] = {}
    _capture_trainer(monkeypatch.setattr, last, "t")
    _, res = launch.train(_mlp_cfg(6), store, home, resume=chain)
    assert res.step == 6
    resumed = _weights(last["t"])
    for k in w6:
        torch.testing.assert_close(resumed[k], w6[k], rtol=1e-4, atol=1e-5, msg=f"resumed chain differs in {k}")

    # the BatchNorm run: identical parameters on both ranks, stopped together at step 3
    assert r0["bn_step"] == r1["bn_step"] == 3 and r0["bn_interrupted"] and r1["bn_interrupted"]
    for k in r0["bn"]:
        assert torch.equal(r0["bn"][k], r1["bn"][k]), f"ranks differ in {k}"
    bn_run = store.resolve(r0["bn_run"])
    assert {r.id for r in store.list()} == runs_before | {bn_run.id}
    assert [s for s, _ in bn_run.checkpoints()] == [2, 3]
    assert sorted(p.name for p in bn_run.samples_dir.iterdir()) == ["step-2.png"]
    records = bn_run.read_metrics()
    assert [(r["kind"], r["step"]) for r in records] == [("train", 2), ("eval", 2)]  # rank 0's evaluation
    assert records[1]["fd_lenet"] == 50.0
    best = load_checkpoint(bn_run.checkpoints_dir / "best.safetensors")
    assert best.step == 2 and best.tensors.keys() == load_checkpoint(bn_run.checkpoints_dir / "step-2.safetensors").tensors.keys()
    assert json.loads(bn_run.config_path.read_text())["meta"]["world_size"] == 2
    assert r1["writes"] == []  # rank 1 created, renamed, removed and wrote no file of the run store


def test_batch_slices_cover_the_global_batch(tiny_data):
    one = DeviceBatcher(tiny_data.images, tiny_data.labels, 16, seed=3, device=CPU)
    halves = [DeviceBatcher(tiny_data.images, tiny_data.labels, 16, seed=3, device=CPU, rank=r, world_size=2)
              for r in (0, 1)]
    for step in (0, 9):  # 9: the second epoch
        x, y = one.batch(step)
        parts = [h.batch(step) for h in halves]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    with pytest.raises(ValueError, match="does not split over 3 processes"):
        DeviceBatcher(tiny_data.images, tiny_data.labels, 16, seed=3, device=CPU, rank=0, world_size=3)


def test_parallel_checks():
    cfg = build_config(dict(batch_size=30, steps=1))
    with pytest.raises(UsageError, match=r"--batch-size 30 does not split evenly over 4 processes; use a multiple of 4"):
        launch.check_parallel(cfg, 4, CPU)
    launch.check_parallel(cfg, 2, CPU)
    sync = build_config(dict(batch_size=32, steps=1, sync_bn=True))
    with pytest.raises(UsageError, match="--sync-bn needs CUDA"):
        launch.check_parallel(sync, 2, CPU)
    launch.check_parallel(sync, 1, CPU)  # one process: nothing to synchronise


def test_rank_device_rules(monkeypatch):
    from gancli.engine.distributed import env_ranks, rank_device

    assert rank_device("cpu", 1) == CPU
    with pytest.raises(UsageError, match="cannot be shared by several processes"):
        rank_device("cuda:0", 0)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert env_ranks() == (1, 2, 1)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(Exception, match="bad process ranks"):
        env_ranks()


def _image_folder(root: Path, n: int = 64) -> Path:
    from PIL import Image

    root.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        pixels = torch.randint(0, 256, (16, 16), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels, mode="L").save(root / f"{i}.png")
    return root


def _gan(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GANCLI_HOME": str(home), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gancli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow  # ~35 s: two torchrun launches; test_two_processes_train_like_one stays in the default suite
def test_cli_nproc_2(tmp_path):
    """``gan train --nproc 2`` through torchrun: one set of output lines (rank 0's),
    files from rank 0, exit codes of the ranks; a 2-process run resumes with --nproc 2."""
    home = tmp_path / "home"
    folder = _image_folder(tmp_path / "images")
    args = ["train", "--dataset", str(folder), "--channels", "1", "--image-size", "16", "--arch", "dcgan", "--nz", "8",
            "--ngf", "4", "--ndf", "4", "--batch-size", "16", "--log-every", "2", "--device", "cpu", "--nproc", "2"]
    r = _gan(home, *args, "--steps", "4")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    # the folder of 64 images is self-conditioned on 3 clusters (said once: rank 0 speaks)
    assert lines[0] == "self-conditioning: clustering 64 images into 3 k-means clusters in pixel space (--clusters 0 = off)"
    assert lines[1].startswith("run-1: dcgan on ") and lines[1].endswith("2 processes (batch 8 each)")
    assert [ln.split(" |")[0] for ln in lines if ln.startswith("step ")] == ["step 2/4 epoch 0.50", "step 4/4 epoch 1.00"]
    assert sum(ln.startswith("done: 4 steps") for ln in lines) == 1
    run = home / "runs" / "run-1"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-4.safetensors"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-4.png"]

    r = _gan(home, *args[:-2], "--nproc", "2", "--resume", "latest", "--steps", "4")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "error: run-1 is already at step 4 of 4; pass --steps N (N > 4) or a larger --epochs to train further"]

    r = _gan(home, "train", "--resume", "latest", "--steps", "6", "--nproc", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0].startswith("resuming run-1 at step 4: ")  # the stored clusters: no clustering line
    assert load_checkpoint(run / "checkpoints" / "step-6.safetensors").state["world_size"] == 2


@pytest.mark.parametrize("args,fragment", [
    (["--nproc", "2", "--batch-size", "31"], "--batch-size 31 does not split evenly over 2 processes"),
    (["--nproc", "2", "--sync-bn", "--device", "cpu"], "--sync-bn needs CUDA devices"),
    (["--nproc", "0"], "--nproc must be >= 1, got 0"),
    (["--nproc", "2", "--device", "cuda:1"], "cannot be shared by several processes"),
])
def test_cli_nproc_errors(args, fragment):
    from typer.testing import CliRunner

    from gancli.cli import app

    r = CliRunner().invoke(app, ["train", *args, "--dry-run"])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.output
