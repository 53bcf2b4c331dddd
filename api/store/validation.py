"""Turn a client's document (wire names, JSON or Python values) into column values.

Part of the write service: every path that writes (GraphQL, REST, import)
passes through `to_columns`, so a value is accepted or refused the same way
everywhere, with an error that names the field.
"""

from __future__ import annotations

import datetime as dt
import re
import reprlib
import zoneinfo
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from api.entities import Entity, Field, Kind
from api.errors import InvalidInput, InvalidReason

MAX_ID_LENGTH = 256
_SURROGATE = re.compile("[\ud800-\udfff]")
# What every integer column holds (PostgreSQL's integer), where a field names no narrower range.
INTEGER_RANGE = (-(2**31), 2**31 - 1)
# What both PostgreSQL and Python (the driver reads timestamps back into datetime) can hold: a
# timestamp is stored as its instant, so the bounds are in UTC whatever the offset written.
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


# A value quoted in an error: enough to recognise it, never the whole of a large one.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


def _shown(value: Any) -> str:
    return _REPR.repr(value)


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def to_columns(
    entity: Entity, document: Mapping[str, Any], *, partial: bool, index: int | None = None
) -> dict[str, Any]:
    """Validate `document` and return {column: value}.

    With `partial` (an update) fields left out stay as they are and an explicit
    null clears an optional field; otherwise required fields must be present.
    """
    if not isinstance(document, Mapping):
        raise InvalidInput(f"a {entity.title.lower()} must be a JSON object", entity=entity.name, index=index)

    def invalid(message: str, field: str | None, reason: InvalidReason = InvalidReason.FORMAT) -> InvalidInput:
        return InvalidInput(message, field=field, reason=reason, entity=entity.name, index=index)

    for name in document:
        if entity.field(name) is None:
            raise invalid(f"{entity.resource} has no field {_shown(name)}", name, InvalidReason.UNKNOWN_FIELD)

    columns: dict[str, Any] = {}
    for f in entity.fields:
        if f.name not in document:
            if f.required and not partial and not (f.name == "id"):
                raise invalid(f"{f.name} is required", f.name, InvalidReason.REQUIRED)
            continue
        value = document[f.name]
        if value is None:
            if f.required or f.server_default:
                raise invalid(f"{f.name} cannot be null", f.name, InvalidReason.REQUIRED)
            columns.update(dict.fromkeys(f.columns))
            continue
        # The common cases first, without building a dict per field (a bulk write checks
        # thousands of documents): plain text and ids, and lists of them.
        if f.kind is Kind.TEXT_LIST and _plain_list(f, value):
            columns[f.column or f.name] = list(value)
            continue
        if (
            type(value) is str
            and _storable(value)
            and ((f.kind is Kind.TEXT and not f.timezone) or (f.kind is Kind.ID and 0 < len(value) <= MAX_ID_LENGTH))
        ):
            columns[f.column or f.name] = value
            continue
        if f.kind is Kind.DATE and type(value) is str and len(value) == 10 and value[4] == "-":
            try:
                columns[f.column or f.name] = dt.date.fromisoformat(value)
                continue
            except ValueError:
                pass  # named by the general path below
        try:
            columns.update(_convert(f, value))
        except InvalidInput as error:
            error.entity, error.index = entity.name, index
            raise
    return columns


def _plain_list(f: Field, value: Any) -> bool:
    """A list of strings without NUL characters (and, for ids, of an id's length): valid as it is."""
    if type(value) is not list:
        return False
    if f.references:
        return all(type(item) is str and 0 < len(item) <= MAX_ID_LENGTH and _storable(item) for item in value)
    return all(type(item) is str and _storable(item) for item in value)


def _convert(f: Field, value: Any) -> dict[str, Any]:
    if f.kind is Kind.TIMEFRAME:
        return _timeframe(f, value)
    if f.kind is Kind.TEXT_LIST:
        if not isinstance(value, (list, tuple)):
            raise InvalidInput(f"{f.name} must be a list of strings", field=f.name)
        items = [_string(f, item, what=f"every element of {f.name}") for item in value]
        if f.references:
            for item in items:
                _check_id(f, item)
        return {f.columns[0]: items}
    return {f.columns[0]: _scalar(f, value)}


