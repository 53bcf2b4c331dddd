"""The hardening settings, as read from the environment."""

from __future__ import annotations

import pytest

from api.config import Settings
from api.edge.auth import Access


def test_defaults_leave_access_control_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COCO_TOKENS", "COCO_TOKENS_FILE", "COCO_JWT_SECRET", "COCO_MAX_ROWS", "COCO_CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_environment()
    access = Access.configure(settings.tokens, settings.tokens_file, settings.jwt_secret, settings.anonymous_read)
    assert not access.enabled
    assert (settings.max_rows, settings.cors_origins, settings.max_body_bytes) == (None, "*", 10 * 1024 * 1024)


def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    tokens = tmp_path / "tokens"  # type: ignore[operator]
    tokens.write_text("# operators\nwrite:from-file\n\nread:reader-file\n")
    monkeypatch.setenv("COCO_TOKENS", "read:r1, write:w1")
    monkeypatch.setenv("COCO_TOKENS_FILE", str(tokens))
    monkeypatch.setenv("COCO_ANONYMOUS_READ", "true")
    monkeypatch.setenv("COCO_MAX_ROWS", "500")
    monkeypatch.setenv("COCO_MAX_BODY_BYTES", "1024")
    monkeypatch.setenv("COCO_LOG_FORMAT", "JSON")
    monkeypatch.setenv("COCO_GRAPHQL_MAX_SUBSCRIPTIONS_PER_CONNECTION", "3")
    settings = Settings.from_environment()
    assert (settings.max_rows, settings.max_body_bytes, settings.log_format) == (500, 1024, "json")
    assert settings.graphql_max_subscriptions_per_connection == 3
    access = Access.configure(settings.tokens, settings.tokens_file, settings.jwt_secret, settings.anonymous_read)
    assert access.authenticate("Bearer from-file").allows("write")
    assert not access.authenticate("Bearer reader-file").allows("write")
    assert access.authenticate("Bearer r1").allows("read")
    assert access.authenticate(None).scopes == frozenset({"read"})
