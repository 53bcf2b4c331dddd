"""A tool call's arguments, read against the tool's input schema.

Clients are not obliged to validate arguments before calling, and models do
send strings for numbers or leave things out; every refusal here is an
`InvalidInput` that names the argument, so it reaches the model as a tool
error it can correct. Documents for the write service pass through as they
are: the write service validates them, once, for every path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from api.errors import InvalidInput, InvalidReason
from api.mcp.schemas import Schema
from api.store import MAX_ID_LENGTH, parse_date


class Arguments:
    def __init__(self, values: Mapping[str, Any] | None, schema: Schema) -> None:
        self.values = dict(values or {})
        self.properties: dict[str, Schema] = schema.get("properties", {})
        for name in self.values:
            if name not in self.properties:
                raise InvalidInput(
                    f"unknown argument {name!r}; this tool takes {', '.join(self.properties)}",
                    field=name,
                    reason=InvalidReason.UNKNOWN_FIELD,
                )

    def given(self, name: str) -> bool:
        return self.values.get(name) is not None

    def document(self) -> dict[str, Any]:
        """The arguments as they came, for the write service to validate."""
        return dict(self.values)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string", field=name)
        if "\x00" in value:
            raise InvalidInput(f"{name} must not contain a NUL character", field=name)
        return value

    def identifier(self, name: str, *, required: bool = False) -> str | None:
        value = self.text(name)
        if value is None:
            if required:
                raise InvalidInput(f"{name} is required", field=name, reason=InvalidReason.REQUIRED)
            return None
        if not value or len(value) > MAX_ID_LENGTH:
            raise InvalidInput(
                f"{name} must be a non-empty id of at most {MAX_ID_LENGTH} characters",
                field=name,
                reason=InvalidReason.RULE,
            )
        return value

    def required_id(self, name: str) -> str:
        value = self.identifier(name, required=True)
        assert value is not None
        return value

    def choice(self, name: str) -> str | None:
        value = self.text(name)
        allowed = self.properties[name].get("enum", ())
        if value is not None and value not in allowed:
            raise InvalidInput(
                f"{name} must be one of {', '.join(allowed)}, not {value!r}", field=name, reason=InvalidReason.RULE
            )
        return value

    def date(self, name: str) -> dt.date | None:
        value = self.values.get(name)
        return None if value is None else parse_date(value, name)

    def integer(self, name: str, default: int) -> int:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            # Models sometimes quote numbers; a string of digits is unambiguous.
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} must be a whole number, not {value!r}", field=name)
        schema = self.properties[name]
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise InvalidInput(f"{name} must be {bounds}, not {value}", field=name, reason=InvalidReason.RULE)
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidInput(f"{name} must be true or false, not {value!r}", field=name)
        return value
