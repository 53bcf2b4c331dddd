"""The request counter and latency histogram, counted in process memory and written out on scrape.

Every request passes here, so counting must cost next to nothing: one dict lookup of
its label tuple and three integer additions into a flat array (its count, its
latency bucket, its latency sum in nanoseconds). The Prometheus client's values
take a lock and a struct write per value instead.

With several workers (PROMETHEUS_MULTIPROC_DIR set, api/metrics.py), the array is a
file in that directory mapped into memory, so that whichever worker is scraped reads
every worker's counts as they are at that moment, as the Prometheus client's
multiprocess mode does; otherwise it is plain memory. A file holds, after a header
word (the records in use), one record per (method, route, status): its labels,
then its counters.
"""

from __future__ import annotations

import mmap
import os
import sys
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from pathlib import Path

COUNTER = "coco_http_requests_total"
COUNTER_HELP = "HTTP requests answered, by method, route template and status"
HISTOGRAM = "coco_http_request_duration_seconds"
HISTOGRAM_HELP = "Time from a request's arrival to the end of its response, by method and route template"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
FILE_PREFIX = "coco_http_"
FILE_SUFFIX = ".tally"

WORD = 8
KEY_BYTES = 64
# Per record: the count, one word per bucket (+Inf last, not cumulative), the sum in nanoseconds.
WORDS = 1 + len(BUCKETS) + 1 + 1
RECORD = KEY_BYTES + WORDS * WORD
# Label sets are few (methods x route templates x statuses the app answers); past this, counts are dropped.
CAPACITY = 8192
SIZE = WORD + CAPACITY * RECORD

Key = tuple[str, str, int]


class Tally:
    """This process's counts; `count` is the hot path."""

    def __init__(self, directory: str | None = None, name: str | None = None) -> None:
        """`name`: the file's, in `directory` (default: this process's id)."""
        self.path: Path | None = None
        if directory:
            self.path = Path(directory) / f"{FILE_PREFIX}{name or os.getpid()}{FILE_SUFFIX}"
            with open(self.path, "w+b") as file:
                file.truncate(SIZE)
                self.memory: mmap.mmap | bytearray = mmap.mmap(file.fileno(), SIZE)
        else:
            self.memory = bytearray(SIZE)
        self.words = memoryview(self.memory).cast("q")
        self.slots: dict[Key, int] = {}
        self.bounds = BUCKETS

    def count(self, method: str, route: str, status: int, seconds: float) -> None:
        slot = self.slots.get((method, route, status))
        if slot is None:
            slot = self._add((method, route, status))
            if slot is None:
                return
        words = self.words
        words[slot] += 1
        # The first bucket whose bound is at least `seconds` (Prometheus' `le`); past the last, +Inf.
        words[slot + 1 + bisect_left(self.bounds, seconds)] += 1
        words[slot + WORDS - 1] += int(seconds * 1e9)

    def _add(self, key: Key) -> int | None:
        used = self.words[0]
        if used >= CAPACITY:
            return None
        start = WORD + used * RECORD
        label = "\0".join((key[0], key[1], str(key[2]))).encode()[:KEY_BYTES]
        self.memory[start : start + len(label)] = label
        # The record is complete before it is counted as in use: readers in other workers see it whole.
        self.words[0] = used + 1
        slot = self.slots[key] = (start + KEY_BYTES) // WORD
        return slot


def _used(path: Path) -> bytes:
    """The part of a tally file in use (the rest, most of it, is zeros never written)."""
    with path.open("rb") as file:
        head = file.read(WORD)
        if len(head) < WORD:
            return b""
        used = min(int.from_bytes(head, sys.byteorder, signed=True), CAPACITY)
        return head + file.read(used * RECORD)


def records(memory: bytes | bytearray | mmap.mmap) -> Iterator[tuple[Key, Sequence[int]]]:
    """Each record of one process's tally (whole records only): its labels and counters."""
    if len(memory) < WORD:
        return
    words = memoryview(memory)[: WORD + (len(memory) - WORD) // RECORD * RECORD].cast("q")
    for index in range(min(words[0], CAPACITY, (len(memory) - WORD) // RECORD)):
        start = WORD + index * RECORD
        method, route, status = bytes(memory[start : start + KEY_BYTES]).rstrip(b"\0").decode().split("\0")
        first = (start + KEY_BYTES) // WORD
        yield (method, route, int(status)), words[first : first + WORDS].tolist()


def prepare(directory: str) -> None:
    """Remove the tallies of an earlier run from a shared directory (they would count again)."""
    for stale in Path(directory).glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"):
        stale.unlink()


def exposition(tally: Tally, directory: str | None = None) -> bytes:
    """The counter and the histogram in Prometheus' text format: this process's counts, or, with
    `directory`, the sum of every process's that counted there (dead workers' included, as for
    the Prometheus client's counters)."""
    totals: dict[Key, list[int]] = {}
    sources: list[bytes | bytearray | mmap.mmap] = [tally.memory]
    if directory:
        sources = []
        for path in sorted(Path(directory).glob(f"{FILE_PREFIX}*{FILE_SUFFIX}")):
            try:
                sources.append(_used(path))
            except FileNotFoundError:  # emptied by a new run meanwhile
                continue
    for memory in sources:
        for key, values in records(memory):
            total = totals.get(key)
            if total is None:
                totals[key] = list(values)
            else:
                for index, value in enumerate(values):
                    total[index] += value
    return render(totals)


def render(totals: dict[Key, list[int]]) -> bytes:
    lines = [f"# HELP {COUNTER} {COUNTER_HELP}", f"# TYPE {COUNTER} counter"]
    histograms: dict[tuple[str, str], list[int]] = {}
    for (method, route, status), values in sorted(totals.items()):
        lines.append(f'{COUNTER}{{method="{method}",route="{_escape(route)}",status="{status}"}} {float(values[0])!r}')
        merged = histograms.get((method, route))
        if merged is None:
            histograms[(method, route)] = list(values)
        else:
            for index, value in enumerate(values):
                merged[index] += value
    lines += [f"# HELP {HISTOGRAM} {HISTOGRAM_HELP}", f"# TYPE {HISTOGRAM} histogram"]
    for (method, route), values in sorted(histograms.items()):
        labels = f'method="{method}",route="{_escape(route)}"'
        cumulative = 0
        for index, le in enumerate((*(repr(float(bound)) for bound in BUCKETS), "+Inf")):
            cumulative += values[1 + index]
            lines.append(f'{HISTOGRAM}_bucket{{le="{le}",{labels}}} {float(cumulative)!r}')
        lines.append(f"{HISTOGRAM}_count{{{labels}}} {float(values[0])!r}")
        lines.append(f"{HISTOGRAM}_sum{{{labels}}} {values[WORDS - 1] / 1e9!r}")
    return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
