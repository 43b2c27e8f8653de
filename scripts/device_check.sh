#!/usr/bin/env bash
# Device check (issue #16): gancli proven on a GPU, from a fresh copy of the repository.
#
#   scripts/device_check.sh                      # on a GPU machine: fits in 8 minutes
#   DEVICE=cpu scripts/device_check.sh --quick   # every step on the CPU with tiny budgets (a dry run)
#
# Steps (each under its own timeout; a failed step is recorded and the next one runs):
#   install     a virtualenv (VENV, default .venv-device) and the README's install:
#               pip install -e '.[test]' -c constraints.txt
#   probe       torch, CUDA, the GPU(s): name, memory, capability
#   pytest      pytest -m cuda (tests/test_cuda.py; all skip cleanly on the CPU)
#   throughput  benchmarks/throughput.py on the device: gancli's step (fp32, fp32 contiguous,
#               bf16, bf16 contiguous) against the reference DataLoader loop, MNIST DCGAN,
#               batch 64 and 256, the matmul peak measured in the same run, GPU utilisation
#   train       the README job: gan train --dataset mnist --arch dcgan --epochs 5 --device cuda
#               (--quick: --steps 200), its wall time and the training time of its 'done:' line
#   evaluate    gan evaluate latest --json (--quick: -n 2048)
#   nproc       gan train --nproc 1 ... --steps 200, short (--quick: 20 steps)
#   torchrun    torchrun --standalone --nproc-per-node 1 -m gancli train ..., short; and
#               gan train --nproc 2 when the machine has 2 GPUs or more (nproc2)
#
# Every figure goes to JSON files in OUT, named <TAG>-<what>.json, with one summary,
# <TAG>-summary.json (machine, GPU, torch, each step's status and wall time, the targets);
# each step's output goes to OUT/<TAG>-logs/. The exit code is 1 when a step failed.
#
# Environment:
#   DEVICE           cuda (default) or cpu
#   OUT              folder for the results (default: benchmarks/results)
#   TAG              file name prefix (default: device-check-<gpu name or cpu>[-quick])
#   GANCLI_DATA_DIR  folder holding MNIST/raw (default: ../shared/data beside the repository)
#   BUDGET_S         the whole run, seconds (default 450; --quick 2400); steps get what is left
#   VENV             the virtualenv (default: .venv-device in the repository)
#   FRESH_VENV=1     re-create VENV even when a complete one from an earlier run is there
#   PYTHON           the interpreter that makes the venv (default python3)
# GANCLI_HOME is always a new temporary folder, removed at the end. See docs/gpu.md.

set -uo pipefail  # no -e: a failing step must not stop the others

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument '$arg'; valid: --quick, --help" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.." || exit 2
REPO=$PWD
DEVICE=${DEVICE:-cuda}
case "$DEVICE" in cuda|cpu) ;; *) echo "error: DEVICE=$DEVICE; valid: cuda, cpu" >&2; exit 2 ;; esac
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$REPO/.venv-device}
OUT=${OUT:-$REPO/benchmarks/results}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || { echo "error: cannot create OUT=$OUT" >&2; exit 2; }

if [[ -z "${GANCLI_DATA_DIR:-}" ]]; then
    GANCLI_DATA_DIR="$(cd "$REPO/.." && pwd)/shared/data"
    if [[ ! -d "$GANCLI_DATA_DIR/MNIST/raw" && -d "$REPO/shared/data/MNIST/raw" ]]; then
        GANCLI_DATA_DIR="$REPO/shared/data"
    fi
fi
export GANCLI_DATA_DIR
GANCLI_HOME=$(mktemp -d -t gancli-device-check.XXXXXX) || exit 2
export GANCLI_HOME
export NO_COLOR=1 TERM=dumb PYTHONUNBUFFERED=1

SMI=0
if [[ "$DEVICE" == cuda ]] && command -v nvidia-smi >/dev/null 2>&1; then SMI=1; fi
if [[ -z "${TAG:-}" ]]; then
    name=cpu
    if ((SMI)); then
        name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
        name=$(echo "${name:-cuda}" | tr '[:upper:]' '[:lower:]' | sed 's/[^a-z0-9]\{1,\}/-/g; s/^-//; s/-$//')
    elif [[ "$DEVICE" == cuda ]]; then
        name=cuda
    fi
    TAG="device-check-$name"
    ((QUICK)) && TAG="$TAG-quick"
