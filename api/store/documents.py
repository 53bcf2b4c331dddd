"""GraphQL documents by the SHA-256 of their text: what automatic persisted queries register.

Kept in PostgreSQL, so that a document one replica registered is known to every other. A document never
changes under its hash, so each process keeps the ones it has found; a hash not found is asked again
next time (another replica may have registered it since).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from api.cache import BoundedCache
from api.store.database import connection, transaction
from api.store.tables import GraphQLDocument


def sha256(document: str) -> str:
    """The lowercase hex SHA-256 of a document's UTF-8 text (as clients compute it)."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


class Documents:
    def __init__(self, engine: AsyncEngine, cache_size: int = 1024) -> None:
        self.engine = engine
        # The documents found or registered here, by hash.
        self.known: BoundedCache[str, str] = BoundedCache("graphql_documents", cache_size)

    async def get(self, hash: str) -> str | None:
        """The document registered under this hash, or None."""
        document = self.known.get(hash)
        if document is not None:
            return document
        async with connection(self.engine) as conn:
            document = (
                await conn.execute(select(GraphQLDocument.document).where(GraphQLDocument.sha256 == hash))
            ).scalar()
        if document is not None:
            self.known.put(hash, document)
        return document

    async def put(self, document: str) -> str:
        """Registers the document (once; registering it again changes nothing) and answers its hash."""
        hash = sha256(document)
        if hash not in self.known:
            async with transaction(self.engine) as conn:
                await conn.execute(
                    insert(GraphQLDocument)
                    .values(sha256=hash, document=document)
                    .on_conflict_do_nothing(index_elements=["sha256"])
                )
            self.known.put(hash, document)
        return hash
