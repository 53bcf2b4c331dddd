"""GET / (the OpenAPI document), Swagger UI at /docs from local assets, and a schemathesis run finding no 5xx."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from openapi_spec_validator import validate

from api.entities import ENTITIES

# `make fuzz` raises this for a longer campaign.
FUZZ_EXAMPLES = int(os.environ.get("COCO_FUZZ_EXAMPLES", "6"))


async def test_the_document_is_valid_openapi(http: httpx.AsyncClient) -> None:
    r = await http.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/openapi+json; charset=utf-8"
    document = r.json()
    validate(document)
    for ent in ENTITIES.values():
        item = document["paths"][f"/{ent.resource}"]
        assert set(item) == ({"get", "post", "patch", "delete"} if ent.writable else {"get"})
        schema = document["components"]["schemas"][ent.resource]
        assert set(schema["properties"]) == {f.name for f in ent.fields if not f.internal}
        assert set(schema["required"]) == {f.name for f in ent.fields if f.required and f.name != "id"}
        names = {p["$ref"].rsplit(".", 1)[-1] for p in item["get"]["parameters"] if "rowFilter" in p["$ref"]}
        assert names == {f.name for f in ent.fields if not f.internal}
    assert document["components"]["schemas"]["goal_story_updates"]["properties"]["status"]["enum"] == [
        "on_track",
        "at_risk",
        "off_track",
        "completed",
        "paused",
    ]
    assert (await http.get("/", headers={"Accept": "application/openapi+json"})).status_code == 200
    assert (await http.get("/", headers={"Accept": "text/csv"})).status_code == 406
    head = await http.head("/")
    assert (head.status_code, head.content) == (200, b"")


async def test_swagger_ui_is_served_from_local_assets(http: httpx.AsyncClient) -> None:
    r = await http.get("/docs")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]
    assert "https://" not in r.text and "http://" not in r.text
    assert 'url: "/"' in r.text
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        r = await http.get(f"/docs/assets/{asset}")
        assert r.status_code == 200, asset
        assert len(r.content) > 1000


async def test_schemathesis_finds_no_server_error(world: dict[str, Any], server_url: str, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server_url}/",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--seed",
        "2626",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "30",
        "--no-color",
        "--report-dir",
        str(tmp_path),
    ]
    # run in a scratch directory: schemathesis and hypothesis keep their caches in the working directory
    result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
