import json
import os
import subprocess
import sys
import time

import pytest

from gancli.errors import GancliError, UsageError
from gancli.fsutil import atomic_path, atomic_write_text
from gancli.runs import Run, RunStore


def _fake_run(store: RunStore) -> Run:
    run = store.create()
    run.write_config({"data": {"dataset": "mnist"}, "model": {"arch": "mlp"}, "loss": {"name": "bce"},
                      "train": {"steps": 1}}, {"created": "now"})
    return run


def test_ids_increment_and_are_not_reused_after_delete(tmp_path):
    store = RunStore(tmp_path)
    a, b = _fake_run(store), _fake_run(store)
    assert (a.id, b.id) == ("run-1", "run-2")
    store.remove(b)
    assert _fake_run(store).id == "run-3"
    assert store.resolve("latest").id == "run-3"
    assert store.resolve("1").id == "run-1"


@pytest.mark.parametrize("ref", ["../run-1", "/etc", "run-1/..", "run-x", ""])
def test_resolve_rejects_names_outside_the_store(tmp_path, ref):
    store = RunStore(tmp_path)
    _fake_run(store)
    with pytest.raises(UsageError, match="unknown run"):
        store.resolve(ref)


def test_lock_refuses_a_second_writer_and_takes_over_stale_locks(tmp_path):
    run = _fake_run(RunStore(tmp_path))
    with run.lock():
        assert run.lock_owner()["pid"] == os.getpid()
        with pytest.raises(GancliError, match=f"is in use by pid {os.getpid()}"):
            with run.lock():
                pass
        with pytest.raises(GancliError, match="refusing to delete run-1: it is being trained"):
            RunStore(tmp_path).remove(run)
    assert not (run.path / ".lock").exists()
    # a lock left by a dead process on this host is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    import socket

    (run.path / ".lock").write_text(json.dumps({"pid": int(dead), "host": socket.gethostname()}))
    assert run.lock_owner() is None
    with run.lock():
        pass


def test_stale_temp_files_are_removed_when_a_run_is_locked(tmp_path):
    run = _fake_run(RunStore(tmp_path))
    stale = run.checkpoints_dir / ".step-5.safetensors.tmp-999999999"
    stale.write_bytes(b"partial")
    mine = run.checkpoints_dir / f".step-6.safetensors.tmp-{os.getpid()}"
    mine.write_bytes(b"in progress")
    with run.lock():
        pass
    assert not stale.exists() and mine.exists()


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]


def test_metrics_tolerate_torn_last_line_and_truncate(tmp_path):
    run = _fake_run(RunStore(tmp_path))
    for s in (1, 2, 3):
        run.append_metrics({"step": s})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 4, "loss')
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3]
    run.truncate_metrics(2)
    assert [r["step"] for r in run.read_metrics()] == [1, 2]


def test_checkpoint_selection(tmp_path):
    run = _fake_run(RunStore(tmp_path))
    with pytest.raises(GancliError, match="has no checkpoints yet"):
        run.checkpoint_path()
    for s in (10, 2, 30):
        (run.checkpoints_dir / f"step-{s}.safetensors").write_bytes(b"x")
    assert run.checkpoint_path().name == "step-30.safetensors"
    assert run.checkpoint_path(2).name == "step-2.safetensors"
    with pytest.raises(UsageError, match="valid choices: latest, 2, 10, 30"):
        run.checkpoint_path(3)
    assert [p.name for p in run.prune_checkpoints(2)] == ["step-2.safetensors"]


