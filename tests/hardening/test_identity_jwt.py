"""JWTs as identity providers issue them: keys from a JWKS (URL or file), aud, iss, exp, nbf, claim paths."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.edge.auth import Access, AuthError
from api.edge.claims import lookup, parse_path

from .conftest import SECRET, RunningServer, bearer, signed
from .identity_support import AUDIENCE, ISSUER, KeyServer, SigningKey, unsigned


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[KeyServer, dict[str, SigningKey]]]:
    keys = {alg: SigningKey(alg) for alg in ("RS256", "ES256", "EdDSA", "PS256", "ES384", "RS512")}
    with KeyServer(*keys.values()) as server:
        yield server, keys


@pytest.fixture(scope="module")
def idp_url(database_url: str, engine: AsyncEngine, provider: tuple[KeyServer, dict[str, SigningKey]]) -> Iterator[str]:
    server, _ = provider
    with RunningServer(
        database_url, jwt_jwks_url=server.url, jwt_audience=AUDIENCE, jwt_issuer=ISSUER, jwt_secret=SECRET
    ) as url:
        yield url


def hmac_signed_with_public_key(key: SigningKey, claims: dict[str, object]) -> str:
    """HS256 over the key's public PEM (PyJWT itself refuses to make one: built by hand)."""
    import base64
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{part(json.dumps({'alg': 'HS256', 'kid': key.kid}).encode())}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


