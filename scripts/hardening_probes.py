"""Adversarial probes of issue #26's cases (hardening round 3), counted per case.

    GANCLI_DATA_DIR=../shared/data python scripts/hardening_probes.py [--out FILE]

Each probe runs ``gan`` in this process (Typer's CliRunner) in a fresh temporary home with tiny
MLP runs on real MNIST (``--limit 512``), and is *clean* when the exit code is the one expected,
no traceback is printed, a failing command says one ``error:`` line, and the probe's own check
of the run store holds (no run directory left by a refused command, metrics.jsonl untouched,
the resumed step...). Prints one line per probe and a JSON summary (per case: tried, clean, the
names of the unclean ones); ``--out`` writes the JSON too. Takes ~2 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from typer.testing import CliRunner

TINY = ["--arch", "mlp", "--limit", "512", "--batch-size", "32", "--device", "cpu", "--log-every", "5",
        "--checkpoint-every", "5", "--keep", "0", "--sample-every", "0", "--monitor-every", "0"]


class Home:
    """A temporary gancli home; ``gan(*argv)`` runs a command in it."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="gancli-probe-"))

    def gan(self, *argv: str):
        from gancli.cli import app

        return CliRunner().invoke(app, ["--home", str(self.path), *argv])

    def runs(self) -> list[Path]:
        return sorted((self.path / "runs").glob("run-*"), key=lambda p: int(p.name.split("-")[1]))

    def trained(self, steps: int = 15) -> Path:
        r = self.gan("-q", "train", *TINY, "--steps", str(steps))
        assert r.exit_code == 0, r.output
        return self.runs()[-1]

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def flip(path: Path, prefix: str) -> None:
    """Flip one data byte of the first tensor whose name starts with ``prefix``."""
    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    key = sorted(k for k in header if k.startswith(prefix))[0]
    raw[8 + n + header[key]["data_offsets"][0]] ^= 0xFF
    path.write_bytes(bytes(raw))


