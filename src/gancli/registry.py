"""Name -> component registries (architectures, losses, datasets).

Components register with a decorator; a duplicate name is an error at import
time, an unknown name an :class:`~gancli.errors.UnknownNameError` listing the
valid ones. The registries themselves never import torch, so ``gan --help``
stays fast: what is registered is a *builder* function whose body does the
heavy imports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gancli.errors import UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)  # recipe defaults (flat option -> value)


class Registry(Generic[T]):
    """An ordered mapping from names to components of one kind.

    Args:
        kind: what the components are, used in error messages ("arch", "loss").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, summary: str = "", defaults: dict[str, Any] | None = None) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``, with optional recipe
        ``defaults`` (flat option name -> value) that explicit flags override.

        Raises:
            ValueError: if ``name`` is already registered.
        """

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"duplicate {self.kind} name {name!r}")
            doc = summary or next(iter((obj.__doc__ or "").strip().splitlines()), "")
            self._entries[name] = Entry(name, obj, doc, dict(defaults or {}))
            return obj

        return deco

    def get(self, name: str) -> T:
        """The component registered as ``name``.

        Raises:
            UnknownNameError: naming the bad value and the valid choices.
        """
        try:
            return self._entries[name].obj
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def entry(self, name: str) -> Entry[T]:
        self.get(name)
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
