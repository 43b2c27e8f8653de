"""Fixed-seed short training runs whose results are pinned bit for bit.

``tests/fixtures/bitwise.json`` holds, per case, the sha256 of every part of the final
checkpoint (G, D, EMA G, both optimizers, RNG states: the digests the checkpoint header
stores) and the logged losses and evaluation values of ``metrics.jsonl``. It was recorded
with ``python scripts/record_bitwise.py`` *before* the restructuring of issue #11, so the
test in ``tests/test_bitwise.py`` proves that the restructured code trains exactly as the
old one did. Every case spells out the options whose defaults may change (batch, EMA,
loss, widths, optimizer), so a new default recipe does not change what a case means.

The results depend on the CPU's kernels (oneDNN / ATen pick them by instruction set), so
the fixture is keyed by :func:`cpu_signature`. Two kinds are recorded: ``AVX512-amx`` (Intel
Xeon, before #11) and ``AVX2-noamx`` (AMD EPYC, at 915a28b, before issue #28's changes). On
a CPU of another kind the test skips, and the end of the pytest summary says loudly that
the fixture was not checked and how to record one there.
"""

from __future__ import annotations

import json
from pathlib import Path

FIXTURE = Path(__file__).with_name("fixtures") / "bitwise.json"

#: Options every case shares: tiny widths, 128 MNIST images, batch 16, 6 steps, 1 checkpoint at
#: the end; ``--clusters 0``: the fixture was recorded before self-conditioning existed.
COMMON = ["--dataset", "mnist", "--limit", "128", "--batch-size", "16", "--steps", "6", "--seed", "7",
          "--device", "cpu", "--log-every", "2", "--sample-every", "0", "--checkpoint-every", "0", "--keep", "0",
          "--nz", "8", "--ngf", "8", "--ndf", "8", "--optimizer", "adam", "--lr-schedule", "constant",
          "--precision", "fp32", "--no-compile", "--clusters", "0"]

#: Recipe variants: name -> extra options (each explicit about loss and EMA).
VARIANTS: dict[str, list[str]] = {
    "bce": ["--loss", "bce", "--ema-decay", "0", "--lr", "2e-4", "--beta1", "0.5", "--beta2", "0.999"],
    "ema": ["--loss", "bce", "--ema-decay", "0.999", "--lr", "2e-4", "--beta1", "0.5", "--beta2", "0.999"],
    "wgan-gp": ["--loss", "wgan-gp", "--ema-decay", "0"],
    "hinge-sn": ["--loss", "hinge", "--spectral-norm", "--ema-decay", "0", "--lr", "2e-4", "--beta1", "0.5",
                 "--beta2", "0.999"],  # as recorded: hinge's recipe brings Adam(0, 0.99) since issue #25
    "conditional": ["--loss", "bce", "--conditional", "--ema-decay", "0.999", "--lr", "2e-4", "--beta1", "0.5"],
    "diffaug": ["--loss", "bce", "--augment", "diffaug", "--ema-decay", "0", "--lr", "2e-4", "--beta1", "0.5"],
    "r1-lsgan": ["--loss", "lsgan", "--r1-gamma", "1", "--r1-every", "2", "--ema-decay", "0", "--lr", "2e-4",
                 "--d-norm", "batch"],  # as recorded (lsgan's recipe now defaults to --d-norm none)
}

#: ``--eval-every`` (the evaluator must not change training) on the two MNIST-speed archs.
EVAL_VARIANT = ["--loss", "bce", "--ema-decay", "0.999", "--lr", "2e-4", "--beta1", "0.5",
                "--eval-every", "3", "--eval-samples", "2048"]

ARCHS = ("mlp", "dcgan", "resnet")

#: Image-to-image tasks (issue #24), one case each, recorded after the tasks existed (so a CPU kind
#: recorded before them may lack these cases: the test then skips them, loudly). The widths, steps
#: and batch are COMMON's; ``--ema-decay 0.999`` so the EMA of a translator is pinned too.
TASK_COMMON = ["--limit", "128", "--batch-size", "16", "--steps", "6", "--seed", "7", "--device", "cpu",
               "--log-every", "2", "--sample-every", "0", "--checkpoint-every", "0", "--keep", "0",
               "--ngf", "8", "--ndf", "8", "--lr-schedule", "constant", "--precision", "fp32", "--no-compile",
               "--ema-decay", "0.999"]
TASK_VARIANTS: dict[str, list[str]] = {
    "inpaint": ["--dataset", "mnist", "--task", "inpaint", "--mask", "mixed"],
    "superres": ["--dataset", "mnist", "--task", "superres", "--scale", "4"],
    "denoise": ["--dataset", "mnist", "--task", "denoise", "--noise-std", "0.3"],
    "edges": ["--dataset", "mnist", "--task", "edges"],
    "colorize": ["--dataset", "@rgb-mnist", "--task", "colorize"],
    "paired": ["--dataset", "@paired-mnist", "--task", "paired"],
    "unpaired": ["--dataset", "@unpaired-mnist", "--task", "unpaired"],
}
#: ``--dataset`` placeholders: a folder :func:`materialize` writes from MNIST before the case runs.
PLACEHOLDERS = ("@rgb-mnist", "@paired-mnist", "@unpaired-mnist")


def cases() -> dict[str, list[str]]:
    """Case name -> ``gan train`` arguments (after ``train``)."""
    out = {}
    for arch in ARCHS:
        for name, extra in VARIANTS.items():
            out[f"{arch}/{name}"] = ["--arch", arch, *COMMON, *extra, *_r1_off(extra)]
    for arch in ("mlp", "dcgan"):
        out[f"{arch}/eval-every"] = ["--arch", arch, *COMMON, *EVAL_VARIANT, *_r1_off(EVAL_VARIANT)]
    out.update(task_cases())
    return out


