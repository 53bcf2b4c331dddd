"""The request headers PostgREST reads: Prefer (RFC 7240), Accept and Range."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from api.rest.errors import unacceptable_media
from api.rest.grammar import whole_number

# ---------------------------------------------------------------- Prefer

RESOLUTIONS = ("merge-duplicates", "ignore-duplicates")
REPRESENTATIONS = ("representation", "minimal", "headers-only")
COUNTS = ("exact", "planned", "estimated")
MISSING = ("default", "null")
HANDLING = ("strict", "lenient")
TRANSACTION = ("commit", "rollback")
_ACCEPTED = (
    {f"resolution={v}" for v in RESOLUTIONS}
    | {f"return={v}" for v in REPRESENTATIONS}
    | {f"count={v}" for v in COUNTS}
    | {f"missing={v}" for v in MISSING}
    | {f"handling={v}" for v in HANDLING}
    | {f"tx={v}" for v in TRANSACTION}
)


@dataclass
class Preferences:
    resolution: str | None = None
    representation: str | None = None
    count: str | None = None
    missing: str | None = None
    handling: str | None = None
    timezone: str | None = None
    max_affected: int | None = None
    invalid: list[str] = field(default_factory=list)

    @property
    def strict(self) -> bool:
        return self.handling == "strict"

    def applied(
        self,
        *,
        resolution: bool = False,
        representation: bool = False,
        missing: bool = False,
        max_affected: bool = False,
    ) -> str | None:
        """The Preference-Applied value, listing what this kind of request honours, in PostgREST's order."""
        values = [
            f"resolution={self.resolution}" if resolution and self.resolution else None,
            f"missing={self.missing}" if missing and self.missing else None,
            f"return={self.representation}" if representation and self.representation else None,
            f"count={self.count}" if self.count else None,
            f"handling={self.handling}" if self.handling else None,
            f"timezone={self.timezone}" if self.timezone else None,
            f"max-affected={self.max_affected}"
            if max_affected and self.strict and self.max_affected is not None
            else None,
        ]
        present = [v for v in values if v]
        return ", ".join(present) if present else None


def parse_prefer(values: list[str]) -> Preferences:
    """Every Prefer header, comma-separated; the first occurrence of each preference wins."""
    prefs = Preferences()
    tokens = [t.strip() for value in values for t in value.split(",") if t.strip()]
    for token in tokens:
        key, _, value = token.partition("=")
        if token not in _ACCEPTED and key not in ("timezone", "max-affected"):
            prefs.invalid.append(token)
            continue
        match key:
            case "resolution":
                prefs.resolution = prefs.resolution or value
            case "return":
                prefs.representation = prefs.representation or value
            case "count":
                prefs.count = prefs.count or value
            case "missing":
                prefs.missing = prefs.missing or value
            case "handling":
                prefs.handling = prefs.handling or value
            case "timezone":
                prefs.timezone = prefs.timezone or value
            case "max-affected":
                if prefs.max_affected is None:
                    prefs.max_affected = whole_number(value)
    return prefs


# ---------------------------------------------------------------- Accept

MediaKind = Literal["json", "object", "csv", "openapi", "any", "other"]


@dataclass(frozen=True)
class MediaType:
    kind: MediaKind
    text: str
    strip_nulls: bool = False
    # application/vnd.pgrst.array+json (rather than application/json) was asked for.
    pgrst_array: bool = False

    @property
    def content_type(self) -> str:
        match self.kind:
            case "object":
                base = "application/vnd.pgrst.object+json"
            case "csv":
                return "text/csv; charset=utf-8"
            case "openapi":
                return "application/openapi+json; charset=utf-8"
            case _:
                base = "application/vnd.pgrst.array+json" if self.pgrst_array else "application/json"
        return f"{base}; nulls=stripped; charset=utf-8" if self.strip_nulls else f"{base}; charset=utf-8"


JSON = MediaType("json", "application/json")


def decode_media_type(text: str) -> MediaType:
    main, *params = [p.strip() for p in text.split(";")]
    main = main.lower()
    parameters = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in params)}
    strip = parameters.get("nulls") == "stripped"
    match main:
        case "application/json":
            return MediaType("json", main)
        case "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array":
            return MediaType("json", main, strip_nulls=strip, pgrst_array=True)
        case "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object":
            return MediaType("object", main, strip_nulls=strip)
        case "text/csv":
            return MediaType("csv", main)
        case "application/openapi+json":
            return MediaType("openapi", main)
        case "*/*" | "application/*":
            return MediaType("any", main)
    return MediaType("other", main)


def parse_accept(header: str | None) -> list[MediaType]:
    """The acceptable media types, most preferred first (by q, then by order)."""
    return list(_accepted(header))


@lru_cache(maxsize=256)  # clients send the same few Accept headers again and again
def _accepted(header: str | None) -> tuple[MediaType, ...]:
    if header is None or not header.strip():
        return (MediaType("any", "*/*"),)
    weighted: list[tuple[float, int, MediaType]] = []
    for position, part in enumerate(p for p in header.split(",") if p.strip()):
        pieces = [x.strip() for x in part.split(";")]
        q = 1.0
        kept = [pieces[0]]
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            else:
                kept.append(piece)
        if q > 0:
            weighted.append((-q, position, decode_media_type(";".join(kept))))
    return tuple(m for _, _, m in sorted(weighted, key=lambda w: (w[0], w[1]))) or (MediaType("other", header),)


def negotiate(accepts: list[MediaType], produced: tuple[MediaKind, ...]) -> MediaType:
    """The first acceptable media type this request can produce, else 406 PGRST107."""
    for media in accepts:
        if media.kind == "any":
            return MediaType(produced[0], "application/json")
        if media.kind in produced:
            return media
    raise unacceptable_media([m.text for m in accepts])


# ---------------------------------------------------------------- Range

_RANGE = re.compile(r"^([0-9]+)-([0-9]*)$")


def parse_range(header: str | None) -> tuple[int, int | None] | None:
    """`Range: 0-9` as (first, last); anything else is no range, as PostgREST reads it."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    return int(first), int(last) if last else None
