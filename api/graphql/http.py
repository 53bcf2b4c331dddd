"""GraphQL over HTTP at /graphql: which media type answers, what a well-formed request is, and which
status code a result gets (https://graphql.github.io/graphql-over-http/draft/).

Two response media types:
- `application/graphql-response+json`, chosen whenever the client accepts it at least as much as
  `application/json`: a request that never reached execution (malformed, a document that does not parse
  or validate, variables that do not coerce, an unknown operation) answers 400 with no `data` entry;
  once execution has started, 200.
- `application/json`, for clients that ask for it, send only wildcards or no Accept at all (the legacy
  rules): a malformed request answers 400, and whatever GraphQL itself reports answers 200 with `data`
  (null when execution never started).
Neither acceptable: 406. GET runs queries only (a mutation answers 405 with `Allow: POST`).

Nothing here knows Strawberry: the route (route.py) reads the request, asks this module, and executes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from api import jsonbody

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# The bodies a POST may carry: JSON, and the name early drafts of the specification gave it.
REQUEST_TYPES = frozenset({JSON, "application/graphql+json"})
PARAMETERS = ("query", "operationName", "variables", "extensions", "documentId")

BAD_REQUEST = "BAD_REQUEST"


class RequestError(Exception):
    """A request refused before GraphQL sees it: its status, message, error code and extra headers."""

    def __init__(
        self, status: int, message: str, code: str = BAD_REQUEST, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


def method_not_allowed(allowed: str, message: str) -> RequestError:
    return RequestError(405, message, "METHOD_NOT_ALLOWED", {"Allow": allowed})


def not_acceptable() -> RequestError:
    return RequestError(
        406, f"the response can be {GRAPHQL_RESPONSE} or {JSON}: the Accept header allows neither", "NOT_ACCEPTABLE"
    )


def unsupported(message: str) -> RequestError:
    return RequestError(415, message, "UNSUPPORTED_MEDIA_TYPE")


# ---------------------------------------------------------------- content negotiation


def _parameters(parts: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in parts:
        name, _, value = part.partition("=")
        found[name.strip().lower()] = value.strip().strip('"')
    return found


def media_type(header: str) -> tuple[str, dict[str, str]]:
    """`type/subtype` in lower case, and its parameters (names in lower case)."""
    kind, *parameters = header.split(";")
    return kind.strip().lower(), _parameters(parameters)


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their weights; a range with a malformed weight counts as
    not sent."""
    ranges = []
    for item in accept.split(","):
        if not item.strip():
            continue
        kind, parameters = media_type(item)
        try:
            weight = float(parameters.get("q", "1"))
        except ValueError:
            continue
        if "/" in kind and 0 <= weight <= 1:
            ranges.append((kind, weight))
    return ranges


def _weight(offered: str, ranges: list[tuple[str, float]]) -> tuple[float, int]:
    """The weight the client gives `offered`, from its most specific matching range (RFC 9110, 12.5.1),
    and how specific that range is (2 exact, 1 `type/*`, 0 `*/*`); weight 0 when none matches."""
    family = offered.split("/")[0] + "/*"
    best: tuple[int, float] | None = None
    for kind, weight in ranges:
        specificity = 2 if kind == offered else 1 if kind == family else 0 if kind == "*/*" else -1
        if specificity >= 0 and (best is None or (specificity, weight) > best):
            best = (specificity, weight)
    return (0.0, -1) if best is None else (best[1], best[0])


def negotiate(accept: str | None) -> str | None:
    """The response's media type for this Accept header, or None when neither is acceptable.

    Named explicitly at equal weight, `application/graphql-response+json` wins; reached only through
    wildcards (or no header), `application/json` does, as the specification asks of servers while legacy
    clients remain."""
    if accept is None or not accept.strip():
        return JSON
    ranges = _ranges(accept)
    candidates = []
    for offered in (GRAPHQL_RESPONSE, JSON):
        weight, specificity = _weight(offered, ranges)
        if weight > 0:
            preferred = offered == GRAPHQL_RESPONSE if specificity == 2 else offered == JSON
            candidates.append(((weight, specificity, preferred), offered))
    return max(candidates)[1] if candidates else None


