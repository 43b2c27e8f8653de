"""The run store: ``<home>/runs/run-<N>/`` directories, ``latest``, locking.

Layout of a run (see ``docs/runs.md``)::

    run-7/
      config.json            {"format": "gancli-run", "format_version": 1, "meta": {...}, "config": {...}}
      metrics.jsonl          one JSON object per logged step
      samples/step-<S>.png   fixed-z 8x8 grids
      checkpoints/step-<S>.safetensors
      .lock                  present while a `gan train` owns the run

Torch-free; the home is ``--home`` / ``GANCLI_HOME`` / the platform cache dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock file's pid decides
    fcntl = None  # type: ignore[assignment]

from gancli.errors import GancliError, UsageError, suggestion
from gancli.fsutil import append_line, atomic_path, atomic_write_json, atomic_write_text, pid_alive

RUN_FORMAT = "gancli-run"
RUN_FORMAT_VERSION = 1
_RUN_RE = re.compile(r"run-(\d+)")
_CKPT_RE = re.compile(r"step-(\d+)\.safetensors")
#: Kept by ``gan train --eval-every``: a copy of the checkpoint with the best headline metric.
BEST_CHECKPOINT = "best.safetensors"


def default_home() -> Path:
    """``platformdirs.user_cache_dir("gancli")``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("gancli"))


