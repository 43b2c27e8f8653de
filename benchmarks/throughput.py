"""Training throughput of gancli's step against a reference loop written the classic way.

    python benchmarks/throughput.py [--quick] [--seconds S] [--device cpu|cuda|all] [--out FILE]
    python benchmarks/throughput.py --device cuda --configs dcgan28 --batch-sizes 64,256 \
        --variants fp32,fp32-contiguous,bf16,bf16-contiguous      # what scripts/device_check.sh runs

For each configuration (``mlp`` and ``dcgan`` at 28 and 64 pixels, MNIST) and
device (the CPU, and CUDA when present) one child process measures, in the same
process and in alternating rounds (so both see the same machine load):

* **gancli**: ``Trainer.train_step``, what ``gan train`` runs, with its defaults:
  data preloaded on the device as uint8, channels_last conv models, fused Adam,
  D frozen in the G update, no host sync per step, EMA of G on.
* **reference**: the loop of pytorch/examples ``dcgan/main.py``: torchvision's MNIST
  with per-image transforms (``Resize``, ``ToTensor``, ``Normalize``) in a
  ``DataLoader`` with workers (2 on the CPU), a host->device copy per step,
  ``BCEWithLogitsLoss`` on the same G and D classes, Adam(2e-4, 0.5, 0.999) with
  PyTorch's default implementation, D's gradients also computed in the G update,
  and the losses read with ``.item()`` every step.

With ``--extra-precision bf16`` (the default) a third loop, ``gancli_bf16``, runs
gancli's step under ``--precision bf16`` where the device supports it, for
information: the reference and the targets are float32.

``--variants`` replaces that third loop by any of ``fp32``, ``fp32-contiguous``,
``bf16``, ``bf16-contiguous``, ``fp16``, ``fp16-contiguous`` (gancli's step at that
``--precision``, with channels_last conv models unless ``-contiguous``; the loops are
named ``gancli``, ``gancli_contiguous``, ``gancli_bf16``, ...). ``gancli`` (fp32,
channels_last: the defaults of ``gan train``) is always measured; a precision the
device does not support is listed under ``skipped_variants``. ``--batch-sizes 64,256``
measures each configuration at those batch sizes instead of its own.

On CUDA each loop also gets the mean GPU utilisation over its timed windows
(``gpu_util_pct``: NVML's ``utilization.gpu``, the percentage of time in which at
least one kernel ran, sampled every 0.1 s through ``torch.cuda.utilization``, the
NVML library itself, or ``nvidia-smi``), and the machine record gets the GPU's name,
memory, compute capability and multiprocessor count.

On the CPU each loop is then profiled for a few steps (``torch.profiler``, ops' self time):
the shares of GEMMs and convolutions, optimizer, random numbers and the rest, the FLOP/s of the
matmul ops alone, and the ``ceiling_img_per_sec`` the loop would reach if nothing but those ops
took time: the bound a faster step of this model, batch and FLOP count is under on this machine.

Same model, batch size, loss and optimizer settings on both sides. Reported per
configuration: images/s of each (real images consumed), their ratio, matmul
FLOPs per image (``torch.utils.flop_counter.FlopCounterMode`` on one step of
each, forward and backward), the achieved FLOP/s as a fraction of the measured
matmul peak, and peak memory. No pass/fail: the targets of the issue are
recorded beside the figures.

The matmul peak is the best of timed float32 ``torch.mm`` of n x n matrices
(n = 1024, 2048, 4096 on the CPU, 4096, 8192 on CUDA; FLOPs = 2 n^3; a size whose one
product would take longer than the time per size at the rate measured so far is skipped, e.g.
bf16 on an AVX2 CPU, which has no native kernel), with the threads
torch uses by default (also measured in bfloat16, the peak the ``gancli_bf16`` and
``gancli_fp16`` loops are compared with, and on CUDA in TF32, for information: gancli
leaves TF32 matmuls off, PyTorch's default). ``--matmul-seconds`` sets the time per
size and dtype.
The JSON goes to stdout and, with ``--out``, to a file (rewritten after each
configuration with ``"complete": false``, so a run cut short keeps what it measured).
MNIST is read from ``--data-dir`` (default ``$GANCLI_DATA_DIR``, else ``../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

#: (arch, pixels, batch size): pytorch/examples dcgan uses batch 64; the classic MLP GAN 100.
CONFIGS = [("mlp", 28, 100), ("mlp", 64, 100), ("dcgan", 28, 64), ("dcgan", 64, 64)]
TARGETS = {
    # issue #25 item 5 (was 1.15 and 0.55 in issue #9)
    "cpu_dcgan64_speedup_vs_reference": 1.6,
    "cpu_mlp28_fraction_of_matmul_peak": 0.6,
    "cuda_dcgan_speedup_vs_reference": 5.0,
    # issue #16: gancli's step at --precision bf16 with channels_last (the loop gancli_bf16) on the
    # MNIST DCGAN (28 px, batch 64) against the reference loop on the same GPU
    "cuda_dcgan28_bf16_channels_last_speedup_vs_reference": 5.0,
}
#: --variants: name -> (loop name, --precision, channels_last)
VARIANTS = {
    "fp32": ("gancli", "fp32", True),
    "fp32-contiguous": ("gancli_contiguous", "fp32", False),
    "bf16": ("gancli_bf16", "bf16", True),
    "bf16-contiguous": ("gancli_bf16_contiguous", "bf16", False),
    "fp16": ("gancli_fp16", "fp16", True),
    "fp16-contiguous": ("gancli_fp16_contiguous", "fp16", False),
}
NZ = 100


def _default_data_dir() -> str:
    return os.environ.get("GANCLI_DATA_DIR") or str(Path(__file__).resolve().parents[1].parent / "shared" / "data")


# -- the matmul peak ------------------------------------------------------------------
def matmul_peak(seconds: float, device_name: str = "cpu") -> dict:
    import torch

    device = torch.device(device_name)
    sizes = (4096, 8192) if device.type == "cuda" else (1024, 2048, 4096)
    out = {"method": f"best of timed torch.mm(n x n, n x n), n in {sizes} (a size whose one product would take "
                     "longer than the time per size at the rate measured so far is skipped), FLOPs = 2 n^3",
           "device": device_name, "threads": torch.get_num_threads()}
    kinds = [(torch.float32, "peak_gflops", False), (torch.bfloat16, "bf16_peak_gflops", False)]
    if device.type == "cuda":
        kinds.append((torch.float32, "tf32_peak_gflops", True))  # for information: gancli leaves TF32 off
    tf32_before = torch.backends.cuda.matmul.allow_tf32
    try:
        for dtype, key, tf32 in kinds:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            best = 0.0
            for n in sizes:
                if best and 2 * n**3 / (best * 1e9) > seconds:
                    # no native kernel (bf16 on an AVX2 CPU: ~1 GFLOP/s, 2 minutes per 4096 x 4096 product)
                    out[f"{key}_note"] = (f"n = {n} skipped: one product would take over {seconds:g} s "
                                          f"at the rate of the smaller size")
                    break
                a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
                torch.mm(a, b)
                _sync(device)
                reps, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    torch.mm(a, b)
                    reps += 1
                    if reps % 8 == 0:
                        _sync(device)
                _sync(device)
                best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9)
                del a, b
            out[key] = round(best, 1)
            out[key.replace("gflops", "tflops")] = round(best / 1000, 2)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32_before
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


# -- GPU utilisation ----------------------------------------------------------------------
class GpuUtilization:
    """NVML's ``utilization.gpu`` of ``device`` (the percentage of the last sample
    period in which at least one kernel ran) sampled every ``period`` seconds in a
    thread, with the time of each sample, through ``torch.cuda.utilization`` (needs
    pynvml), else the NVML library of the driver (ctypes), else ``nvidia-smi``.
    ``method`` is None when none of them works (then no figures)."""

    def __init__(self, device, period: float = 0.1):
        import threading

        import torch

        self.samples: list[tuple[float, float]] = []
        self.method: str | None = None
        self._stop = threading.Event()
        self._read = None
        index = device.index if device.index is not None else torch.cuda.current_device()
        try:
            torch.cuda.utilization(index)
            self._read, self.method = (lambda: torch.cuda.utilization(index)), "torch.cuda.utilization (NVML)"
        except Exception:  # pynvml missing, or no NVML
            self._read, self.method = self._nvml_ctypes(index) or self._nvidia_smi(index) or (None, None)
        if self._read is None:
            return
        self.period = period
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    @staticmethod
    def _uuid(index: int) -> str | None:
        import torch

        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        return f"GPU-{uuid}" if uuid is not None else None

    def _nvml_ctypes(self, index: int):
        import ctypes

        try:
            nvml = ctypes.CDLL("libnvidia-ml.so.1")
            if nvml.nvmlInit_v2() != 0:
                return None
            handle = ctypes.c_void_p()
            uuid = self._uuid(index)
            if uuid is None or nvml.nvmlDeviceGetHandleByUUID(uuid.encode(), ctypes.byref(handle)) != 0:
                if nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
                    return None

            class Rates(ctypes.Structure):
                _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]

            def read() -> float:
                rates = Rates()
                if nvml.nvmlDeviceGetUtilizationRates(handle, ctypes.byref(rates)) != 0:
                    raise OSError("nvmlDeviceGetUtilizationRates failed")
                return float(rates.gpu)

            read()
            return read, "NVML nvmlDeviceGetUtilizationRates (libnvidia-ml.so.1 via ctypes)"
        except (OSError, AttributeError):
            return None

    def _nvidia_smi(self, index: int):
        import shutil

        if shutil.which("nvidia-smi") is None:
            return None
        ident = self._uuid(index) or str(index)
        cmd = ["nvidia-smi", "-i", ident, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]

        def read() -> float:
            return float(subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.split()[0])

        try:
            read()
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None
        return read, "nvidia-smi --query-gpu=utilization.gpu"

    def _poll(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.samples.append((time.perf_counter(), float(self._read())))
            except Exception:  # a failed sample is left out
                pass

    def mean(self, windows: list[tuple[float, float]]) -> float | None:
        """Mean of the samples taken inside ``windows`` (perf_counter intervals)."""
        vals = [u for t, u in self.samples if any(a <= t <= b for a, b in windows)]
        return round(sum(vals) / len(vals), 1) if vals else None

    def close(self) -> None:
        self._stop.set()


# -- the two loops ----------------------------------------------------------------------
def _models(arch: str, px: int, device):
    from gancli.config import ModelConfig
    from gancli.models import build_discriminator, build_generator

    cfg = ModelConfig(arch=arch, nz=NZ, img_channels=1, img_resolution=px)
    return build_generator(cfg).to(device), build_discriminator(cfg).to(device)


class Reference:
    """pytorch/examples dcgan/main.py's loop on gancli's G and D."""

    def __init__(self, arch: str, px: int, batch: int, device, data_dir: str, limit: int):
        import torch
        import torchvision.transforms as T
        from torch import nn, optim
        from torchvision.datasets import MNIST

        self.torch, self.device = torch, device
        torch.manual_seed(0)
        self.G, self.D = _models(arch, px, device)
        tf = T.Compose([T.Resize(px), T.ToTensor(), T.Normalize((0.5,), (0.5,))])
        dataset = MNIST(data_dir, train=True, download=False, transform=tf)
        if limit:
            dataset = torch.utils.data.Subset(dataset, range(limit))
        workers = 2 if device.type == "cpu" else min(8, os.cpu_count() or 2)
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                                                  drop_last=True, pin_memory=device.type == "cuda")
        self.criterion = nn.BCEWithLogitsLoss()
        self.opt_d = optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.it = None
        self.batch = batch

    def start(self) -> None:
        self.it = iter(self._batches())

    def stop(self) -> None:
        self.it = None  # its workers exit

    def _batches(self):
        while True:
            yield from self.loader

    def step(self) -> int:
        torch, device = self.torch, self.device
        real, _ = next(self.it)
        real = real.to(device, non_blocking=True)
        b = real.size(0)
        self.D.zero_grad()
        label = torch.full((b,), 1.0, device=device)
        err_real = self.criterion(self.D(real), label)
        err_real.backward()
        fake = self.G(torch.randn(b, NZ, device=device))
        label.fill_(0.0)
        err_fake = self.criterion(self.D(fake.detach()), label)
        err_fake.backward()
        self.opt_d.step()
        self.G.zero_grad()
        label.fill_(1.0)
        err_g = self.criterion(self.D(fake), label)
        err_g.backward()
        self.opt_g.step()
        self.losses = ((err_real + err_fake).item(), err_g.item())  # logged every step, as in the example
        return b


class Gancli:
    """gancli's ``Trainer.train_step`` on preloaded data, default options."""

    def __init__(self, arch: str, px: int, batch: int, device, data_dir: str, limit: int, tmp: Path,
                 precision: str = "fp32", channels_last: bool = True):
        from gancli.config import DataConfig, ModelConfig, RunConfig, TrainConfig
        from gancli.data import load_split
        from gancli.engine.launch import build_trainer
        from gancli.runs import RunStore

        data_cfg = DataConfig(dataset="mnist", limit=limit, download=False, image_size=px)
        cfg = RunConfig(data=data_cfg, model=ModelConfig(arch=arch, nz=NZ, img_channels=1, img_resolution=px),
                        train=TrainConfig(batch_size=batch, steps=10**9, device=str(device), precision=precision,
                                          channels_last=channels_last))
        data = load_split(data_cfg, data_dir)
        self.trainer = build_trainer(cfg, RunStore(tmp).create(), device, data)
        self.step_index = 0
        self.batch = batch

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def step(self) -> int:
        self.trainer.train_step(self.step_index)
        self.step_index += 1
        return self.batch


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _flops_per_image(loop) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        n = loop.step()
    return counter.get_total_flops() / n


