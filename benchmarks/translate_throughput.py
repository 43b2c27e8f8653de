"""Training throughput of the image-to-image update steps: a pix2pix step and a CycleGAN step.

    python benchmarks/translate_throughput.py [--quick] [--device cpu|cuda|all] [--precision fp32|bf16|fp16]
                                              [--sizes 64,256] [--kinds pix2pix,cyclegan] [--repeats 3]
                                              [--threads N] [--out FILE]

Each configuration runs the steps of :mod:`gancli.translate.objectives` at the papers' settings
on random images in [-1, 1] (3 channels, square), already on the device (no data loading):

* **pix2pix** (Isola et al. 2017, arXiv 1611.07004): :class:`~gancli.translate.objectives.Pix2PixStep`,
  U-Net generator (ngf 64, depth from the size: 6 at 64 px, 8 at 256 px; dropout on) and
  PatchGAN (ndf 64; 2 layers at 64 px, the 70x70 3-layer one at 256 px), batch norm, BCE +
  100 x L1, Adam 2e-4 (0.5, 0.999); batch 16 at 64 px and 4 at 256 px.
* **cyclegan** (Zhu et al. 2017, arXiv 1703.10593): :class:`~gancli.translate.cyclegan.CycleGANStep`,
  two ResNet generators (ngf 64; 6 blocks at 64 px, 9 at 256 px) and two PatchGANs, instance
  norm, LSGAN, cycle 10, identity 0.5, two 50-image pools; batch 1, as the reference.

Per configuration: ``warmup`` steps, then ``repeats`` timed runs of ``steps`` steps each (the
device synchronised around each), img/s of each run (images of one domain per step: the batch)
and their **median**. Defaults on the CPU: 64 px, 2 warm-up + 3 x 3 steps; 256 px, 1 warm-up +
3 x 1 step (a CycleGAN step at 256 px is ~1.9 TFLOP, ~2/3 of the whole run's ~12 TFLOP): about
2.5 minutes on 2 cores at the ~80 GFLOP/s these convolutions reach there. On CUDA: 10 warm-up
+ 3 x 20 steps at 64 px, 5 + 3 x 10 at 256 px. ``--quick`` (a smoke run of a few seconds, for
the tests): 64 px only, networks of width 8 instead of 64, 1 warm-up + 1 x 1 step; its figures
measure nothing comparable.

Also recorded: the FLOPs of one step per image (convolutions and matmuls, forward and
backward, counted by ``torch.utils.flop_counter.FlopCounterMode`` on the ``meta`` device, so
nothing is computed), the achieved GFLOP/s, parameter counts, the peak CUDA memory, the
machine (as ``benchmarks/throughput.py``: CPU, cores, GPU, torch version, load averages) and
the torch threads. No pass/fail.

The JSON goes to stdout and to ``--out``, by default
``benchmarks/results/translate-throughput-<device>-<cpu signature>.json``: ``<device>`` is
``cpu``, or ``cuda-<gpu>`` when CUDA was measured (then the CPU too with ``--device all``);
the CPU signature is ``<cores>core-<cpu model>-<vector ISA>-torch<version>`` (e.g.
``cpu-2core-epyc-avx2-torch2.14.1``), and a precision other than fp32 is appended. ``--quick``
writes only where ``--out`` says.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("pix2pix", "cyclegan")
#: (kind, pixels) -> batch size: pix2pix's batch 16 / 4, CycleGAN's batch 1
BATCH = {("pix2pix", 64): 16, ("pix2pix", 256): 4, ("cyclegan", 64): 1, ("cyclegan", 256): 1}
#: device type -> pixels -> (warm-up steps, timed steps per repeat)
SCHEDULE = {"cpu": {64: (2, 3), 256: (1, 1)}, "cuda": {64: (10, 20), 256: (5, 10)}}
#: --quick: (warm-up steps, timed steps), and the networks' width (ngf = ndf) instead of 64
QUICK = (1, 1)
QUICK_WIDTH = 8
WIDTH = 64
CHANNELS = 3


def _machine() -> dict:
    """The machine record of benchmarks/throughput.py (loaded from beside this file)."""
    spec = importlib.util.spec_from_file_location("_gancli_bench_throughput", HERE / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._machine()


def _slug(text: str, drop: tuple[str, ...] = ()) -> str:
    words = re.sub(r"\((r|tm)\)|@.*$|\bcpu\b|\bprocessor\b|\b\d+-core\b", " ", text.lower())
    words = [w for w in re.split(r"[^a-z0-9+]+", words) if w and w not in drop]
    return "-".join(words[:2]).replace("+", "plus") or "unknown"


def cpu_signature(machine: dict, flags: set[str] | None) -> str:
    """``<cores>core-<cpu model>-<vector ISA>-torch<version>``, e.g. ``2core-epyc-avx2-torch2.14.1``
    (the model's first two words without vendor names; ISA ``avx512`` / ``avx2`` plus ``amx``)."""
    model = _slug(machine.get("cpu", ""), drop=("intel", "amd", "genuine", "authentic"))
    flags = flags or set()
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "neon" if "asimd" in flags else ""
    if "amx_bf16" in flags or "amx_tile" in flags:
        isa = f"{isa}-amx" if isa else "amx"
    parts = [f"{machine.get('cpu_count', 0)}core", model, isa, f"torch{machine.get('torch', '').split('+')[0]}"]
    return "-".join(p for p in parts if p)


def result_name(machine: dict, devices: list[str], flags: set[str] | None, precision: str = "fp32") -> str:
    """The default file name: ``translate-throughput-<device>-<cpu signature>[-<precision>].json``."""
    device = f"cuda-{_slug(machine.get('gpu', ''), drop=('nvidia', 'geforce', 'tesla'))}" if "cuda" in devices else "cpu"
    suffix = "" if precision == "fp32" else f"-{precision}"
    return f"translate-throughput-{device}-{cpu_signature(machine, flags)}{suffix}.json"


def _cpu_flags() -> set[str] | None:
    from gancli.engine.precision import cpu_flags

    return cpu_flags()


# -- the steps --------------------------------------------------------------------------------
def build_step(kind: str, px: int, device, precision: str = "fp32", width: int = WIDTH):
    """The update step of ``kind`` at ``px`` pixels on ``device`` (fresh weights, seed 0; ``width``
    = ngf = ndf) and its parameter counts."""
    import torch

    from gancli.engine.precision import autocast_dtype
    from gancli.translate.cyclegan import CycleGANStep
    from gancli.translate.networks import PatchDiscriminator, ResnetGenerator, UNetGenerator
    from gancli.translate.objectives import Pix2PixStep
    from gancli.translate.pool import ImagePool

    torch.manual_seed(0)
    dtype = autocast_dtype(precision)
    scalers = {}
    if precision == "fp16":
        scalers = {"scaler_g": torch.amp.GradScaler(device.type), "scaler_d": torch.amp.GradScaler(device.type)}

    def adam(*modules):
        return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=2e-4, betas=(0.5, 0.999))

    if kind == "pix2pix":
        G = UNetGenerator(CHANNELS, CHANNELS, ngf=width, image_size=px).to(device)
        D = PatchDiscriminator(2 * CHANNELS, ndf=width, image_size=px).to(device)
        step = Pix2PixStep(G, D, adam(G), adam(D), autocast_dtype=dtype, **scalers)
        gens, discs = [G], [D]
        shape = {"width": width, "unet_depth": G.depth, "patch_layers": D.n_layers, "receptive_field_px": D.receptive_field}
    else:
        G_ab, G_ba = (ResnetGenerator(CHANNELS, CHANNELS, ngf=width, image_size=px).to(device) for _ in range(2))
        D_a, D_b = (PatchDiscriminator(CHANNELS, ndf=width, image_size=px, norm="instance").to(device)
                    for _ in range(2))
        generator = torch.Generator(device=device if device.type != "meta" else "cpu").manual_seed(0)
        step = CycleGANStep(G_ab, G_ba, D_a, D_b, adam(G_ab, G_ba), adam(D_a, D_b), ImagePool(50), ImagePool(50),
                            generator, autocast_dtype=dtype, **scalers)
        gens, discs = [G_ab, G_ba], [D_a, D_b]
        shape = {"width": width, "resnet_blocks": G_ab.n_blocks, "patch_layers": D_a.n_layers,
                 "receptive_field_px": D_a.receptive_field}
    for m in (*gens, *discs):
        m.train()
    params = {"generator_params": sum(p.numel() for m in gens for p in m.parameters()),
              "discriminator_params": sum(p.numel() for m in discs for p in m.parameters())}
    return step, {**shape, **params}


