"""Errors that the CLI turns into one clean line and an exit code.

* :class:`UsageError` (exit 2): a bad value on the command line (unknown name,
  unavailable device, unknown run, conflicting flags).
* :class:`GancliError` (exit 1): a runtime problem (data missing, file damaged).
"""

from __future__ import annotations

from collections.abc import Iterable


class GancliError(Exception):
    """A runtime error with a message fit to show a user as one line."""

    exit_code = 1


class UsageError(GancliError):
    """A bad command-line value; the message names it and the valid choices."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A name that is not in a registry (dataset, arch, loss, run...)."""

    def __init__(self, kind: str, value: str, choices: Iterable[str]):
        self.kind = kind
        self.value = value
        self.choices = list(choices)
        shown = ", ".join(self.choices) if self.choices else "(none)"
        super().__init__(f"unknown {kind} {value!r}; valid choices: {shown}")
