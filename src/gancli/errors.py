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
        super().__init__(f"unknown {kind} {value!r}{suggestion(value, self.choices)}; valid choices: {shown}")


def suggestion(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'mnist'?)`` for a mistyped ``value`` (:func:`did_you_mean`), else ``""``:
    what the "unknown ..." messages put after the value."""
    near = did_you_mean(value, choices)
    return f" (did you mean {near}?)" if near else ""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """The choice closest to a mistyped ``value`` (difflib's ratio >= 0.75, case-insensitive),
    quoted, or ``""`` when none is close: ``mnst`` -> ``'mnist'``."""
    import difflib

    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1, cutoff=0.75)
    return repr(by_lower[close[0]]) if close else ""
