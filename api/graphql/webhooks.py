"""Webhook management over GraphQL: `webhooks`, `webhook(id)` and the four mutations (admin scope).

A thin translation onto `api.webhooks.WebhookAdmin`, which checks the scope and
the values; the secret is shown once, in `createWebhook`'s payload.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry
from strawberry import UNSET, Info

from api.errors import InvalidInput, InvalidReason, Unavailable
from api.graphql.enums import CoordinationEventType
from api.store import Webhook as StoredWebhook
from api.store import WebhookDelivery as StoredDelivery
from api.webhooks.manage import WebhookAdmin

DEFAULT_DELIVERIES = 20


@strawberry.enum(description="What a webhook's requests carry.")
class WebhookFormat(Enum):
    STANDARD = "standard"
    SLACK = "slack"


@strawberry.type(description="One attempt at delivering one coordination event to a webhook.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="The attempt's id (attempts are numbered in the order made).")
    event_id: strawberry.ID = strawberry.field(description="The coordination event sent (its `webhook-id` header).")
    event_cursor: str = strawberry.field(description="The event's cursor.")
    attempt: int = strawberry.field(description="1 for the first attempt at this event, 2 for the first retry, ...")
    delivered: bool = strawberry.field(description="The receiver acknowledged it (any 2xx status).")
    status: int | None = strawberry.field(description="The HTTP status answered; null when no answer came.")
    latency_ms: float = strawberry.field(description="From sending the request to the end of the answer.")
    error: str | None = strawberry.field(
        description="Why it failed: a timeout, a refused connection or address, or the status and an excerpt "
        "of the answer."
    )
    retry_at: dt.datetime | None = strawberry.field(description="When the next attempt at this event is due.")
    attempted_at: dt.datetime = strawberry.field(description="When the attempt was made.")


def _delivery(row: StoredDelivery) -> WebhookDelivery:
    return WebhookDelivery(
        id=strawberry.ID(str(row.id)),
        event_id=strawberry.ID(row.event_id),
        event_cursor=str(row.event_cursor),
        attempt=row.attempt,
        delivered=row.delivered,
        status=row.status,
        latency_ms=row.latency_ms,
        error=row.error,
        retry_at=row.retry_at,
        attempted_at=row.attempted_at,
    )


@strawberry.type(
    description="Coordination events pushed to a URL as they commit, in cursor order, signed per Standard Webhooks "
    "(headers webhook-id, webhook-timestamp, webhook-signature)."
)
class Webhook:
    id: strawberry.ID = strawberry.field(description="The webhook's id.")
    url: str = strawberry.field(description="Where events are POSTed.")
    description: str | None = strawberry.field(description="What the webhook is for.")
    event_types: list[CoordinationEventType] | None = strawberry.field(
        description="Only events of these types; null: every type."
    )
    team_ids: list[strawberry.ID] | None = strawberry.field(
        description="Only events whose check-in or goal story update belongs to one of these teams; null: any team."
    )
    actor_ids: list[strawberry.ID] | None = strawberry.field(
        description="Only events of these actors; null: any actor."
    )
    format: WebhookFormat = strawberry.field(description="STANDARD (the event as JSON) or SLACK (a readable message).")
    secret: str | None = strawberry.field(
        description="The signing secret (whsec_...), shown once: in createWebhook's payload; null elsewhere."
    )
    enabled: bool = strawberry.field(description="Delivering; false once disabled (see disabledReason).")
    disabled_reason: str | None = strawberry.field(
        description="Why delivery stopped: 410 Gone, or the retry schedule ran out (null when paused by hand)."
    )
    cursor: str = strawberry.field(description="The cursor of the last event acknowledged; delivery resumes after it.")
    failed_attempts: int = strawberry.field(description="Failed attempts at the next event after the cursor.")
    delivered_count: int = strawberry.field(description="Events acknowledged, in all.")
    failed_count: int = strawberry.field(description="Failed attempts, in all.")
    created_at: dt.datetime = strawberry.field(description="When the webhook was created.")
    updated_at: dt.datetime = strawberry.field(description="When its settings last changed.")

    @strawberry.field(description="The latest delivery attempts, newest first.")
    async def deliveries(self, info: Info, first: int = DEFAULT_DELIVERIES) -> list[WebhookDelivery]:
        limit = info.context.limits.max_page_size
        if not 1 <= first <= limit:
            raise InvalidInput(
                f"first must be between 1 and {limit}, not {first}", field="first", reason=InvalidReason.RULE
            )
        return [_delivery(row) for row in await _admin(info).deliveries(str(self.id), first)]


def _webhook(hook: StoredWebhook, *, with_secret: bool = False) -> Webhook:
    return Webhook(
        id=strawberry.ID(hook.id),
        url=hook.url,
        description=hook.description,
        event_types=None if hook.event_types is None else [CoordinationEventType(t) for t in hook.event_types],
        team_ids=None if hook.team_ids is None else [strawberry.ID(t) for t in hook.team_ids],
        actor_ids=None if hook.actor_ids is None else [strawberry.ID(a) for a in hook.actor_ids],
        format=WebhookFormat(hook.format),
        secret=hook.secret if with_secret else None,
        enabled=hook.enabled,
        disabled_reason=hook.disabled_reason,
        cursor=str(hook.cursor),
        failed_attempts=hook.attempts,
        delivered_count=hook.delivered_count,
        failed_count=hook.failed_count,
        created_at=hook.created_at,
        updated_at=hook.updated_at,
    )


def _admin(info: Info) -> WebhookAdmin:
    admin: WebhookAdmin | None = getattr(info.context, "webhooks", None)
    if admin is None:
        raise Unavailable("webhooks are not available in this process")
    return admin


@strawberry.input(description="A new webhook.")
class CreateWebhookInput:
    url: str = strawberry.field(description="Where to POST events: http(s), a public address.")
    event_types: list[CoordinationEventType] | None = strawberry.field(
        default=None, description="Only events of these types; left out: every type."
    )
    team_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only events of these teams' check-ins and goal story updates; left out: any team."
    )
    actor_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only events of these actors; left out: any actor."
    )
    description: str | None = strawberry.field(default=None, description="What the webhook is for.")
    format: WebhookFormat = strawberry.field(
        default=WebhookFormat.STANDARD, description="STANDARD (default) or SLACK (Slack's incoming-webhook body)."
    )


@strawberry.input(description="Changes to a webhook: fields left out stay; an explicit null clears a filter.")
class UpdateWebhookInput:
    url: str | None = strawberry.field(default=UNSET, description="Where to POST events.")
    event_types: list[CoordinationEventType] | None = strawberry.field(
        default=UNSET, description="Only events of these types; null: every type."
    )
    team_ids: list[strawberry.ID] | None = strawberry.field(
        default=UNSET, description="Only events of these teams; null: any team."
    )
    actor_ids: list[strawberry.ID] | None = strawberry.field(
        default=UNSET, description="Only events of these actors; null: any actor."
    )
    description: str | None = strawberry.field(default=UNSET, description="What the webhook is for.")
    format: WebhookFormat | None = strawberry.field(default=UNSET, description="STANDARD or SLACK.")
    enabled: bool | None = strawberry.field(
        default=UNSET, description="false pauses delivery (the cursor stays); true resumes it, as enableWebhook."
    )


def _values(source: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The input's fields that were given, as the admin service takes them (enum members as their values)."""
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(source, name)
        if value is UNSET:
            continue
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, list):
            value = [v.value if isinstance(v, Enum) else str(v) for v in value]
        out[name] = value
    return out


