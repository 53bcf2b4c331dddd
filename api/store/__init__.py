"""The data layer: the only code that speaks SQL, imports SQLAlchemy or asyncpg, or knows the tables.

Front ends and services use what is exported here; the modules inside are its internals.
"""

from api.store.database import create_engine, libpq_url, wait_until_reachable
from api.store.documents import Documents, sha256
from api.store.events import NOTIFY_CHANNEL
from api.store.imports import ImportItem
from api.store.listener import Listener
from api.store.migrate import upgrade
from api.store.pool import DirectPool
from api.store.reads import Reader
from api.store.scoping import current_scope
from api.store.validation import MAX_ID_LENGTH, parse_date
from api.store.views import MAX_COVERAGE_DAYS, MAX_STALE_DAYS, Views
from api.store.webhooks import Webhook, WebhookAttempt, WebhookDelivery, WebhookStore
from api.store.writes import ImportResult, OnConflict, Returning, Shown, WriteResult, WriteService, Written

__all__ = [
    "MAX_COVERAGE_DAYS",
    "MAX_ID_LENGTH",
    "MAX_STALE_DAYS",
    "NOTIFY_CHANNEL",
    "DirectPool",
    "Documents",
    "ImportItem",
    "ImportResult",
    "Listener",
    "OnConflict",
    "Reader",
    "Returning",
    "Shown",
    "Views",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookStore",
    "WriteResult",
    "WriteService",
    "Written",
    "create_engine",
    "current_scope",
    "libpq_url",
    "parse_date",
    "sha256",
    "upgrade",
    "wait_until_reachable",
]
