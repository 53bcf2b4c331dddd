"""Servers configured for hardening tests: tokens, limits, log format."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import RunningServer, Served  # noqa: F401 (re-exported for the tests of this folder)

READ_TOKEN = "read-token-0123456789"
WRITE_TOKEN = "write-token-0123456789"
SECRET = "a-shared-secret-of-at-least-32-characters!"
TOKENS = f"read:{READ_TOKEN},write:{WRITE_TOKEN}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode({"exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256")


@pytest.fixture(scope="module")
def secured_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    """Access control on, anonymous requests refused."""
    with RunningServer(database_url, tokens=TOKENS, jwt_secret=SECRET) as url:
        yield url


@pytest.fixture(scope="module")
def anonymous_read_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, tokens=TOKENS, anonymous_read=True) as url:
        yield url