@strawberry.type(description="The result of creating a webhook.")
class CreateWebhookPayload:
    webhook: Webhook = strawberry.field(description="The webhook, with its signing secret (shown this once).")


@strawberry.type(description="The result of changing a webhook.")
class UpdateWebhookPayload:
    webhook: Webhook = strawberry.field(description="The webhook after the change.")


@strawberry.type(description="The result of deleting a webhook.")
class DeleteWebhookPayload:
    webhook: Webhook = strawberry.field(description="The webhook as it was; its delivery log is deleted with it.")
    deleted_id: strawberry.ID = strawberry.field(description="The id of the deleted webhook.")


@strawberry.type(description="The result of enabling a webhook.")
class EnableWebhookPayload:
    webhook: Webhook = strawberry.field(description="The webhook, enabled, resuming from its cursor.")


CREATE_FIELDS = ("url", "event_types", "team_ids", "actor_ids", "description", "format")
UPDATE_FIELDS = (*CREATE_FIELDS, "enabled")


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Every webhook (admin scope).")
    async def webhooks(self, info: Info) -> list[Webhook]:
        return [_webhook(hook) for hook in await _admin(info).all()]

    @strawberry.field(description="One webhook by id, or null (admin scope).")
    async def webhook(self, info: Info, id: strawberry.ID) -> Webhook | None:
        hook = await _admin(info).get(str(id))
        return None if hook is None else _webhook(hook)


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Create a webhook (admin scope): the events committed from now on, matching its filters, are "
        "POSTed to its URL in cursor order. The payload shows the signing secret, once."
    )
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> CreateWebhookPayload:
        values = _values(input, CREATE_FIELDS)
        hook = await _admin(info).create(values.pop("url"), **values)
        return CreateWebhookPayload(webhook=_webhook(hook, with_secret=True))

    @strawberry.mutation(
        description="Change a webhook's settings (admin scope); the retry schedule of the next event starts afresh."
    )
    async def update_webhook(self, info: Info, id: strawberry.ID, input: UpdateWebhookInput) -> UpdateWebhookPayload:
        hook = await _admin(info).update(str(id), _values(input, UPDATE_FIELDS))
        return UpdateWebhookPayload(webhook=_webhook(hook))

    @strawberry.mutation(description="Delete a webhook and its delivery log (admin scope).")
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> DeleteWebhookPayload:
        hook = await _admin(info).delete(str(id))
        return DeleteWebhookPayload(webhook=_webhook(hook), deleted_id=id)

    @strawberry.mutation(
        description="Enable a disabled webhook (admin scope): it resumes from its cursor, so the event it stopped "
        "at is the next one sent."
    )
    async def enable_webhook(self, info: Info, id: strawberry.ID) -> EnableWebhookPayload:
        return EnableWebhookPayload(webhook=_webhook(await _admin(info).enable(str(id))))
