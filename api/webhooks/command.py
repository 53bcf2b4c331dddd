"""`coco webhook add|list|enable|remove|deliveries`: webhook management from the command line.

Runs against the database directly, as the other commands do (no server
needed, and no scope: whoever reaches the database manages it); URLs are
checked as GraphQL checks them (COCO_WEBHOOK_ALLOW_PRIVATE applies).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, TextIO

from api.config import Settings
from api.entities import EVENT_TYPES
from api.webhooks.payload import FORMATS

if TYPE_CHECKING:
    from api.store import Webhook
    from api.webhooks.manage import WebhookAdmin


def add_parser(commands: Any) -> None:
    """The `webhook` command and its subcommands, on the `coco` parser's subcommands."""
    webhook = commands.add_parser("webhook", help="manage webhooks: add, list, enable, remove, deliveries")
    actions = webhook.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a webhook; prints its id and its signing secret (shown once)")
    add.add_argument("url", help="where to POST events (http or https)")
    add.add_argument("--event-type", action="append", choices=EVENT_TYPES, help="only events of this type (repeatable)")
    add.add_argument("--team", action="append", metavar="TEAM_ID", help="only events of this team (repeatable)")
    add.add_argument("--actor", action="append", metavar="ACTOR_ID", help="only events of this actor (repeatable)")
    add.add_argument("--description", help="what the webhook is for")
    add.add_argument("--format", choices=FORMATS, default="standard", help="standard (default) or slack")
    actions.add_parser("list", help="every webhook: id, state, cursor, counts, URL")
    enable = actions.add_parser("enable", help="enable a disabled webhook; it resumes from its cursor")
    enable.add_argument("id")
    remove = actions.add_parser("remove", help="delete a webhook and its delivery log")
    remove.add_argument("id")
    deliveries = actions.add_parser("deliveries", help="a webhook's latest delivery attempts, newest first")
    deliveries.add_argument("id")
    deliveries.add_argument("--first", type=int, default=20, help="how many (default 20)")
    for each in (add, enable, remove, deliveries, actions.choices["list"]):
        each.add_argument("--json", action="store_true", help="print JSON instead of text")


async def run(admin: WebhookAdmin, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "add":
        hook = await admin.create(
            args.url,
            event_types=args.event_type,
            team_ids=args.team,
            actor_ids=args.actor,
            description=args.description,
            format=args.format,
        )
        if args.json:
            _json(out, _document(hook, with_secret=True))
        else:
            print(f"created webhook {hook.id}", file=out)
            print(f"secret: {hook.secret}", file=out)
            print("(the secret is shown only now: receivers verify the webhook-signature header with it)", file=out)
        return 0
    if args.action == "list":
        hooks = await admin.all()
        if args.json:
            _json(out, [_document(h) for h in hooks])
        else:
            for hook in hooks:
                state = "enabled" if hook.enabled else f"disabled ({hook.disabled_reason or 'by hand'})"
                print(
                    f"{hook.id}\t{state}\tcursor {hook.cursor}\tdelivered {hook.delivered_count}\t"
                    f"failed {hook.failed_count}\t{hook.format}\t{hook.url}",
                    file=out,
                )
        return 0
    if args.action == "enable":
        hook = await admin.enable(args.id)
        _json(out, _document(hook)) if args.json else print(
            f"enabled webhook {hook.id} at cursor {hook.cursor}", file=out
        )
        return 0
    if args.action == "remove":
        hook = await admin.delete(args.id)
        _json(out, _document(hook)) if args.json else print(f"removed webhook {hook.id}", file=out)
        return 0
    rows = await admin.deliveries(args.id, args.first)
    if args.json:
        _json(
            out,
            [
                {
                    **vars(r),
                    "attempted_at": r.attempted_at.isoformat(),
                    "retry_at": r.retry_at and r.retry_at.isoformat(),
                }
                for r in rows
            ],
        )
    else:
        for r in rows:
            outcome = "delivered" if r.delivered else f"failed: {r.error}"
            print(
                f"{r.attempted_at.isoformat()}\tevent cursor {r.event_cursor}\tattempt {r.attempt}\t"
                f"status {r.status if r.status is not None else '-'}\t{r.latency_ms:.1f} ms\t{outcome}",
                file=out,
            )
    return 0


def admin_for(settings: Settings, engine: Any) -> WebhookAdmin:
    from api.store import WebhookStore
    from api.webhooks.manage import WebhookAdmin

    return WebhookAdmin(WebhookStore(engine), allow_private=settings.webhook_allow_private)


def _document(hook: Webhook, *, with_secret: bool = False) -> dict[str, Any]:
    document = {
        "id": hook.id,
        "url": hook.url,
        "description": hook.description,
        "event_types": hook.event_types,
        "team_ids": hook.team_ids,
        "actor_ids": hook.actor_ids,
        "format": hook.format,
        "enabled": hook.enabled,
        "disabled_reason": hook.disabled_reason,
        "cursor": hook.cursor,
        "delivered_count": hook.delivered_count,
        "failed_count": hook.failed_count,
    }
    if with_secret:
        document["secret"] = hook.secret
    return document


def _json(out: TextIO, document: Any) -> None:
    print(json.dumps(document, indent=2), file=out)
