"""Build hook: ship the repository's migrations/ and schema/ (and viewer/, once it exists)
inside the installed package, as api/_bundled/<name>.

They live at the top of the repository, where Alembic and the tests expect them; a
source checkout and an editable install read them there. A regular install
(`pip install .`, the container image) has no repository, so the build copies them
into the package and `api.resources.bundled` finds them there.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("migrations", "schema", "viewer")


class BuildWithBundledData(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        for name in BUNDLED:
            source = root / name
            if not source.is_dir():
                continue
            target = Path(self.build_lib) / "api" / "_bundled" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithBundledData})
