"""Tokens without an identity provider: `coco token create` and `coco token inspect`.

A minted token is an HS256 JWT signed with COCO_JWT_SECRET, its scope, actor and teams put where
this server's claim paths (COCO_JWT_*_CLAIM) read them, with the configured iss and aud, so that
the server that shares the configuration accepts it exactly as it describes it.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from typing import Any

import jwt

from api.edge.auth import SCOPES, WRITE, Access, AuthError, Principal
from api.edge.claims import ClaimPath

DURATION = re.compile(r"^([0-9]+)([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# A token is a bearer credential: it should not outlive the people who were meant to hold it.
LONGEST_S = 366 * 86400


def duration_s(text: str) -> int:
    """`30d`, `12h`, `45m`, `90s`, `2w` in seconds; ValueError otherwise."""
    found = DURATION.match(text.strip())
    if found is None or int(found.group(1)) == 0:
        raise ValueError(f"--expires takes a positive number with s, m, h, d or w (30d, 12h), not {text!r}")
    seconds = int(found.group(1)) * UNITS[found.group(2)]
    if seconds > LONGEST_S:
        raise ValueError("--expires may be at most 366 days")
    return seconds


def _put(claims: dict[str, Any], path: ClaimPath, value: Any) -> None:
    target = claims
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


def create(
    access: Access,
    *,
    scope: str,
    expires_s: int,
    actor: str | None = None,
    teams: list[str] | None = None,
    subject: str | None = None,
    now: float | None = None,
) -> str:
    if not access.jwt_secret:
        raise ValueError("COCO_JWT_SECRET is not set: tokens are signed with it (at least 32 characters)")
    if scope not in SCOPES:
        raise ValueError(f"--scope is one of {', '.join(SCOPES)}, not {scope!r}")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"iat": issued, "exp": issued + expires_s, "jti": str(uuid.uuid4())}
    if subject:
        claims["sub"] = subject
    if access.issuer:
        claims["iss"] = access.issuer
    if access.audience:
        claims["aud"] = access.audience
    _put(claims, access.scope_claim or ("scope",), scope)
    if actor:
        _put(claims, access.actor_claim, actor)
    if teams is not None:
        _put(claims, access.teams_claim, teams)
    return jwt.encode(claims, access.jwt_secret, algorithm="HS256")


def describe(principal: Principal, claims: dict[str, Any]) -> list[str]:
    """What a verified token grants, line by line."""
    scopes = [s for s in SCOPES if principal.allows(s)]
    lines = [f"scopes: {', '.join(scopes) if scopes else 'none (the server refuses it)'}"]
    if not principal.allows(WRITE):
        lines.append("writes: nothing")
    elif principal.actor is None or principal.admin:
        lines.append("writes: everything, as any actor")
    else:
        lines.append(f"writes: check-ins and goal story updates as actor {principal.actor} only")
    lines.append(
        "reads: everything" if principal.teams is None else f"teams: {', '.join(sorted(principal.teams)) or 'none'}"
    )
    if principal.subject:
        lines.append(f"subject: {principal.subject}")
    exp = claims.get("exp")
    if isinstance(exp, int | float):
        at = dt.datetime.fromtimestamp(exp, dt.UTC)
        left = int(exp - time.time())
        state = f"in {left // 86400}d {left % 86400 // 3600}h" if left > 0 else "expired"
        lines.append(f"expires: {at.isoformat(timespec='seconds')} ({state})")
    else:
        lines.append("expires: never")
    return lines


def inspect(access: Access, token: str) -> tuple[bool, list[str]]:
    """Whether this server accepts the token, and what it grants or why not."""
    token = token.strip().removeprefix("Bearer ").strip()
    try:
        principal = access.authenticate(f"Bearer {token}")
    except AuthError as refused:
        lines = [f"refused: {refused.message}" + (f" ({refused.details})" if refused.details else "")]
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False, lines
        lines.append(f"unverified claims: {unverified}")
        return False, lines
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        claims = {}  # a static token from COCO_TOKENS
    return True, describe(principal, claims if isinstance(claims, dict) else {})
