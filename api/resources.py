"""Where the files that live beside the code are: migrations/, schema/, viewer/."""

from __future__ import annotations

from pathlib import Path

# This module lives at the top of the package.
PACKAGE = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """The directory `name` from the top of the repository. An installed package carries a
    copy under api/_bundled/ (see setup.py); a checkout or editable install uses the original."""
    packaged = PACKAGE / "_bundled" / name
    return packaged if packaged.is_dir() else PACKAGE.parent / name
