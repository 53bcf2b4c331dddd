"""`coco token create` mints what the server accepts; `coco token inspect` says what a token grants."""

from __future__ import annotations

import time

import jwt
import pytest

from api.cli import main
from api.config import Settings
from api.edge.auth import Access

from .conftest import SECRET, signed


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCO_JWT_SECRET", SECRET)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["token", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_then_inspect(configured: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "create", "--actor", "p-1", "--teams", "t-1,t-2", "--scope", "write", "--expires", "30d")
    assert code == 0
    token = out.strip()
    principal = Access.from_settings(Settings.from_environment()).authenticate(f"Bearer {token}")
    assert principal.scopes == frozenset({"read", "write"})
    assert (principal.actor, principal.teams) == ("p-1", frozenset({"t-1", "t-2"}))
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert abs(claims["exp"] - (time.time() + 30 * 86400)) < 60

    code, out, _ = run(capsys, "inspect", token)
    assert code == 0
    assert "scopes: read, write" in out
    assert "as actor p-1 only" in out
    assert "teams: t-1, t-2" in out
    assert "expires: " in out and "(in 29d" in out


def test_claim_paths_and_issuer_are_followed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COCO_JWT_SECRET", SECRET)
    monkeypatch.setenv("COCO_JWT_SCOPE_CLAIM", "realm_access.roles")
    monkeypatch.setenv("COCO_JWT_ACTOR_CLAIM", '"https://coco.example/actor"')
    monkeypatch.setenv("COCO_JWT_ISSUER", "https://coco.test/")
    code, out, _ = run(capsys, "create", "--scope", "admin", "--actor", "a-1", "--expires", "2h")
    assert code == 0
    claims = jwt.decode(out.strip(), SECRET, algorithms=["HS256"], issuer="https://coco.test/")
    assert claims["realm_access"] == {"roles": "admin"} and claims["https://coco.example/actor"] == "a-1"
    code, out, _ = run(capsys, "inspect", out.strip())
    assert code == 0 and "scopes: read, write, admin" in out and "everything, as any actor" in out


def test_refusals(configured: None, capsys: pytest.CaptureFixture[str]) -> None:
    expired = signed({"scope": "read", "exp": int(time.time()) - 3600})
    code, out, _ = run(capsys, "inspect", expired)
    assert code == 1 and "refused: JWT expired" in out
    forged = signed({"scope": "write"}, secret="another-secret-that-is-32-characters-long")
    code, out, _ = run(capsys, "inspect", forged)
    assert code == 1 and "refused" in out and "'scope': 'write'" in out
    for bad in ("0d", "10y", "400d", "d"):
        code, _, err = run(capsys, "create", "--scope", "read", "--expires", bad)
        assert code == 2 and "--expires" in err


def test_create_needs_the_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("COCO_JWT_SECRET", raising=False)
    code, _, err = run(capsys, "create", "--scope", "read")
    assert code == 2 and "COCO_JWT_SECRET" in err
