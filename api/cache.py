"""The one cache type: a bounded map from a shape to what was built for it, least recently used out first.

Every cache of built things (statements of plan shapes, compiled statements, recorded
GraphQL requests, REST request shapes, SSE frames) is one of these, owned by the
service that builds the things (a `Reader`, a `DirectPool`, a schema, the REST layer,
an event stream), never a module global: two apps in one process share nothing.
Each counts its hits and misses; `/metrics` reports them by cache name.

Not safe across threads: each app runs on one event loop, and so does each cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

# Not a value anyone stores: tells a miss from a stored None.
_MISSING: object = object()


class BoundedCache(Generic[K, V]):
    """At most `size` entries; a lookup that finds one makes it the most recent."""

    __slots__ = ("_entries", "hits", "misses", "name", "size")

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError("a cache holds at least one entry")
        self.name = name
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[K, V] = OrderedDict()

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: D) -> V | D: ...

    def get(self, key: K, default: Any = None) -> Any:
        """The entry for `key`, or `default` (a miss). A key that cannot be hashed raises TypeError."""
        entries = self._entries
        value = entries.get(key, _MISSING)
        if value is _MISSING:
            self.misses += 1
            return default
        entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: K, value: V) -> V:
        """Keep `value` for `key` as the most recent entry (the least recent goes when full); returns `value`."""
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        if len(entries) > self.size:
            entries.popitem(last=False)
        return value

    def get_or_build(self, key: K, build: Callable[[K], V]) -> V:
        """The entry for `key`, built from the key and kept on a miss."""
        entries = self._entries
        value = entries.get(key, _MISSING)
        if value is _MISSING:
            self.misses += 1
            return self.put(key, build(key))
        entries.move_to_end(key)
        self.hits += 1
        return value  # type: ignore[return-value]

    def __contains__(self, key: object) -> bool:
        """Whether `key` has an entry (neither a hit nor a miss, and its place stays)."""
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[K, V]]:
        """The entries, least recent first (a copy)."""
        return list(self._entries.items())

    def clear(self) -> None:
        self._entries.clear()

    def __repr__(self) -> str:
        return f"<BoundedCache {self.name}: {len(self)}/{self.size}, {self.hits} hits, {self.misses} misses>"


class Caches:
    """One app's caches, gathered from the services that own them: what `/metrics` reports."""

    def __init__(self) -> None:
        self._caches: list[BoundedCache[Any, Any]] = []
        # The hits and misses of each cache already reported (`take_counts`).
        self._reported: dict[BoundedCache[Any, Any], tuple[int, int]] = {}

    def add(self, *caches: BoundedCache[Any, Any]) -> None:
        self._caches.extend(caches)

    def named(self, name: str) -> list[BoundedCache[Any, Any]]:
        return [cache for cache in self._caches if cache.name == name]

    def __iter__(self) -> Iterator[BoundedCache[Any, Any]]:
        return iter(list(self._caches))

    def take_counts(self) -> dict[str, tuple[int, int, int]]:
        """By cache name (caches of one name summed): the entries held now, and the hits and
        the misses since the last call."""
        counts: dict[str, tuple[int, int, int]] = {}
        for cache in list(self._caches):
            hits, misses = cache.hits, cache.misses
            reported_hits, reported_misses = self._reported.get(cache, (0, 0))
            self._reported[cache] = (hits, misses)
            entries, new_hits, new_misses = counts.get(cache.name, (0, 0, 0))
            counts[cache.name] = (
                entries + len(cache),
                new_hits + hits - reported_hits,
                new_misses + misses - reported_misses,
            )
        return counts
