"""Whose reads are limited, and to what: the caller's `Scope`, from the principal the edge authenticated.

Every statement that reads rows is built with a scope (api/store/select.py takes this one when the plan
names none), so a read is limited whichever front end, service or future kind of read asked for it.
"""

from __future__ import annotations

from api.edge.auth import current_principal
from api.plan import Scope

# The scope of a read that sees every row whoever asks: what a create wrote, read back (creates are not
# limited by teams; see docs/security-operations.md).
EVERY_ROW = Scope(teams=None)


def current_scope() -> Scope | None:
    """What the caller may read: None for every row (callers outside requests such as the CLI and the live
    feed's own reads, admins, tokens without a teams claim), else its teams (and its own actor)."""
    principal = current_principal()
    if principal is None or principal.teams is None or principal.admin:
        return None
    return Scope(tuple(sorted(principal.teams)), principal.actor)
