"""Swagger UI at /docs, from the assets the swagger-ui-bundle package ships (no CDN)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = Path(swagger_ui_path)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Continuous Coordination REST API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"""


async def swagger_ui(request: Request) -> Response:
    return HTMLResponse(PAGE)


def routes() -> list[BaseRoute]:
    return [
        Route("/docs", swagger_ui, methods=["GET", "HEAD"]),
        Route("/docs/", swagger_ui, methods=["GET", "HEAD"]),
        Mount("/docs/assets", app=StaticFiles(directory=ASSETS), name="swagger-ui-assets"),
    ]
