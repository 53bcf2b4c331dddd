"""The load generators: wrk for every HTTP row, pgbench for the SQL-only rows.

Both report the same `Measurement`: completed requests (transactions for pgbench)
per second and latency percentiles in milliseconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from api.ops.embedded import POSTGRES_BIN_PATH, SUPERUSER

LUA_DIR = Path(__file__).resolve().parent / "lua"
PGBENCH = POSTGRES_BIN_PATH / "pgbench"
MARKER = "BENCH_JSON "


class LoadGeneratorError(RuntimeError):
    pass


@dataclass(frozen=True)
class Load:
    """How hard and how long: the same for every row of a run."""

    connections: int = 32
    threads: int = 2
    duration_s: int = 8
    warmup_s: int = 2
    timeout_s: int = 30


@dataclass
class Measurement:
    tool: str
    requests: int
    duration_s: float
    requests_per_s: float
    latency_ms: dict[str, float]
    errors: int
    error_detail: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, script: str, env: dict[str, str], load: Load) -> Measurement:
    """Warm up, then measure: wrk with `script` (a file in bench/lua) plus the reporting hook."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        lua = Path(tmp) / "scenario.lua"
        lua.write_text((LUA_DIR / script).read_text() + "\n" + (LUA_DIR / "report.lua").read_text())
        if load.warmup_s:
            _wrk(url, lua, env, load, load.warmup_s)
        return _wrk(url, lua, env, load, load.duration_s)


def _wrk(url: str, lua: Path, env: dict[str, str], load: Load, duration_s: int) -> Measurement:
    args = [
        "wrk",
        "-t",
        str(load.threads),
        "-c",
        str(load.connections),
        "-d",
        f"{duration_s}s",
        "--timeout",
        f"{load.timeout_s}s",
        "-s",
        str(lua),
        url,
    ]
    done = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, **env}, timeout=duration_s + load.timeout_s + 30
    )
    line = next((line for line in done.stdout.splitlines() if line.startswith(MARKER)), None)
    if done.returncode != 0 or line is None:
        raise LoadGeneratorError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    report = json.loads(line[len(MARKER) :])
    seconds = report["duration_us"] / 1e6
    errors = {k: int(v) for k, v in report["errors"].items()}
    return Measurement(
        tool="wrk",
        requests=report["requests"],
        duration_s=round(seconds, 3),
        requests_per_s=round(report["requests"] / seconds, 1),
        latency_ms={k: round(v / 1000, 3) for k, v in report["latency_us"].items()},
        errors=sum(errors.values()),
        error_detail=errors,
    )


def pgbench_available() -> bool:
    return PGBENCH.exists()


def run_pgbench(database: str, socket_dir: Path, port: int, script: Path, load: Load) -> Measurement:
    """pgbench with a custom script file, prepared statements, the same clients, threads and duration."""
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        path = script.resolve()
        base = [
            str(PGBENCH),
            "-n",
            "-M",
            "prepared",
            "-h",
            str(socket_dir),
            "-p",
            str(port),
            "-U",
            SUPERUSER,
            "-c",
            str(load.connections),
            "-j",
            str(load.threads),
            "-f",
            str(path),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if load.warmup_s:
            _pgbench([*base, "-T", str(load.warmup_s), database], env, load.warmup_s)
        prefix = Path(tmp) / "log"
        done = _pgbench(
            [*base, "-T", str(load.duration_s), "--log", f"--log-prefix={prefix}", database], env, load.duration_s
        )
        latencies = sorted(logged_latencies_us(Path(tmp)))
    processed = int(_field(done, r"number of transactions actually processed: (\d+)"))
    failed_match = re.search(r"number of failed transactions: (\d+)", done)
    failed = int(failed_match.group(1)) if failed_match else 0
    tps = float(_field(done, r"tps = ([\d.]+) \(without initial connection time\)"))
    return Measurement(
        tool="pgbench",
        requests=processed,
        duration_s=float(load.duration_s),
        requests_per_s=round(tps, 1),
        latency_ms=percentiles_ms(latencies),
        errors=failed,
        error_detail={"failed": failed},
    )


def _pgbench(args: list[str], env: dict[str, str], duration_s: int) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd="/", timeout=duration_s + 120)
    if done.returncode != 0:
        raise LoadGeneratorError(f"pgbench failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return done.stdout


def logged_latencies_us(directory: Path) -> list[int]:
    # Per-transaction log lines: client_id transaction_no latency_us script_no epoch epoch_us
    latencies: list[int] = []
    for log in directory.glob("log.*"):
        with log.open() as lines:
            latencies.extend(int(line.split(" ", 3)[2]) for line in lines if line.strip())
    return latencies


def percentiles_ms(sorted_us: list[int]) -> dict[str, float]:
    if not sorted_us:
        return {}

    def at(p: float) -> float:
        return sorted_us[min(len(sorted_us) - 1, round(p / 100 * (len(sorted_us) - 1)))] / 1000

    return {
        "mean": round(statistics.fmean(sorted_us) / 1000, 3),
        "max": sorted_us[-1] / 1000,
        "p50": at(50),
        "p90": at(90),
        "p99": at(99),
        "p99.9": at(99.9),
    }


def _field(output: str, pattern: str) -> str:
    match = re.search(pattern, output)
    if match is None:
        raise LoadGeneratorError(f"unexpected pgbench output (no {pattern!r}):\n{output[-2000:]}")
    return match.group(1)
