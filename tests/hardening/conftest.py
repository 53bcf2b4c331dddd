"""Servers configured for hardening tests: tokens, limits, log format."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import RunningServer

READ_TOKEN = "read-token-0123456789"
WRITE_TOKEN = "write-token-0123456789"
SECRET = "a-shared-secret-of-at-least-32-characters!"
TOKENS = f"read:{READ_TOKEN},write:{WRITE_TOKEN}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode({"exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256")


class Served:
    """Any ASGI app under a real uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: object) -> None:
        import threading

        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-harden", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def secured_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    """Access control on, anonymous requests refused."""
    with RunningServer(database_url, tokens=TOKENS, jwt_secret=SECRET) as url:
        yield url


@pytest.fixture(scope="module")
def anonymous_read_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    with RunningServer(database_url, tokens=TOKENS, anonymous_read=True) as url:
        yield url