def task_cases() -> dict[str, list[str]]:
    """The image-to-image cases: ``task/<name>`` -> ``gan train`` arguments."""
    return {f"task/{name}": [*extra, *TASK_COMMON] for name, extra in TASK_VARIANTS.items()}


def _mnist_subset(n: int):
    """The first ``n`` MNIST training digits, uint8 ``(n, 28, 28)``, and their labels."""
    import os

    import torchvision

    root = os.environ.get("GANCLI_DATA_DIR") or str(Path(__file__).resolve().parents[2] / "shared" / "data")
    ds = torchvision.datasets.MNIST(root=root, train=True, download=False)
    return ds.data[:n], ds.targets[:n]


def materialize(args: list[str], where: Path) -> list[str]:
    """``args`` with a ``--dataset`` placeholder replaced by a folder written under ``where``:
    ``@rgb-mnist``: the first 128 MNIST digits as 28x28 RGB PNGs, each digit drawn in a colour of
    its label (a fixed palette), on black; ``@paired-mnist``: ``A/`` the same digits inverted (grey
    28x28), ``B/`` the digits, matched by name; ``@unpaired-mnist``: ``A/`` the first 64 digits,
    ``B/`` the next 64 restyled (:func:`gancli.translate.restyle.restyle_mnist`). Deterministic: the same bytes on every machine."""
    if not any(a in PLACEHOLDERS for a in args):
        return args
    from PIL import Image

    digits, labels = _mnist_subset(128)
    if "@paired-mnist" in args:
        root = where / "paired-mnist"
        for side in ("A", "B"):
            (root / side).mkdir(parents=True, exist_ok=True)
        for i, d in enumerate(digits):
            Image.fromarray((255 - d).numpy()).save(root / "A" / f"{i:04d}.png")
            Image.fromarray(d.numpy()).save(root / "B" / f"{i:04d}.png")
        return [str(root) if a == "@paired-mnist" else a for a in args]
    if "@unpaired-mnist" in args:
        from gancli.translate.restyle import restyle_mnist

        root = where / "unpaired-mnist"
        restyled = restyle_mnist(digits[64:].unsqueeze(1)).squeeze(1)
        for side, images in (("A", digits[:64]), ("B", restyled)):
            (root / side).mkdir(parents=True, exist_ok=True)
            for i, d in enumerate(images):
                Image.fromarray(d.numpy()).save(root / side / f"{i:04d}.png")
        return [str(root) if a == "@unpaired-mnist" else a for a in args]
    palette = [(255, 64, 64), (64, 255, 64), (64, 64, 255), (255, 255, 64), (255, 64, 255),
               (64, 255, 255), (255, 160, 32), (160, 32, 255), (32, 160, 96), (255, 255, 255)]
    folder = where / "rgb-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for i, (d, y) in enumerate(zip(digits.tolist(), labels.tolist())):
        rgb = bytes(v * c // 255 for row in d for v in row for c in palette[y])
        Image.frombytes("RGB", (28, 28), rgb).save(folder / f"{i:04d}.png")
    return [str(folder) if a == "@rgb-mnist" else a for a in args]


def _r1_off(extra: list[str]) -> list[str]:
    """``--r1-gamma 0`` unless the variant sets R1: the fixture predates the ``mlp`` recipe's R1 default
    (the recorded runs had R1 off; the pin keeps them meaning what they meant)."""
    return [] if "--r1-gamma" in extra else ["--r1-gamma", "0"]


def cpu_signature() -> str:
    """What decides the CPU kernels: ATen's capability level and whether AMX is there."""
    import torch

    flags = ""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        pass
    amx = "amx" if "amx_bf16" in flags else "noamx"
    return f"{torch.backends.cpu.get_cpu_capability()}-{amx}-torch{torch.__version__.split('+')[0]}"


def result_of(run_dir: Path) -> dict:
    """What a case pins: the final checkpoint's part digests and the logged numbers."""
    from safetensors import safe_open

    ckpts = sorted((run_dir / "checkpoints").glob("step-*.safetensors"), key=lambda p: int(p.stem.split("-")[1]))
    with safe_open(str(ckpts[-1]), framework="pt") as f:
        digests = json.loads(f.metadata()["sha256"])
    drop = {"img_per_sec", "time", "seconds", "lr_g", "lr_d"}  # lr_*: logged since the fixture
    records = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") not in ("train", "eval"):  # records of later features (the collapse monitor)
            continue
        if rec.get("kind") == "eval":
            rec = {k: v for k, v in rec.items() if k not in drop and k != "results"}
        else:
            rec = {k: v for k, v in rec.items() if k not in drop}
        records.append(rec)
    return {"checkpoint": ckpts[-1].name, "sha256": digests, "metrics": records}


def run_case(args: list[str], home: Path) -> dict:
    """Train one case through the CLI in this process, with one CPU thread."""
    import torch
    from typer.testing import CliRunner

    from gancli.cli import app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = CliRunner().invoke(app, ["--home", str(home), "-q", "train", *materialize(args, home / "data")])
    finally:
        torch.set_num_threads(threads)
    if res.exit_code != 0:
        raise RuntimeError(f"gan train {' '.join(args)} failed ({res.exit_code}): {res.output}")
    runs = sorted((home / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return result_of(runs[-1])
