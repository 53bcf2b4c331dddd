"""The coordination views as PostgREST answers a function called by GET: `/rpc/<name>?arg=value&...`.

Each view is a read-only function of named arguments returning one JSON value (PostgREST passes a
function's `json` result through as it is): `team_coverage` and `goal_rollup` an object, or null when the
team or goal story does not exist or lies outside the caller's teams; `stale_goal_stories` and
`open_blockers` an array. Arguments are read as PostgreSQL reads the function's parameters: a missing
required one or an unknown one is PGRST202 (no such function with those parameters), a value of the
wrong syntax is PostgreSQL's 22007 / 22P02. The OpenAPI document describes them (`paths()`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.plan import Scope
from api.rest import errors
from api.rest.errors import RestError
from api.rest.headers import negotiate, parse_accept
from api.rest.request import query_items
from api.store import MAX_COVERAGE_DAYS, MAX_STALE_DAYS, Reader, Views, current_scope

INT4_MAX = 2**31 - 1
TRUE = frozenset({"t", "true", "y", "yes", "on", "1"})
FALSE = frozenset({"f", "false", "n", "no", "off", "0"})


@dataclass(frozen=True)
class Parameter:
    name: str
    # PostgreSQL's name for its type: date, timestamptz, boolean, integer, text.
    type: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class Function:
    name: str
    summary: str
    description: str
    parameters: tuple[Parameter, ...]
    returns: dict[str, Any]
    call: Callable[[Views, dict[str, Any], Scope | None], Awaitable[str | None]]

    def signature(self, names: list[str]) -> str:
        return f"{errors.SCHEMA}.{self.name}({', '.join(sorted(names))})"


def _value(parameter: Parameter, raw: str) -> Any:
    try:
        match parameter.type:
            case "date":
                return dt.date.fromisoformat(raw)
            case "timestamptz":
                moment = dt.datetime.fromisoformat(raw)
                return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
            case "integer":
                number = int(raw.strip())
                if not -INT4_MAX - 1 <= number <= INT4_MAX:
                    raise RestError(400, "22003", f'value "{raw}" is out of range for type integer')
                return number
            case "boolean":
                word = raw.strip().lower()
                if word in TRUE or word in FALSE:
                    return word in TRUE
                raise ValueError(raw)
            case _:
                if "\x00" in raw:
                    raise RestError(400, "22021", 'invalid byte sequence for encoding "UTF8": 0x00')
                return raw
    except ValueError:
        code = "22007" if parameter.type in ("date", "timestamptz") else "22P02"
        spelled = "timestamp with time zone" if parameter.type == "timestamptz" else parameter.type
        raise RestError(400, code, f'invalid input syntax for type {spelled}: "{raw}"') from None


async def _team_coverage(views: Views, args: dict[str, Any], scope: Scope | None) -> str | None:
    return await views.team_coverage(
        args["team_id"],
        args["from"],
        args["to"],
        scope=scope,
        as_of=args.get("as_of"),
        weekdays_only=args.get("weekdays_only", False),
    )


async def _stale_goal_stories(views: Views, args: dict[str, Any], scope: Scope | None) -> str | None:
    return await views.stale_goal_stories(
        args["days"],
        scope=scope,
        team_id=args.get("team_id"),
        as_of=args.get("as_of"),
        include_completed=args.get("include_completed", False),
    )


async def _open_blockers(views: Views, args: dict[str, Any], scope: Scope | None) -> str | None:
    return await views.open_blockers(args.get("team_id"), scope=scope, as_of=args.get("as_of"))


async def _goal_rollup(views: Views, args: dict[str, Any], scope: Scope | None) -> str | None:
    return await views.goal_rollup(args.get("id"), scope=scope)


AS_OF = Parameter("as_of", "timestamptz", "The moment to take the view at (RFC 3339); default: now.")
OBJECT = {"type": "object", "nullable": True}
ARRAY = {"type": "array", "items": {"type": "object"}}

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            "team_coverage",
            "A team's check-in coverage, day by day",
            f"Per day from `from` to `to` (both included, at most {MAX_COVERAGE_DAYS} days): the team's members "
            "expected to check in, who did, who did not, the blockers raised, and every member's cell; with each "
            "member's totals. A check-in counts for the day its date names; a member is expected on a day once it "
            "has begun in their own timezone. null when the team does not exist or lies outside the token's teams.",
            (
                Parameter("team_id", "text", "The team.", required=True),
                Parameter("from", "date", "The first day.", required=True),
                Parameter("to", "date", "The last day (included).", required=True),
                AS_OF,
                Parameter("weekdays_only", "boolean", "Expect check-ins on Monday to Friday only (default false)."),
            ),
            OBJECT,
            _team_coverage,
        ),
        Function(
            "stale_goal_stories",
            "Goal stories without an update for N days",
            f"Goal stories without an update for at least `days` days (0 to {MAX_STALE_DAYS}; counted from the "
            "latest update's date, or the goal's creation when it has none), the stalest first, with the latest "
            "update's status and progress. Completed goals only with include_completed.",
            (
                Parameter("days", "integer", "Days without an update.", required=True),
                Parameter("team_id", "text", "Only goal stories this team is involved with."),
                Parameter("include_completed", "boolean", "Include goals whose latest status is completed."),
                AS_OF,
            ),
            ARRAY,
            _stale_goal_stories,
        ),
        Function(
            "open_blockers",
            "Open blockers: each member's latest check-in with blockers",
            "Each member's latest check-in to the team (every team without team_id) whose blockers are not "
            "empty, the oldest first, with its age in days of the member's own calendar.",
            (Parameter("team_id", "text", "Only this team."), AS_OF),
            ARRAY,
            _open_blockers,
        ),
        Function(
            "goal_rollup",
            "A goal story's subtree with status counts and progress",
            "The goal story `id` and all its sub-goals (every tree without id), depth first, each with its latest "
            "status and progress; the goals by status, the average progress and the average over leaves. null "
            "when the goal story does not exist or lies outside the token's teams.",
            (Parameter("id", "text", "The goal story at the root."),),
            OBJECT,
            _goal_rollup,
        ),
    )
}


def is_view_path(path: str) -> bool:
    return path.startswith("/rpc/")


async def answer(request: Request, reader: Reader) -> Response:
    """The answer to a request under /rpc/ (raises RestError)."""
    name = request.scope["path"][len("/rpc/") :]
    function = FUNCTIONS.get(name)
    if function is None or "/" in name:
        raise errors.no_function(name)
    method = request.method.upper()
    if method == "OPTIONS":
        return Response(b"", headers={"Allow": "OPTIONS,GET,HEAD", "Access-Control-Allow-Origin": "*"})
    if method not in ("GET", "HEAD"):
        raise errors.unsupported_method(method)
    negotiate(parse_accept(request.headers.get("accept")), ("json",))
    given: dict[str, str] = {}
    for key, value in query_items(request.scope.get("query_string", b"")):
        given[key] = value
    known = {p.name: p for p in function.parameters}
    missing = [p.name for p in function.parameters if p.required and p.name not in given]
    if missing or any(key not in known for key in given):
        raise RestError(
            404,
            "PGRST202",
            f"Could not find the function {function.signature(list(given))} in the schema cache",
            f"Searched for the function {function.signature(list(given))} with parameter names "
            f"{', '.join(sorted(given)) or 'none'}, but no matches were found in the schema cache. "
            f"It takes {', '.join(p.name + ('' if p.required else ' (optional)') for p in function.parameters)}.",
        )
    args = {key: _value(known[key], value) for key, value in given.items()}
    body = await function.call(Views(reader), args, current_scope())
    content = b"" if method == "HEAD" else (body or "null").encode()
    return Response(content, media_type="application/json; charset=utf-8")


_SCHEMAS = {
    "date": {"type": "string", "format": "date"},
    "timestamptz": {"type": "string", "format": "date-time"},
    "integer": {"type": "integer", "format": "int32"},
    "boolean": {"type": "boolean"},
    "text": {"type": "string"},
}


def paths() -> dict[str, Any]:
    """The views' entries for the OpenAPI document."""
    return {
        f"/rpc/{f.name}": {
            "get": {
                "tags": ["(rpc) coordination views"],
                "summary": f.summary,
                "description": f.description,
                "parameters": [
                    {
                        "name": p.name,
                        "in": "query",
                        "required": p.required,
                        "description": p.description,
                        "schema": _SCHEMAS[p.type],
                    }
                    for p in f.parameters
                ],
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": f.returns}}},
                    "400": {
                        "description": "Error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                    "404": {
                        "description": "Error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                },
            }
        }
        for f in FUNCTIONS.values()
    }
