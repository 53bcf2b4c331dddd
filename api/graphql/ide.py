"""GraphiQL at /graphql, served entirely by this server: no CDN, no other origin.

The page loads GraphiQL 3, React 18, the explorer plugin and graphql-ws from UMD builds vendored under
static/assets/ (static/README.md says which versions and how to refresh them), at URLs that carry a
digest of those files, so that they are cached for a year and a new release of them is a new URL. The
page's Content-Security-Policy names no origin but its own. Its script (coco-graphiql.js) runs queries
and mutations over HTTP and subscriptions over graphql-transport-ws, with the access token of the field
above the IDE (kept in the tab's sessionStorage, taken from a `?token=` link and out of the address bar)
on both, and says when the server finds it missing, expired or short of a scope; an Authorization header
in the headers editor wins over the field.
"""

from __future__ import annotations

import hashlib
import html
from functools import cache
from pathlib import Path

from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

ASSETS = Path(__file__).resolve().parent / "static" / "assets"
# Where the assets are served: /graphql/assets/<digest>/<file>.
PREFIX = "/graphql/assets"
IMMUTABLE = "public, max-age=31536000, immutable"

# Only this origin: GraphiQL's fonts and icons are data: URLs; React sets inline styles, which is all
# 'unsafe-inline' allows (for styles, never for scripts); connect-src 'self' covers ws(s):// to this host.
POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is small and its asset URLs change with the assets: always fetch it again.
    "Cache-Control": "no-cache",
}

STYLES = ("graphiql.min.css", "plugin-explorer.css", "coco-graphiql.css")
SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
    "graphql-ws.min.js",
    "coco-graphiql.js",
)


@cache
def digest() -> str:
    """A digest of every asset's name and bytes: part of their URLs."""
    hashed = hashlib.sha256()
    for path in sorted(ASSETS.iterdir()):
        hashed.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return hashed.hexdigest()[:16]


def asset_url(name: str) -> str:
    return f"{PREFIX}/{digest()}/{name}"


@cache
def page(endpoint: str) -> str:
    styles = "\n".join(f'  <link rel="stylesheet" href="{asset_url(name)}">' for name in STYLES)
    scripts = "\n".join(f'  <script src="{asset_url(name)}"></script>' for name in SCRIPTS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>CoCo GraphQL</title>
  <link rel="icon" href="data:,">
{styles}
</head>
<body>
  <form class="coco-access" id="coco-access" autocomplete="off">
    <label for="coco-token">Access token</label>
    <input id="coco-token" name="token" type="password" autocomplete="off" spellcheck="false">
    <button type="submit">Use token</button>
    <button type="button" id="coco-token-forget" hidden>Forget token</button>
    <span id="coco-access-status" role="status" aria-live="polite" data-problem="none"></span>
  </form>
  <div id="graphiql" data-endpoint="{html.escape(endpoint)}">Loading…</div>
{scripts}
</body>
</html>
"""


def response(endpoint: str) -> HTMLResponse:
    return HTMLResponse(page(endpoint), headers=PAGE_HEADERS)


class Assets:
    """The vendored files under the current digest, cached as immutable; any other digest is not found."""

    def __init__(self) -> None:
        self.files = GZipMiddleware(StaticFiles(directory=ASSETS), minimum_size=1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path_params", {}).get("digest") != digest():
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return

        async def cached(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += [(b"cache-control", IMMUTABLE.encode()), (b"x-content-type-options", b"nosniff")]
                message = {**message, "headers": headers}
            await send(message)

        await self.files(scope, receive, cached)


def routes() -> list[BaseRoute]:
    return [Mount(PREFIX + "/{digest}", app=Assets(), name="graphiql-assets")]
