"""Live coordination events: one LISTEN connection per process, fanned out to subscribers.

`LiveFeed` is the engine (the GraphQL subscription and the SSE endpoint both
iterate `LiveFeed.subscribe`); `EventStream` serves it as server-sent events.
"""

from .feed import LiveFeed
from .filters import team_filter
from .subscriber import SubscriberOverflow

__all__ = ["LiveFeed", "SubscriberOverflow", "team_filter"]
