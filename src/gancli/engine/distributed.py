"""Several processes training one run, through ``torch.distributed``.

gancli does not start processes itself: ``torchrun`` (``python -m
torch.distributed.run``) starts one per device and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`setup` joins the process group (NCCL on CUDA, gloo on the CPU) and
picks the device of this process. ``gan train --nproc N`` runs torchrun's
standalone launcher for one machine (:func:`launch_local`).

How the work is split (see ``docs/distributed.md``):

* ``--batch-size`` is the global batch. Batch ``i`` is the same set of images
  whatever the number of processes (a function of ``(seed, i)``); rank ``r``
  of ``W`` takes its ``r``-th slice of ``B / W`` images. The latents of the
  global batch are drawn on every rank from the shared z generator and sliced
  the same way, so z differs between ranks but not with the world size.
* G and D are wrapped in ``DistributedDataParallel``, which averages the
  gradients of the per-rank mean losses: the gradient of the global mean.
* Dropout, DiffAugment and the gradient-penalty mixing draw from the global
  torch RNG, seeded per rank (rank 0 keeps the single-process stream).
* Only rank 0 writes files (config, metrics, samples, checkpoints) and prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as torch_dist

from gancli.engine.device import resolve_device
from gancli.engine.ranks import env_ranks  # noqa: F401 -- re-exported
from gancli.errors import GancliError, UsageError

T = TypeVar("T")


class ErrorOnAnotherRank(GancliError):
    """Raised on the ranks that wait for a step that failed on another rank, which
    reported the error itself; the CLI exits with its code and prints nothing."""

    silent = True

    def __init__(self, exit_code: int):
        super().__init__(f"failed on another rank (exit code {exit_code})")
        self.exit_code = exit_code


@dataclass(frozen=True)
class Dist:
    """This process's place among the processes of a run.

    Attributes:
        rank: 0 .. world_size - 1; rank 0 writes the files.
        world_size: number of processes; 1 = no ``torch.distributed``.
        local_rank: rank on this machine (picks the GPU).
        cpu_group: a gloo process group for host-side values (flags, objects,
            RNG states); the default group on the CPU. None when world_size is 1.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    cpu_group: Any = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on at least one (a collective)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)])
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX, group=self.cpu_group)
        return bool(t.item())

    def all(self, flag: torch.Tensor) -> bool:
        """True on every rank if the 0-d bool/int tensor ``flag`` is true on all
        ranks (a collective on ``flag``'s device; syncs with it)."""
        t = flag.to(torch.int32).reshape(1)
        if self.enabled:
            torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MIN)
        return bool(t.item())

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place (on its device)."""
        if self.enabled:
            torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
        return tensor

    def gather(self, obj: T) -> list[T]:
        """``obj`` of every rank, in rank order, on every rank (picklable objects)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, obj, group=self.cpu_group)
        return out

    def from_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 and return its result on every rank.

        An exception on rank 0 is raised there as it is; the other ranks raise
        :class:`ErrorOnAnotherRank` with its exit code.
        """
        if not self.enabled:
            return fn()
        box: list[Any] = [None]
        error: BaseException | None = None
        if self.is_main:
            try:
                box[0] = ("ok", fn())
            except BaseException as e:  # noqa: B036 -- the other ranks must learn of any failure
                error = e
                box[0] = ("error", getattr(e, "exit_code", 1))
        torch_dist.broadcast_object_list(box, src=0, group=self.cpu_group)
        if error is not None:
            raise error
        status, value = box[0]
        if status != "ok":
            raise ErrorOnAnotherRank(value)
        return value

    def leaders_first(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the first process of each machine (local rank 0), then on
        the others: e.g. loading a dataset that the first one may download.

        Raises:
            whatever ``fn`` raised, on the rank where it failed;
            ErrorOnAnotherRank: on ranks that did not run ``fn`` because a leader failed.
        """
        if not self.enabled:
            return fn()
        result: Any = None
        code = 0
        error: BaseException | None = None
        if self.local_rank == 0:
            try:
                result = fn()
            except BaseException as e:  # noqa: B036
                error, code = e, getattr(e, "exit_code", 1)
        codes = self.gather(code)
        if error is not None:
            raise error
        failed = [c for c in codes if c]
        if failed:
            raise ErrorOnAnotherRank(failed[0])
        return fn() if self.local_rank != 0 else result


SINGLE = Dist()


def interval_means(dist: Dist, sums: dict[str, torch.Tensor], counts: dict[str, int],
                   device: torch.device) -> dict[str, float]:
    """The logged values of a log interval, over all ranks: ``sums[k] / counts[k]`` (the
    means per update), except ``skipped``, a total. One device sync and one all-reduce.

    Args:
        sums: 0-d tensors on ``device``, this rank's sums over the interval.
        counts: how many values each sum holds.
    """
    keys = list(sums)
    if dist.enabled:  # the same keys everywhere (a rank may lack one under --nan-policy skip)
        keys = list(dict.fromkeys(k for rank_keys in dist.gather(keys) for k in rank_keys))
    if not keys:
        return {}
    zero = torch.zeros((), device=device)
    table = torch.stack([torch.stack([sums.get(k, zero).float(), torch.tensor(float(counts.get(k, 0)), device=device)])
                         for k in keys])
    values = dist.sum_(table).tolist()
    out = {}
    for k, (total, n) in zip(keys, values):
        if k == "skipped":  # every rank counts each skipped update
            out[k] = total / dist.world_size
        elif n:
            out[k] = total / n
    return out


