"""The GraphQL documents the viewer sends, read from its own files so that tests follow the viewer as it changes."""

from __future__ import annotations

import re
from pathlib import Path

VIEWER = Path(__file__).resolve().parents[1] / "viewer"


def dashboard_query() -> str:
    """The dashboard's one query, as viewer/dashboard.js sends it."""
    source = (VIEWER / "dashboard.js").read_text()
    found = re.search(r"const DASHBOARD = `(.*?)`;", source, re.DOTALL)
    assert found, "viewer/dashboard.js no longer holds its DASHBOARD query"
    return found.group(1)
