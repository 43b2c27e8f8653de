"""The user's thread settings win (issue #27): OMP_NUM_THREADS or `gan --threads N` hold for the
training after UMAP clustering (numba's OpenMP start-up reset torch's pool to all cores)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: 1 thread is also the default")
@pytest.mark.parametrize("how", ["env", pytest.param("flag", marks=pytest.mark.slow)])
def test_one_thread_holds_after_umap_clustering(mnist_dir, tmp_path, how):
    env = {**os.environ, "GANCLI_HOME": str(tmp_path), "NO_COLOR": "1"}
    env.pop("OMP_NUM_THREADS", None)
    env.pop("NUMBA_NUM_THREADS", None)
    args = ["train", "--arch", "mlp", "--limit", "2048", "--clusters", "10", "--cluster-features", "umap",
            "--steps", "2", "--device", "cpu", "--monitor-every", "0", "--sample-every", "0"]
    if how == "env":
        env["OMP_NUM_THREADS"] = "1"
    else:
        args = ["--threads", "1", *args]
    code = ("import sys, torch\nfrom gancli.cli import app\n"
            "try:\n    app(prog_name='gan', args=sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('threads after:', torch.get_num_threads())")
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)
    assert "k-means clusters in a UMAP embedding" in r.stdout, r.stdout + r.stderr
    assert ", 1 CPU thread\n" in r.stdout and "threads after: 1" in r.stdout, r.stdout + r.stderr