fi
LOGS="$OUT/$TAG-logs"
rm -rf "$LOGS" && mkdir -p "$LOGS"
STEPS_TSV="$LOGS/steps.tsv"
: >"$STEPS_TSV"

# -- budgets: per-step caps, and the least each later step needs (reserved) -------------------
ORDER=(install probe pytest throughput train evaluate nproc torchrun)
declare -A CAP MIN
if ((QUICK)); then
    BUDGET_S=${BUDGET_S:-2400}
    CAP=([install]=900 [probe]=120 [pytest]=300 [throughput]=400 [train]=400 [evaluate]=300 [nproc]=240 [torchrun]=240)
    MIN=([install]=60 [probe]=10 [pytest]=30 [throughput]=60 [train]=60 [evaluate]=30 [nproc]=30 [torchrun]=30)
else
    BUDGET_S=${BUDGET_S:-450}
    CAP=([install]=240 [probe]=45 [pytest]=110 [throughput]=150 [train]=120 [evaluate]=60 [nproc]=45 [torchrun]=60)
    MIN=([install]=60 [probe]=10 [pytest]=45 [throughput]=70 [train]=45 [evaluate]=20 [nproc]=20 [torchrun]=20)
fi
T0=$(date +%s)
DEADLINE=$((T0 + BUDGET_S))

limit_for() {  # seconds step $1 may run: its cap, or what is left after reserving the least each
    # later step needs, but at least its own least; never past the deadline
    local name=$1 reserve=0 after=0 n left limit to_deadline
    for n in "${ORDER[@]}"; do
        ((after)) && reserve=$((reserve + MIN[$n]))
        [[ "$n" == "$name" ]] && after=1
    done
    to_deadline=$((DEADLINE - $(date +%s)))
    left=$((to_deadline - reserve))
    ((left < MIN[$name])) && left=${MIN[$name]}
    limit=${CAP[$name]}
    ((left < limit)) && limit=$left
    ((to_deadline < limit)) && limit=$to_deadline
    echo "$limit"
}

now() { date +%s.%N; }

# run_step NAME LIMIT CMD...: runs CMD under `timeout LIMIT`, output to LOGS/NAME.log (stdout to
# $STEP_STDOUT instead when set), and records name, exit code, times and limit in steps.tsv.
run_step() {
    local name=$1 limit=$2; shift 2
    local start end rc stdout=${STEP_STDOUT:-}
    if ((limit < 10)); then
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" skipped "$(now)" "$(now)" "$limit" "$*" >>"$STEPS_TSV"
        echo "== $name: skipped, no time left in the budget of ${BUDGET_S}s" | tee -a "$LOGS/$name.log"
        return 1
    fi
    echo "== $name (timeout ${limit}s): $*"
    start=$(now)
    if [[ -n "$stdout" ]]; then
        timeout -k 10 "$limit" "$@" >"$stdout" 2>>"$LOGS/$name.log"
    else
        timeout -k 10 "$limit" "$@" >>"$LOGS/$name.log" 2>&1
    fi
    rc=$?
    end=$(now)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$start" "$end" "$limit" "$*" >>"$STEPS_TSV"
    echo "   rc=$rc, $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')s; log: $LOGS/$name.log"
    return "$rc"
}

# -- GPU utilisation and memory, sampled all along (nvidia-smi, one call per sample) -----------
UTIL_PID=
if ((SMI)); then
    gpu_id=${CUDA_VISIBLE_DEVICES:-0}
    gpu_id=${gpu_id%%,*}
    (
        while :; do
            line=$(nvidia-smi -i "$gpu_id" --query-gpu=utilization.gpu,memory.used,power.draw \
                   --format=csv,noheader,nounits 2>/dev/null | head -1)
            [[ -n "$line" ]] && echo "$(date +%s.%N), $line"
            sleep 0.5
        done
    ) >"$LOGS/gpu-util.csv" 2>/dev/null &
    UTIL_PID=$!
fi
cleanup() {
    [[ -n "$UTIL_PID" ]] && kill "$UTIL_PID" 2>/dev/null
    rm -rf "$GANCLI_HOME"
}
trap cleanup EXIT

