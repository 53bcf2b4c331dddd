"""The viewer's static files: served at /viewer/ by the app, self-contained (no CDN, no build step)."""

from __future__ import annotations

import re

import httpx

from api.resources import bundled

VIEWER = bundled("viewer")


async def test_the_viewer_is_served_at_viewer(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        bare = await client.get("/viewer")
        page = await client.get("/viewer/")
        script = await client.get("/viewer/app.js")
        style = await client.get("/viewer/style.css")
        missing = await client.get("/viewer/nothing-here.js")

    assert bare.status_code in (301, 307, 308) and bare.headers["location"].endswith("/viewer/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404


def test_the_viewer_loads_nothing_from_elsewhere() -> None:
    files = sorted(p for p in VIEWER.iterdir() if p.suffix in (".html", ".js", ".css"))
    assert {p.name for p in files} >= {"index.html", "app.js", "graphql.js", "live.js", "render.js", "style.css"}
    for path in files:
        source = path.read_text()
        # Only relative URLs: no CDN, no absolute links to other hosts.
        assert not re.search(r"(src|href)=\"(https?:)?//", source), path.name
        assert not re.search(r"""(from|import)\s*\(?\s*["'](?!\./)""", source), path.name
        assert "require(" not in source, path.name
