"""Live coordination events: one LISTEN connection per process, fanned out to subscribers.

`LiveFeed` is the engine (the GraphQL subscriptions and webhooks iterate
`LiveFeed.subscribe_batches`; the SSE endpoint, which has no task waiting on its
queue, uses `LiveFeed.attach`); `EventStream` serves it as server-sent events.
"""

from api.live.cursors import parse_cursor
from api.live.feed import LiveFeed
from api.live.filters import teams_filter
from api.live.subscriber import SubscriberOverflow

__all__ = ["LiveFeed", "SubscriberOverflow", "parse_cursor", "teams_filter"]