echo "device check: DEVICE=$DEVICE quick=$QUICK budget ${BUDGET_S}s; results: $OUT/$TAG-*.json"
echo "GANCLI_DATA_DIR=$GANCLI_DATA_DIR GANCLI_HOME=$GANCLI_HOME VENV=$VENV"

# -- install: a virtualenv, the README's command ------------------------------------------------
install_venv() {
    local want
    want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
    if [[ "${FRESH_VENV:-0}" != 1 && -x "$VENV/bin/gan" && "$(cat "$VENV/.device-check" 2>/dev/null)" == "$want" ]]; then
        echo "reusing $VENV (installed by an earlier run from the same pyproject.toml and constraints.txt)"
        return 0
    fi
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || { rm -rf "$VENV"; "$PYTHON" -m virtualenv "$VENV"; } || return 1
    # README: pip install -e '.[test]' -c constraints.txt
    "$VENV/bin/pip" install --disable-pip-version-check -e '.[test]' -c constraints.txt || return 1
    echo "$want" >"$VENV/.device-check"
}
export -f install_venv
export VENV PYTHON
run_step install "$(limit_for install)" bash -c install_venv
# shellcheck disable=SC1091
[[ -f "$VENV/bin/activate" ]] && . "$VENV/bin/activate"

# -- probe ------------------------------------------------------------------------------------
STEP_STDOUT="$OUT/$TAG-env.json" run_step probe "$(limit_for probe)" python - "$DEVICE" <<'EOF'
import json, os, platform, re, subprocess, sys
import torch, torchvision
device = sys.argv[1]
info = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
        "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0, "gpus": [],
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
for i in range(info["device_count"]):
    p = torch.cuda.get_device_properties(i)
    info["gpus"].append({"index": i, "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                         "compute_capability": f"{p.major}.{p.minor}", "multiprocessors": p.multi_processor_count})
if info["cuda_available"]:
    info["cudnn"] = torch.backends.cudnn.version()
    info["bf16_supported"] = torch.cuda.is_bf16_supported()
try:  # the driver, and the newest CUDA it supports (nvidia-smi's header)
    head = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"Driver Version: (\S+).*CUDA Version: (\S+)", head)
    if m:
        info["driver"], info["driver_cuda"] = m.group(1), m.group(2)
except (OSError, subprocess.SubprocessError):
    pass
print(json.dumps(info, indent=2))
if device == "cuda" and not info["cuda_available"]:
    hint = ""
    if info.get("driver_cuda") and info["torch_cuda"]:
        hint = (f" (the driver {info['driver']} supports CUDA {info['driver_cuda']}, this torch is built for CUDA "
                f"{info['torch_cuda']}: install a torch build for this driver, see the README on constraints.txt)")
    elif not info["torch_cuda"]:
        hint = " (this torch is a CPU-only build)"
    print(f"error: DEVICE=cuda but torch.cuda.is_available() is False{hint}", file=sys.stderr)
    sys.exit(1)
EOF
NGPU=$(python -c 'import json,sys; print(json.load(open(sys.argv[1])).get("device_count", 0))' "$OUT/$TAG-env.json" 2>/dev/null || echo 0)

# -- (a) pytest -m cuda -----------------------------------------------------------------------
# deterministic cuBLAS for the resume test (only here: it could change the speed of the other steps)
CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8} run_step pytest "$(limit_for pytest)" python -m pytest -m cuda -p no:cacheprovider -q -rs \
    --junitxml="$LOGS/pytest.xml"

# -- (b) throughput ---------------------------------------------------------------------------
L=$(limit_for throughput)
if ((QUICK)); then
    TP_OPTS=(--quick --seconds 1 --matmul-seconds 0.5)
else  # 2 batch sizes x 5 loops: seconds per loop from the time this step has (6 s at most)
    secs=$(((L - 45) / 10)); ((secs > 6)) && secs=6; ((secs < 2)) && secs=2
    TP_OPTS=(--seconds "$secs" --rounds 2 --matmul-seconds 1)
fi
run_step throughput "$L" python benchmarks/throughput.py --device "$DEVICE" --configs dcgan28 \
    --batch-sizes 64,256 --variants fp32,fp32-contiguous,bf16,bf16-contiguous "${TP_OPTS[@]}" \
    --data-dir "$GANCLI_DATA_DIR" --out "$OUT/$TAG-throughput.json"

