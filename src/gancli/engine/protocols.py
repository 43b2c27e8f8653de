"""The loop's two interfaces, in a leaf module: :class:`Reporter` (where progress goes:
the CLI renders it with Rich or plain lines) and :class:`Hook` (what happens around
the steps: :mod:`gancli.engine.hooks`, :mod:`gancli.engine.tensorboard`), and the
:class:`Diverged` error the loop's checks raise.

The loop (:class:`~gancli.engine.trainer.Trainer`) calls every hook after each step
(:meth:`Hook.after_step`), for each log record (:meth:`Hook.on_log`), after a
checkpoint is restored (:meth:`Hook.on_restore`) and once at the end
(:meth:`Hook.at_end`). Hooks that write something other hooks may want pass it on:
evaluation and monitor records through
:meth:`~gancli.engine.trainer.Trainer.append_record` (:meth:`Hook.on_record`), the
fixed-z grid through :meth:`~gancli.engine.trainer.Trainer.samples_written`
(:meth:`Hook.on_samples`). ``t`` is the :class:`~gancli.engine.trainer.Trainer`.

Torch-free; imports nothing of gancli but :mod:`gancli.errors`.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from gancli.errors import GancliError


class Diverged(GancliError):
    """Training diverged: a logged loss, a weight or an optimizer moment is not finite.

    Raised by the loop's checks and by the finiteness check before a checkpoint is
    written (which then is not); :meth:`~gancli.engine.trainer.Trainer.fit` records the
    stop in metrics.jsonl and re-raises it with the last good checkpoint named.

    Attributes:
        what: what diverged, e.g. ``"loss_d=nan"``. step: the step it was found at.
    """

    def __init__(self, what: str, step: int):
        super().__init__(f"training diverged at step {step} ({what})")
        self.what = what
        self.step = step


class Reporter(Protocol):
    """Receives progress from the loop (the CLI renders it with Rich or plain lines)."""

    def start(self, total_steps: int, start_step: int) -> None: ...
    def advance(self, step: int) -> None: ...
    def log(self, record: dict[str, Any]) -> None: ...
    def note(self, text: str) -> None: ...  # worth telling the user
    def phase(self, label: str) -> AbstractContextManager: ...  # a step without steps of its own is alive
    def detail(self, text: str) -> None: ...  # shown with --verbose only
    def monitor(self, text: str) -> None: ...  # the latest mode-collapse monitor scores, one line
    def warn(self, text: str) -> None: ...  # a problem the user should act on
    def stop(self) -> None: ...


class NullReporter:
    def start(self, total_steps: int, start_step: int) -> None:
        pass

    def advance(self, step: int) -> None:
        pass

    def log(self, record: dict[str, Any]) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def phase(self, label: str) -> AbstractContextManager:
        return contextlib.nullcontext()

    def detail(self, text: str) -> None:
        pass

    def monitor(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass


class Hook:
    """Base hook: every method does nothing."""

    def after_step(self, t: Any) -> float:
        """After step ``t.step``; returns seconds to leave out of the images/s figure."""
        return 0.0

    def on_log(self, t: Any, record: dict[str, Any]) -> None:
        """A ``"kind": "train"`` record of a log interval."""

    def on_restore(self, t: Any, ckpt: Any) -> None:
        """After ``ckpt``'s step was restored (a collective with several processes)."""

    def on_record(self, t: Any, record: dict[str, Any]) -> None:
        """Rank 0 only: ``record`` of another kind than ``"train"`` (``"eval"``, ``"monitor"``,
        ``"stop"``) was just appended to metrics.jsonl."""

    def on_samples(self, t: Any, images: Any, path: Path) -> None:
        """Rank 0 only: the fixed-z grid of step ``t.step`` was just written to ``path``;
        ``images`` ``(N, C, H, W)`` float32 in [-1, 1] on the CPU, the grid's cells in order
        (:data:`~gancli.engine.steps.GRID_COLUMNS` per row)."""

    def at_end(self, t: Any, interrupted: bool) -> None:
        """Once, after the last step (or the step a signal stopped the run at)."""

    def protected_steps(self, t: Any) -> set[int]:
        """Steps whose checkpoints ``--keep`` pruning must not delete."""
        return set()


