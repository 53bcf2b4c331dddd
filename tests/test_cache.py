"""The one cache type (api/cache.py): bounded, least recently used out first, hits and misses counted."""

from __future__ import annotations

import pytest

from api.cache import BoundedCache, Caches


def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    cache: BoundedCache[str, int] = BoundedCache("test", 2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    cache.put("a", 10)  # a new value for a kept key: most recent again, nothing else goes
    cache.put("d", 4)
    assert [key for key, _ in cache.items()] == ["a", "d"] and cache.get("a") == 10


def test_hits_and_misses_are_counted_and_a_stored_none_is_a_hit() -> None:
    cache: BoundedCache[str, int | None] = BoundedCache("test", 4)
    missing = object()
    assert cache.get("a") is None and cache.get("a", missing) is missing
    cache.put("a", None)
    assert cache.get("a", missing) is None
    assert "a" in cache and "b" not in cache  # neither a hit nor a miss
    assert (cache.hits, cache.misses) == (1, 2)


def test_get_or_build_builds_once_per_key() -> None:
    built: list[str] = []

    def build(key: str) -> str:
        built.append(key)
        return key.upper()

    cache: BoundedCache[str, str] = BoundedCache("test", 4)
    assert [cache.get_or_build(key, build) for key in ("x", "y", "x", "x")] == ["X", "Y", "X", "X"]
    assert built == ["x", "y"] and (cache.hits, cache.misses) == (2, 2)


def test_keys_that_cannot_be_hashed_are_refused_and_sizes_below_one_too() -> None:
    cache: BoundedCache[object, int] = BoundedCache("test", 1)
    with pytest.raises(TypeError):
        cache.get([1, 2])
    with pytest.raises(ValueError):
        BoundedCache("test", 0)


def test_an_apps_caches_report_their_entries_and_the_lookups_since_the_last_report() -> None:
    caches = Caches()
    one: BoundedCache[int, int] = BoundedCache("shapes", 8)
    two: BoundedCache[int, int] = BoundedCache("shapes", 8)
    frames: BoundedCache[int, int] = BoundedCache("frames", 8)
    caches.add(one, two, frames)
    one.put(1, 1)
    two.put(2, 2)
    one.get(1)
    two.get(3)
    assert caches.take_counts() == {"shapes": (2, 1, 1), "frames": (0, 0, 0)}
    one.get(1)
    assert caches.take_counts() == {"shapes": (2, 1, 0), "frames": (0, 0, 0)}
    assert caches.named("shapes") == [one, two]
