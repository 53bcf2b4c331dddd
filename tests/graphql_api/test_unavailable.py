"""With the database unreachable, GraphQL answers SERVICE_UNAVAILABLE, not a 500 or a masked error."""

from __future__ import annotations

import socket

import httpx

from api.app import create_app
from api.config import Settings
from tests.conftest import Served


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_unreachable_database_is_service_unavailable() -> None:
    settings = Settings(
        database_url=f"postgresql://coco@127.0.0.1:{_closed_port()}/nowhere", migrate_on_start=False, pool_size=1
    )
    with Served(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for query in (
                "{ actors { nodes { id } } }",
                'mutation { createActor(input: {actorType: PERSON, name: "x"}) { actor { id } } }',
            ):
                response = await client.post("/graphql", json={"query": query})
                assert response.status_code == 200
                errors = response.json()["errors"]
                assert errors[0]["extensions"] == {"code": "SERVICE_UNAVAILABLE"}
                assert "unavailable" in errors[0]["message"]