def _scalar(f: Field, value: Any) -> Any:
    match f.kind:
        case Kind.ID:
            return _check_id(f, _string(f, value))
        case Kind.TEXT:
            text = _string(f, value)
            if f.timezone and text not in _timezones():
                raise InvalidInput(
                    f"{f.name} must be an IANA timezone name such as Europe/Berlin, not {_shown(text)}",
                    field=f.name,
                    reason=InvalidReason.RULE,
                )
            return text
        case Kind.ENUM:
            text = _string(f, value)
            if text not in f.choices:
                raise InvalidInput(
                    f"{f.name} must be one of {', '.join(f.choices)}, not {_shown(text)}",
                    field=f.name,
                    reason=InvalidReason.RULE,
                )
            return text
        case Kind.INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise InvalidInput(f"{f.name} must be an integer", field=f.name)
            low = INTEGER_RANGE[0] if f.minimum is None else f.minimum
            high = INTEGER_RANGE[1] if f.maximum is None else f.maximum
            if not low <= value <= high:
                raise InvalidInput(
                    f"{f.name} must be between {low} and {high}, not {value}",
                    field=f.name,
                    reason=InvalidReason.RULE,
                )
            return value
        case Kind.DATE:
            return parse_date(value, f.name)
        case Kind.TIMESTAMP:
            return parse_timestamp(value, f.name)
    raise AssertionError(f"unhandled kind {f.kind}")


def _string(f: Field, value: Any, *, what: str | None = None) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what or f.name} must be a string", field=f.name)
    if not value.isascii() and _SURROGATE.search(value):
        raise InvalidInput(f"{what or f.name} must be Unicode text (it holds an unpaired surrogate)", field=f.name)
    if "\x00" in value:
        raise InvalidInput(f"{what or f.name} must not contain a NUL character", field=f.name)
    return value


def _storable(text: str) -> bool:
    """Text PostgreSQL stores as it is: no NUL, and nothing UTF-8 cannot encode (a JSON escape such as
    \\ud800 gives Python a lone surrogate)."""
    return "\x00" not in text and (text.isascii() or not _SURROGATE.search(text))


def _check_id(f: Field, value: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH:
        raise InvalidInput(
            f"{f.name} must be a non-empty id of at most {MAX_ID_LENGTH} characters",
            field=f.name,
            reason=InvalidReason.RULE,
        )
    return value


def _timeframe(f: Field, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{f.name} must be an object with start and end dates", field=f.name)
    extra = set(value) - {"start", "end"}
    if extra:
        raise InvalidInput(
            f"{f.name} has only start and end, not {', '.join(sorted(extra))}",
            field=f.name,
            reason=InvalidReason.UNKNOWN_FIELD,
        )
    start = parse_date(value["start"], f"{f.name}.start") if value.get("start") is not None else None
    end = parse_date(value["end"], f"{f.name}.end") if value.get("end") is not None else None
    if start and end and end < start:
        raise InvalidInput(
            f"{f.name}.end ({end}) is before {f.name}.start ({start})", field=f.name, reason=InvalidReason.RULE
        )
    start_column, end_column = f.columns
    return {start_column: start, end_column: end}


def parse_date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        raise InvalidInput(f"{field} must be a date (YYYY-MM-DD), not a timestamp", field=field)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidInput(f"{field} must be a date in the form YYYY-MM-DD, not {_shown(value)}", field=field)


def parse_timestamp(value: Any, field: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            raise InvalidInput(
                f"{field} must be an RFC 3339 timestamp such as 2026-03-05T09:15:00-06:00, not {_shown(value)}",
                field=field,
            ) from None
    else:
        raise InvalidInput(f"{field} must be an RFC 3339 timestamp", field=field)
    # A timestamp without an offset is read as UTC, as PostgreSQL does with TimeZone=UTC.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    try:
        parsed.astimezone(dt.UTC)
    except OverflowError:  # its instant falls before year 1 or after year 9999 in UTC
        raise InvalidInput(
            f"{field} must fall between {_rfc3339(EARLIEST)} and {_rfc3339(LATEST)} in UTC, not {_rfc3339(parsed)}",
            field=field,
            reason=InvalidReason.RULE,
        ) from None
    return parsed


def _rfc3339(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
