"""Access control: who is asking, and what they may do. Off unless tokens or a JWT secret are configured.

Two kinds of bearer tokens carry a scope, `read`, `write` or `admin` (admin includes
write, write includes read; admin alone manages webhooks):
static tokens from configuration (`COCO_TOKENS="read:T1,write:T2,admin:T3"` or
`COCO_TOKENS_FILE`, one `scope:token` a line), and JWTs signed with a shared
secret (`COCO_JWT_SECRET`, HS256 as PostgREST accepts them) whose `role` claim,
or space-separated `scope` claim, names the scope; `exp` is checked.

The edge (api/edge/guard.py) authenticates every request and puts its `Principal`
in `current_caller`; the write service asks `require_write()` before it
writes, and webhook management `require_admin()`, so REST, GraphQL and MCP obey
the same rule from the same place.
Code that runs outside a request (the CLI, the tests' direct calls) has no
principal and is trusted.
"""

from __future__ import annotations

import contextvars
import hmac
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from api.errors import DomainError

READ = "read"
WRITE = "write"
ADMIN = "admin"
SCOPES = (READ, WRITE, ADMIN)
JWT_ALGORITHMS = ["HS256", "HS384", "HS512"]


@dataclass(frozen=True)
class Principal:
    scopes: frozenset[str]
    # False for a request without a token (PostgREST's anonymous role).
    authenticated: bool = False
    subject: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


FULL_ACCESS = Principal(frozenset(SCOPES))


class AuthError(Exception):
    """The request cannot be let in: PostgREST's PGRST30x, as status, code, message, details, hint."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        graphql_code: str = "UNAUTHENTICATED",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.graphql_code = graphql_code


class Forbidden(DomainError):
    """The principal lacks the scope the operation needs (PostgreSQL's 42501 as PostgREST answers it)."""

    def __init__(self, scope: str, principal: Principal) -> None:
        who = "an authenticated client without" if principal.authenticated else "anonymous requests, which lack"
        super().__init__(f"permission denied: this needs the {scope} scope, and {who} it")
        self.scope = scope
        self.authenticated = principal.authenticated


def scopes_named(names: str | list[str]) -> frozenset[str]:
    """`admin` implies `write`, `write` implies `read`; unknown names give nothing."""
    items = names.split() if isinstance(names, str) else [str(n) for n in names]
    found = {name for name in items if name in SCOPES}
    if ADMIN in found:
        found.add(WRITE)
    if WRITE in found:
        found.add(READ)
    return frozenset(found)


@dataclass(frozen=True)
class Access:
    """The configured access control; `enabled` is false when no credential is configured."""

    tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    jwt_secret: str | None = None
    anonymous_read: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.tokens) or bool(self.jwt_secret)

    @classmethod
    def configure(
        cls,
        tokens: str | None = None,
        tokens_file: str | Path | None = None,
        jwt_secret: str | None = None,
        anonymous_read: bool | None = None,
    ) -> Access:
        entries = [t for t in (tokens or "").split(",") if t.strip()]
        if tokens_file:
            lines = Path(tokens_file).read_text().splitlines()
            entries += [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        table: dict[str, frozenset[str]] = {}
        for entry in entries:
            scope, sep, token = entry.strip().partition(":")
            if not sep or scope not in SCOPES or not token:
                raise ValueError(
                    f"a token entry must read read:<token>, write:<token> or admin:<token>, not {entry.strip()!r}"
                )
            table[token] = scopes_named(scope)
        if jwt_secret is not None and len(jwt_secret) < 32:
            # PostgREST refuses shorter secrets too: HS256 keys that short are guessable.
            raise ValueError("COCO_JWT_SECRET must be at least 32 characters long")
        return cls(tokens=table, jwt_secret=jwt_secret or None, anonymous_read=bool(anonymous_read))

    def anonymous(self) -> Principal:
        if not self.enabled:
            return FULL_ACCESS
        return Principal(frozenset({READ}) if self.anonymous_read else frozenset())

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization` header value (or of a bare token), or AuthError."""
        if not self.enabled:
            return FULL_ACCESS
        if authorization is None or not authorization.strip():
            if not self.anonymous_read:
                raise AuthError(
                    401, "PGRST302", "Anonymous access is disabled", hint="Send Authorization: Bearer <token>"
                )
            return self.anonymous()
        scheme, _, token = authorization.strip().partition(" ")
        if not token:
            scheme, token = "bearer", scheme  # a bare token (the ?token= parameter)
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "PGRST301", "Expected a bearer token", "Authorization: Bearer <token>")
        token = token.strip()
        for known, scopes in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return Principal(scopes, authenticated=True)
        if self.jwt_secret and token.count(".") == 2:
            return self._jwt(token)
        raise AuthError(401, "PGRST301", "No suitable key or wrong key type", "the token is not one this server knows")

    def _jwt(self, token: str) -> Principal:
        assert self.jwt_secret is not None
        try:
            claims = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=JWT_ALGORITHMS,
                options={"verify_aud": False, "require": []},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "PGRST303", "JWT expired") from None
        except jwt.InvalidTokenError as error:
            raise AuthError(401, "PGRST301", str(error) or "JWT invalid") from None
        if not isinstance(claims, dict):
            raise AuthError(401, "PGRST301", "JWT claims must be an object")
        names: list[str] = []
        if isinstance(claims.get("role"), str):
            names.append(claims["role"])
        scope = claims.get("scope")
        if isinstance(scope, str):
            names += scope.split()
        elif isinstance(scope, list):
            names += [str(s) for s in scope]
        subject = claims.get("sub") if isinstance(claims.get("sub"), str) else None
        return Principal(scopes_named(names), authenticated=True, subject=subject)


@dataclass
class Caller:
    """The principal of one request or WebSocket; mutable, because a WebSocket may authenticate
    after it opened (in its `connection_init` payload), when its tasks already share this cell."""

    principal: Principal


# The caller of the request being answered; unset outside requests (trusted callers).
current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("coco_caller", default=None)


def require(scope: str) -> None:
    caller = current_caller.get()
    if caller is not None and not caller.principal.allows(scope):
        raise Forbidden(scope, caller.principal)


def require_write() -> None:
    require(WRITE)


def require_admin() -> None:
    require(ADMIN)
