"""What a webhook receives for one coordination event: the Standard Webhooks payload, or Slack's."""

from __future__ import annotations

import json
from typing import Any

from api.webhooks import slack

# "standard": the Standard Webhooks payload below; "slack": Slack's incoming-webhook message.
FORMATS = ("standard", "slack")
# The event as REST shows it (its cursor travels beside it, in `data.cursor`).
EVENT_KEYS = ("id", "actor_id", "event_type", "reference_id", "occurred_at")


def event_document(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in EVENT_KEYS}


def body(format: str, event: dict[str, Any], cursor: int, reference: dict[str, Any] | None) -> bytes:
    """The request body: `format` "standard" (type, timestamp, data) or "slack" (Slack's incoming-webhook text)."""
    if format == "slack":
        return encode(slack.message(event, reference))
    return encode(
        {
            "type": f"coordination_event.{event['event_type']}",
            "timestamp": event["occurred_at"],
            "data": {"event": event, "cursor": cursor, "reference": reference},
        }
    )


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