#: torch.profiler op names whose self time is GEMM / convolution work (``_convolution``'s own time is
#: the transposed convolutions, which it runs without a child op on the CPU).
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution",
              "aten::convolution_backward", "aten::_convolution", "aten::mkldnn_linear"}
RNG_OPS = {"aten::uniform_", "aten::normal_", "aten::bernoulli_", "aten::randint", "aten::random_"}


def breakdown(loop, flops_per_image: float, steps: int) -> dict:
    """Where one loop's step time goes, from ``torch.profiler`` (CPU ops' self time over
    ``steps`` steps): GEMMs and convolutions (:data:`MATMUL_OPS`), the optimizers, the random
    number generation (dropout masks, z), everything else. ``matmul_ops_gflops`` is the step's
    matmul FLOPs over the time of the matmul ops alone; ``ceiling_img_per_sec`` the rate the loop
    would reach if nothing but those ops took time (an upper bound for this model, batch and
    FLOP count on this machine; as a fraction of the matmul peak it equals that of
    ``matmul_ops_gflops``)."""
    from torch.profiler import ProfilerActivity, profile

    images = 0
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            images += loop.step()
    wall = time.perf_counter() - t0
    shares = {"matmul_conv": 0.0, "optimizer": 0.0, "rng": 0.0, "other": 0.0}
    for event in prof.key_averages():
        us = event.self_cpu_time_total
        name = event.key
        if name in MATMUL_OPS:
            shares["matmul_conv"] += us
        elif "adam" in name.lower() or name.startswith("Optimizer.") or "_foreach_" in name:
            shares["optimizer"] += us
        elif name in RNG_OPS:
            shares["rng"] += us
        else:
            shares["other"] += us
    total = sum(shares.values())
    matmul_s = shares["matmul_conv"] / 1e6
    return {"steps": steps, "profiled_seconds": round(wall, 3),
            "self_time_shares": {k: round(v / total, 3) for k, v in shares.items()},
            "matmul_ops_gflops": round(flops_per_image * images / matmul_s / 1e9, 1),
            "ceiling_img_per_sec": round(images / matmul_s, 1)}