DAMAGES = {
    "meta null": lambda d: d.__setitem__("meta", None),
    "config null": lambda d: d.__setitem__("config", None),
    "no config": lambda d: d.pop("config"),
    "no model section": lambda d: d["config"].pop("model"),
    "format_version x": lambda d: d.__setitem__("format_version", "x"),
    "config not a dict of sections": lambda d: d.__setitem__("config", {"model": 3}),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_one_damaged_run_never_breaks_the_store(home, damage):
    """runs list shows an error row, runs show explains in one line, a resume fails and
    changes nothing on disk."""
    import json

    from typer.testing import CliRunner

    from gancli.cli import app
    from gancli.config import RunConfig
    from gancli.runs import RunStore

    store = RunStore(home)
    good, bad = store.create(), store.create()
    for r in (good, bad):
        r.write_config(RunConfig().to_dict(), {"created": "2026-11-29T00:00:00+00:00"})
    doc = json.loads(bad.config_path.read_text())
    DAMAGES[damage](doc)
    bad.config_path.write_text(json.dumps(doc))
    before = {p: p.read_bytes() for p in bad.path.rglob("*") if p.is_file()}
    runner = CliRunner()
    listed = runner.invoke(app, ["runs", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["id"]: r for r in json.loads(listed.output)}
    assert "error" in rows[bad.id] and "damaged" in rows[bad.id]["error"] and "error" not in rows[good.id]
    assert runner.invoke(app, ["runs", "list"]).exit_code == 0
    shown = runner.invoke(app, ["runs", "show", bad.id])
    assert shown.exit_code == 1 and "config.json" in shown.output and "Traceback" not in shown.output
    resumed = runner.invoke(app, ["train", "--resume", bad.id, "--steps", "5"])
    assert resumed.exit_code != 0 and "Traceback" not in resumed.output
    assert {p: p.read_bytes() for p in bad.path.rglob("*") if p.is_file()} == before


def test_metrics_readers_skip_bad_lines_with_a_count(tmp_path):
    from gancli.runs import Run

    run = Run(tmp_path / "run-1")
    run.path.mkdir()
    good = [{"kind": "train", "step": 1, "loss_d": 1.0}, {"kind": "eval", "step": 2, "fd_lenet": 3.0}]
    lines = [json.dumps(good[0]).encode(), b'{"kind": "train", "step": null}', b'{"step": "abc"}', b"[1, 2]",
             b'{"step": true}', b'{"step": 3, "kind": 7}', b"\xff\xfe not utf-8", json.dumps(good[1]).encode(),
             b'{"kind": "train", "st']
    run.metrics_path.write_bytes(b"\n".join(lines))
    records, skipped = run.read_metrics_report()
    assert records == good and skipped == 7
    run.truncate_metrics(1)  # no crash on the damaged lines; keeps the valid ones up to step 1
    assert run.read_metrics() == good[:1]


def test_newest_metrics_record_reads_back_from_the_end_only(tmp_path):
    """``gan runs show``'s reader: the newest record of a kind, and the damaged lines met on the
    way back to it, never reading the lines before it (a 1 GB file took 49 s and 7.7 GB in full)."""
    from gancli.runs import Run

    run = Run(tmp_path / "run-1")
    run.path.mkdir()
    head = [b"\xff\xfe damaged long ago"] + [json.dumps({"kind": "train", "step": s}).encode() for s in range(1, 2000)]
    tail = [json.dumps({"kind": "eval", "step": 1999, "fd_lenet": 4.0}).encode(), b'{"step": "abc"}',
            b'{"kind": "train", "st']
    run.metrics_path.write_bytes(b"\n".join(head + tail))
    is_train = lambda r: r.get("kind", "train") == "train"  # noqa: E731
    assert run.newest_metrics_record(chunk=256, where=is_train) == ({"kind": "train", "step": 1999}, 2)
    assert run.newest_metrics_record(chunk=256) == ({"kind": "eval", "step": 1999, "fd_lenet": 4.0}, 2)
    assert run.last_metrics_record(chunk=256, where=is_train) == {"kind": "train", "step": 1999}
    assert run.read_metrics_report()[1] == 3  # the whole file's count, for gan report
    # a kind the file lacks: back to the start, counting every damaged line, holding one chunk
    assert run.newest_metrics_record(chunk=256, where=lambda r: r.get("kind") == "stop") == (None, 3)
    assert Run(tmp_path / "none").newest_metrics_record() == (None, 0)


def test_metrics_of_some_kinds_parse_only_their_lines(tmp_path):
    from gancli.runs import Run

    run = Run(tmp_path / "run-1")
    run.path.mkdir()
    monitor = {"kind": "monitor", "step": 4, "symptoms": []}
    evaluation = {"kind": "eval", "step": 4, "fd_lenet": 3.5}
    lines = [json.dumps({"kind": "train", "step": s}).encode() for s in range(1, 5)]
    lines += [json.dumps(monitor).encode(), b'{"kind": "monitor", "step": "x"}', b"\xff torn",
              json.dumps(evaluation).encode(), b'{"step": 5, "note": "\\"kind\\": \\"monitor\\""}']
    run.metrics_path.write_bytes(b"\n".join(lines))
    assert run.read_metrics_report(kinds=("monitor",)) == ([monitor], 1)  # damaged: only lines naming monitor
    assert run.read_metrics_report(kinds=("eval", "monitor")) == ([monitor, evaluation], 1)
    assert run.read_metrics_report()[1] == 2
    with pytest.raises(ValueError, match="training records"):
        run.read_metrics_report(kinds=("train",))


def test_resume_rewrites_metrics_streaming(tmp_path):
    """truncate_metrics and set_aside_metrics hold one line, not the file's records (a resume of a
    long run), with the same result as before: valid records at or before the step kept, the
    ones past it set aside, damaged lines dropped."""
    import tracemalloc

    from gancli.runs import Run

    run = Run(tmp_path / "run-1")
    run.path.mkdir()
    n = 40_000
    body = "".join(json.dumps({"kind": "train", "step": s, "loss_d": 0.5, "loss_g": 1.5}) + "\n" for s in range(1, n + 1))
    run.metrics_path.write_text(body + '{"kind": "eval", "step": 39990, "fd_lenet": 4.0}\n{"torn')
    assert run.set_aside_metrics(n) is None  # nothing past the last step
    tracemalloc.start()
    try:
        past = run.set_aside_metrics(n - 100)
        run.truncate_metrics(n - 100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak / 2**20:.1f} MiB held"  # the records as dicts: ~25 MiB
    assert past == run.path / f"metrics.past-step-{n - 100}.jsonl"
    assert [json.loads(x)["step"] for x in past.read_text().splitlines()] == [*range(n - 99, n + 1), 39990]
    kept = run.read_metrics_report()
    assert kept[1] == 0 and [r["step"] for r in kept[0]] == list(range(1, n - 99))
    assert run.metrics_path.read_text().splitlines()[0] == json.dumps({"kind": "train", "step": 1, "loss_d": 0.5,
                                                                        "loss_g": 1.5})


def test_append_after_a_torn_line_stands_alone(tmp_path):
    from gancli.runs import Run

    run = Run(tmp_path / "run-1")
    run.path.mkdir()
    run.metrics_path.write_text('{"kind": "train", "step": 1}\n{"kind": "train", "st')
    run.append_metrics({"kind": "eval", "step": 5, "fd_lenet": 2.5})
    assert run.read_metrics()[-1] == {"kind": "eval", "step": 5, "fd_lenet": 2.5}
    assert run.read_metrics_report()[1] == 1


def test_runs_show_and_resume_survive_damaged_metrics(home, mnist_dir):
    from typer.testing import CliRunner

    from gancli.cli import app
    from gancli.runs import RunStore

    runner = CliRunner()
    tiny = ["--arch", "mlp", "--limit", "64", "-b", "16", "--sample-every", "0", "--device", "cpu"]
    assert runner.invoke(app, ["-q", "train", *tiny, "--steps", "2"]).exit_code == 0
    (run,) = RunStore(home).list()
    with open(run.metrics_path, "ab") as f:
        f.write(b'{"kind": "train", "step": null}\n{"step": "abc"}\n\xff\xfe\n')
    shown = runner.invoke(app, ["runs", "show", run.id])
    assert shown.exit_code == 0 and "skipped 3 damaged line(s)" in shown.output
    again = runner.invoke(app, ["-q", "train", "--resume", run.id, "--steps", "4"])
    assert again.exit_code == 0, again.output
    assert [r["step"] for r in run.read_metrics() if r["kind"] == "train"][-1] == 4


def test_failed_resume_records_no_resume_entry(home, mnist_dir, monkeypatch):
    from typer.testing import CliRunner

    from gancli.cli import app
    from gancli.engine import state
    from gancli.errors import GancliError
    from gancli.runs import RunStore

    runner = CliRunner()
    tiny = ["--arch", "mlp", "--limit", "64", "-b", "16", "--sample-every", "0", "--device", "cpu"]
    assert runner.invoke(app, ["-q", "train", *tiny, "--steps", "2"]).exit_code == 0
    (run,) = RunStore(home).list()
    before = run.config_path.read_bytes()

    def broken(t, ckpt):
        raise GancliError("checkpoint does not match the run")

    monkeypatch.setattr(state, "restore", broken)
    r = runner.invoke(app, ["-q", "train", "--resume", run.id, "--steps", "4"])
    assert r.exit_code == 1
    assert run.config_path.read_bytes() == before


@pytest.mark.parametrize("content", ["", "{", '{"pid": "abc"}', '{"pid": null}', '{"pid": 1e20}', "[1]",
                                     '{"pid": 99999999, "host": "elsewhere"}', "\x00\xff"])
def test_any_leftover_lock_file_is_taken_over(tmp_path, content):
    """Whatever a killed process (or a damaged disk) left in .lock, nobody holds it: it is taken over."""
    run = Run(tmp_path / "run-1")
    run.path.mkdir()
    (run.path / ".lock").write_text(content, errors="surrogateescape")
    assert run.lock_owner() is None
    with run.lock():
        assert run.lock_owner()["pid"] == os.getpid()
    assert not (run.path / ".lock").exists()


def _contend(path: str, start: float, out: str) -> None:
    run = Run(path)
    while time.time() < start:
        pass
    try:
        with run.lock():
            t0 = time.time()
            time.sleep(0.01)
            t1 = time.time()
        result = f"{t0} {t1}\n"
    except GancliError:
        result = "busy\n"
    with open(out, "a") as f:
        f.write(result)


@pytest.mark.parametrize("trials", [40, pytest.param(200, marks=pytest.mark.slow)])
def test_two_processes_never_both_take_over_a_stale_lock(tmp_path, trials):
    """``trials`` trials (40 in the default suite, 200 in the slow one): two processes race for
    a stale lock at the same instant; their holds never overlap."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    overlaps = 0
    for trial in range(trials):
        run = Run(tmp_path / f"run-{trial}")
        run.path.mkdir()
        (run.path / ".lock").write_text(json.dumps({"pid": 99999999, "host": "gone"}))
        out = tmp_path / f"out-{trial}"
        start = time.time() + 0.05
        procs = [ctx.Process(target=_contend, args=(str(run.path), start, str(out))) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        holds = [tuple(map(float, x.split())) for x in out.read_text().split("\n") if x and x != "busy"]
        assert len(out.read_text().splitlines()) == 2 and holds
        if len(holds) == 2:
            (a0, a1), (b0, b1) = holds
            overlaps += a0 < b1 and b0 < a1
    assert overlaps == 0


def test_runs_unlock_refuses_a_live_owner(home):
    from typer.testing import CliRunner

    from gancli.cli import app
    from gancli.config import RunConfig

    run = RunStore(home).create()
    run.write_config(RunConfig().to_dict(), {})
    runner = CliRunner()
    with run.lock():
        r = runner.invoke(app, ["runs", "unlock", run.id])
        assert r.exit_code == 1 and "is being trained by pid" in r.output
    (run.path / ".lock").write_text("")
    r = runner.invoke(app, ["runs", "unlock", run.id])
    assert r.exit_code == 0 and "removed the lock file" in r.output and not (run.path / ".lock").exists()


def test_runs_list_status_conditional_and_80_columns(home, mnist_dir, monkeypatch):
    """Status of each run (finished / stopped / diverged / collapsed / running / damaged) and
    the conditional marker, in a table that fits 80 columns with no word broken."""
    import json as json_
    import shutil

    from typer.testing import CliRunner

    from gancli.cli import app
    from gancli.runs import RunStore

    runner = CliRunner()
    base = ["train", "--limit", "128", "--batch-size", "32", "--ngf", "8", "--ndf", "8", "--device", "cpu",
            "--sample-every", "0", "--steps", "4", "--checkpoint-every", "2", "--keep", "0"]
    for extra in ([], ["--conditional"], [], [], [], [], []):
        assert runner.invoke(app, [*base, *extra]).exit_code == 0
    store = RunStore(home)
    runs = {r.id: r for r in store.list()}
    for i in (3, 4, 5, 6):  # back to step 2 of 4
        (runs[f"run-{i}"].checkpoints_dir / "step-4.safetensors").unlink()
    runs["run-4"].append_metrics({"kind": "stop", "step": 2, "reason": "diverged", "message": "x"})
    runs["run-5"].append_metrics({"kind": "stop", "step": 2, "reason": "collapse", "message": "x"})
    (runs["run-6"].path / "config.json").write_text("{")
    runs["run-2"].append_metrics({"kind": "eval", "step": 4, "fd_lenet": 3.4412, "is_lenet": 9.6, "results": []})
    runs["run-2"].append_metrics({"kind": "train", "step": 4, "loss_d": 1.0})  # the eval need not be the newest
    for _, path in runs["run-7"].checkpoints():  # failed before its first checkpoint (issue #26)
        path.unlink()
    monkeypatch.setenv("COLUMNS", "80")
    with runs["run-1"].lock():
        doc = json_.loads(runner.invoke(app, ["runs", "list", "--json"]).stdout)
        table = runner.invoke(app, ["runs", "list"]).stdout
    assert [r.get("status") for r in doc] == ["running", "finished", "stopped", "diverged", "collapsed", None,
                                              "failed"]
    assert [r.get("conditional") for r in doc][:2] == [False, True] and doc[5]["error"].startswith("damaged")
    assert max(len(line) for line in table.splitlines()) <= 80, table
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["id", "status"])
    rows = [line.split() for line in lines[header + 1:]]
    assert rows[0][:5] == ["run-1", "running", "mnist", "dcgan", "bce"]
    assert rows[1][:6] == ["run-2", "finished", "mnist", "dcgan", "bce", "cond"] and rows[1][6] == "4/4"
    assert [r[1] for r in rows[2:]] == ["stopped", "diverged", "collapsed", "damaged", "failed"]
    assert rows[2][5] == "2/4"
    assert rows[1][7:9] == ["FD-LeNet", "3.44"] and rows[0][6] != "FD-LeNet"  # the newest evaluation's headline
    assert doc[1]["quality"] == {"metric": "fd_lenet", "name": "FD-LeNet", "value": 3.4412, "step": 4}
    assert doc[0]["quality"] is None
    shutil.rmtree(home / "runs")


def test_prune_keeps_protected_steps(tmp_path):
    run = RunStore(tmp_path).create()
    for step in (2, 4, 6, 8):
        (run.checkpoints_dir / f"step-{step}.safetensors").write_bytes(b"x")
    assert [p.name for p in run.prune_checkpoints(1, protect={4})] == ["step-2.safetensors", "step-6.safetensors"]
    assert [s for s, _ in run.checkpoints()] == [4, 8]


def test_latest_skips_runs_without_a_checkpoint_and_says_so(home, mnist_dir, tmp_path):
    """Issue #26: a newer run that failed before its first checkpoint (here: its checkpoints
    removed) is not what gan sample / evaluate / export latest load: they take the newest run
    with a checkpoint and name the skipped one."""
    from typer.testing import CliRunner

    from gancli.cli import app
    from gancli.runs import RunStore

    runner = CliRunner()
    base = ["-q", "train", "--arch", "mlp", "--clusters", "0", "--limit", "128", "--batch-size", "32",
            "--device", "cpu", "--sample-every", "0", "--steps", "2"]
    assert runner.invoke(app, base).exit_code == 0
    assert runner.invoke(app, base).exit_code == 0
    newer = RunStore(home).resolve("run-2")
    for _, path in newer.checkpoints():
        path.unlink()
    r = runner.invoke(app, ["sample", "latest", "-n", "4", "-o", str(tmp_path / "g.png"), "--json"])
    assert r.exit_code == 0, r.output
    assert "latest: using run-1, the newest run with a checkpoint (run-2 has none" in r.stderr
    assert "/runs/run-1/checkpoints/" in json.loads(r.stdout)["source"]
    r = runner.invoke(app, ["export", "latest", "--format", "safetensors", "-o", str(tmp_path / "bundle")])
    assert r.exit_code == 0 and "using run-1" in r.output
    r = runner.invoke(app, ["sample", "run-2", "-n", "4", "-o", str(tmp_path / "h.png")])  # asked by name: the error
    assert r.exit_code == 1 and "run run-2 has no checkpoints yet" in r.output


def test_runs_rm_of_a_symlinked_run_says_what_to_do(home):
    """Issue #26: `gan runs rm` of a run that is a symbolic link (inside the store) gave shutil's
    "Cannot call rmtree on a symbolic link"; now a one-line refusal naming both ways out."""
    from typer.testing import CliRunner

    from gancli.cli import app
    from gancli.config import RunConfig

    run = RunStore(home).create()
    run.write_config(RunConfig().to_dict(), {})
    link = run.path.parent / "run-7"
    link.symlink_to(run.path)
    r = CliRunner().invoke(app, ["runs", "rm", "run-7", "--yes"])
    assert r.exit_code == 2, r.output
    assert f"refusing to delete run-7: it is a symbolic link to {run.path.resolve()}" in r.output
    assert f"`rm {link}`" in r.output and "`gan runs rm run-1`" in r.output
    assert link.is_symlink() and run.path.is_dir()


@pytest.mark.parametrize("chunk", [7, 64, 65536])
def test_last_metrics_record_reads_from_the_end_like_the_whole_file(tmp_path, chunk):
    """Issue #26 (run store at scale): runs list reads a run's newest record from the end of
    metrics.jsonl; it must be the record a full read lists last, whatever the damage at the end."""
    run = Run(tmp_path / "run-1")
    run.path.mkdir()
    assert run.last_metrics_record(chunk) is None  # no file
    lines = [json.dumps({"kind": "train", "step": s, "loss_d": 0.5}) for s in range(1, 40)]
    tails = ["", "\n", "\n\n", '{"kind": "stop", "step": 40, "reason": "diverged"}\n',
             '{"kind": "stop", "step": 40, "reason": "diverged"}', '{"kind": "train", "st', "\xff\xfe torn\n",
             '{"step": -1}\n[1, 2]\n']
    for tail in tails:
        run.metrics_path.write_bytes(("\n".join(lines) + "\n" + tail).encode("utf-8", "surrogateescape"))
        assert run.last_metrics_record(chunk) == run.read_metrics()[-1], tail
    run.metrics_path.write_text("garbage\n\n")
    assert run.last_metrics_record(chunk) is None and run.read_metrics() == []


def test_read_metrics_keeps_every_kth_training_record_and_all_others(tmp_path):
    """Issue #26: gan report on a huge metrics.jsonl reads it line by line and keeps every k-th
    training record (and the newest), every evaluation, monitor and stop record."""
    run = Run(tmp_path / "run-1")
    run.path.mkdir()
    lines = []
    for s in range(1, 1001):
        lines.append(json.dumps({"kind": "train", "step": s, "loss_d": 0.5}))
        if s % 100 == 0:
            lines.append(json.dumps({"kind": "eval", "step": s, "fd_lenet": 10.0}))
    lines.append("{torn")
    run.metrics_path.write_text("\n".join(lines) + "\n")
    full, skipped = run.read_metrics_report()
    assert len(full) == 1010 and skipped == 1
    few, skipped = run.read_metrics_report(max_train_records=100)  # 1011 lines: every 11th train record
    trains = [r["step"] for r in few if r["kind"] == "train"]
    assert trains == [*range(1, 1001, 11), 1000] and skipped == 1
    assert [r["step"] for r in few if r["kind"] == "eval"] == list(range(100, 1001, 100))
    assert run.read_metrics_report(max_train_records=5000) == (full, 1)  # short files: everything
