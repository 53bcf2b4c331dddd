"""PgBouncer (bench/pooler.py) and HAProxy as the deployment tests run them: Debian's binaries, a generated
config in a temp dir, loopback only. `.ci/run` installs both (apt-get, as root) when they are missing."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from bench import pooler
from tests.processes import free_port

PGBOUNCER = pooler.PGBOUNCER
HAPROXY = Path("/usr/sbin/haproxy")
START_TIMEOUT_S = 30.0
ROOT = Path(__file__).resolve().parents[2]


def require(binary: Path, package: str) -> str:
    """The binary's path; without it the test is skipped, or fails where it must run (CI sets
    COCO_REQUIRE_DEPLOY_TOOLS=1, having installed the packages)."""
    if binary.exists():
        return str(binary)
    message = f"{binary} is missing: apt-get install {package} (.ci/run does it as root)"
    if os.environ.get("COCO_REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port}:\n{log.read_text(errors='replace')}")


class _Daemon:
    """A process of ours in a private dir, stopped (and the dir removed) at the end of the block."""

    name = "daemon"

    def __init__(self) -> None:
        # Not under pytest's 0700 base dir: as root, PgBouncer drops to the server's system user.
        self.dir = Path(tempfile.mkdtemp(prefix=f"coco-{self.name}-"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.log = self.dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _start(self, command: list[str]) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        wait_for_port(self.port, self.process, self.name, self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class PgBouncer(pooler.PgBouncer):
    """bench/pooler.py's PgBouncer, skipped (or failed, in CI) where Debian's package is missing."""

    def __init__(self, postgres_url: str, **options: object) -> None:
        super().__init__(postgres_url, binary=Path(require(PGBOUNCER, "pgbouncer")), **options)  # type: ignore[arg-type]


class HAProxy(_Daemon):
    """HAProxy over HTTP replicas: round robin, /readyz as the health check, long tunnels for streams."""

    name = "haproxy"

    def __init__(self, replica_ports: list[int], *, check_interval_ms: int = 300) -> None:
        super().__init__()
        self.binary = require(HAPROXY, "haproxy")
        self.replica_ports = replica_ports
        self.check_interval_ms = check_interval_ms
        self.url = f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        servers = "\n".join(
            f"    server replica{i} 127.0.0.1:{port} check" for i, port in enumerate(self.replica_ports, 1)
        )
        return f"""global
    maxconn 4000
    stats socket {self.dir / "admin.sock"} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    # Event streams and WebSockets stay open for as long as they are used.
    timeout tunnel 1h
    # A request whose replica refuses the connection (killed, not yet found down) goes to another one.
    retries 3
    option redispatch

frontend coco
    bind 127.0.0.1:{self.port}
    default_backend replicas

backend replicas
    balance roundrobin
    # Which replica answered: a test kills the one its subscribers are on.
    http-response set-header X-Served-By %s
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter {self.check_interval_ms}ms fall 2 rise 2
{servers}
"""

    def __enter__(self) -> HAProxy:
        (self.dir / "haproxy.cfg").write_text(self.config())
        # -db: stay in the foreground, so that this process is the one to stop.
        self._start([self.binary, "-db", "-f", str(self.dir / "haproxy.cfg")])
        return self

    def states(self) -> dict[str, str]:
        """Each replica's state as HAProxy sees it ("UP", "DOWN", "UP 1/2"...), from its stats socket."""
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.dir / "admin.sock"))
            except (FileNotFoundError, ConnectionRefusedError):
                return {}  # not there yet: HAProxy may listen on its port first
            s.sendall(b"show stat\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        lines = b"".join(chunks).decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {
            r["svname"]: r["status"] for r in rows if r["pxname"] == "replicas" and r["svname"].startswith("replica")
        }

    def set_state(self, replica: str, state: str) -> None:
        """ "maint" takes the replica out of the rotation (no new request goes there), "ready" puts it back."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.dir / "admin.sock"))
            s.sendall(f"set server replicas/{replica} state {state}\n".encode())
            answer = s.recv(65536).decode().strip()
        assert answer == "", answer

    def wait_for(self, replica: str, state: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while (current := self.states().get(replica)) != state:
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy still sees {replica} as {current}, not {state}")
            time.sleep(0.05)


class CocoServe:
    """One `coco serve` process in a process group of its own, as a replica or a single machine runs it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Nothing of the test runner's own settings leaks in.
        base = {k: v for k, v in os.environ.items() if not k.startswith("COCO_") and "DATABASE_URL" not in k}
        self.env = {**base, "COCO_PORT": str(self.port), "COCO_LOG_LEVEL": "warning", **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> CocoServe:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api", "serve"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"coco serve exited with {self.process.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"coco serve was not ready within {timeout_s:.0f} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: the server, its workers and whatever they started."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
