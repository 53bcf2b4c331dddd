"""The Subscription type: coordination events as they commit, over WebSocket.

A thin translation onto the live feed (`api.live.LiveFeed.subscribe`), which
delivers each event once, in commit order, replaying from the table first when
`after` is given. Each event is yielded with its batch (`LiveEvent`): the schema's
executor (api/graphql/fanout.py) reads a batch's selection once for every subscriber
sharing the selection and access scope, or else executes it through the resolvers
with fresh loaders; either way a long subscription never serves a row as it was
when an earlier event was sent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry
from graphql import GraphQLError
from strawberry import Info

from api.errors import DomainError, Unavailable
from api.graphql import fanout
from api.graphql.errors import extensions_of
from api.graphql.fanout import LiveEvent
from api.graphql.filters import CoordinationEventWhere, to_filter
from api.graphql.types import CoordinationEvent, make
from api.live import SubscriberOverflow, parse_cursor

OVERFLOW = "SUBSCRIBER_OVERFLOW"


@strawberry.type(description="Live data: what is pushed to a client as it happens.")
class Subscription:
    @strawberry.subscription(
        description=(
            "Every coordination event matching `where` (and, with `teamId`, whose check-in or goal story update "
            "belongs to that team), once each, in commit order, as soon as it commits, whichever process or API "
            "wrote it. With `after` (an event's `cursor`) the events committed since are replayed first, then the "
            "stream goes live without a gap or a repeat. A client that falls too far behind gets an error with "
            "`extensions.code` SUBSCRIBER_OVERFLOW and `extensions.lastCursor`: subscribe again with that as "
            "`after`."
        )
    )
    async def coordination_events(
        self,
        info: Info,
        where: CoordinationEventWhere | None = None,
        after: str | None = None,
        team_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[CoordinationEvent, None]:  # LiveEvents, which the executor makes them
        context = info.context
        to_event = make(CoordinationEvent, "coordination_event")
        try:
            if context.live is None:
                raise Unavailable("live events are not available in this process")
            # Over WebSocket, a compiled subscription sends its events' frames itself, and over graphql-transport-ws
            # the feed hands it live batches without waking this task (api/graphql/fanout.py).
            sender = fanout.direct(context.reader)
            try:
                batches = context.live.subscribe_batches(
                    to_filter("coordination_event", where),
                    None if after is None else parse_cursor(after, "after"),
                    None if team_id is None else str(team_id),
                    sink=None if sender is None else sender.sink,
                )
            except RuntimeError as error:  # the feed has not reached the database yet
                raise Unavailable(str(error)) from error
            async with aclosing(batches):
                async for batch in batches:
                    if sender is not None and await sender.deliver(batch, context.reader):
                        continue
                    for index in range(len(batch)):
                        yield LiveEvent(batch, index, to_event)  # type: ignore[misc]
        except SubscriberOverflow as overflow:
            raise GraphQLError(
                str(overflow), extensions={"code": OVERFLOW, "lastCursor": str(overflow.last_cursor)}
            ) from None
        except DomainError as error:
            # Errors of a subscription's stream bypass the operation's extensions: code them here.
            raise GraphQLError(error.message, extensions=extensions_of(error)) from None