def measure(arch: str, px: int, batch: int, device_name: str, seconds: float, rounds: int, data_dir: str,
            limit: int, tmp: str, extra_precision: str, variants: list[str] | None = None) -> dict:
    """The loops in this process, ``rounds`` alternating rounds of ``seconds / rounds`` each.

    ``variants`` (names of :data:`VARIANTS`): gancli's loops besides ``gancli``; None =
    ``gancli_<extra_precision>`` unless ``extra_precision`` is ``none``."""
    import torch

    from gancli.engine.launch import check_precision
    from gancli.errors import UsageError

    device = torch.device(device_name)
    if variants is None:
        variants = ["fp32"] + ([extra_precision] if extra_precision != "none" else [])
    loops = {"reference": Reference(arch, px, batch, device, data_dir, limit),
             "gancli": Gancli(arch, px, batch, device, data_dir, limit, Path(tmp))}
    skipped: dict[str, str] = {}
    for variant in variants:
        name, precision, channels_last = VARIANTS[variant]
        if name in loops:
            continue
        try:
            check_precision(precision, device)
        except UsageError as e:
            skipped[variant] = str(e)
            continue
        loops[name] = Gancli(arch, px, batch, device, data_dir, limit, Path(tmp), precision=precision,
                             channels_last=channels_last)
    util = GpuUtilization(device) if device.type == "cuda" else None
    warmup = 3 if device.type == "cpu" else 20
    images = dict.fromkeys(loops, 0)
    elapsed = dict.fromkeys(loops, 0.0)
    windows: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
    peak_mem: dict[str, int] = {}
    flops: dict[str, float] = {}
    for r in range(rounds):
        for name, loop in loops.items():
            loop.start()
            for _ in range(warmup):
                loop.step()
            if r == 0:
                flops[name] = _flops_per_image(loop)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _sync(device)
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / rounds:
                images[name] += loop.step()
            _sync(device)
            t1 = time.perf_counter()
            elapsed[name] += t1 - t0
            windows[name].append((t0, t1))
            if device.type == "cuda":
                peak_mem[name] = max(peak_mem.get(name, 0), torch.cuda.max_memory_allocated(device))
            loop.stop()
    if util is not None:
        util.close()
    profiles: dict[str, dict] = {}
    if device.type == "cpu":  # where the time goes (on CUDA the host's view of it says little)
        for name in ("reference", "gancli"):
            loops[name].start()
            profiles[name] = breakdown(loops[name], flops[name], steps=10 if arch == "dcgan" and px == 64 else 50)
            loops[name].stop()
    out: dict = {"arch": arch, "pixels": px, "batch_size": batch, "device": device_name,
                 "torch_threads": torch.get_num_threads()}
    for name in loops:
        ips = images[name] / elapsed[name]
        out[name] = {"img_per_sec": round(ips, 1), "seconds": round(elapsed[name], 1), "images": images[name],
                     "matmul_mflop_per_img": round(flops[name] / 1e6, 3),
                     "achieved_gflops": round(flops[name] * ips / 1e9, 2)}
        if name in profiles:
            out[name]["profile"] = profiles[name]
        if name in peak_mem:
            out[name]["peak_cuda_mem_mb"] = round(peak_mem[name] / 2**20, 1)
        if util is not None and util.method is not None:
            out[name]["gpu_util_pct"] = util.mean(windows[name])
    if util is not None:
        out["gpu_util_method"] = (f"{util.method}, every {util.period} s during each loop's timed windows"
                                  if util.method else "not available (no pynvml, NVML library or nvidia-smi)")
    if skipped:
        out["skipped_variants"] = skipped
    out["speedup"] = round(out["gancli"]["img_per_sec"] / out["reference"]["img_per_sec"], 3)
    for name in loops:
        if name.startswith("gancli_"):
            out[f"speedup_{name}"] = round(out[name]["img_per_sec"] / out["reference"]["img_per_sec"], 3)
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["peak_rss_mb_process"] = round(usage / 1024, 1)  # both loops in one process: Linux gives KiB
    out["peak_rss_mb_loader_workers"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return out


# -- driver ---------------------------------------------------------------------------
def _gpus() -> list[dict]:
    """Name, memory, compute capability and multiprocessor count of each visible GPU,
    and the driver (nvidia-smi) where available."""
    import torch

    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"index": i, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                     "compute_capability": f"{props.major}.{props.minor}",
                     "multiprocessors": props.multi_processor_count})
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if smi.returncode == 0 and smi.stdout.strip():
            for g in gpus:
                g["driver"] = smi.stdout.split()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return gpus