def _batch(kind: str, px: int, device, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    n = BATCH[kind, px]
    a = (torch.rand(n, CHANNELS, px, px, generator=g) * 2 - 1).to(device)
    b = (torch.rand(n, CHANNELS, px, px, generator=g) * 2 - 1).to(device)
    return a, b


def flops_per_image(kind: str, px: int, width: int = WIDTH) -> float:
    """FLOPs of one step per image, counted on the ``meta`` device (nothing computed)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    meta = torch.device("meta")
    step, _ = build_step(kind, px, meta, width=width)
    a, b = (torch.zeros(BATCH[kind, px], CHANNELS, px, px, device=meta) for _ in range(2))
    counter = FlopCounterMode(display=False)
    with counter:
        step.step(a, b)
    return counter.get_total_flops() / BATCH[kind, px]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(kind: str, px: int, device_name: str, warmup: int, steps: int, repeats: int,
            precision: str = "fp32", width: int = WIDTH) -> dict:
    """img/s of ``repeats`` timed runs of ``steps`` steps after ``warmup`` steps, and their median."""
    import torch

    device = torch.device(device_name)
    step, shape = build_step(kind, px, device, precision, width)
    a, b = _batch(kind, px, device, seed=1)
    n = BATCH[kind, px]
    for _ in range(warmup):
        step.step(a, b)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rates, seconds = [], []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            stats = step.step(a, b)
        _sync(device)
        dt = time.perf_counter() - t0
        seconds.append(dt / steps)
        rates.append(n * steps / dt)
    flops = flops_per_image(kind, px, width)
    ips = statistics.median(rates)
    out = {"kind": kind, "pixels": px, "batch_size": n, "device": device_name, "precision": precision,
           "warmup_steps": warmup, "steps_per_repeat": steps, "repeats": repeats,
           "img_per_sec": round(ips, 3), "img_per_sec_repeats": [round(r, 3) for r in rates],
           "seconds_per_step_median": round(statistics.median(seconds), 4),
           "gflop_per_img": round(flops / 1e9, 3), "achieved_gflops": round(flops * ips / 1e9, 2),
           "losses_last_step": {k: round(float(v), 5) for k, v in stats.items()}, **shape}
    if device.type == "cuda":
        out["peak_cuda_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    del step
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


# -- driver -----------------------------------------------------------------------------------
def _list(text: str, valid: tuple, kind=str) -> list:
    try:
        values = [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from None
    bad = [v for v in values if v not in valid]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"{', '.join(map(str, bad)) or repr(text)} not valid; valid: "
                                         f"{', '.join(map(str, valid))}")
    return values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="all = CPU, and CUDA if present")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="autocast of the steps")
    ap.add_argument("--sizes", type=lambda t: _list(t, (64, 256), int), default=None,
                    help="image sides to measure, from 64,256 [default: both; --quick: 64]")
    ap.add_argument("--kinds", type=lambda t: _list(t, KINDS), default=list(KINDS), help="pix2pix,cyclegan")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per configuration [default: 3, --quick: 1]")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--quick", action="store_true",
                    help=f"a smoke run of a few seconds: 64 px, 1 + 1 step, width {QUICK_WIDTH} (figures not comparable)")
    ap.add_argument("--out", type=Path, help="write the JSON here [default: benchmarks/results/<name>; --quick: none]")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([64] if args.quick else [64, 256])
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        print(f"error: --repeats must be >= 1, got {repeats}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE.parent / "src"))  # gancli from this checkout when not installed

    import torch

    from gancli.engine.precision import check_precision
    from gancli.errors import UsageError

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device here", file=sys.stderr)
        return 2
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "all": ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]}[
        args.device]
    machine = _machine()
    result = {
        "benchmark": "image-to-image update steps (gancli.translate.objectives): img/s, median of timed repeats",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine, "torch_threads": torch.get_num_threads()},
        "settings": {"quick": args.quick, "precision": args.precision, "sizes": sizes, "kinds": args.kinds,
                     "repeats": repeats, "schedule": "(warm-up steps, timed steps per repeat) by device and size: "
                     + json.dumps(SCHEDULE if not args.quick else {"all": QUICK}),
                     "command": [sys.executable, *sys.argv]},
        "protocol": ("random images in [-1, 1] on the device; warm-up steps, then repeats of timed steps with the "
                     "device synchronised around each; img/s = batch x steps / seconds (one domain's images for "
                     "CycleGAN); FLOPs of one step counted by FlopCounterMode on the meta device"),
        "results": [],
    }
    skipped = {}
    for device in devices:
        try:
            check_precision(args.precision, torch.device(device))
        except UsageError as e:
            skipped[device] = str(e)
            continue
        for px in sizes:
            warmup, steps = QUICK if args.quick else SCHEDULE[device][px]
            for kind in args.kinds:
                print(f"measuring {kind} {px}px batch {BATCH[kind, px]} on {device} ...", file=sys.stderr, flush=True)
                res = measure(kind, px, device, warmup, steps, repeats, args.precision,
                              QUICK_WIDTH if args.quick else WIDTH)
                print(f"  {res['img_per_sec']} img/s ({res['seconds_per_step_median']} s/step)", file=sys.stderr,
                      flush=True)
                result["results"].append(res)
    if skipped:
        result["skipped_devices"] = skipped
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["summary"] = {f"{r['device']}_{r['kind']}{r['pixels']}_b{r['batch_size']}_img_per_sec": r["img_per_sec"]
                         for r in result["results"]}
    print(json.dumps(result, indent=2))
    out = args.out
    if out is None and not args.quick:
        measured = [d for d in devices if d not in skipped]
        out = HERE / "results" / result_name(machine, measured, _cpu_flags(), args.precision)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, out)
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
