"""The locks every install reads (`make serve`, `make test`, .ci/run, the image): complete for pyproject.toml's
requirements, hashed, and the runtime lock the same versions as the full one, so the server runs under test
what it runs in use. `make lock` rewrites them; these tests fail when pyproject.toml has moved on without it."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "requirements" / "runtime.txt"
DEV = ROOT / "requirements" / "dev.txt"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def pins(lock: Path) -> dict[str, list[str]]:
    """Name -> locked versions (a universal lock may hold one per environment marker)."""
    found: dict[str, list[str]] = {}
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            found.setdefault(canonicalize_name(match[1]), []).append(match[2])
    return found


def unhashed(lock: Path) -> list[str]:
    """The pins not followed by a --hash line: pip's --require-hashes refuses the whole file for one."""
    lines = lock.read_text().splitlines()
    return [line for i, line in enumerate(lines) if PIN.match(line) and "--hash=sha256:" not in lines[i + 1]]


def unmet(requirements: list[str], lock: Path) -> list[str]:
    locked = pins(lock)
    missing = []
    for text in requirements:
        requirement = Requirement(text)
        versions = locked.get(canonicalize_name(requirement.name), [])
        if not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
            missing.append(f"{text} (locked: {versions or 'nothing'})")
    return missing


def test_the_runtime_lock_holds_every_dependency_of_the_server() -> None:
    assert unmet(PROJECT["dependencies"], RUNTIME) == [], "run `make lock`"


def test_the_full_lock_holds_the_server_its_tests_and_tools() -> None:
    extras = PROJECT["optional-dependencies"]
    assert unmet(PROJECT["dependencies"] + extras["test"] + extras["dev"], DEV) == [], "run `make lock`"


def test_the_runtime_lock_is_the_full_lock_less_the_tools() -> None:
    runtime, dev = pins(RUNTIME), pins(DEV)
    assert {name: versions for name, versions in runtime.items() if dev.get(name) != versions} == {}
    # The test tools stay out of what `make serve` and the image install.
    assert {"pytest", "schemathesis", "playwright", "hypothesis", "mypy", "ruff"} & set(runtime) == set()


@pytest.mark.parametrize("lock", [RUNTIME, DEV], ids=lambda p: p.name)
def test_every_pin_is_hashed(lock: Path) -> None:
    assert pins(lock)
    assert unhashed(lock) == []


def recipe(target: str) -> str:
    """What `make TARGET` runs from nothing (-B: as if no stamp existed; -n: printed, not run)."""
    dry = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    return dry.stdout


def test_make_serve_installs_the_runtime_lock_only() -> None:
    commands = recipe("serve")
    assert "--require-hashes -r requirements/runtime.txt" in commands
    assert "requirements/dev.txt" not in commands
    assert "--no-deps -e ." in commands


@pytest.mark.parametrize("target", ["test", "check"])
def test_make_test_and_check_add_the_full_lock(target: str) -> None:
    commands = recipe(target)
    assert "--require-hashes -r requirements/runtime.txt" in commands
    assert "--require-hashes -r requirements/dev.txt" in commands


def test_a_changed_lock_reinstalls() -> None:
    rules = subprocess.run(["make", "-p", "-n", "-q", "serve"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    runtime = re.search(r"^\.venv/\.installed-runtime: (.*)$", rules.stdout, re.M)
    dev = re.search(r"^\.venv/\.installed-dev: (.*)$", rules.stdout, re.M)
    assert runtime and "requirements/runtime.txt" in runtime[1].split()
    assert dev and "requirements/dev.txt" in dev[1].split()


def test_the_image_installs_the_runtime_lock_and_the_server_without_dependencies() -> None:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final = text[text.rindex("\nFROM ") :]
    assert re.search(r"^COPY requirements/runtime\.txt (\S+)$", final, re.M)
    assert re.search(r"pip install --require-hashes -r \S*runtime\.txt", final)
    assert re.search(r"pip install --no-deps /wheels/\*\.whl", final)
    assert "requirements" not in (ROOT / ".dockerignore").read_text().split()
