"""A tiny name → object registry (the timm pattern): new entries need no edits elsewhere."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import unknown

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            if isinstance(obj, type) and "name" in dir(obj):
                obj.name = name                      # the registered name is the class's name: said once
            self._items[name] = obj
            return obj
        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            raise unknown(self.kind, name, list(self._items))
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