def rank_device(spec: str, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank`` among several: ``auto`` and
    ``cuda`` mean ``cuda:<local_rank>`` (CPU for ``auto`` without CUDA).

    Raises:
        UsageError: ``cuda:N`` or ``mps`` (one device cannot serve several
            processes; use ``CUDA_VISIBLE_DEVICES`` to pick GPUs), or more
            processes on this machine than GPUs.
    """
    s = spec.strip().lower()
    if s.startswith("cuda:") or s == "mps":
        raise UsageError(f"--device {spec} cannot be shared by several processes; use --device cuda "
                         "(process i of a machine takes cuda:i; pick GPUs with CUDA_VISIBLE_DEVICES) or cpu")
    if s == "auto":
        s = "cuda" if torch.cuda.is_available() else "cpu"
    device = resolve_device(s)  # raises for unknown or unavailable devices
    if device.type != "cuda":
        return device
    n = torch.cuda.device_count()
    if local_rank >= n:
        raise UsageError(f"process {local_rank} of this machine has no GPU: it has {n}; "
                         f"start at most {n} processes per machine (--nproc / --nproc-per-node)")
    return torch.device("cuda", local_rank)


def setup(device_spec: str) -> tuple[Dist, torch.device]:
    """Join the process group torchrun described in the environment, if any.

    Returns:
        ``(dist, device)``: :data:`SINGLE` and the resolved ``--device`` outside
        torchrun (or with one process); else this rank's place and its device
        (``cuda:<LOCAL_RANK>`` or the CPU), with the default process group
        initialised: NCCL on CUDA, gloo on the CPU.

    Raises:
        UsageError: see :func:`rank_device`. GancliError: bad environment.
    """
    rank, world, local = env_ranks()
    if world == 1:
        return SINGLE, resolve_device(device_spec)
    device = rank_device(device_spec, local)
    if not torch_dist.is_available():
        raise GancliError("this PyTorch build has no torch.distributed support")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not torch_dist.is_initialized():
        if device.type == "cuda":
            try:  # binds the NCCL communicator to this GPU (PyTorch >= 2.3)
                torch_dist.init_process_group(backend, rank=rank, world_size=world, device_id=device)
            except TypeError:
                torch_dist.init_process_group(backend, rank=rank, world_size=world)
        else:
            torch_dist.init_process_group(backend, rank=rank, world_size=world)
    cpu_group = torch_dist.new_group(backend="gloo") if backend != "gloo" else torch_dist.group.WORLD
    return Dist(rank, world, local, cpu_group), device


def teardown(dist: Dist) -> None:
    """Leave the process group :func:`setup` joined (a no-op for one process).

    The ranks first meet at a barrier, so no rank closes its connections while
    another still talks to it; a barrier that fails (a rank already gone after an
    error) is ignored: leaving is all that is left to do.
    """
    if dist.enabled and torch_dist.is_initialized():
        try:
            torch_dist.barrier(group=dist.cpu_group)
        except Exception:  # noqa: BLE001 -- another rank failed; its error is reported by that rank
            pass
        torch_dist.destroy_process_group()


def launch_local(nproc: int, argv: list[str]) -> int:
    """Run ``python -m gancli <argv>`` in ``nproc`` processes on this machine and wait
    for them: ``torchrun --standalone --nproc-per-node <nproc> -m gancli <argv>``,
    through torchrun's own launcher in this process (``gan train --nproc``).

    ``OMP_NUM_THREADS`` defaults to the CPU count over ``nproc``. The launcher
    forwards SIGINT/SIGTERM to the processes (which checkpoint and stop) and
    waits up to 30 s for them.

    Returns:
        The exit code: 0; else that of the lowest rank that exited by itself (it
        printed its error), 128 + N for a rank killed by signal N, or 128 + N
        when the launcher got signal N.
    """
    import logging

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    for name in list(logging.root.manager.loggerDict):  # the ranks report their own errors and signals
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = torchrun.parse_args(["--standalone", f"--nproc-per-node={nproc}", "--module", "gancli", *argv])
    try:
        torchrun.run(args)
    except ChildFailedError as e:
        # a rank that exited by itself said why; the launcher then stops the others with SIGTERM
        codes = [f.exitcode for _, f in sorted(e.failures.items())]
        own = [c for c in codes if c > 0]
        return own[0] if own else 128 - codes[0]
    except SignalException as e:
        return 128 + int(e.sigval)
    return 0
