"""The GraphQL subscription through the whole app (create_app's WebSocket route behind the guard):
tokens in connection_init, and the per-connection subscription limit."""

from __future__ import annotations

import asyncio

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosed

from api.store.writes import WriteService

from ..conftest import RunningServer
from ..live.helpers import until_subscribers
from .conftest import READ_TOKEN, TOKENS

EVENTS = GraphQLRequest("subscription { coordinationEvents { referenceId eventType } }")
REFUSED = (TransportClosed, TransportConnectionFailed, TransportServerError, TransportQueryError, ConnectionClosed)


def transport(url: str, token: str | None) -> WebsocketsTransport:
    payload = {"authorization": f"Bearer {token}"} if token else {}
    return WebsocketsTransport(
        url=url.replace("http://", "ws://") + "/graphql",
        init_payload=payload,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        ping_interval=None,
    )


async def test_a_read_token_in_connection_init_subscribes_and_none_is_refused(
    secured_url: str, writer: WriteService
) -> None:
    await writer.create("actor", [{"id": "a-1", "actor_type": "agent", "name": "Bot"}])
    await writer.create("team", [{"id": "t-1", "name": "T"}])
    async with Client(transport=transport(secured_url, READ_TOKEN)) as session:
        received: list[dict] = []

        async def first() -> None:
            async for result in session.subscribe(EVENTS):
                received.append(result["coordinationEvents"])
                return

        await until_subscribers(secured_url, 0)
        task = asyncio.create_task(first())
        await until_subscribers(secured_url, 1, unless=task.done)
        checkin = await writer.create("team_checkin", [{"actor_id": "a-1", "team_id": "t-1", "date": "2026-05-22"}])
        await asyncio.wait_for(task, 30)
    assert received == [{"referenceId": checkin.rows[0]["id"], "eventType": "TEAM_CHECKIN"}]

    with pytest.raises(REFUSED):
        async with Client(transport=transport(secured_url, None)) as session:
            async for _ in session.subscribe(EVENTS):
                break


async def test_subscriptions_beyond_the_per_connection_limit_are_refused(database_url: str, engine) -> None:
    with RunningServer(database_url, tokens=TOKENS, graphql_max_subscriptions_per_connection=1) as url:
        async with Client(transport=transport(url, READ_TOKEN)) as session:

            async def listen() -> None:
                async for _ in session.subscribe(EVENTS):
                    pass

            first = asyncio.create_task(listen())
            await until_subscribers(url, 1, unless=first.done)
            assert not first.done()
            with pytest.raises(REFUSED):
                await asyncio.wait_for(listen(), 10)
            first.cancel()
