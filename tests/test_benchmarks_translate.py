"""benchmarks/translate_throughput.py: its --quick smoke run times gan train's own steps (the trainer
of --task paired and --task unpaired), its FLOP count, and the name of its result file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "translate_throughput.py"


def _module():
    return load_script("benchmarks/translate_throughput.py")


@pytest.mark.slow  # ~10 s; the FLOP count of a step stays in the default suite
def test_quick_run_measures_both_training_steps(tmp_path):
    out = tmp_path / "quick.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc == json.loads(proc.stdout)
    assert doc["settings"]["quick"] is True
    assert doc["machine"]["torch"] == torch.__version__ and doc["machine"]["torch_threads"] == 1
    assert [(r["kind"], r["pixels"], r["batch_size"]) for r in doc["results"]] == [("pix2pix", 64, 16),
                                                                                ("cyclegan", 64, 1)]
    # the loop's own steps, built as gan train builds them (the task's recipe, EMA on)
    assert [(r["task"], r["arch"], r["step"]) for r in doc["results"]] == [
        ("paired", "unet", "TranslateStep"), ("unpaired", "cyclegan", "CycleGANTrainStep")]
    for r in doc["results"]:
        assert r["img_per_sec"] > 0 and r["gflop_per_img"] > 0 and r["width"] == 8 and r["ema"] is True
        assert r["img_per_sec"] == sorted(r["img_per_sec_repeats"])[len(r["img_per_sec_repeats"]) // 2]
    assert "l1" in doc["results"][0]["losses_last_step"]  # pix2pix's L1 term
    assert "idt_a" in doc["results"][1]["losses_last_step"]  # the CycleGAN step ran with its identity term
    assert set(doc["summary"]) == {"cpu_pix2pix64_b16_img_per_sec", "cpu_cyclegan64_b1_img_per_sec"}


def test_result_file_name_records_device_cpu_and_torch():
    m = _module()
    amd = {"cpu": "AMD EPYC 7763 64-Core Processor", "cpu_count": 2, "torch": "2.14.1+cpu"}
    assert m.result_name(amd, ["cpu"], {"avx2", "fma"}) == \
        "translate-throughput-cpu-2core-epyc-7763-avx2-torch2.14.1.json"
    intel = {"cpu": "Intel(R) Xeon(R) Platinum 8480+", "cpu_count": 16, "torch": "2.14.1", "gpu": "NVIDIA H200"}
    assert m.result_name(intel, ["cpu", "cuda"], {"avx512f", "amx_bf16"}, "bf16") == \
        "translate-throughput-cuda-h200-16core-xeon-platinum-avx512-amx-torch2.14.1-bf16.json"


def test_flops_are_those_of_a_whole_training_step():
    m = _module()
    # pix2pix at 64 px, batch 16: U-Net depth 6 + 2-layer PatchGAN, D on the fake and the real pair,
    # D's backward, D on the fake pair again for G, G's and D's backward: ~4.7 GFLOP per image
    assert 4.0e9 < m.flops_per_image("pix2pix", 64) < 5.5e9
