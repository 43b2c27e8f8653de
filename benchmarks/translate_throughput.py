"""Training throughput of ``gan train``'s image-to-image steps: ``--task paired`` (pix2pix) and
``--task unpaired`` (CycleGAN).

    python benchmarks/translate_throughput.py [--quick] [--device cpu|cuda|all] [--precision fp32|bf16|fp16]
                                              [--sizes 64,256] [--kinds pix2pix,cyclegan] [--repeats 3]
                                              [--threads N] [--out FILE]

Each configuration times what ``gan train`` runs: a trainer built by
:func:`gancli.engine.launch.build_trainer` from a config resolved by
:func:`gancli.resolve.build_config` (the task's recipe and gancli's defaults: EMA of G,
channels_last, the task's loss and weights), on a synthetic folder written to a temporary
directory (random RGB PNGs, 32 per side, at the measured size), loaded by
:func:`gancli.engine.launch.load_training_data` and preloaded on the device by the loop's batcher
(no disk reads while timing); each step is :meth:`gancli.engine.trainer.Trainer.train_step`
(learning rates, the task's step object of :mod:`gancli.engine.steps`, the EMA update), without
the hooks (metrics, samples, checkpoints):

* **pix2pix** (``--task paired``, folders ``A/`` and ``B/``; Isola et al. 2017, arXiv 1611.07004):
  :class:`~gancli.engine.steps.TranslateStep`, ``--arch unet``: U-Net generator (ngf 64, depth
  from the size: 6 at 64 px, 8 at 256 px; dropout on) and conditional PatchGAN (ndf 64; 2 layers
  at 64 px, the 70x70 3-layer one at 256 px), batch norm, BCE + 100 x L1, Adam 2e-4 (0.5,
  0.999); batch 16 at 64 px and 4 at 256 px.
* **cyclegan** (``--task unpaired``, folders ``trainA/`` and ``trainB/``; Zhu et al. 2017, arXiv
  1703.10593): :class:`~gancli.engine.steps.CycleGANTrainStep` (which runs
  :class:`~gancli.translate.cyclegan.CycleGANStep`), ``--arch cyclegan``: two ResNet generators
  (ngf 64; 6 blocks at 64 px, 9 at 256 px) and two PatchGANs, instance norm, LSGAN (adv weight 2),
  cycle 10, identity 0.5, two 50-image pools; batch 1, as the reference.

Per configuration: ``warmup`` steps, then ``repeats`` timed runs of ``steps`` steps each (the
device synchronised around each), img/s of each run (images of one domain per step: the batch)
and their **median**. Defaults on the CPU: 64 px, 2 warm-up + 3 x 3 steps; 256 px, 1 warm-up +
3 x 1 step (a CycleGAN step at 256 px is ~1.9 TFLOP, ~70% of the whole run's ~10.7 TFLOP): about
3 minutes on 2 cores at the ~80 GFLOP/s these convolutions reach there, plus a few seconds to
write the image folders. On CUDA: 10 warm-up + 3 x 20 steps at 64 px, 5 + 3 x 10 at 256 px.
``--quick`` (a smoke run of a few seconds, for the tests): 64 px only, networks of width 8
instead of 64, 1 warm-up + 1 x 1 step; its figures measure nothing comparable.

Also recorded: the FLOPs of one step per image (convolutions and matmuls, forward and
backward, of the whole step as the loop runs it), counted by
``torch.utils.flop_counter.FlopCounterMode`` around the **first warm-up step** (as
``benchmarks/throughput.py`` does: no extra step is computed, and that step is not timed), the
achieved GFLOP/s, parameter counts, the peak CUDA memory, the machine (as
``benchmarks/throughput.py``: CPU, cores, GPU, torch version, load averages) and the torch
threads. No pass/fail.

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
#: kind -> the ``gan train --task`` that runs it
TASKS = {"pix2pix": "paired", "cyclegan": "unpaired"}
#: kind -> the two folders of its synthetic dataset (pairs: A -> B; domains: trainA, trainB)
FOLDERS = {"pix2pix": ("A", "B"), "cyclegan": ("trainA", "trainB")}
#: images per folder of the synthetic datasets
IMAGES = 32
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
def write_dataset(kind: str, px: int, root: Path, n: int = IMAGES, seed: int = 0) -> Path:
    """The synthetic folder of ``kind`` under ``root``: ``n`` random RGB ``px`` x ``px`` PNGs in each
    of its two folders (:data:`FOLDERS`), the same file names in both (pix2pix's pairs match by
    name). Returns the dataset's root, ``root/<kind>-<px>``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    dataset = root / f"{kind}-{px}"
    for folder in FOLDERS[kind]:
        (dataset / folder).mkdir(parents=True)
        for i in range(n):
            image = Image.fromarray(rng.integers(0, 256, (px, px, CHANNELS), dtype=np.uint8))
            image.save(dataset / folder / f"{i:03d}.png", compress_level=1)
    return dataset


