"""A pix2pix corruption task on two processes (issue #24): each process corrupts its slice of
the global batch with the draws one process makes for those rows, so G's inputs do not depend
on the number of processes. Two gloo processes on the CPU (the pattern of test_distributed.py),
a tiny inpaint run of 2 steps."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from gancli.data import ImageData
from gancli.engine.launch import build_trainer
from gancli.engine.steps import TranslateStep
from gancli.resolve import build_config
from gancli.runs import RunStore

CPU = torch.device("cpu")


def _data() -> ImageData:
    g = torch.Generator().manual_seed(6)
    return ImageData(torch.randint(0, 256, (32, 1, 16, 16), generator=g, dtype=torch.uint8),
                     torch.zeros(32, dtype=torch.int64), ["x"])


def _cfg():
    base = build_config({"task": "inpaint", "mask": "mixed", "ngf": 4, "ndf": 4, "batch_size": 8, "steps": 2,
                         "seed": 5, "device": "cpu", "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                         "limit": 32, "dataset": "mnist", "channels": 1})  # described only, never read
    return base.replace(model=dataclasses.replace(base.model, img_resolution=16))


def _recording(setattr_, into: list) -> None:
    """Record every (target, source, mask) TranslateStep corrupts during training."""
    real = TranslateStep.corrupt

    def corrupt(self, images, seed, index, global_batch=0, offset=0):
        source, extra = real(self, images, seed, index, global_batch, offset)
        if index >= 0 and global_batch:  # the training batches (not the grid's fixed inputs)
            into.append((index, images.clone(), source.clone(), extra["mask"].clone()))
        return source, extra

    setattr_(TranslateStep, "corrupt", corrupt)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, home: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from gancli.engine import distributed

    seen: list = []
    _recording(setattr, seen)
    dist, device = distributed.setup("cpu")
    try:
        # only rank 0 writes; the other rank's run directory stays apart (and unwritten)
        run = RunStore(Path(home) / f"rank{rank}").create()
        build_trainer(_cfg(), run, device, _data(), dist=dist).fit()
    finally:
        distributed.teardown(dist)
    torch.save(seen, Path(out) / f"rank{rank}.pt")


def test_two_processes_corrupt_the_global_batch_as_one_does(tmp_path, monkeypatch):
    one: list = []
    _recording(monkeypatch.setattr, one)
    build_trainer(_cfg(), RunStore(tmp_path / "one").create(), CPU, _data()).fit()
    assert [i for i, *_ in one] == [0, 1]

    out = tmp_path / "out"
    out.mkdir()
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path / "two"), str(out)), nprocs=2,
                       start_method="spawn")
    ranks = [torch.load(out / f"rank{r}.pt") for r in (0, 1)]
    for step, (index, target, source, mask) in enumerate(one):
        (i0, t0, s0, m0), (i1, t1, s1, m1) = ranks[0][step], ranks[1][step]
        assert i0 == i1 == index and t0.shape[0] == t1.shape[0] == 4
        assert torch.equal(torch.cat([t0, t1]), target)  # the batcher's slices (test_distributed)
        assert torch.equal(torch.cat([m0, m1]), mask), f"holes of step {index} depend on the processes"
        assert torch.equal(torch.cat([s0, s1]), source)
        assert not torch.equal(m0, m1)  # guard: the ranks' slices are different rows
