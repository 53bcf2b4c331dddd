"""What the direct pool needs from SQLAlchemy's compiler, in one place.

api/store/pool.py runs statements that SQLAlchemy built and compiled, but on asyncpg
itself: it needs the SQL text, the order of the positional parameters, the values
bound in the statement, and how each parameter's value is converted for asyncpg
(JSON serialised, say). SQLAlchemy keeps that last one in a private attribute of the
compiled statement (`_bind_processors`); here it is rebuilt from documented API
(`SQLCompiler.bind_names`, `literal_execute_params`, `TypeEngine.dialect_impl` and
`bind_processor`) the same way SQLAlchemy builds it. tests/test_sqlalchemy_adapter.py
checks it against what SQLAlchemy itself sends, so that an upgrade that changes any
of this fails there, loudly, rather than in a read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TupleType

DIALECT = PGDialect_asyncpg()


def compile_for_asyncpg(
    statement: ClauseElement,
) -> tuple[str, tuple[str, ...], Mapping[str, Any], dict[str, Callable[[Any], Any]]]:
    """The statement's SQL text, its positional parameters' names in order, the values bound in the
    statement itself (the caller's replace them by name), and each parameter's conversion."""
    compiled = statement.compile(dialect=DIALECT)
    if not isinstance(compiled, SQLCompiler):
        raise TypeError(f"not a SQL statement: {type(statement).__name__}")
    return compiled.string, tuple(compiled.positiontup or ()), compiled.params, bind_processors(compiled)


def bind_processors(compiled: SQLCompiler) -> dict[str, Callable[[Any], Any]]:
    """Each positional parameter's conversion for the dialect, by parameter name (none: sent as it is)."""
    dialect = compiled.dialect
    processors: dict[str, Callable[[Any], Any]] = {}
    for bind, name in compiled.bind_names.items():
        if bind in compiled.literal_execute_params:
            continue  # rendered into the SQL text, never sent
        if isinstance(bind.type, TupleType):
            raise TypeError(f"parameter {name}: tuple parameters cannot run on the direct pool")
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    return processors