# -- (c) the README job and its evaluation ------------------------------------------------------
if ((QUICK)); then LENGTH=(--steps 200); EVAL_N=(-n 2048); else LENGTH=(--epochs 5); EVAL_N=(); fi
run_step train "$(limit_for train)" gan train --dataset mnist --arch dcgan "${LENGTH[@]}" --device "$DEVICE"
# the run (config.json meta, last metrics); a run stopped by the timeout has checkpointed and is evaluated too
timeout 60 gan runs show latest --json >"$LOGS/train-run.json" 2>>"$LOGS/runs-show.log"
STEP_STDOUT="$OUT/$TAG-evaluate.json" run_step evaluate "$(limit_for evaluate)" \
    gan evaluate latest --json "${EVAL_N[@]}" --device "$DEVICE"

# -- (d) --nproc 1, and torchrun --------------------------------------------------------------
if ((QUICK)); then SHORT=(--steps 20 --limit 4096); else SHORT=(--steps 200); fi
run_step nproc "$(limit_for nproc)" gan train --nproc 1 --dataset mnist --arch dcgan "${SHORT[@]}" --device "$DEVICE" &&
    timeout 60 gan runs show latest --json >"$LOGS/nproc-run.json" 2>>"$LOGS/runs-show.log"
run_step torchrun "$(limit_for torchrun)" torchrun --standalone --nproc-per-node 1 -m gancli train \
    --dataset mnist --arch dcgan "${SHORT[@]}" --device "$DEVICE" &&
    timeout 60 gan runs show latest --json >"$LOGS/torchrun-run.json" 2>>"$LOGS/runs-show.log"
if [[ "$DEVICE" == cuda ]] && ((NGPU >= 2)); then  # several GPUs: real DDP over NCCL
    run_step nproc2 "$(limit_for torchrun)" gan train --nproc 2 --dataset mnist --arch dcgan "${SHORT[@]}" \
        --device cuda &&
        timeout 60 gan runs show latest --json >"$LOGS/nproc2-run.json" 2>>"$LOGS/runs-show.log"
fi

[[ -n "$UTIL_PID" ]] && kill "$UTIL_PID" 2>/dev/null && UTIL_PID=

# -- the summary ------------------------------------------------------------------------------
"$PYTHON" - "$OUT" "$TAG" "$LOGS" "$DEVICE" "$QUICK" "$BUDGET_S" "$T0" <<'EOF'
import json, os, platform, re, socket, sys, time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

out, tag, logs, device, quick, budget, t0 = sys.argv[1:8]
out, logs, quick, budget, t0 = Path(out), Path(logs), quick == "1", int(budget), float(t0)


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def log(name):
    try:
        return (logs / f"{name}.log").read_text(errors="replace")
    except OSError:
        return ""


def tail(name, n=8):
    lines = [ln for ln in log(name).splitlines() if ln.strip()]
    return lines[-n:]


def write(name, doc):
    path = out / f"{tag}-{name}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path.name


util = []  # (time, util %, memory MiB, power W)
for line in (logs / "gpu-util.csv").read_text().splitlines() if (logs / "gpu-util.csv").exists() else []:
    parts = [p.strip() for p in line.split(",")]
    try:
        util.append((float(parts[0]), float(parts[1]), float(parts[2]), float(parts[3]) if len(parts) > 3 else None))
    except (ValueError, IndexError):
        pass

steps, files = [], []
for row in (logs / "steps.tsv").read_text().splitlines():
    name, rc, start, end, limit, command = row.split("\t", 5)
    start, end = float(start), float(end)
    if rc == "skipped":
        status = "skipped (no time left in the budget)"
    elif rc == "0":
        status = "ok"
    elif rc in ("124", "137"):
        status = f"timeout after {limit} s"
    else:
        status = f"failed (exit {rc})"
    step = {"name": name, "status": status, "ok": rc == "0", "exit_code": None if rc == "skipped" else int(rc),
            "wall_s": round(end - start, 1), "limit_s": int(limit), "command": command, "log": f"{tag}-logs/{name}.log"}
    window = [u for u in util if start <= u[0] <= end]
    if window:
        step["gpu_util_pct_mean"] = round(sum(u[1] for u in window) / len(window), 1)
        step["gpu_util_pct_max"] = max(u[1] for u in window)
        step["gpu_mem_used_mib_max"] = max(u[2] for u in window)
        step["gpu_util_samples"] = len(window)
    if not step["ok"]:
        step["output_tail"] = tail(name)
    steps.append(step)
