"""The HTTP servers under test as child processes, and their memory as /proc sees it.

Each server runs in its own session (process group), so stopping it stops its
workers too and nothing outlives the run.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Self

log = logging.getLogger("bench.servers")
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        env: dict[str, str],
        cwd: Path,
        log_file: Path,
        ready_path: str = "/",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.env = env
        self.cwd = cwd
        self.log_file = log_file
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_file}:\n"
                    + self.log_file.read_text(errors="replace")[-3000:]
                )
            if self._answers():
                log.info("%s is up on %s (pid %d)", self.name, self.base_url, self.process.pid)
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on {self.base_url} within {START_TIMEOUT_S:.0f} s")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + self.ready_path, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer means it is serving
        except OSError:
            return False

    def pids(self) -> list[int]:
        """The server process and all its descendants (e.g. the uvicorn workers)."""
        if self.process is None or self.process.poll() is not None:
            return []
        return [self.process.pid, *descendants(self.process.pid)]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        group = self.process.pid  # start_new_session made it the group leader
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, STOP_TIMEOUT_S)
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        # Workers still exiting after their parent are in the same group.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(group):
            os.killpg(group, signal.SIGKILL)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the ppid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children.get(child, []))
    return sorted(found)


def rss_kb(pid: int) -> int | None:
    try:
        return int((Path("/proc") / str(pid) / "statm").read_text().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return None


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class Sampler:
    """Calls `sample` every `interval_s` on a thread of its own, from entering the block until leaving it."""

    def __init__(self, interval_s: float = 0.25, name: str = "rss-sampler") -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        raise NotImplementedError


class MemorySampler(Sampler):
    """Samples the RSS of every process of the given servers until stopped; keeps each one's peak."""

    def __init__(self, servers: Sequence[ServerProcess], interval_s: float = 0.25) -> None:
        super().__init__(interval_s)
        self.servers = list(servers)
        # server name -> pid -> (peak RSS in kB, command line)
        self.peaks: dict[str, dict[int, tuple[int, str]]] = {s.name: {} for s in self.servers}

    def sample(self) -> None:
        for server in self.servers:
            peaks = self.peaks[server.name]
            for pid in server.pids():
                rss = rss_kb(pid)
                if rss is None:
                    continue
                previous = peaks.get(pid)
                if previous is None:
                    peaks[pid] = (rss, command_line(pid))
                elif rss > previous[0]:
                    peaks[pid] = (rss, previous[1])

    def report(self) -> dict[str, list[dict[str, object]]]:
        """Per server, each process's peak RSS in MB; workers are the processes that served requests."""
        result: dict[str, list[dict[str, object]]] = {}
        for server in self.servers:
            rows = []
            for pid, (peak_kb, cmdline) in sorted(self.peaks[server.name].items()):
                rows.append(
                    {
                        "pid": pid,
                        "role": _role(server, pid, cmdline),
                        "peak_rss_mb": round(peak_kb / 1024, 1),
                        "command": cmdline[:160],
                    }
                )
            result[server.name] = rows
        return result


def _role(server: ServerProcess, pid: int, cmdline: str) -> str:
    if server.process is not None and pid == server.process.pid:
        return "main"
    if "resource_tracker" in cmdline:
        return "helper"  # multiprocessing's bookkeeping process, serves no requests
    return "worker"
