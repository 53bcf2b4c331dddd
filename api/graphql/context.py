"""What every resolver of one request reaches through `info.context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.graphql.connections import Limits
from api.graphql.loaders import Loaders
from api.store import Reader, WriteService


@dataclass
class Context:
    reader: Reader
    writer: WriteService
    limits: Limits
    # The process's live feed (api.live.LiveFeed), for subscriptions.
    live: Any = None
    # Webhook management (api.webhooks.WebhookAdmin); None where the process has none.
    webhooks: Any = None
    # Read through the resolvers even where compiled execution could answer (the reference path).
    resolvers_only: bool = False
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.reader)
