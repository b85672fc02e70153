"""One registry helper for everything that plugs in by name (fields, encodings, backbones,
data formats, samplers, example selectors, ...).

A :class:`Registry` is an ordered ``name -> entry`` mapping whose lookups fail with one line
that lists what is available, and whose :meth:`Registry.register` works as a decorator::

    SAMPLERS = Registry("sampler")

    @SAMPLERS.register("occupancy")
    class OccupancySampler: ...

    SAMPLERS["occupancy"]        # the class
    SAMPLERS["nope"]             # NeuralFieldsError: unknown sampler 'nope'; available: occupancy
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import NeuralFieldsError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, in registration order."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None, wrap: Callable[[str, T], object] | None = None):
        """Register ``entry`` under ``name``; without ``entry``, a decorator that registers its target.

        ``wrap(name, target)`` may turn the decorated object into the stored entry (a spec that
        also holds a config class, say); the decorator returns the target itself.
        """
        if entry is not None:
            self._entries[name] = entry
            return entry

        def decorate(target):
            self._entries[name] = wrap(name, target) if wrap is not None else target
            return target

        return decorate

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise NeuralFieldsError(f"unknown {self.kind} '{name}'; available: {', '.join(self._entries) or 'none'}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self):
        return self._entries.items()

    def values(self):
        return self._entries.values()

    def get(self, name: str, default: T | None = None) -> T | None:
        return self._entries.get(name, default)