def build_trainer(kind: str, px: int, device_name: str, root: Path, precision: str = "fp32", width: int = WIDTH,
                  steps: int = 1000):
    """``gan train --task paired|unpaired``'s trainer for ``kind`` at ``px`` pixels on ``device_name``,
    on a synthetic folder written under ``root`` (:func:`write_dataset`; the run directory goes
    there too): the config resolved from flat options as the CLI does (the task's recipe, seed 0,
    ``width`` = ngf = ndf, ``steps`` = the run's length, which sets the learning-rate schedule),
    the same preflight and data loading as :func:`gancli.engine.launch.train`, and
    :func:`gancli.engine.launch.build_trainer` without hooks. Returns the trainer and a record
    of its networks' shape and parameter counts.

    Raises:
        UsageError: as ``gan train`` (e.g. a precision the device does not support).
    """
    from gancli.engine.launch import build_trainer as launch_trainer
    from gancli.engine.launch import load_training_data, preflight
    from gancli.resolve import build_config
    from gancli.runs import RunStore

    dataset = write_dataset(kind, px, root)
    cfg = build_config({"task": TASKS[kind], "dataset": str(dataset), "image_size": px, "batch_size": BATCH[kind, px],
                        "ngf": width, "ndf": width, "steps": steps, "seed": 0, "device": device_name,
                        "precision": precision})
    device = preflight(cfg)
    data = load_training_data(cfg, root)
    trainer = launch_trainer(cfg, RunStore(root / "home").create(), device, data, hooks=[])
    G, D = trainer.G, trainer.D
    if kind == "pix2pix":
        shape = {"unet_depth": G.net.depth, "patch_layers": D.n_layers, "receptive_field_px": D.receptive_field}
    else:
        shape = {"resnet_blocks": G.g_ab.net.n_blocks, "patch_layers": D.d_a.n_layers,
                 "receptive_field_px": D.d_a.receptive_field}
    record = {"task": cfg.task.name, "arch": cfg.model.arch, "step": type(trainer.parts.task_step).__name__,
              "width": width, **shape, "generator_params": sum(p.numel() for p in G.parameters()),
              "discriminator_params": sum(p.numel() for p in D.parameters()), "ema": trainer.G_ema is not None}
    return trainer, record


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def counted_step(trainer, step: int) -> tuple[dict, float]:
    """Run ``trainer.train_step(step)`` under ``FlopCounterMode``: its statistics and the FLOPs it
    counted (convolutions and matmuls, forward and backward; the step is computed as usual)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        stats = trainer.train_step(step)
    _sync(trainer.device)
    return stats, float(counter.get_total_flops())


def flops_per_image(kind: str, px: int, width: int = WIDTH, device_name: str = "cpu") -> float:
    """FLOPs of one ``gan train`` step of ``kind`` at ``px`` pixels per image (of one domain),
    counted on a fresh trainer's first step (computed: one step's time)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gancli-translate-bench-") as tmp:
        trainer, _ = build_trainer(kind, px, device_name, Path(tmp), width=width, steps=1)
        return counted_step(trainer, 0)[1] / BATCH[kind, px]


def measure(kind: str, px: int, device_name: str, warmup: int, steps: int, repeats: int,
            precision: str = "fp32", width: int = WIDTH) -> dict:
    """img/s of ``repeats`` timed runs of ``steps`` steps of ``Trainer.train_step`` after ``warmup``
    steps (>= 1; the first counts the FLOPs), and their median. The steps are numbered 0, 1, ...
    as in a run (each takes the batch, the corruption or B draw and the learning rate of its index).

    Raises:
        ValueError: ``warmup`` < 1.
    """
    import tempfile

    import torch

    if warmup < 1:
        raise ValueError(f"warmup must be >= 1 (the first warm-up step counts the FLOPs), got {warmup}")
    n = BATCH[kind, px]
    with tempfile.TemporaryDirectory(prefix="gancli-translate-bench-") as tmp:
        trainer, record = build_trainer(kind, px, device_name, Path(tmp), precision, width,
                                        steps=warmup + repeats * steps)
        device = trainer.device
        _, flops = counted_step(trainer, 0)
        flops /= n
        step = 1
        for _ in range(warmup - 1):
            trainer.train_step(step)
            step += 1
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rates, seconds = [], []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                stats = trainer.train_step(step)
                step += 1
            _sync(device)
            dt = time.perf_counter() - t0
            seconds.append(dt / steps)
            rates.append(n * steps / dt)
        ips = statistics.median(rates)
        out = {"kind": kind, "pixels": px, "batch_size": n, "device": device_name, "precision": precision,
               "warmup_steps": warmup, "steps_per_repeat": steps, "repeats": repeats,
               "img_per_sec": round(ips, 3), "img_per_sec_repeats": [round(r, 3) for r in rates],
               "seconds_per_step_median": round(statistics.median(seconds), 4),
               "gflop_per_img": round(flops / 1e9, 3), "achieved_gflops": round(flops * ips / 1e9, 2),
               "losses_last_step": {k: round(float(v), 5) for k, v in stats.items()}, **record}
        if device.type == "cuda":
            out["peak_cuda_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        del trainer
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
    ap.add_argument("--kinds", type=lambda t: _list(t, KINDS), default=list(KINDS),
                    help="pix2pix (--task paired), cyclegan (--task unpaired)")
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
        "benchmark": "gan train's image-to-image steps (Trainer.train_step of --task paired / unpaired): img/s, "
                     "median of timed repeats",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine, "torch_threads": torch.get_num_threads()},
        "settings": {"quick": args.quick, "precision": args.precision, "sizes": sizes, "kinds": args.kinds,
                     "repeats": repeats, "schedule": "(warm-up steps, timed steps per repeat) by device and size: "
                     + json.dumps(SCHEDULE if not args.quick else {"all": QUICK}),
                     "command": [sys.executable, *sys.argv]},
        "protocol": (f"a trainer built as gan train builds it (build_config, load_training_data, build_trainer; "
                     f"no hooks) on {IMAGES} random RGB PNGs per folder at the size, preloaded on the device; "
                     "Trainer.train_step(0, 1, ...): warm-up steps, then repeats of timed steps with the device "
                     "synchronised around each; img/s = batch x steps / seconds (one domain's images for "
                     "CycleGAN); FLOPs of the whole step counted by FlopCounterMode around the first warm-up step"),
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