async def status(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/actors?limit=1", headers=bearer(token))).status_code


async def test_tokens_of_each_algorithm_verify_against_the_served_key_set(
    idp_url: str, provider: tuple[KeyServer, dict[str, SigningKey]]
) -> None:
    _, keys = provider
    async with httpx.AsyncClient(base_url=idp_url, timeout=30) as client:
        for alg, key in keys.items():
            assert await status(client, key.mint({"scope": "read"})) == 200, alg
        # The shared secret still verifies HS tokens beside the key set (with the configured iss and aud).
        assert await status(client, signed({"role": "read", "iss": ISSUER, "aud": AUDIENCE})) == 200


async def test_bad_tokens_are_refused_with_401(idp_url: str, provider: tuple[KeyServer, dict[str, SigningKey]]) -> None:
    _, keys = provider
    rs = keys["RS256"]
    now = int(time.time())
    refused = {
        "wrong audience": rs.mint({"scope": "read", "aud": "someone-else"}),
        "wrong issuer": rs.mint({"scope": "read", "iss": "https://evil.test/"}),
        "no issuer": rs.mint({"scope": "read", "iss": None}),
        "expired": rs.mint({"scope": "read", "exp": now - 120}),
        "not yet valid": rs.mint({"scope": "read", "nbf": now + 600}),
        "alg none": unsigned({"scope": "read", "exp": now + 600}),
        "unknown kid": rs.mint({"scope": "read"}, kid="nobody-has-this-kid"),
        "signed by another key": SigningKey("RS256").mint({"scope": "read"}, kid=rs.kid),
        # An ES256 key named by the kid of an RSA key: the algorithm does not fit the key.
        "wrong algorithm for the key": keys["ES256"].mint({"scope": "read"}, kid=rs.kid),
        # The RSA public key used as an HMAC secret (the classic confusion attack).
        "HS256 with the public key": hmac_signed_with_public_key(
            rs, {"scope": "read", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600}
        ),
        "garbage": "a.b.c",
    }
    async with httpx.AsyncClient(base_url=idp_url, timeout=30) as client:
        for what, token in refused.items():
            answer = await client.get("/actors", headers=bearer(token))
            assert answer.status_code == 401, (what, answer.text)
            assert answer.json()["code"] in ("PGRST301", "PGRST303"), what
            assert "invalid_token" in answer.headers["www-authenticate"]
        # Within the leeway (30 s by default), exp and nbf still pass.
        assert await status(client, rs.mint({"scope": "read", "exp": now - 5, "nbf": now + 5})) == 200


async def test_keys_rotate_without_a_restart_and_unknown_kids_are_refetched_at_most_once_a_minute(
    database_url: str, engine: AsyncEngine
) -> None:
    old, new, later = SigningKey("RS256"), SigningKey("ES256"), SigningKey("EdDSA")
    with KeyServer(old) as server, RunningServer(database_url, jwt_jwks_url=server.url, jwt_audience=AUDIENCE) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert await status(client, old.mint({"scope": "read"})) == 200
            assert server.reads == 1
            # Cached: more tokens, no more reads.
            for _ in range(3):
                assert await status(client, old.mint({"scope": "read"})) == 200
            assert server.reads == 1

            # The provider rotates: a token with the new kid makes the server read the set again.
            server.keys = [new]
            assert await status(client, new.mint({"scope": "read"})) == 200
            assert server.reads == 2
            # The old key is gone from the set.
            assert await status(client, old.mint({"scope": "read"})) == 401

            # Within the minute, unknown kids are refused from the cache without asking the provider.
            server.keys = [new, later]
            for _ in range(5):
                assert await status(client, later.mint({"scope": "read"})) == 401
            assert await status(client, new.mint({"scope": "read"}, kid="made-up")) == 401
            assert server.reads == 2


async def test_a_slow_key_server_does_not_block_other_requests(database_url: str, engine: AsyncEngine) -> None:
    """The JWKS read runs off the event loop: while it hangs, a request with a static token is answered."""
    import socket

    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(1)  # accepts connections, never answers
    key = SigningKey("RS256")
    jwks_url = f"http://127.0.0.1:{hanging.getsockname()[1]}/jwks"
    try:
        with RunningServer(database_url, jwt_jwks_url=jwks_url, tokens="read:static-0123456789") as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                waiting = asyncio.ensure_future(status(client, key.mint({"scope": "read"})))
                # The server is now inside its key read, which hangs until its 5 s timeout.
                connection, _ = await asyncio.to_thread(hanging.accept)
                try:
                    assert await status(client, "static-0123456789") == 200
                    assert not waiting.done()
                    # The read timed out: the server's fault, not the token's.
                    assert await waiting == 503
                finally:
                    connection.close()
    finally:
        hanging.close()


async def test_keys_from_a_file(database_url: str, engine: AsyncEngine, tmp_path: Path) -> None:
    key = SigningKey("EdDSA")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.jwk]}))
    with RunningServer(database_url, jwt_jwks_file=str(jwks)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert await status(client, key.mint({"scope": "read"})) == 200
            assert await status(client, SigningKey("EdDSA").mint({"scope": "read"})) == 401


def test_claim_paths() -> None:
    claims = {
        "scope": "openid read",
        "realm_access": {"roles": ["write", "offline_access"]},
        "resource_access": {"coco-api": {"roles": ["admin"]}},
        "https://coco.example/scope": ["write"],
        "https://coco.example/claims": {"actor": "p-1"},
    }
    assert lookup(claims, parse_path("scope")) == "openid read"
    assert lookup(claims, parse_path("realm_access.roles")) == ["write", "offline_access"]
    assert lookup(claims, parse_path('resource_access."coco-api".roles')) == ["admin"]
    assert lookup(claims, parse_path('"https://coco.example/scope"')) == ["write"]
    assert lookup(claims, parse_path('."https://coco.example/scope"')) == ["write"]
    assert lookup(claims, parse_path("https://coco.example/scope")) == ["write"]
    assert lookup(claims, parse_path('"https://coco.example/claims".actor')) == "p-1"
    assert lookup(claims, parse_path("realm_access.missing")) is None
    assert lookup(claims, parse_path("scope.deeper")) is None
    for bad in ("", "a..b", "a.", '"open', 'a"b', '"a"b'):
        with pytest.raises(ValueError):
            parse_path(bad)


def test_claims_mapping() -> None:
    access = Access.configure(
        jwt_secret=SECRET,
        scope_claim="realm_access.roles",
        actor_claim='"https://coco.example/claims".actor',
        teams_claim="groups",
    )
    token = signed(
        {
            "realm_access": {"roles": ["write", "uma_authorization"]},
            "scope": "admin",  # not where this configuration looks
            "https://coco.example/claims": {"actor": "p-1"},
            "groups": ["t-1", "t-2"],
        }
    )
    principal = access.authenticate(f"Bearer {token}")
    assert principal.scopes == frozenset({"read", "write"})
    assert (principal.actor, principal.teams) == ("p-1", frozenset({"t-1", "t-2"}))

    default = Access.configure(jwt_secret=SECRET)
    plain = default.authenticate(f"Bearer {signed({'role': 'admin', 'actor_id': 'p-2'})}")
    assert plain.scopes == frozenset({"read", "write", "admin"}) and plain.admin
    assert (plain.actor, plain.teams) == ("p-2", None)
    teams = default.authenticate(f"Bearer {signed({'scope': 'read', 'teams': ['t-9']})}")
    assert teams.teams == frozenset({"t-9"}) and teams.actor is None


def test_configuration_errors() -> None:
    with pytest.raises(ValueError):
        Access.configure(jwks_url="http://127.0.0.1:9/a", jwks_file="/tmp/x")
    with pytest.raises(ValueError):
        Access.configure(jwks_url="file:///etc/passwd")
    with pytest.raises(ValueError):
        Access.configure(jwt_secret=SECRET, scope_claim="a..b")
    with pytest.raises(ValueError):
        Access.configure(jwt_secret=SECRET, leeway_s=-1)
    # HS tokens need the secret: with only a key set, an HS256 token is refused.
    access = Access.configure(jwks_url="http://127.0.0.1:9/jwks")
    with pytest.raises(AuthError) as refused:
        access.authenticate(f"Bearer {signed({'scope': 'read'})}")
    assert refused.value.status == 401