def _machine() -> dict:
    import torch
    import torchvision

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpus"] = _gpus()
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _variant_list(text: str) -> list[str]:
    values = [x.strip() for x in text.split(",") if x.strip()]
    bad = [v for v in values if v not in VARIANTS]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {', '.join(bad) or text!r}; valid: {', '.join(VARIANTS)}")
    return values


def _summary(results: list[dict]) -> dict:
    """The headline ratios: the existing keys (at each configuration's own batch size) and
    ``<device>_<arch><px>_b<batch>_speedup[_<loop>]_vs_reference`` for every result."""
    own_batch = {(arch, px): b for arch, px, b in CONFIGS}
    by = {(r["device"], r["arch"], r["pixels"]): r for r in results
          if r["batch_size"] == own_batch.get((r["arch"], r["pixels"]))}
    summary = {}
    if ("cpu", "dcgan", 64) in by:
        summary["cpu_dcgan64_speedup_vs_reference"] = by["cpu", "dcgan", 64]["speedup"]
    if ("cpu", "mlp", 28) in by:
        summary["cpu_mlp28_fraction_of_matmul_peak"] = by["cpu", "mlp", 28]["gancli"]["fraction_of_matmul_peak"]
    # the bounds the profile sets: the rate if the matmul / convolution ops were all the step did
    if "profile" in by.get(("cpu", "dcgan", 64), {}).get("gancli", {}):
        summary["cpu_dcgan64_ceiling_speedup_vs_reference"] = by["cpu", "dcgan", 64]["gancli"]["profile"][
            "ceiling_speedup_vs_reference"]
    if "profile" in by.get(("cpu", "mlp", 28), {}).get("gancli", {}):
        prof = by["cpu", "mlp", 28]["gancli"]["profile"]
        summary["cpu_mlp28_ceiling_fraction_of_matmul_peak"] = prof["matmul_ops_fraction_of_peak"]
    for px in (28, 64):
        if ("cuda", "dcgan", px) in by:
            summary[f"cuda_dcgan{px}_speedup_vs_reference"] = by["cuda", "dcgan", px]["speedup"]
    if ("cuda", "dcgan", 28) in by and "speedup_gancli_bf16" in by["cuda", "dcgan", 28]:
        summary["cuda_dcgan28_bf16_channels_last_speedup_vs_reference"] = by["cuda", "dcgan", 28]["speedup_gancli_bf16"]
    for r in results:
        key = f"{r['device']}_{r['arch']}{r['pixels']}_b{r['batch_size']}"
        summary[f"{key}_speedup_vs_reference"] = r["speedup"]
        for name in r:
            if name.startswith("speedup_gancli_"):
                summary[f"{key}_{name}_vs_reference"] = r[name]
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=None,
                    help="measured seconds per loop and configuration [default: 30, --quick: 3]")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds of the loops [default: 3, --quick: 1]")
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="all = CPU, and CUDA if present")
    ap.add_argument("--configs", default="", help="comma-separated subset, e.g. dcgan64,mlp28")
    ap.add_argument("--batch-sizes", type=_int_list, default=None, metavar="B[,B...]",
                    help="measure each configuration at these batch sizes [default: its own: mlp 100, dcgan 64]")
    ap.add_argument("--data-dir", default=_default_data_dir())
    ap.add_argument("--limit", type=int, default=0, help="use the first N MNIST images (0 = all 60000)")
    ap.add_argument("--extra-precision", choices=["bf16", "fp16", "none"], default="bf16",
                    help="also measure gancli's step at this --precision, where supported")
    ap.add_argument("--variants", type=_variant_list, default=None, metavar="V[,V...]",
                    help=f"gancli loops to measure besides fp32 (replaces --extra-precision): {', '.join(VARIANTS)}")
    ap.add_argument("--matmul-seconds", type=float, default=None,
                    help="seconds per size and dtype of the matmul peak [default: 4, --quick: 1]")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 3 s per loop, 1 round, 2048 images")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:  # one configuration, in a fresh process
        print(json.dumps(measure(**json.loads(args.child))))
        return 0
    if args.quick:
        args.limit = args.limit or 2048
    args.seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 30.0)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    matmul_seconds = args.matmul_seconds if args.matmul_seconds is not None else (1.0 if args.quick else 4.0)
    if not (Path(args.data_dir) / "MNIST" / "raw").is_dir():
        print(f"error: MNIST not found in {args.data_dir}/MNIST/raw; pass --data-dir", file=sys.stderr)
        return 2

    import tempfile

    import torch

    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else (
        ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device here", file=sys.stderr)
        return 2
    wanted = {c.strip() for c in args.configs.split(",") if c.strip()}
    result = {
        "benchmark": "gancli training step vs the classic reference loop (pytorch/examples dcgan style)",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": {"seconds_per_loop": args.seconds, "rounds": args.rounds, "limit": args.limit,
                     "quick": args.quick, "batch_sizes": args.batch_sizes, "variants": args.variants,
                     "extra_precision": args.extra_precision if args.variants is None else None,
                     "matmul_seconds": matmul_seconds, "command": [sys.executable, *sys.argv]},
        "matmul_peak": {d: matmul_peak(matmul_seconds, d) for d in devices},
        "flop_count": ("matmul FLOPs (mm/addmm/bmm/convolution, forward and backward) counted by "
                       "torch.utils.flop_counter.FlopCounterMode over one training step, per real image. For the "
                       "MLP GAN (G 100-256-512-1024-784, D 784-1024-512-256-1) that is about 3x the forward "
                       "FLOPs of each pass that needs weight gradients, and 2x for one that needs only the input "
                       "gradient (D frozen in gancli's G update) or none"),
        "targets": TARGETS,
        "results": [],
    }
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            for arch, px, own_batch in CONFIGS:
                if wanted and f"{arch}{px}" not in wanted:
                    continue
                for batch in args.batch_sizes or [own_batch]:
                    spec = dict(arch=arch, px=px, batch=batch, device_name=device, seconds=args.seconds,
                                rounds=args.rounds, data_dir=args.data_dir, limit=args.limit, tmp=tmp,
                                extra_precision=args.extra_precision, variants=args.variants)
                    print(f"measuring {arch} {px}px batch {batch} on {device} ...", file=sys.stderr, flush=True)
                    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                                          capture_output=True, text=True)
                    if proc.returncode:
                        print(proc.stderr, file=sys.stderr)
                        return proc.returncode
                    res = json.loads(proc.stdout.strip().splitlines()[-1])
                    peaks = result["matmul_peak"][device]
                    for name, loop in res.items():
                        if name == "reference" or name.startswith("gancli"):
                            half = "bf16" in name or "fp16" in name
                            peak = peaks["bf16_peak_gflops"] if half else peaks["peak_gflops"]
                            loop["fraction_of_matmul_peak"] = round(loop["achieved_gflops"] / peak, 3)
                            if "profile" in loop:
                                prof = loop["profile"]
                                prof["matmul_ops_fraction_of_peak"] = round(prof["matmul_ops_gflops"] / peak, 3)
                    if "profile" in res["gancli"]:
                        res["gancli"]["profile"]["ceiling_speedup_vs_reference"] = round(
                            res["gancli"]["profile"]["ceiling_img_per_sec"] / res["reference"]["img_per_sec"], 3)
                    others = ", ".join(f"{n} x{res[f'speedup_{n}']}" for n in res if f"speedup_{n}" in res)
                    print(f"  gancli {res['gancli']['img_per_sec']} img/s, reference {res['reference']['img_per_sec']} "
                          f"img/s: x{res['speedup']}" + (f"; {others}" if others else ""), file=sys.stderr, flush=True)
                    result["results"].append(res)
                    if args.out:  # what is measured so far survives a timeout
                        _write(args.out, {**result, "complete": False, "summary": _summary(result["results"])})
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["complete"] = True
    result["summary"] = _summary(result["results"])
    print(json.dumps(result, indent=2))
    if args.out:
        _write(args.out, result)
    return 0


def _write(path: Path, doc: dict) -> None:
    """Write ``doc`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
