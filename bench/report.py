"""What a run prints and writes: the machine, the table of rows and ratios, peak memory."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .loadgen import PGBENCH
from .postgraphile import EXECUTABLE as POSTGRAPHILE
from .scenarios import Row, Side

MEMORY_TARGET_MB = 300.0
SUBSCRIPTIONS_STUB = "not measured: live feed not merged yet"


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory": _command(["free", "-h"]),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "wrk": _command(["wrk", "-v"]).splitlines()[0] if shutil.which("wrk") else None,
        "pgbench": _command([str(PGBENCH), "--version"]),
        "node": _command(["node", "--version"]) if shutil.which("node") else None,
        "postgraphile": _package_version(POSTGRAPHILE.parents[1] / "postgraphile" / "package.json"),
    }


def _command(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except OSError:
        return ""
    return (done.stdout or done.stderr).strip()


def _package_version(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("version")
    except (OSError, ValueError):
        return None


# -- the printed table --------------------------------------------------------------------------


def _side_cells(side: Side | None) -> list[str]:
    if side is None:
        return ["", "", ""]
    if side.measurement is None:
        return [side.skipped or "skipped", "", ""]
    m = side.measurement
    flag = " !" if m.errors or side.notes else ""
    return [f"{m.requests_per_s:,.0f}{flag}", f"{m.latency_ms.get('p50', 0):.1f}", f"{m.latency_ms.get('p99', 0):.1f}"]


def table(rows: list[Row], memory: dict[str, list[dict[str, Any]]], ours_name: str) -> str:
    header = ["scenario", "ours req/s", "p50 ms", "p99 ms", "reference", "ref req/s", "p50 ms", "p99 ms",
              "ratio", "target", "SQL only tps"]
    lines: list[list[str]] = [header]
    notes: list[str] = []
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        target = f">= {row.target}x" if row.target is not None else "-"
        if row.met is not None:
            target += " ok" if row.met else " MISSED"
        sql = row.sql.measurement if row.sql and row.sql.measurement else None
        sql_cell = f"{sql.requests_per_s:,.0f}" if sql else (row.sql.skipped or "") if row.sql else ""
        ours_cells = _side_cells(row.ours)
        if row.ours.measurement is None:
            ours_cells = [ours_cells[0], "", ""]
        lines.append([row.key, *ours_cells, row.reference.implementation, *_side_cells(row.reference), ratio, target,
                      sql_cell])
        for side in (row.ours, row.reference, row.sql):
            for note in side.notes if side else []:
                notes.append(f"{row.key} / {side.implementation}: {note}")
    lines.append(["subscriptions (1, 100, 1,000 subscribers)", SUBSCRIPTIONS_STUB, "", "", "", "", "", "", "-",
                  "p99 < 100 ms", ""])
    # A skipped side's reason can be long: it ends the line rather than widening every column.
    widths = [max(len(line[i]) for line in lines if not _long(line[i])) for i in range(len(header))]
    out = []
    for line in lines:
        cells = [cell if _long(cell) else cell.ljust(widths[i]) for i, cell in enumerate(line)]
        out.append("  ".join(cells).rstrip())
    out.insert(1, "  ".join("-" * w for w in widths))
    out.append("")
    out.append(f"peak RSS per process (target: each of {ours_name}'s workers < {MEMORY_TARGET_MB:.0f} MB)")
    for server, processes in memory.items():
        parts = [f"{p['role']} {p['pid']}: {p['peak_rss_mb']:.0f} MB" for p in processes]
        out.append(f"  {server}: " + (", ".join(parts) if parts else "not running"))
    summary = memory_summary(memory, ours_name)
    if summary["met"] is not None:
        verdict = "ok" if summary["met"] else "MISSED"
        out.append(f"  {ours_name} worker peak: {summary['ours_peak_worker_rss_mb']:.0f} MB "
                   f"(target < {MEMORY_TARGET_MB:.0f} MB) {verdict}")
    if notes:
        out.append("")
        out.append("notes (rows marked !):")
        out.extend(f"  {note}" for note in notes)
    return "\n".join(out)


def _long(cell: str) -> bool:
    return len(cell) > 24


def memory_summary(memory: dict[str, list[dict[str, Any]]], ours_name: str) -> dict[str, Any]:
    workers = [p["peak_rss_mb"] for p in memory.get(ours_name, []) if p["role"] == "worker"]
    if not workers:
        return {"ours_peak_worker_rss_mb": None, "target_mb": MEMORY_TARGET_MB, "met": None}
    peak = max(workers)
    return {"ours_peak_worker_rss_mb": peak, "target_mb": MEMORY_TARGET_MB, "met": peak < MEMORY_TARGET_MB}


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def timestamp_name(started: str) -> str:
    return re.sub(r"[^0-9TZ]", "", started) + ".json"