def ckpts(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step-*.safetensors"), key=lambda p: int(p.stem.split("-")[1]))


def all_set_aside(h: Home, *parts: str) -> Path:
    """A 15-step run whose three checkpoints have a flipped byte in each of ``parts`` (default the
    RNG states), resumed once so that all three are moved to checkpoints/damaged/."""
    run = h.trained()
    for p in ckpts(run):
        for part in parts or ("rng.",):
            flip(p, part)
    h.gan("-q", "train", "--resume", "1", "--steps", "25")
    return run


PROBES: list[tuple[str, str, Callable[[Home], tuple[bool, str]]]] = []


def probe(case: str, name: str):
    def register(fn):
        PROBES.append((case, name, fn))
        return fn
    return register


def clean(r, code: int) -> tuple[bool, str]:
    """Exit code ``code``, no traceback, at most one ``error:`` line."""
    out = r.output
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    ok = r.exit_code == code and "Traceback" not in out and (code == 0 or len(errors) == 1)
    return ok, f"exit {r.exit_code} (want {code}): {(errors or out.strip().splitlines()[-1:] or [''])[0][:160]}"


# -- case 1: a resume never restarts from step 0 -------------------------------------------------
@probe("1 no silent restart", "rng flipped in every checkpoint: resume twice, both exit 1, metrics kept")
def _(h):
    run = h.trained()
    for p in ckpts(run):
        flip(p, "rng.")
    before = (run / "metrics.jsonl").read_bytes()
    a, b = h.gan("-q", "train", "--resume", "1", "--steps", "25"), h.gan("-q", "train", "--resume", "1", "--steps", "25")
    ok = clean(a, 1)[0] and clean(b, 1)[0] and (run / "metrics.jsonl").read_bytes() == before
    return ok and "damaged/" in b.output and not ckpts(run), clean(b, 1)[1]


@probe("1 no silent restart", "every checkpoint deleted: resume exits 1, metrics kept")
def _(h):
    run = h.trained()
    for p in ckpts(run):
        p.unlink()
    before = (run / "metrics.jsonl").read_bytes()
    r = h.gan("-q", "train", "--resume", "1", "--steps", "25")
    ok, why = clean(r, 1)
    return ok and (run / "metrics.jsonl").read_bytes() == before, why


@probe("1 no silent restart", "every checkpoint truncated to 0 bytes: resume exits 1, files set aside")
def _(h):
    run = h.trained()
    for p in ckpts(run):
        p.write_bytes(b"")
    r = h.gan("-q", "train", "--resume", "1", "--steps", "25")
    ok, why = clean(r, 1)
    return ok and len(list((run / "checkpoints" / "damaged").iterdir())) == 3, why


@probe("1 no silent restart", "--from damaged/step-10 after rng damage: continues at step 10, records kept")
def _(h):
    run = all_set_aside(h)
    r = h.gan("train", "--resume", "1", "--from", "damaged/step-10", "--steps", "20")
    ok, why = clean(r, 0)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    return ok and steps == [5, 10, 15, 20] and (run / "metrics.past-step-10.jsonl").exists(), why


@probe("1 no silent restart", "--from a set-aside checkpoint whose generator is damaged: exit 1")
def _(h):
    all_set_aside(h, "rng.", "generator.")
    return clean(h.gan("-q", "train", "--resume", "1", "--from", "damaged/step-15", "--steps", "25"), 1)


@probe("1 no silent restart", "--from while a usable checkpoint exists: exit 2")
def _(h):
    run = h.trained()
    flip(ckpts(run)[-1], "rng.")
    h.gan("-q", "train", "--resume", "1", "--steps", "20")
    return clean(h.gan("-q", "train", "--resume", "1", "--from", "damaged/step-15", "--steps", "25"), 2)


@probe("1 no silent restart", "--from without --resume: exit 2")
def _(h):
    return clean(h.gan("-q", "train", "--from", "damaged/step-5"), 2)


@probe("1 no silent restart", "gan sample RUN with only set-aside checkpoints: names them, exit 1")
def _(h):
    all_set_aside(h)
    r = h.gan("sample", "1", "-n", "4", "-o", str(h.path / "g.png"))
    ok, why = clean(r, 1)
    return ok and "--checkpoint damaged/step-15" in r.output, why


@probe("1 no silent restart", "gan sample RUN --checkpoint damaged/step-10: exit 0")
def _(h):
    all_set_aside(h)
    return clean(h.gan("sample", "1", "--checkpoint", "damaged/step-10", "-n", "4", "-o", str(h.path / "g.png")), 0)


# -- case 2: every bound checked before the run directory exists ----------------------------------
BOUNDS = {
    "batch 100000 > data": ["--arch", "mlp", "--steps", "2", "--clusters", "0", "-b", "100000"],
    "--epochs 1e30": ["--arch", "mlp", "--epochs", "1e30"],
    "--epochs 1e-30": ["--arch", "mlp", "--epochs", "1e-30"],
    "--eval-samples -1": ["--arch", "mlp", "--steps", "2", "--eval-samples", "-1"],
    "--eval-samples 100": ["--arch", "mlp", "--steps", "2", "--eval-samples", "100"],
    "--monitor-every -1": ["--arch", "mlp", "--steps", "2", "--monitor-every", "-1"],
    "--monitor-every 0 --stop-on-collapse": ["--arch", "mlp", "--steps", "2", "--monitor-every", "0",
                                             "--stop-on-collapse"],
    "--steps 0": ["--arch", "mlp", "--steps", "0"],
    "--steps 2e9": ["--arch", "mlp", "--steps", "2000000000"],
}
for _label, _argv in BOUNDS.items():
    for _dry in (False, True):
        def _bound(h, argv=_argv, dry=_dry):
            r = h.gan("-q", "train", *argv, *(["--dry-run"] if dry else []))
            ok, why = clean(r, 2)
            return ok and not h.runs(), why
        probe("2 bounds before the run directory", _label + (" --dry-run" if _dry else ""))(_bound)


@probe("2 bounds before the run directory", "--tensorboard without tensorboard importable")
def _(h):
    import builtins

    real = builtins.__import__

    def no_tb(name, *a, **k):
        if name.startswith(("tensorboard", "torch.utils.tensorboard")):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    builtins.__import__ = no_tb
    try:
        r = h.gan("-q", "train", *TINY, "--steps", "2", "--tensorboard")
    finally:
        builtins.__import__ = real
    ok, why = clean(r, 2)
    return ok and not h.runs(), why


@probe("2 bounds before the run directory", "MNIST labels out of range with --conditional: file named")
def _(h):
    data = h.path / "data" / "MNIST" / "raw"
    data.mkdir(parents=True)
    src = Path(os.environ["GANCLI_DATA_DIR"]) / "MNIST" / "raw"
    for f in src.iterdir():
        if not f.name.endswith(".gz"):
            shutil.copy(f, data / f.name)
    labels = data / "train-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[8 + 3] = 254
    labels.write_bytes(bytes(raw))
    r = h.gan("--data-dir", str(h.path / "data"), "-q", "train", *TINY, "--steps", "2", "--conditional")
    ok, why = clean(r, 1)
    return ok and "train-labels-idx1-ubyte" in r.output and not h.runs(), why


# -- case 3: latest serves the command ------------------------------------------------------------
@probe("3 latest skips runs without a checkpoint", "divergence before the first checkpoint: sample latest")
def _(h):
    h.trained()
    r = h.gan("-q", "train", "--arch", "mlp", "--lr", "1e6", "--limit", "2048", "--clusters", "0", "--steps", "30",
              "--monitor-every", "0", "--sample-every", "0")
    s = h.gan("sample", "latest", "-n", "4", "-o", str(h.path / "g.png"))
    ok, why = clean(s, 0)
    listing = h.gan("runs", "list", "--json")
    statuses = [x.get("status") for x in json.loads(listing.stdout)]
    return ok and r.exit_code == 1 and "run-1" in s.output and statuses == ["finished", "failed"], why


for _cmd in (["evaluate", "latest", "-n", "2048", "--json"], ["export", "latest", "--format",
                                                                                    "safetensors"]):
    def _latest(h, cmd=_cmd):
        h.trained()
        new = h.path / "runs" / "run-2"
        shutil.copytree(h.runs()[0], new)
        for p in ckpts(new):
            p.unlink()
        argv = list(cmd) + (["-o", str(h.path / "bundle")] if cmd[0] == "export" else [])
        r = h.gan(*argv)
        ok, why = clean(r, 0)
        return ok and "run-1" in r.output + (r.stderr if hasattr(r, "stderr") else ""), why
    probe("3 latest skips runs without a checkpoint", f"gan {_cmd[0]} latest with a newer checkpoint-less run")(_latest)


# -- case 4: --json on error ----------------------------------------------------------------------
JSON_ERRORS = [["train", "--dataset", "mnst", "--dry-run"], ["train", "--steps", "abc"], ["sample", "run-9"],
               ["evaluate", "run-9"], ["export", "run-9"], ["report", "run-9"], ["translate", "run-9", "x.png", "-o",
                                                                                  "y"],
               ["runs", "show", "run-9"], ["runs", "rm", "run-9", "--yes"], ["runs", "compare", "run-9", "run-8"],
               ["runs", "unlock", "run-9"]]
for _argv in JSON_ERRORS:
    def _json(h, argv=_argv):
        r = h.gan(*argv, "--json")
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            return False, f"stdout not JSON: {r.stdout[:80]!r}"
        ok = set(doc) == {"error"} and doc["error"]["exit_code"] == r.exit_code != 0 and "Traceback" not in r.output
        return ok, f"exit {r.exit_code}: {doc['error']['message'][:120] if 'error' in doc else doc}"
    probe("4 --json on error", " ".join(_argv[:2]) + " --json")(_json)


# -- case 5: stop-on-collapse ---------------------------------------------------------------------
@probe("5 stop-on-collapse", "--monitor-every 1 --stop-on-collapse: a healthy new run is not stopped at step 1")
def _(h):
    r = h.gan("-q", "train", *TINY[:-2], "--steps", "20",
              "--monitor-every", "1", "--stop-on-collapse")
    ok, why = clean(r, 0)
    steps = [json.loads(x)["step"] for x in (h.runs()[0] / "metrics.jsonl").read_text().splitlines()
             if '"train"' in x]
    return ok and steps[-1] == 20, why


# -- case 6: a hand-edited config.json -------------------------------------------------------------
EDITS = {"model.nz changed": ("model", "nz", 64), "model.ngf changed": ("model", "ngf", 32),
         "optim.lr_g changed": ("optim", "lr_g", 0.01), "loss.name changed": ("loss", "name", "hinge"),
         "train.seed changed": ("train", "seed", 7), "train.batch_size as a string": ("train", "batch_size", "x"),
         "model.nz negative": ("model", "nz", -1)}
for _label, (_section, _key, _value) in EDITS.items():
    def _edit(h, section=_section, key=_key, value=_value):
        run = h.trained()
        doc = json.loads((run / "config.json").read_text())
        if key not in doc["config"].get(section, {}):
            return False, f"no {section}.{key} in config.json"
        doc["config"][section][key] = value
        (run / "config.json").write_text(json.dumps(doc))
        before = (run / "metrics.jsonl").read_bytes()
        r = h.gan("-q", "train", "--resume", "1", "--steps", "25")
        ok = r.exit_code == 1 and "Traceback" not in r.output and (key in r.output or "config.json" in r.output)
        return ok and (run / "metrics.jsonl").read_bytes() == before, clean(r, r.exit_code)[1]
    probe("6 config.json validated on resume", _label)(_edit)


# -- case 8: messages -----------------------------------------------------------------------------
@probe("8 messages", "gan runs rm of an in-store symlinked run")
def _(h):
    run = h.trained()
    outside = h.path / "elsewhere"
    shutil.move(str(run), outside)
    run.symlink_to(outside)
    r = h.gan("runs", "rm", "1", "--yes")
    ok = "Traceback" not in r.output and "rmtree" not in r.output and r.exit_code in (0, 1, 2)
    return ok and outside.exists(), clean(r, r.exit_code)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("-k", default=None, help="only probes whose case or name contains this")
    args = ap.parse_args()
    if not os.environ.get("GANCLI_DATA_DIR"):
        sys.exit("set GANCLI_DATA_DIR to a folder holding MNIST/raw/")
    os.environ["GANCLI_AUTO_PRECISION"] = "fp32"
    os.environ["NO_COLOR"] = "1"
    cases: dict[str, dict] = {}
    for case, name, fn in PROBES:
        if args.k and args.k not in case + name:
            continue
        h = Home()
        try:
            ok, why = fn(h)
        except Exception as e:  # a probe that raises is not clean
            ok, why = False, f"{type(e).__name__}: {e}"
        finally:
            h.close()
        c = cases.setdefault(case, {"tried": 0, "clean": 0, "unclean": []})
        c["tried"] += 1
        c["clean"] += bool(ok)
        if not ok:
            c["unclean"].append(name)
        print(f"{'clean  ' if ok else 'UNCLEAN'} [{case}] {name}: {why}", flush=True)
    doc = {"probes": "issue #26 hardening", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
           "cases": cases, "tried": sum(c["tried"] for c in cases.values()),
           "clean": sum(c["clean"] for c in cases.values())}
    print(json.dumps(doc, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
