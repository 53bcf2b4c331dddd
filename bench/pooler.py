"""PgBouncer in front of an embedded PostgreSQL: Debian's binary, a generated config in a temp dir,
loopback only, trust auth (the database trusts its socket; the user just has to be listed).

The benchmark's pooled rows run through it, and so do the deployment tests (tests/deploy/tools.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from api.ops.embedded import SERVER_SYSTEM_USER

PGBOUNCER = Path("/usr/sbin/pgbouncer")
START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgBouncer:
    """Runs for the duration of a `with` block; `url(database)` is how clients reach it."""

    def __init__(
        self,
        postgres_url: str,
        *,
        pool_mode: str = "transaction",
        pool_size: int = 20,
        users: tuple[str, ...] = (),
        binary: Path = PGBOUNCER,
        **extra: str,
    ) -> None:
        # Not under a 0700 temp dir: as root, PgBouncer drops to the embedded server's system user.
        self.dir = Path(tempfile.mkdtemp(prefix="coco-pgbouncer-"))
        self.dir.chmod(0o755)
        self.port = _free_port()
        self.log = self.dir / "pgbouncer.log"
        self.binary = binary
        self.users = ("postgres", *users)
        query = parse_qs(urlsplit(postgres_url).query)
        self.socket_dir, self.pg_port = query["host"][0], query.get("port", ["5432"])[0]
        self.settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(self.dir / "userlist.txt"),
            "admin_users": "postgres",
            "pool_mode": pool_mode,
            "default_pool_size": str(pool_size),
            "max_client_conn": "2000",
            "pidfile": str(self.dir / "pgbouncer.pid"),
            "log_connections": "0",
            "log_disconnections": "0",
            **extra,
        }
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root; it becomes the user that runs the embedded PostgreSQL.
            self.settings["user"] = SERVER_SYSTEM_USER
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str, *, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PgBouncer:
        (self.dir / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in self.users))
        lines = ["[databases]", f"* = host={self.socket_dir} port={self.pg_port}", "[pgbouncer]"]
        lines += [f"{name} = {value}" for name, value in self.settings.items()]
        (self.dir / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_SYSTEM_USER)
            for path in [self.dir, *self.dir.iterdir()]:
                os.chown(path, account.pw_uid, account.pw_gid)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(self.binary), str(self.dir / "pgbouncer.ini")], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}: {self._log()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen on {self.port}: {self._log()}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"
