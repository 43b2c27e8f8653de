"""Training throughput of gancli's step against a reference loop written the classic way.

    python benchmarks/throughput.py [--quick] [--seconds S] [--device cpu|cuda|all] [--out FILE]

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

Same model, batch size, loss and optimizer settings on both sides. Reported per
configuration: images/s of each (real images consumed), their ratio, matmul
FLOPs per image (``torch.utils.flop_counter.FlopCounterMode`` on one step of
each, forward and backward), the achieved FLOP/s as a fraction of the measured
matmul peak, and peak memory. No pass/fail: the targets of the issue are
recorded beside the figures.

The matmul peak is the best of timed float32 ``torch.mm`` of n x n matrices
(n = 2048, 4096; FLOPs = 2 n^3), with the threads torch uses by default (also
measured in bfloat16, the peak the ``gancli_bf16`` loop is compared with).
The JSON goes to stdout and, with ``--out``, to a file. MNIST is read from
``--data-dir`` (default ``$GANCLI_DATA_DIR``, else ``../shared/data``).
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
    "cpu_dcgan64_speedup_vs_reference": 1.15,
    "cpu_mlp28_fraction_of_matmul_peak": 0.55,
    "cuda_dcgan_speedup_vs_reference": 5.0,
}
NZ = 100


def _default_data_dir() -> str:
    return os.environ.get("GANCLI_DATA_DIR") or str(Path(__file__).resolve().parents[1].parent / "shared" / "data")


# -- the matmul peak ------------------------------------------------------------------
def matmul_peak(seconds: float, device_name: str = "cpu") -> dict:
    import torch

    device = torch.device(device_name)
    out = {"method": "best of timed torch.mm(n x n, n x n), n = 2048 and 4096, FLOPs = 2 n^3",
           "device": device_name, "threads": torch.get_num_threads()}
    for dtype, key in ((torch.float32, "peak_gflops"), (torch.bfloat16, "bf16_peak_gflops")):
        best = 0.0
        for n in (2048, 4096):
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
        out[key] = round(best, 1)
    return out


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
                 precision: str = "fp32"):
        from gancli.config import DataConfig, ModelConfig, RunConfig, TrainConfig
        from gancli.data import load_split
        from gancli.engine.trainer import build_trainer
        from gancli.runs import RunStore

        data_cfg = DataConfig(dataset="mnist", limit=limit, download=False, image_size=px)
        cfg = RunConfig(data=data_cfg, model=ModelConfig(arch=arch, nz=NZ, img_channels=1, img_resolution=px),
                        train=TrainConfig(batch_size=batch, steps=10**9, device=str(device), precision=precision))
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


def measure(arch: str, px: int, batch: int, device_name: str, seconds: float, rounds: int, data_dir: str,
            limit: int, tmp: str, extra_precision: str) -> dict:
    """The loops in this process, ``rounds`` alternating rounds of ``seconds / rounds`` each."""
    import torch

    from gancli.engine.launch import check_precision
    from gancli.errors import UsageError

    device = torch.device(device_name)
    loops = {"reference": Reference(arch, px, batch, device, data_dir, limit),
             "gancli": Gancli(arch, px, batch, device, data_dir, limit, Path(tmp))}
    if extra_precision != "none":
        try:
            check_precision(extra_precision, device)
            loops[f"gancli_{extra_precision}"] = Gancli(arch, px, batch, device, data_dir, limit, Path(tmp),
                                                        precision=extra_precision)
        except UsageError:
            pass
    warmup = 3 if device.type == "cpu" else 20
    images = dict.fromkeys(loops, 0)
    elapsed = dict.fromkeys(loops, 0.0)
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
            elapsed[name] += time.perf_counter() - t0
            if device.type == "cuda":
                peak_mem[name] = max(peak_mem.get(name, 0), torch.cuda.max_memory_allocated(device))
            loop.stop()
    out: dict = {"arch": arch, "pixels": px, "batch_size": batch, "device": device_name,
                 "torch_threads": torch.get_num_threads()}
    for name in loops:
        ips = images[name] / elapsed[name]
        out[name] = {"img_per_sec": round(ips, 1), "seconds": round(elapsed[name], 1), "images": images[name],
                     "matmul_mflop_per_img": round(flops[name] / 1e6, 3),
                     "achieved_gflops": round(flops[name] * ips / 1e9, 2)}
        if name in peak_mem:
            out[name]["peak_cuda_mem_mb"] = round(peak_mem[name] / 2**20, 1)
    out["speedup"] = round(out["gancli"]["img_per_sec"] / out["reference"]["img_per_sec"], 3)
    for name in loops:
        if name.startswith("gancli_"):
            out[f"speedup_{name}"] = round(out[name]["img_per_sec"] / out["reference"]["img_per_sec"], 3)
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["peak_rss_mb_process"] = round(usage / 1024, 1)  # both loops in one process: Linux gives KiB
    out["peak_rss_mb_loader_workers"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return out


# -- driver ---------------------------------------------------------------------------
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
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds per loop and configuration")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the two loops")
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="all = CPU, and CUDA if present")
    ap.add_argument("--configs", default="", help="comma-separated subset, e.g. dcgan64,mlp28")
    ap.add_argument("--data-dir", default=_default_data_dir())
    ap.add_argument("--limit", type=int, default=0, help="use the first N MNIST images (0 = all 60000)")
    ap.add_argument("--extra-precision", choices=["bf16", "fp16", "none"], default="bf16",
                    help="also measure gancli's step at this --precision, where supported")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 3 s per loop, 1 round, 2048 images")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:  # one configuration, in a fresh process
        print(json.dumps(measure(**json.loads(args.child))))
        return 0
    if args.quick:
        args.seconds, args.rounds, args.limit = 3.0, 1, args.limit or 2048
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
                     "quick": args.quick},
        "matmul_peak": {d: matmul_peak(1.0 if args.quick else 4.0, d) for d in devices},
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
            for arch, px, batch in CONFIGS:
                if wanted and f"{arch}{px}" not in wanted:
                    continue
                spec = dict(arch=arch, px=px, batch=batch, device_name=device, seconds=args.seconds,
                            rounds=args.rounds, data_dir=args.data_dir, limit=args.limit, tmp=tmp,
                            extra_precision=args.extra_precision)
                print(f"measuring {arch} {px}px batch {batch} on {device} ...", file=sys.stderr, flush=True)
                proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                                      capture_output=True, text=True)
                if proc.returncode:
                    print(proc.stderr, file=sys.stderr)
                    return proc.returncode
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                peaks = result["matmul_peak"][device]
                for name in ("reference", "gancli", "gancli_bf16", "gancli_fp16"):
                    if name in res:
                        peak = peaks["bf16_peak_gflops"] if name == "gancli_bf16" else peaks["peak_gflops"]
                        res[name]["fraction_of_matmul_peak"] = round(res[name]["achieved_gflops"] / peak, 3)
                print(f"  gancli {res['gancli']['img_per_sec']} img/s, reference {res['reference']['img_per_sec']} "
                      f"img/s: x{res['speedup']}", file=sys.stderr, flush=True)
                result["results"].append(res)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    by = {(r["device"], r["arch"], r["pixels"]): r for r in result["results"]}
    summary = {}
    if ("cpu", "dcgan", 64) in by:
        summary["cpu_dcgan64_speedup_vs_reference"] = by["cpu", "dcgan", 64]["speedup"]
    if ("cpu", "mlp", 28) in by:
        summary["cpu_mlp28_fraction_of_matmul_peak"] = by["cpu", "mlp", 28]["gancli"]["fraction_of_matmul_peak"]
    for px in (28, 64):
        if ("cuda", "dcgan", px) in by:
            summary[f"cuda_dcgan{px}_speedup_vs_reference"] = by["cuda", "dcgan", px]["speedup"]
    result["summary"] = summary
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
