"""Access control: who is asking, and what they may do. Off unless tokens, a JWT secret or a JWKS are configured.

Bearer tokens carry a scope, `read`, `write` or `admin` (admin includes write,
write includes read): static tokens from configuration (`COCO_TOKENS="read:T1,write:T2,admin:T3"`
or `COCO_TOKENS_FILE`, one `scope:token` a line), and JWTs, either signed with a
shared secret (`COCO_JWT_SECRET`, HS256/384/512 as PostgREST accepts them) or as
identity providers issue them, with keys from a JWKS (`COCO_JWT_JWKS_URL` or
`COCO_JWT_JWKS_FILE`, api/edge/keys.py: RS256/384/512, PS256/384/512, ES256/384/512,
EdDSA). `exp` and `nbf` are checked with `COCO_JWT_LEEWAY_S` of leeway, `aud` and
`iss` when `COCO_JWT_AUDIENCE` and `COCO_JWT_ISSUER` are set.

A JWT's claims name the scope (`COCO_JWT_SCOPE_CLAIM`, a claim path as api/edge/claims.py
reads them; unset: the `role` claim or the space-separated `scope` claim), the actor
the token acts as (`COCO_JWT_ACTOR_CLAIM`, default `actor_id`: its check-ins and
updates are written only as that actor, api/store/rules.py) and the teams it is
limited to (`COCO_JWT_TEAMS_CLAIM`, default `teams`).

The edge (api/edge/guard.py) authenticates every request and puts its `Principal`
in `current_caller`; the write service asks `require_write()` before it
writes, and webhook management `require_admin()`, so REST, GraphQL and MCP obey
the same rule from the same place.
Code that runs outside a request (the CLI, the tests' direct calls) has no
principal and is trusted.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.edge.claims import ClaimPath, lookup, names, parse_path, text
from api.edge.keys import ASYMMETRIC_ALGORITHMS, KeySet, KeysUnavailable
from api.errors import DomainError

if TYPE_CHECKING:
    from api.config import Settings

READ = "read"
WRITE = "write"
ADMIN = "admin"
SCOPES = (READ, WRITE, ADMIN)
JWT_ALGORITHMS = ["HS256", "HS384", "HS512"]
DEFAULT_LEEWAY_S = 30
DEFAULT_ACTOR_CLAIM = "actor_id"
DEFAULT_TEAMS_CLAIM = "teams"


@dataclass(frozen=True)
class Principal:
    scopes: frozenset[str]
    # False for a request without a token (PostgREST's anonymous role).
    authenticated: bool = False
    subject: str | None = None
    # The actor a JWT acts as: it writes check-ins and goal story updates only as this actor.
    actor: str | None = None
    # The teams a JWT is limited to; None: not limited.
    teams: frozenset[str] | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def admin(self) -> bool:
        return ADMIN in self.scopes


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
        scope: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.graphql_code = graphql_code
        # The scope that was missing, for a refusal for want of one (42501).
        self.scope = scope


def permission_denied(scope: str, authenticated: bool) -> str:
    """The one wording of a refusal for want of a scope, whichever layer refuses and whatever the dialect."""
    if authenticated:
        return f"permission denied: the token does not grant the {scope} scope"
    return f"permission denied: anonymous requests may not {scope}"


def permission_hint(scope: str) -> str:
    return f"Send a token with the {scope} scope (Authorization: Bearer <token>)"


class Forbidden(DomainError):
    """The principal lacks the scope the operation needs (PostgreSQL's 42501 as PostgREST answers it)."""

    def __init__(self, scope: str, principal: Principal) -> None:
        super().__init__(permission_denied(scope, principal.authenticated))
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
    jwks: KeySet | None = None
    audience: str | None = None
    issuer: str | None = None
    leeway_s: int = DEFAULT_LEEWAY_S
    # None: the `role` claim or the `scope` claim, as PostgREST's default.
    scope_claim: ClaimPath | None = None
    actor_claim: ClaimPath = (DEFAULT_ACTOR_CLAIM,)
    teams_claim: ClaimPath = (DEFAULT_TEAMS_CLAIM,)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens) or bool(self.jwt_secret) or self.jwks is not None

    @classmethod
    def configure(
        cls,
        tokens: str | None = None,
        tokens_file: str | Path | None = None,
        jwt_secret: str | None = None,
        anonymous_read: bool | None = None,
        *,
        jwks_url: str | None = None,
        jwks_file: str | Path | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_s: int = DEFAULT_LEEWAY_S,
        scope_claim: str | None = None,
        actor_claim: str | None = None,
        teams_claim: str | None = None,
        jwks_refetch_s: float = 60.0,
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
        if jwks_url and jwks_file:
            raise ValueError("set COCO_JWT_JWKS_URL or COCO_JWT_JWKS_FILE, not both")
        jwks = None
        if jwks_url or jwks_file:
            jwks = KeySet(url=jwks_url or None, path=jwks_file or None, refetch_s=jwks_refetch_s)
        if leeway_s < 0:
            raise ValueError("COCO_JWT_LEEWAY_S must not be negative")
        return cls(
            tokens=table,
            jwt_secret=jwt_secret or None,
            anonymous_read=bool(anonymous_read),
            jwks=jwks,
            audience=audience or None,
            issuer=issuer or None,
            leeway_s=leeway_s,
            scope_claim=parse_path(scope_claim) if scope_claim else None,
            actor_claim=parse_path(actor_claim or DEFAULT_ACTOR_CLAIM),
            teams_claim=parse_path(teams_claim or DEFAULT_TEAMS_CLAIM),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        return cls.configure(
            settings.tokens,
            settings.tokens_file,
            settings.jwt_secret,
            settings.anonymous_read,
            jwks_url=settings.jwt_jwks_url,
            jwks_file=settings.jwt_jwks_file,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway_s=settings.jwt_leeway_s,
            scope_claim=settings.jwt_scope_claim,
            actor_claim=settings.jwt_actor_claim,
            teams_claim=settings.jwt_teams_claim,
        )

    def anonymous(self) -> Principal:
        if not self.enabled:
            return FULL_ACCESS
        return Principal(frozenset({READ}) if self.anonymous_read else frozenset())

    async def authenticate_async(self, authorization: str | None) -> Principal:
        """`authenticate`, with any read of the JWKS it needs done in a thread, off the event loop."""
        if self.jwks is not None and authorization:
            import jwt  # see _claims

            token = authorization.strip().rpartition(" ")[2]
            if token.count(".") == 2:
                try:
                    header = jwt.get_unverified_header(token)
                except jwt.InvalidTokenError:
                    header = {}  # authenticate refuses it
                kid = header.get("kid")
                if header.get("alg") in ASYMMETRIC_ALGORITHMS and self.jwks.wanted(
                    kid if isinstance(kid, str) else None
                ):
                    try:
                        await asyncio.to_thread(self.jwks.refresh, kid if isinstance(kid, str) else None)
                    except KeysUnavailable as error:
                        raise _keys_unavailable(error) from None
        return self.authenticate(authorization)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization` header value (or of a bare token), or AuthError.
        May read the JWKS (blocking): in a request, call `authenticate_async`."""
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
        if (self.jwt_secret or self.jwks is not None) and token.count(".") == 2:
            return self.principal_of(self._claims(token))
        raise AuthError(401, "PGRST301", "No suitable key or wrong key type", "the token is not one this server knows")

    def _claims(self, token: str) -> dict[str, Any]:
        """The verified claims of a JWT: signature (by its header's alg and kid), exp, nbf, aud, iss."""
        # PyJWT brings the `cryptography` bindings (8 MB of every worker) that a server without JWTs never uses.
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise AuthError(401, "PGRST301", str(error) or "JWT invalid") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        kid = kid if isinstance(kid, str) else None
        keys: list[Any]
        if algorithm in JWT_ALGORITHMS and self.jwt_secret:
            keys = [self.jwt_secret]
        elif self.jwks is not None and algorithm in ASYMMETRIC_ALGORITHMS:
            try:
                keys = [k.key for k in self.jwks.find(kid, algorithm)]
            except KeysUnavailable as error:
                raise _keys_unavailable(error) from None
            if not keys:
                raise AuthError(
                    401, "PGRST301", "No suitable key or wrong key type", f"no key with kid {kid!r} for {algorithm}"
                )
        else:
            raise AuthError(401, "PGRST301", "No suitable key or wrong key type", f"the {algorithm} algorithm")
        options: Any = {"verify_aud": self.audience is not None, "require": []}
        if self.issuer is not None:
            options["require"] = ["iss"]
        if self.audience is not None:
            options["require"] = [*options["require"], "aud"]
        mismatch: jwt.InvalidTokenError | None = None
        for key in keys:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    audience=self.audience,
                    issuer=self.issuer,
                    options=options,
                    leeway=self.leeway_s,
                )
            except jwt.InvalidSignatureError as wrong:
                mismatch = wrong  # a set may hold several keys without kids: try the next
                continue
            except jwt.ExpiredSignatureError:
                raise AuthError(401, "PGRST303", "JWT expired") from None
            except jwt.InvalidTokenError as invalid:
                raise AuthError(401, "PGRST301", str(invalid) or "JWT invalid") from None
            if not isinstance(claims, dict):
                raise AuthError(401, "PGRST301", "JWT claims must be an object")
            return claims
        raise AuthError(401, "PGRST301", str(mismatch) if mismatch else "JWT invalid") from None

    def principal_of(self, claims: dict[str, Any]) -> Principal:
        """The scopes, actor and teams that verified claims grant."""
        if self.scope_claim is None:
            granted = [claims["role"]] if isinstance(claims.get("role"), str) else []
            granted += names(claims.get("scope"))
        else:
            granted = names(lookup(claims, self.scope_claim))
        teams_claim = lookup(claims, self.teams_claim)
        return Principal(
            scopes_named(granted),
            authenticated=True,
            subject=text(claims.get("sub")),
            actor=text(lookup(claims, self.actor_claim)),
            teams=None if teams_claim is None else frozenset(names(teams_claim)),
        )


def _keys_unavailable(error: KeysUnavailable) -> AuthError:
    # The provider's keys are out of reach: a fault on this side, not the client's.
    return AuthError(
        503,
        "PGRST000",
        "The keys that verify JWTs are unavailable",
        str(error),
        hint="Retry shortly",
        graphql_code="SERVICE_UNAVAILABLE",
    )


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


def current_principal() -> Principal | None:
    """The principal of the request being answered; None outside requests (trusted)."""
    caller = current_caller.get()
    return None if caller is None else caller.principal
