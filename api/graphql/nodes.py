"""Relay's object identification: the `Node` interface, its global `nodeId`, and `node` / `nodes` on Query,
named as PostGraphile names them.

A CoCo `id` is unique within its entity only (a check-in and an update may share one), so the global id
names the entity too: the unpadded base64url of the compact JSON `["goal_stories", ["g-1"]]` (the
entity's resource name, then its key), ASCII only, the way cursors are spelled; the compiled path
builds the same text in SQL (`api.plan.NodeKey`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import strawberry

from api.entities import BY_RESOURCE, ENTITIES
from api.errors import InvalidInput, InvalidReason

DESCRIPTION = (
    "An object with a globally unique id (`nodeId`), as Relay and normalized caches refetch objects: "
    "`node(nodeId:)` reads any of them."
)
NODE_ID = (
    "A globally unique, opaque id of this object, for `node(nodeId:)` and client caches. "
    "(`id` is unique within its type only.)"
)


def encode(entity_name: str, id: str) -> str:
    payload = json.dumps([ENTITIES[entity_name].resource, [id]], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(node_id: str, argument: str = "nodeId") -> tuple[str, str] | None:
    """The entity and id a node id names; None for a well-formed id of no entity of this API.

    Not a node id at all: InvalidInput."""
    try:
        raw = base64.urlsafe_b64decode(node_id + "=" * (-len(node_id) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise _malformed(node_id, argument) from error
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], str)
        or not isinstance(value[1], list)
        or len(value[1]) != 1
        or not isinstance(value[1][0], str)
    ):
        raise _malformed(node_id, argument)
    ent = BY_RESOURCE.get(value[0])
    return None if ent is None else (ent.name, value[1][0])


def _malformed(node_id: str, argument: str) -> InvalidInput:
    return InvalidInput(
        f"{argument} {node_id!r} is not a node id: take one from an object's nodeId field",
        field=argument,
        reason=InvalidReason.FORMAT,
    )


def _node_id(root: Any) -> strawberry.ID:
    return strawberry.ID(encode(ENTITY_OF[type(root).__name__], root.id))


@strawberry.interface(description=DESCRIPTION)
class Node:
    id: strawberry.ID = strawberry.field(description="The object's id, unique within its type.")
    node_id: strawberry.ID = strawberry.field(resolver=_node_id, description=NODE_ID)


# Type name -> entity name, filled in by api.graphql.types for the six types.
ENTITY_OF: dict[str, str] = {}
