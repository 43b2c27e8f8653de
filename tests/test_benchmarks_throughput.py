"""benchmarks/throughput.py: the profile of a loop's step (the share of matmul / convolution ops and
the rate the step would reach on them alone) and the matmul peak's guard against sizes with no
native kernel."""

from __future__ import annotations

import time

import torch
from conftest import load_script


def _module():
    return load_script("benchmarks/throughput.py")


class _Loop:
    """A step of one matrix product, plus element-wise work and random numbers outside it."""

    def __init__(self, extra: int):
        self.a, self.b = torch.randn(256, 256), torch.randn(256, 256)
        self.extra = extra

    def step(self) -> int:
        out = self.a @ self.b
        for _ in range(self.extra):
            out = out.sin().add_(torch.rand(256, 256))
        return 8


def test_breakdown_splits_the_step_and_bounds_its_rate():
    tp = _module()
    flops_per_image = 2 * 256**3 / 8
    lean, heavy = tp.breakdown(_Loop(0), flops_per_image, steps=5), tp.breakdown(_Loop(30), flops_per_image, steps=5)
    for prof in (lean, heavy):
        assert set(prof["self_time_shares"]) == {"matmul_conv", "optimizer", "rng", "other"}
        assert abs(sum(prof["self_time_shares"].values()) - 1) < 0.01
        assert prof["self_time_shares"]["matmul_conv"] > 0 and prof["matmul_ops_gflops"] > 0
        # the ceiling counts only the matmul's time: never below the rate measured around the profile
        assert prof["ceiling_img_per_sec"] >= 5 * 8 / prof["profiled_seconds"]
    assert heavy["self_time_shares"]["rng"] > 0 and heavy["self_time_shares"]["other"] > 0
    assert heavy["self_time_shares"]["matmul_conv"] < lean["self_time_shares"]["matmul_conv"]


def test_matmul_peak_skips_a_size_one_product_of_which_would_outlast_its_time(monkeypatch):
    """bf16 on an AVX2 CPU runs at ~1 GFLOP/s: one 4096 x 4096 product takes two minutes, so the
    peak stops at the size whose rate says the next one would take longer than ``seconds``."""
    tp = _module()
    sizes_run = []
    real_mm = torch.mm

    def slow_mm(a, b):
        sizes_run.append((a.shape[0], a.dtype))
        if a.dtype == torch.bfloat16:  # as if it ran at 10 GFLOP/s: 0.2 s at 1024, 1.7 s at 2048
            time.sleep(2 * a.shape[0] ** 3 / 10e9)
            return real_mm(a.float(), b.float()).to(a.dtype)
        return real_mm(a, b)

    monkeypatch.setattr(torch, "mm", slow_mm)
    peak = tp.matmul_peak(seconds=0.05)
    assert sizes_run[0] == (1024, torch.float32)
    assert {n for n, dtype in sizes_run if dtype == torch.bfloat16} == {1024}
    assert "n = 2048 skipped" in peak["bf16_peak_gflops_note"]
    assert 0 < peak["bf16_peak_gflops"] <= 10