by = {s["name"]: s for s in steps}

env = load(out / f"{tag}-env.json") or {}
if env:
    files.append(f"{tag}-env.json")

# (a) pytest
if (logs / "pytest.xml").exists():
    try:
        root = ET.parse(logs / "pytest.xml").getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        cases = []
        for case in suite.iter("testcase"):
            outcome, detail = "passed", None
            for kind in ("failure", "error", "skipped"):
                el = case.find(kind)
                if el is not None:
                    outcome, detail = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind], el.get("message")
            cases.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                          "seconds": float(case.get("time") or 0), **({"message": detail} if detail else {})})
        counts = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failed", "error", "skipped")}
        doc = {"command": by.get("pytest", {}).get("command"), "counts": counts, "tests": cases}
        files.append(write("pytest", doc))
        if "pytest" in by:
            by["pytest"]["counts"] = counts
            if device == "cuda" and by["pytest"]["ok"] and cases and counts["skipped"] == len(cases):
                by["pytest"].update(ok=False, status="failed (every cuda test skipped: no GPU visible to torch)")
            elif not cases and by["pytest"]["ok"]:
                by["pytest"].update(ok=False, status="failed (no cuda test collected)")
    except (ET.ParseError, OSError, AttributeError) as e:
        by.get("pytest", {})["junit_error"] = str(e)

# (b) throughput
tp = load(out / f"{tag}-throughput.json")
throughput = {}
if tp:
    files.append(f"{tag}-throughput.json")
    for dev, peak in tp.get("matmul_peak", {}).items():
        throughput[f"matmul_peak_tflops_{dev}"] = {k.replace("_peak_tflops", "").replace("peak_tflops", "fp32"): v
                                                   for k, v in peak.items() if k.endswith("tflops")}
    for r in tp.get("results", []):
        key = f"{r['device']}_{r['arch']}{r['pixels']}_b{r['batch_size']}"
        loops = {n: v for n, v in r.items() if isinstance(v, dict) and "img_per_sec" in v}
        throughput[key] = {
            "img_per_sec": {n: v["img_per_sec"] for n, v in loops.items()},
            "speedup_vs_reference": {n: round(v["img_per_sec"] / loops["reference"]["img_per_sec"], 3)
                                     for n, v in loops.items() if n != "reference"},
            "gpu_util_pct": {n: v.get("gpu_util_pct") for n, v in loops.items() if "gpu_util_pct" in v} or None,
            "peak_cuda_mem_mb": {n: v.get("peak_cuda_mem_mb") for n, v in loops.items() if "peak_cuda_mem_mb" in v} or None,
        }
    if "throughput" in by:
        by["throughput"]["figures"] = throughput

# (c) train and evaluate
def done_line(name):
    m = re.search(r"done: (\d+) steps; this session (?:(\d+)h)?(?:(\d+)m)?(\d+)s at (\d+) img/s", log(name))
    if not m:
        return None
    h, mi, s = (int(x) if x else 0 for x in m.group(2, 3, 4))
    return {"steps": int(m.group(1)), "training_s": h * 3600 + mi * 60 + s, "img_per_sec": int(m.group(5)),
            "line": m.group(0)}


def start_device(name):
    m = re.search(r", device (\S+)( \(auto\))?", log(name))
    return m.group(1) if m else None


def run_info(name):
    doc = load(logs / f"{name}-run.json") or {}
    meta = doc.get("meta")
    if not meta:
        return None
    info = {k: meta.get(k) for k in ("device", "world_size", "torch_version", "command")}
    info["last_metrics"] = doc.get("last_metrics")
    return info


train = {"done": done_line("train"), "device": start_device("train"), "run": run_info("train")}
if "train" in by:
    train.update(command=by["train"]["command"], status=by["train"]["status"], wall_s=by["train"]["wall_s"],
                 **{k: by["train"][k] for k in ("gpu_util_pct_mean", "gpu_util_pct_max", "gpu_mem_used_mib_max")
                    if k in by["train"]})
    by["train"]["done"] = train["done"]