def _step_files(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the ``step-<S>.safetensors`` files in ``folder``, oldest first."""
    out = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _CKPT_RE.fullmatch(p.name)
            if m:
                out.append((int(m.group(1)), p))
    return sorted(out)


def _valid_record(raw: bytes) -> dict[str, Any] | None:
    """One line of ``metrics.jsonl`` as a record: a JSON object with an integer ``step`` >= 0 and,
    when present, a string ``kind``; None for anything else (a blank or torn line, bad UTF-8)."""
    if not raw.strip():
        return None
    try:
        rec = json.loads(raw.decode("utf-8"))
    except ValueError:  # also UnicodeDecodeError
        return None
    step = rec.get("step") if isinstance(rec, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0 or not isinstance(rec.get("kind", ""), str):
        return None
    return rec


class Run:
    """One run directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- names and paths
    @property
    def id(self) -> str:
        return self.path.name

    @property
    def number(self) -> int:
        m = _RUN_RE.fullmatch(self.id)
        return int(m.group(1)) if m else -1

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- config
    def write_config(self, config: dict[str, Any], meta: dict[str, Any]) -> None:
        doc = {"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, "meta": meta, "config": config}
        atomic_write_json(self.config_path, doc)

    def read_config_doc(self) -> dict[str, Any]:
        """The whole ``config.json`` document. Raises GancliError when unreadable."""
        try:
            doc = json.loads(self.config_path.read_text("utf-8"))
        except FileNotFoundError:
            raise GancliError(f"run {self.id} has no config.json ({self.config_path})") from None
        except (OSError, ValueError) as e:
            raise GancliError(f"{self.config_path} is damaged ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
            raise GancliError(f"{self.config_path} is not a gancli run config")
        version = doc.get("format_version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise GancliError(f"{self.config_path} is damaged (format_version {version!r} is not an integer)")
        if version > RUN_FORMAT_VERSION:
            raise GancliError(f"{self.config_path} was written by a newer gancli; upgrade gancli")
        if not isinstance(doc.get("meta", {}), dict):
            raise GancliError(f"{self.config_path} is damaged (\"meta\" is not an object)")
        if not isinstance(doc.get("config"), dict):
            raise GancliError(f"{self.config_path} is damaged (no \"config\" object)")
        return doc

    def read_config(self, doc: dict[str, Any] | None = None):
        """The run's :class:`~gancli.config.RunConfig` (from ``doc``, its ``config.json``
        document, when already read).

        Raises:
            GancliError: config.json missing, unreadable or damaged (naming the file).
        """
        from gancli.config import RunConfig

        doc = self.read_config_doc() if doc is None else doc
        try:
            return RunConfig.from_dict(doc["config"])
        except GancliError as e:
            raise GancliError(f"{self.config_path} is damaged ({e})") from None

    # -- checkpoints
    def checkpoints(self) -> list[tuple[int, Path]]:
        """``(step, path)`` of the step checkpoints, oldest first."""
        return _step_files(self.checkpoints_dir)

    @property
    def damaged_dir(self) -> Path:
        """``checkpoints/damaged/``: where a resume sets aside checkpoints whose training state
        does not load (never deleted; their generators may still load)."""
        return self.checkpoints_dir / "damaged"

    def damaged_checkpoints(self) -> list[tuple[int, Path]]:
        """``(step, path)`` of the set-aside checkpoints in :attr:`damaged_dir`, oldest first."""
        return _step_files(self.damaged_dir)

    def no_checkpoint_message(self) -> str:
        """Why the run has no checkpoint to load, naming the set-aside ones and how to use them."""
        damaged = self.damaged_checkpoints()
        if not damaged:
            return f"run {self.id} has no checkpoints yet ({self.checkpoints_dir})"
        names = ", ".join(p.name for _, p in damaged)
        return (f"run {self.id} has no usable checkpoint: {names} set aside in {self.damaged_dir}/ (damaged training "
                f"state); their generators may still load: --checkpoint damaged/step-{damaged[-1][0]}")

    def checkpoint_path(self, which: str | int = "latest") -> Path:
        """The checkpoint ``latest``, ``best`` (kept by ``--eval-every``), at step ``which``, or
        ``damaged/step-N`` (one set aside in :attr:`damaged_dir`).

        Raises:
            GancliError: the run has no checkpoints (the message names set-aside ones).
            UsageError: no checkpoint at that step.
        """
        if str(which).startswith("damaged/"):
            name = str(which).removeprefix("damaged/")
            name = name if name.endswith(".safetensors") else f"{name}.safetensors"
            for _, p in self.damaged_checkpoints():
                if p.name == name:
                    return p
            choices = ", ".join(f"damaged/step-{s}" for s, _ in self.damaged_checkpoints()) or "(none set aside)"
            raise UsageError(f"run {self.id} has no set-aside checkpoint {which!r}; valid choices: {choices}")
        if str(which) == "best":
            best = self.checkpoints_dir / BEST_CHECKPOINT
            if not best.is_file():
                raise UsageError(f"run {self.id} has no best checkpoint (it is kept by gan train --eval-every)")
            return best
        ckpts = self.checkpoints()
        if not ckpts:
            raise GancliError(self.no_checkpoint_message())
        if str(which) == "latest":
            return ckpts[-1][1]
        try:
            step = int(which)
        except ValueError:
            raise UsageError(f"bad checkpoint {which!r}; valid choices: latest, best, a step number or "
                             "damaged/step-N") from None
        for s, p in ckpts:
            if s == step:
                return p
        raise UsageError(
            f"run {self.id} has no checkpoint at step {step}; valid choices: latest, "
            + ", ".join(str(s) for s, _ in ckpts)
        )

    def prune_checkpoints(self, keep: int, protect: Collection[int] = ()) -> list[Path]:
        """Delete all but the newest ``keep`` step checkpoints (0 = keep all) and those of the
        steps in ``protect`` (e.g. the last one the collapse monitor saw healthy)."""
        if keep <= 0:
            return []
        doomed = [p for step, p in self.checkpoints()[:-keep] if step not in protect]
        for p in doomed:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        return doomed

    # -- metrics
    def append_metrics(self, record: dict[str, Any]) -> None:
        append_line(self.metrics_path, json.dumps(record))

    def read_metrics(self) -> list[dict[str, Any]]:
        """The valid records of ``metrics.jsonl`` (see :meth:`read_metrics_report`)."""
        return self.read_metrics_report()[0]

    def read_metrics_report(self, max_train_records: int | None = None,
                            kinds: Collection[str] | None = None) -> tuple[list[dict[str, Any]], int]:
        """``(records, skipped)``: the records of ``metrics.jsonl`` that are JSON objects with an
        integer ``step`` >= 0 and, when present, a string ``kind``; ``skipped`` counts the other
        non-empty lines (a torn last line, invalid UTF-8, wrong types), which are left out.

        The file is read line by line. With ``max_train_records``, a file with more lines than
        that keeps every k-th training record (k = lines / ``max_train_records``, rounded up) and
        the newest one, and every record of the other kinds (evaluations, monitor checks, stops),
        so ``gan report`` on a 1 GB metrics.jsonl holds a few thousand records, not millions.

        With ``kinds`` (not ``train``, whose records may lack the field), only records of those
        kinds: a line that does not name one (``"kind": "<kind>"``, as :meth:`append_metrics`
        writes it) is not parsed, so a resume or a collapse verdict holds the few evaluation or
        monitor records of a long run, not its millions of training lines; ``skipped`` then counts
        only the damaged lines that name one of ``kinds``."""
        if not self.metrics_path.exists():
            return [], 0
        if kinds is not None and "train" in kinds:
            raise ValueError("kinds cannot filter training records, which may lack the kind field")
        wanted = None if kinds is None else [f'"kind": {json.dumps(k)}'.encode() for k in kinds]
        stride = 1
        if max_train_records:
            with open(self.metrics_path, "rb") as f:
                lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 22), b""))
            stride = max(1, -(-lines // max_train_records))
        out, skipped, trains, dropped = [], 0, 0, None
        with open(self.metrics_path, "rb") as f:
            for raw in f:
                if not raw.strip():
                    continue
                if wanted is not None and not any(w in raw for w in wanted):
                    continue
                if stride > 1 and b'"kind": "train"' in raw:  # json.dumps' spacing: a cheap test before parsing
                    trains += 1
                    if (trains - 1) % stride:
                        dropped = raw
                        continue
                    dropped = None
                rec = _valid_record(raw)
                if rec is None:
                    skipped += 1
                    continue
                if kinds is not None and rec.get("kind") not in kinds:
                    continue
                out.append(rec)
        last = _valid_record(dropped) if dropped is not None else None
        if last is not None:  # the newest training record is always kept
            out.append(last)
        return out, skipped

    def last_metrics_record(self, chunk: int = 65536, where: Callable[[dict[str, Any]], bool] | None = None,
                            max_bytes: int | None = None) -> dict[str, Any] | None:
        """The newest valid record of ``metrics.jsonl`` (as :meth:`read_metrics_report` would list
        last) for which ``where(record)`` holds (any record when None), read backwards from the end
        of the file in ``chunk``-byte blocks: a few KB of I/O however long the file (``gan runs
        list`` on a run with a 1 GB metrics.jsonl). None when there is no such record in the file,
        or in its last ``max_bytes`` bytes (about; when given)."""
        return self.newest_metrics_record(chunk, where, max_bytes)[0]

    def newest_metrics_record(self, chunk: int = 65536, where: Callable[[dict[str, Any]], bool] | None = None,
                              max_bytes: int | None = None) -> tuple[dict[str, Any] | None, int]:
        """``(record, skipped)``: :meth:`last_metrics_record`'s record, and the number of non-empty
        lines read on the way back to it that are not valid records (a line torn by a crash is
        the last one; ``gan runs show`` warns of them). Memory: one ``chunk`` and one line."""
        try:
            f = open(self.metrics_path, "rb")
        except OSError:
            return None, 0
        skipped = 0
        with f:
            end = size = f.seek(0, os.SEEK_END)
            tail = b""
            while end > 0:
                start = max(0, end - chunk)
                f.seek(start)
                tail = f.read(end - start) + tail
                end = start
                lines = tail.split(b"\n")
                complete = lines if start == 0 else lines[1:]  # the first piece may be a partial line
                for raw in reversed(complete):
                    rec = _valid_record(raw)
                    if rec is None:
                        skipped += bool(raw.strip())
                    elif where is None or where(rec):
                        return rec, skipped
                tail = lines[0] if start else b""
                if max_bytes is not None and size - start >= max_bytes:
                    return None, skipped
            return None, skipped

    def _split_metrics(self, after_step: int, keep: Path | None, past: Path | None) -> int:
        """Stream ``metrics.jsonl`` line by line: the valid records at or before ``after_step`` go
        to ``keep``, those past it to ``past`` (either None: not written). Returns how many went to
        ``past``. Memory: one line, however long the file."""
        n_past = 0
        with contextlib.ExitStack() as stack:
            src = stack.enter_context(open(self.metrics_path, "rb"))
            out_keep = stack.enter_context(open(keep, "wb")) if keep is not None else None
            out_past = stack.enter_context(open(past, "wb")) if past is not None else None
            for raw in src:
                rec = _valid_record(raw)
                if rec is None:
                    continue
                line = (json.dumps(rec) + "\n").encode()
                if rec["step"] > after_step:
                    n_past += 1
                    if out_past is not None:
                        out_past.write(line)
                elif out_keep is not None:
                    out_keep.write(line)
        return n_past

    def set_aside_metrics(self, after_step: int) -> Path | None:
        """Copy the records past ``after_step`` into ``metrics.past-step-<after_step>.jsonl``
        (``-2``, ``-3``... when taken) before a resume from an older, set-aside checkpoint
        truncates them (:meth:`truncate_metrics`): history is kept, never erased. Returns the
        file, or None when no record is past ``after_step``. Streams the file (one line in memory;
        a first pass counts the records past ``after_step``)."""
        if not self.metrics_path.exists() or not self._split_metrics(after_step, keep=None, past=None):
            return None
        path, n = self.path / f"metrics.past-step-{after_step}.jsonl", 1
        while path.exists():
            n += 1
            path = self.path / f"metrics.past-step-{after_step}-{n}.jsonl"
        with atomic_path(path) as tmp:
            self._split_metrics(after_step, keep=None, past=tmp)
        return path

    def truncate_metrics(self, after_step: int) -> None:
        """Drop training records past ``after_step`` (used on resume); damaged lines go too. The
        file is rewritten by streaming into a temp file renamed over it (one line in memory)."""
        if not self.metrics_path.exists():
            return
        with atomic_path(self.metrics_path) as tmp:
            self._split_metrics(after_step, keep=tmp, past=None)

    # -- locking
    # The lock is an advisory ``flock`` on ``.lock`` (which also names the owner's pid and
    # host for messages): the kernel releases it when its process dies, so a stale lock
    # file is taken over atomically by whoever locks it next, whatever it contains.
    def _read_lock(self) -> dict[str, Any]:
        """What ``.lock`` says of its owner: ``{"pid", "host"}``, ``{}`` when empty or garbled."""
        try:
            owner = json.loads((self.path / ".lock").read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return owner if isinstance(owner, dict) else {}

    def lock_owner(self) -> dict[str, Any] | None:
        """``{"pid", "host"}`` (as far as the lock file says) of the live process holding this
        run's lock, else None."""
        lock = self.path / ".lock"
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            return None
        try:
            if fcntl is None:  # no flock: trust the pid in the file
                owner = self._read_lock()
                return None if _is_stale(owner) else owner
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return self._read_lock()
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete ``.<name>.tmp-<pid>`` files left by processes that died mid-write."""
        removed = []
        for d in (self.path, self.checkpoints_dir, self.samples_dir):
            if not d.is_dir():
                continue
            for p in d.glob(".*.tmp-*"):
                m = re.fullmatch(r"\..+\.tmp-(\d+)", p.name)
                if m and not pid_alive(int(m.group(1))):
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
                    removed.append(p)
        return removed

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock while training (see the note above ``_read_lock``).

        Raises:
            GancliError: another live process holds the run (naming its pid and host, or
                ``gan runs unlock`` when the lock file does not say).
        """
        lock = self.path / ".lock"
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        fd = self._acquire(lock)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            self.remove_stale_temp_files()
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # while still holding it: a waiting process re-checks the inode
            os.close(fd)

    def _acquire(self, lock: Path) -> int:
        deadline = time.monotonic() + 0.5  # a probe of lock_owner() holds a shared lock for microseconds
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                else:  # no flock (Windows): the lock file's pid decides
                    owner = self._read_lock()
                    if owner and not _is_stale(owner) and owner.get("pid") != os.getpid():
                        raise BlockingIOError
            except OSError:
                os.close(fd)
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                owner = self._read_lock()
                who = (f"pid {owner['pid']} on {owner.get('host', '?')}" if isinstance(owner.get("pid"), int)
                       else "another process")
                raise GancliError(f"run {self.id} is in use by {who} (lock file {lock}); if nothing is training it, "
                                  f"gan runs unlock {self.id}") from None
            try:  # the file we locked may have been unlinked by its previous owner meanwhile
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)

    def unlock(self) -> bool:
        """Remove a lock file that no live process holds (``gan runs unlock``); True if one was removed.

        Raises:
            GancliError: a live process holds the lock.
        """
        owner = self.lock_owner()
        if owner is not None:
            who = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"
            raise GancliError(f"run {self.id} is being trained by {who}; stop that process (Ctrl-C) instead")
        try:
            (self.path / ".lock").unlink()
        except FileNotFoundError:
            return False
        return True


def _is_stale(owner: dict[str, Any]) -> bool:
    """A lock file of a process of this host that no longer runs (or that names no valid pid)."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return True
    return owner.get("host") == socket.gethostname() and not pid_alive(pid)


#: Longest RUN argument looked up on disk.
MAX_REF_CHARS = 1024


class RunStore:
    """The run directories below ``<home>/runs``."""

    def __init__(self, home: str | os.PathLike):
        self.home = Path(home).expanduser()
        self.runs_dir = self.home / "runs"

    def list(self) -> list[Run]:
        """Complete runs (with a config.json), oldest first."""
        if not self.runs_dir.is_dir():
            return []
        runs = [Run(p) for p in self.runs_dir.iterdir()
                if _RUN_RE.fullmatch(p.name) and (p / "config.json").exists()]
        return sorted(runs, key=lambda r: r.number)

    def create(self) -> Run:
        """Claim a new ``run-<N>`` directory (N = newest + 1) and its sub-folders."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        taken = [int(m.group(1)) for p in self.runs_dir.iterdir() if (m := _RUN_RE.fullmatch(p.name))]
        counter = self.runs_dir / ".last-run-id"
        try:
            last = int(counter.read_text().strip())
        except (OSError, ValueError):
            last = 0
        n = max([*taken, last], default=0) + 1
        while True:
            path = self.runs_dir / f"run-{n}"
            try:
                path.mkdir()
                break
            except FileExistsError:
                n += 1
        atomic_write_text(counter, f"{n}\n")  # ids of deleted runs are not reused
        run = Run(path)
        run.checkpoints_dir.mkdir()
        run.samples_dir.mkdir()
        return run

    def resolve(self, ref: str) -> Run:
        """``latest``, ``run-N``, ``N`` or the path of a run directory -> :class:`Run`.

        Raises:
            UsageError: unknown run; the message lists the valid choices.
        """
        runs = self.list()
        if len(ref) > MAX_REF_CHARS:  # no file system call with it (File name too long)
            raise UsageError(f"unknown run {ref[:24]!r}... ({len(ref):,} characters); valid choices: latest, "
                             + ", ".join(r.id for r in runs[-10:]))
        if ref == "latest":
            if not runs:
                raise UsageError(f"unknown run 'latest': no runs in {self.runs_dir} yet; train one with `gan train`")
            return runs[-1]
        name = f"run-{ref}" if ref.isdigit() else ref
        if _RUN_RE.fullmatch(name):
            for r in runs:
                if r.id == name:
                    if r.path.resolve().parent != self.runs_dir.resolve():
                        raise UsageError(f"run {name} is a link out of the run store ({r.path} -> {r.path.resolve()})")
                    return r
        elif (Path(ref) / "config.json").is_file():
            return Run(Path(ref).resolve())
        shown = ["latest", *[r.id for r in runs[-10:]]]
        more = " ..." if len(runs) > 10 else ""
        # a well-formed run-N that does not exist gets no guess: run-9 is not a typo of run-3
        near = "" if _RUN_RE.fullmatch(name) else suggestion(name, ["latest", *(r.id for r in runs)])
        raise UsageError(f"unknown run {ref!r}{near}; valid choices: {', '.join(shown)}{more}")

    def remove(self, run: Run) -> None:
        """Delete ``run``. Raises UsageError if it is outside the store or being trained."""
        if run.path.parent.resolve() != self.runs_dir.resolve():
            raise UsageError(f"refusing to delete {run.path}: it is not inside {self.runs_dir}")
        if run.path.is_symlink():  # shutil.rmtree refuses links ("Cannot call rmtree on a symbolic link")
            target = run.path.resolve()
            raise UsageError(f"refusing to delete {run.id}: it is a symbolic link to {target}; remove the link "
                             f"itself with `rm {run.path}`" + (f", or the run with `gan runs rm {target.name}`"
                                                              if target.parent == self.runs_dir.resolve() else ""))
        owner = run.lock_owner()
        if owner is not None:
            raise GancliError(f"refusing to delete {run.id}: it is being trained by pid {owner.get('pid')} "
                              f"on {owner.get('host')}")
        shutil.rmtree(run.path)
