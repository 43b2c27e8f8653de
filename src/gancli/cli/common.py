"""Shared CLI plumbing: global state, error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer

from gancli import console
from gancli.errors import GancliError
from gancli.runs import RunStore, default_home

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """Global options, resolved lazily."""

    home: Path | None = None
    data_dir: Path | None = None

    @property
    def home_path(self) -> Path:
        return (self.home or default_home()).expanduser()

    @property
    def data_path(self) -> Path:
        return (self.data_dir or self.home_path / "data").expanduser()

    def store(self) -> RunStore:
        return RunStore(self.home_path)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def handles_errors(func: F) -> F:
    """Turn :class:`GancliError` into one ``error:`` line on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GancliError as e:
            console.error(str(e))
            raise typer.Exit(e.exit_code) from None
        except OSError as e:  # e.g. permission denied or disk full outside the training loop
            where = f" ({e.filename})" if e.filename else ""
            console.error(f"{e.strerror or e}{where}")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def names_help(kind: str, entries) -> str:
    return f"{kind}: " + ", ".join(e.name for e in entries) + "."
