"""Managing webhooks: what GraphQL and the CLI call. Every operation needs the admin scope.

A webhook's filters never widen what its creator could read: when the token carries a teams claim,
the webhook's team filter must lie within those teams (left out at creation, it is those teams), and
a change must leave it so; anything else is refused (`TeamsForbidden`) with nothing written.

Values are checked before anything is stored (a bad one is `InvalidInput`
naming the field, and nothing changes); a URL must pass the server-side request
forgery check (api/webhooks/ssrf.py) when it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.edge.auth import current_principal, require_admin
from api.entities import EVENT_TYPES
from api.errors import InvalidInput, InvalidReason, NotFound, TeamsForbidden
from api.store import MAX_ID_LENGTH, Webhook, WebhookDelivery, WebhookStore
from api.webhooks import ssrf
from api.webhooks.payload import FORMATS
from api.webhooks.signing import new_secret

ENTITY = "webhook"
MAX_DESCRIPTION = 2000
MAX_FILTER_IDS = 1000


class WebhookAdmin:
    def __init__(self, store: WebhookStore, *, allow_private: bool, changed: Callable[[], None] | None = None) -> None:
        self.store = store
        self.allow_private = allow_private
        # Told after every change (the process's deliverer looks at once rather than at its next tick).
        self.changed = changed or (lambda: None)

    async def create(
        self,
        url: str,
        *,
        event_types: list[str] | None = None,
        team_ids: list[str] | None = None,
        actor_ids: list[str] | None = None,
        description: str | None = None,
        format: str = "standard",
    ) -> Webhook:
        """A new webhook, delivering the events committed from now on; its secret is in the result."""
        require_admin()
        limit = _team_limit()
        if limit is not None and team_ids is None:
            team_ids = sorted(limit)
        _within(limit, team_ids)
        values = await self._checked(
            {
                "url": url,
                "event_types": event_types,
                "team_ids": team_ids,
                "actor_ids": actor_ids,
                "description": description,
                "format": format,
            }
        )
        hook = await self.store.create(secret=new_secret(), **values)
        self.changed()
        return hook

    async def update(self, id: str, changes: dict[str, Any]) -> Webhook:
        """Change the settings named in `changes` (None clears description and the filters)."""
        require_admin()
        for name in ("url", "format", "enabled"):
            if name in changes and changes[name] is None:
                raise InvalidInput(f"{name} cannot be null", field=name, reason=InvalidReason.REQUIRED, entity=ENTITY)
        limit = _team_limit()
        if limit is not None:
            if "team_ids" in changes:
                _within(limit, changes["team_ids"])
            else:
                current = await self.store.get(id)
                if current is None:
                    raise NotFound(ENTITY, id)
                # Another's webhook pointed at a new URL or filter would hand this token its teams' events.
                _within(limit, current.team_ids)
        hook = await self.store.update(id, await self._checked(changes))
        self.changed()
        return hook

    async def delete(self, id: str) -> Webhook:
        require_admin()
        hook = await self.store.delete(id)
        self.changed()
        return hook

    async def enable(self, id: str) -> Webhook:
        """Enable a disabled webhook: it resumes from its cursor with a fresh retry schedule."""
        require_admin()
        hook = await self.store.enable(id)
        self.changed()
        return hook

    async def get(self, id: str) -> Webhook | None:
        require_admin()
        return await self.store.get(id)

    async def all(self) -> list[Webhook]:
        require_admin()
        return await self.store.all()

    async def deliveries(self, id: str, first: int) -> list[WebhookDelivery]:
        """The webhook's latest `first` attempts, newest first."""
        require_admin()
        if first < 1:
            raise InvalidInput("first must be at least 1", field="first", reason=InvalidReason.RULE, entity=ENTITY)
        if await self.store.get(id) is None:
            raise NotFound(ENTITY, id)
        return await self.store.deliveries(id, first)

    async def _checked(self, values: dict[str, Any]) -> dict[str, Any]:
        if "url" in values:
            url = values["url"]
            if not isinstance(url, str) or not url.strip():
                raise InvalidInput("url is required", field="url", reason=InvalidReason.REQUIRED, entity=ENTITY)
            try:
                await ssrf.check(url, allow_private=self.allow_private)
            except ssrf.Refused as refused:
                raise InvalidInput(str(refused), field="url", reason=InvalidReason.RULE, entity=ENTITY) from None
            values["url"] = url.strip()
        if values.get("format") is not None and values["format"] not in FORMATS:
            raise InvalidInput(
                f"format must be one of {', '.join(FORMATS)}", field="format", reason=InvalidReason.RULE, entity=ENTITY
            )
        description = values.get("description")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise InvalidInput(
                f"description is longer than {MAX_DESCRIPTION} characters",
                field="description",
                reason=InvalidReason.RULE,
                entity=ENTITY,
            )
        for name in ("event_types", "team_ids", "actor_ids"):
            items = values.get(name)
            if items is None:
                continue
            if not items:
                raise InvalidInput(
                    f"{name} is empty, which would match nothing; leave it out (or null) to match every one",
                    field=name,
                    reason=InvalidReason.RULE,
                    entity=ENTITY,
                )
            if len(items) > MAX_FILTER_IDS or any(
                not isinstance(i, str) or not i or len(i) > MAX_ID_LENGTH for i in items
            ):
                raise InvalidInput(
                    f"{name} holds an invalid value", field=name, reason=InvalidReason.FORMAT, entity=ENTITY
                )
            if name == "event_types" and not set(items) <= set(EVENT_TYPES):
                raise InvalidInput(
                    f"event_types may hold only {', '.join(EVENT_TYPES)}",
                    field=name,
                    reason=InvalidReason.RULE,
                    entity=ENTITY,
                )
            values[name] = list(dict.fromkeys(items))
        return values


def _team_limit() -> frozenset[str] | None:
    """The teams the caller's token is limited to; None when it is not (or outside a request: the CLI)."""
    principal = current_principal()
    return None if principal is None else principal.teams


def _within(limit: frozenset[str] | None, team_ids: list[str] | None) -> None:
    """Refuse a team filter that would deliver events of teams outside `limit`."""
    if limit is None:
        return
    allowed = sorted(limit)
    named = ", ".join(allowed) or "no team"
    hint = f"Give teamIds within the token's teams ({named}), or use an admin token without a teams claim"
    if team_ids is None:
        raise TeamsForbidden(
            f"permission denied: the token reads only teams {named}; a webhook it manages must keep teamIds "
            "within them, not match every team",
            teams=allowed,
            hint=hint,
        )
    outside = [t for t in dict.fromkeys(team_ids) if t not in limit]
    if outside or not team_ids:
        raise TeamsForbidden(
            f"permission denied: the token reads only teams {named}; a webhook's teamIds may not name "
            + (", ".join(outside) if outside else "no team"),
            teams=allowed,
            ids=outside,
            hint=hint,
        )
