"""Persisted operations: a request names its document by id instead of sending it.

Two protocols, resolved here before the request goes the way every other does (the recorded compiled
plan, or Strawberry with the compiled path):

- Apollo's automatic persisted queries: `extensions.persistedQuery {version: 1, sha256Hash}`. A hash
  the server does not know answers the GraphQL error PERSISTED_QUERY_NOT_FOUND; the client sends the
  request again with the document, whose hash is checked, and once it has been answered the document
  is registered (api/store/documents.py, in PostgreSQL: every replica knows it from then on).
- Trusted documents (`COCO_GRAPHQL_TRUSTED_DOCUMENTS`): a JSON object of operation ids to documents, as
  graphql-codegen's client preset (`persisted-documents.json`) and Relay's `persistConfig` write them. A
  request names one by `documentId` (the GraphQL-over-HTTP proposal's parameter; `sha256:` prefix or
  not) or by the APQ extension's hash; a document sent as text is served only when it is one of them
  (`TrustedDocuments`, which guards WebSocket subscriptions too); anything else is refused with
  PERSISTED_QUERY_ONLY before it runs, and nothing registers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from api.config import Settings
from api.errors import DomainError
from api.graphql import http
from api.store import Documents, sha256

log = logging.getLogger("coco.graphql.persisted")

VERSION = 1
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
ONLY = "PERSISTED_QUERY_ONLY"
# Apollo's clients look for these messages (older ones for nothing else).
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
NOT_SUPPORTED_MESSAGE = "PersistedQueryNotSupported"
ONLY_MESSAGE = (
    "this server runs trusted documents only: name one by `documentId` or by "
    "`extensions.persistedQuery.sha256Hash`, or send the text of one"
)
HASH = re.compile(r"[0-9a-f]{64}")
PREFIX = "sha256:"


class Refused(Exception):
    """A GraphQL request error found before execution: its message and code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def as_error(self) -> dict[str, Any]:
        return {"message": self.message, "extensions": {"code": self.code}}


@dataclass(frozen=True)
class Manifest:
    """The trusted documents: by their id in the file, and by the SHA-256 of their text."""

    documents: dict[str, str]
    by_hash: dict[str, str]
    texts: frozenset[str]

    @classmethod
    def of(cls, documents: dict[str, str]) -> Manifest:
        return cls(documents, {sha256(text): text for text in documents.values()}, frozenset(documents.values()))

    def find(self, id: str) -> str | None:
        if id in self.documents:
            return self.documents[id]
        bare = id.removeprefix(PREFIX)
        return self.documents.get(bare) or self.by_hash.get(bare)

    def trusts(self, document: str) -> bool:
        return document in self.texts


@cache
def load_manifest(path: str) -> Manifest:
    """The manifest at `path`; a file that is not one stops the server, saying why."""
    where = f"COCO_GRAPHQL_TRUSTED_DOCUMENTS={path}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise SystemExit(f"{where}: cannot read it: {error.strerror}") from None
    except ValueError as error:
        raise SystemExit(f"{where}: not JSON: {error}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise SystemExit(f'{where}: must be a JSON object of operation ids to documents ({{"id": "query ..."}})')
    if not data:
        raise SystemExit(f"{where}: lists no document: the server would refuse every request")
    return Manifest.of(data)


def manifest_of(settings: Settings) -> Manifest | None:
    return load_manifest(settings.graphql_trusted_documents) if settings.graphql_trusted_documents else None


@dataclass(frozen=True)
class Found:
    """The request with its document, and whether the document is to be registered once answered."""

    params: http.Params
    register: bool = False


class Persisted:
    def __init__(self, settings: Settings) -> None:
        self.manifest = manifest_of(settings)
        self.automatic = settings.graphql_persisted_queries and self.manifest is None

    async def resolve(self, params: http.Params, documents: Documents | None) -> Found:
        """The request's document, from the manifest or the registered ones when it names one by id."""
        if params.document_id is not None:
            if params.query is not None:
                raise http.RequestError(400, "a request gives `documentId` or `query`, not both")
            document = await self._find(params.document_id, documents)
            if document is None:
                raise Refused(NOT_FOUND_MESSAGE, NOT_FOUND)
            return Found(replace(params, query=document))
        extension = (params.extensions or {}).get("persistedQuery")
        if extension is None:
            return Found(params)
        hash = _hash_of(extension)
        if params.query is not None:
            if sha256(params.query) != hash:
                raise http.RequestError(400, "provided sha does not match query: `sha256Hash` is not the query's")
            return Found(params, register=self.automatic)
        if self.manifest is None and not self.automatic:
            raise Refused(NOT_SUPPORTED_MESSAGE, NOT_SUPPORTED)
        document = await self._find(hash, documents)
        if document is None:
            raise Refused(NOT_FOUND_MESSAGE, NOT_FOUND)
        return Found(replace(params, query=document))

    async def _find(self, id: str, documents: Documents | None) -> str | None:
        if self.manifest is not None:
            return self.manifest.find(id)
        bare = id.removeprefix(PREFIX)
        if documents is None or not self.automatic or not HASH.fullmatch(bare):
            return None
        try:
            return await documents.get(bare)
        except DomainError as error:
            raise http.RequestError(
                503, f"persisted documents cannot be read: {error.message}", "SERVICE_UNAVAILABLE"
            ) from error

    async def register(self, document: str, documents: Documents | None) -> None:
        """Keeps an answered document under its hash; a failure only means it is sent again next time."""
        if documents is None:
            return
        try:
            await documents.put(document)
        except Exception:
            log.warning("a persisted document could not be registered", exc_info=True)


def _hash_of(extension: Any) -> str:
    if not isinstance(extension, dict):
        raise http.RequestError(400, "`extensions.persistedQuery` must be an object {version, sha256Hash}")
    if extension.get("version") != VERSION:
        raise http.RequestError(400, f"unsupported persisted query version: only version {VERSION} is known")
    hash = extension.get("sha256Hash")
    if not isinstance(hash, str) or not HASH.fullmatch(hash):
        raise http.RequestError(400, "`extensions.persistedQuery.sha256Hash` must be 64 lowercase hex digits")
    return hash


class TrustedDocuments(SchemaExtension):
    """Refuses any document the manifest does not hold, over HTTP and WebSocket alike: its validation's
    errors, if any, become this one refusal, so it never runs and tells nothing of the schema. (A
    document that does not even parse gets its syntax error first.) Listed after the extension that
    validates (api.graphql.cost.Protection)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and not self.manifest.trusts(context.query):
            context.pre_execution_errors = [GraphQLError(ONLY_MESSAGE, extensions={"code": ONLY})]
        yield