files.append(write("train", train))
ev = load(out / f"{tag}-evaluate.json")
if ev is not None:
    files.append(f"{tag}-evaluate.json")
    if "evaluate" in by:
        by["evaluate"]["figures"] = {k: ev[k] for k in ("step", "fd_lenet", "is_lenet", "classes_covered",
                                                        "kl_to_uniform", "fid", "is", "seconds") if k in ev}
elif "evaluate" in by and by["evaluate"]["ok"]:
    by["evaluate"].update(ok=False, status="failed (no JSON on stdout)")

# (d) --nproc 1 and torchrun
nproc = {}
for name in ("nproc", "torchrun", "nproc2"):
    if name in by:
        nproc[name] = {"command": by[name]["command"], "status": by[name]["status"], "wall_s": by[name]["wall_s"],
                       "done": done_line(name), "device": start_device(name), "run": run_info(name)}
        by[name]["done"] = nproc[name]["done"]
files.append(write("nproc", nproc))

if util:
    files.append(write("gpu-util", {"method": "nvidia-smi --query-gpu=utilization.gpu,memory.used,power.draw every 0.5 s",
                                    "columns": ["unix_time", "util_pct", "memory_used_mib", "power_w"],
                                    "samples": util}))

# targets
na = "not applicable: a --quick dry run" + (" on the CPU" if device == "cpu" else "") if quick or device != "cuda" else None
targets = {}
ratios = {}
for b in (64, 256):
    fig = throughput.get(f"{device}_dcgan28_b{b}", {}).get("speedup_vs_reference", {})
    if "gancli_bf16" in fig:
        ratios[f"batch_{b}"] = fig["gancli_bf16"]
target = {"target": ">= 5x the reference loop's img/s on the same GPU (gancli --precision bf16, channels_last; "
                    "MNIST DCGAN 28 px; batch 64 is the README's)", "measured": ratios or None}
target["met"] = None if na or "batch_64" not in ratios else ratios["batch_64"] >= 5.0
if na:
    target["note"] = na
targets["gancli_bf16_channels_last_vs_reference"] = target
done = train.get("done")
target = {"target": "< 60 s of training (the 'done:' line of gan train --dataset mnist --arch dcgan --epochs 5)",
          "training_s": done["training_s"] if done else None, "wall_s": train.get("wall_s")}
target["met"] = None if na or not done else done["training_s"] < 60
if na:
    target["note"] = na + " (--steps 200 instead of --epochs 5)"
targets["readme_job_training_under_60s"] = target

gpus = env.get("gpus") or []
cpu = platform.processor()
try:
    cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
               if ln.startswith("model name"))
except (OSError, StopIteration):
    pass
summary = {
    "check": "gancli device check (issue #16): scripts/device_check.sh" + (" --quick" if quick else ""),
    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    "device": device, "quick": quick,
    "machine": {"hostname": socket.gethostname(), "platform": platform.platform(), "cpu": cpu,
                "cpu_count": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
    "gpu": ({"name": gpus[0]["name"], "memory_gib": gpus[0]["memory_gib"],
             "compute_capability": gpus[0]["compute_capability"], "count": len(gpus)} if gpus else None),
    "torch": env.get("torch"), "torch_cuda": env.get("torch_cuda"), "torchvision": env.get("torchvision"),
    "python": env.get("python"),
    "budget_s": budget, "wall_s": round(time.time() - t0, 1),
    "steps": steps, "failed_steps": [s["name"] for s in steps if not s["ok"]],
    "ok": all(s["ok"] for s in steps),
    "targets": targets,
    "throughput": throughput or None,
    "train": train, "evaluate": ev, "nproc": nproc,
    "files": files, "logs": f"{tag}-logs/",
}
path = write("summary", summary)
print(f"\n{'step':<11} {'status':<38} {'wall_s':>7}")
for s in steps:
    print(f"{s['name']:<11} {s['status']:<38} {s['wall_s']:>7}")
print(f"total {summary['wall_s']} s (budget {budget} s); summary: {out / path}")
for name, t in targets.items():
    print(f"target {name}: met={t['met']} " + json.dumps({k: v for k, v in t.items() if k not in ('target', 'met')}))
sys.exit(0 if summary["ok"] else 1)
EOF
rc=$?
exit "$rc"
