"""Real server processes (`python -m uvicorn api.app:create_app --factory`) and a real SSE client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """One uvicorn process serving the app on `database_url`."""

    def __init__(self, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "COCO_MIGRATE_ON_START": "0",
            "COCO_DB_POOL_SIZE": "4",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--timeout-graceful-shutdown",
                "5",
            ],
            cwd=ROOT,
            env=self.env,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server on port {self.port} exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@dataclass
class Message:
    event: str
    id: str | None
    data: Any


STREAM = {"Accept": "text/event-stream"}


async def messages(response: httpx.Response, *, comments: bool = False) -> AsyncIterator[Message]:
    """Parse a text/event-stream body as the EventSource algorithm does (comments on request)."""
    event, id_, data = "message", None, []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                text = "\n".join(data)
                yield Message(event, id_, json.loads(text))
            event, data = "message", []
            continue
        if line.startswith(":"):
            if comments:
                yield Message("comment", None, line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            id_ = value


@contextlib.asynccontextmanager
async def stream(
    base: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[AsyncIterator[Message]]:
    """An open event stream (the subscription exists once this yields)."""
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(TIMEOUT)) as client,
        client.stream("GET", "/coordination_events", params=params, headers={**STREAM, **(headers or {})}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield messages(response)


async def take(source: AsyncIterator[Message], n: int) -> list[Message]:
    got: list[Message] = []

    async def collect() -> None:
        async for message in source:
            got.append(message)
            if message.event == "error" or len(got) == n:
                return

    try:
        await asyncio.wait_for(collect(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"only {len(got)} of {n} events arrived") from None
    assert all(m.event == "coordination_event" for m in got), got[-1]
    return got


def cursors(got: list[Message]) -> list[int]:
    assert all(m.id == m.data["cursor"] for m in got)  # the id: line and the document's cursor, both text
    return [int(m.data["cursor"]) for m in got]