def content_type(media: str) -> str:
    """The Content-Type header of a response in `media`. `application/json` stays bare, as it always was."""
    return media if media == JSON else f"{media}; charset=utf-8"


# ---------------------------------------------------------------- request parameters


@dataclass(frozen=True)
class Params:
    # None only for a request that names a persisted document instead (persisted.py fills it in).
    query: str | None
    operation_name: str | None = None
    variables: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None
    # A persisted document's id (the GraphQL-over-HTTP persisted documents proposal).
    document_id: str | None = None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json(text: str | bytes, what: str) -> Any:
    try:
        return jsonbody.loads(text, parse_constant=_no_constants)
    except ValueError as error:
        raise RequestError(400, f"{what} is not valid JSON: {error}") from error


def _checked(data: Mapping[str, Any]) -> Params:
    """The parameters, each of the type the specification gives it (null meaning absent)."""
    query = data.get("query")
    document_id = data.get("documentId")
    if document_id is not None and (not isinstance(document_id, str) or not document_id):
        raise RequestError(400, f"`documentId` must be a non-empty string, not {_kind(document_id)}")
    extensions = data.get("extensions")
    persisted = document_id is not None or (isinstance(extensions, dict) and "persistedQuery" in extensions)
    if query is None and not persisted:
        raise RequestError(400, "the request has no `query` parameter (a GraphQL document as a string)")
    if query is not None and not isinstance(query, str):
        raise RequestError(400, f"`query` must be a string, not {_kind(query)}")
    if query == "":
        raise RequestError(400, "the `query` parameter is empty: it must hold a GraphQL document")
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError(400, f"`operationName` must be a string or null, not {_kind(operation_name)}")
    for name in ("variables", "extensions"):
        value = data.get(name)
        if value is not None and not isinstance(value, dict):
            raise RequestError(400, f"`{name}` must be an object or null, not {_kind(value)}")
    return Params(query, operation_name, data.get("variables"), extensions, document_id)


def _kind(value: Any) -> str:
    match value:
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
    return "null"


def from_body(content_type_header: str | None, body: bytes) -> Params:
    """The parameters of a POST: a JSON object in UTF-8."""
    if not content_type_header:
        raise unsupported(f"a POST needs a Content-Type header: {JSON}")
    kind, parameters = media_type(content_type_header)
    if kind not in REQUEST_TYPES:
        raise unsupported(f"a POST body must be {JSON}, not {kind}")
    if parameters.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise unsupported(f"a POST body must be UTF-8, not {parameters['charset']}")
    if not body.strip():
        raise RequestError(400, "the request body is empty: it must be a JSON object with a `query`")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(400, f"the request body is not UTF-8: {error}") from error
    data = _json(text, "the request body")
    if not isinstance(data, dict):
        raise RequestError(400, f"the request body must be a JSON object, not {_kind(data)}")
    return _checked(data)


def from_query_string(pairs: Iterable[tuple[str, str]]) -> Params:
    """The parameters of a GET, from its query string: `variables` and `extensions` JSON-encoded; an empty
    value counts as absent."""
    data: dict[str, Any] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            continue
        if name in data:
            raise RequestError(400, f"the `{name}` parameter is given more than once")
        data[name] = value
    for name in ("operationName", "variables", "extensions", "documentId"):
        if data.get(name) == "":
            del data[name]
    for name in ("variables", "extensions"):
        if name in data:
            data[name] = _json(data[name], f"`{name}`")
    return _checked(data)


# ---------------------------------------------------------------- responses


def refusal(error: RequestError) -> dict[str, Any]:
    """The body of a refused request: a GraphQL response without `data` (nothing was executed)."""
    return {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}


def answer(response: dict[str, Any], media: str, executed: bool) -> tuple[int, dict[str, Any]]:
    """The status code and body of a GraphQL response in `media`, given whether execution started."""
    if media == GRAPHQL_RESPONSE and not executed:
        return 400, {key: value for key, value in response.items() if key != "data"}
    return 200, response


def executed(data: Any, errors: Iterable[Any] | None) -> bool:
    """Whether a result comes from execution: it has data, or an error with a path (a field's). Parse,
    validation and variable coercion errors carry no path and leave `data` unset."""
    errors = list(errors or ())
    return data is not None or not errors or any(error.path is not None for error in errors)
