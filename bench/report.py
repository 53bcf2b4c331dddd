"""What a run prints and writes: the machine, the table of rows and ratios, peak memory."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import postgraphile5, subscriptions, webhooks
from bench.loadgen import PGBENCH
from bench.postgraphile import EXECUTABLE as POSTGRAPHILE
from bench.rows import Row, Side

MEMORY_TARGET_MB = 200.0


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
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
        # PostGraphile 5 runs on its own Node 22, not the system's node that runs v4.
        "postgraphile5_node": _command([str(postgraphile5.NODE), "--version"]) if postgraphile5.NODE.exists() else None,
        "postgraphile5": postgraphile5.version(),
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


def _side_cells(side: Side | None, reasons: dict[str, list[str]], row_key: str) -> list[str]:
    """req/s, p50, p99; a side that was not measured shows a short word and its reason goes below."""
    if side is None:
        return ["", "", ""]
    if side.measurement is None:
        reason = side.skipped or "skipped"
        reasons.setdefault(f"{side.implementation}: {reason}", []).append(row_key)
        return [reason.split(":", 1)[0], "", ""]
    m = side.measurement
    flag = " !" if m.errors or side.notes or not m.requests else ""
    if not m.requests:
        return [f"0{flag}", "-", "-"]
    return [f"{m.requests_per_s:,.0f}{flag}", f"{m.latency_ms.get('p50', 0):.1f}", f"{m.latency_ms.get('p99', 0):.1f}"]


def table(
    rows: list[Row],
    memory: dict[str, list[dict[str, Any]]],
    ours_name: str,
    live: subscriptions.Report | None = None,
    served: bool | None = None,
    hooks: webhooks.Report | None = None,
    live_graphql: subscriptions.Report | None = None,
) -> str:
    header = [
        "scenario",
        "ours req/s",
        "p50 ms",
        "p99 ms",
        "reference",
        "ref req/s",
        "p50 ms",
        "p99 ms",
        "ratio",
        "target",
        "SQL only tps",
    ]
    lines: list[list[str]] = [header]
    notes: list[str] = []
    reasons: dict[str, list[str]] = {}
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        target = f">= {row.target}x" if row.target is not None else "-"
        if row.p50_limit is not None:
            p50_ratio = f"{row.p50_ratio:.2f}x" if row.p50_ratio is not None else "-"
            target = f"p50 {p50_ratio}, <= {row.p50_limit}x"
        if row.met is not None:
            target += " ok" if row.met else " MISSED"
        sql_cells = _side_cells(row.sql, reasons, row.key)
        lines.append(
            [
                row.key,
                *_side_cells(row.ours, reasons, row.key),
                row.reference.implementation,
                *_side_cells(row.reference, reasons, row.key),
                ratio,
                target,
                sql_cells[0],
            ]
        )
        for side in (row.ours, row.reference, row.sql):
            for note in side.notes if side else []:
                notes.append(f"{row.key} / {side.implementation}: {note}")
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    for report in (live, live_graphql):
        if report is not None:
            out.append("")
            out.extend(subscriptions.table(report))
    if hooks is not None:
        out.append("")
        out.extend(webhooks.table(hooks))
    if reasons:
        out.append("")
        out.append("not measured:")
        for reason, keys in reasons.items():
            out.append(f"  {reason} ({', '.join(keys)})")
    out.append("")
    out.append(f"peak RSS per process (target: each of {ours_name}'s workers < {MEMORY_TARGET_MB:.0f} MB)")
    for server, processes in memory.items():
        parts = [f"{p['role']} {p['pid']}: {p['peak_rss_mb']:.0f} MB" for p in processes]
        out.append(f"  {server}: " + (", ".join(parts) if parts else "not running"))
    if served is None:
        served = any(row.ours.measurement for row in rows)
    summary = memory_summary(memory, ours_name, served=served)
    if summary["met"] is not None:
        verdict = "ok" if summary["met"] else "MISSED"
        out.append(
            f"  {ours_name} worker peak: {summary['ours_peak_worker_rss_mb']:.0f} MB "
            f"(target < {MEMORY_TARGET_MB:.0f} MB) {verdict}"
        )
    elif "note" in summary:
        out.append(f"  no verdict: {summary['note']}")
    repeated = [(row.key, side) for row in rows for side in (row.ours, row.reference, row.sql) if side and side.runs]
    if repeated:
        out.append("")
        out.append("repeated runs, requests/s (the table shows each side's median run):")
        out.extend(
            f"  {key} / {side.implementation}: " + ", ".join(f"{r:,.0f}" for r in side.runs or [])
            for key, side in repeated
        )
    if notes:
        out.append("")
        out.append("notes (rows marked !):")
        out.extend(f"  {note}" for note in notes)
    return "\n".join(out)


def memory_summary(memory: dict[str, list[dict[str, Any]]], ours_name: str, served: bool) -> dict[str, Any]:
    """Our workers' peak against the target; an idle server's memory proves nothing, so no verdict then."""
    workers = [p["peak_rss_mb"] for p in memory.get(ours_name, []) if p["role"] == "worker"]
    peak = max(workers) if workers else None
    summary: dict[str, Any] = {"ours_peak_worker_rss_mb": peak, "target_mb": MEMORY_TARGET_MB, "met": None}
    if peak is not None and served:
        summary["met"] = peak < MEMORY_TARGET_MB
    elif peak is not None:
        summary["note"] = f"{ours_name} answered no measured request: its memory is that of an idle server"
    return summary


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def timestamp_name(started: str) -> str:
    return re.sub(r"[^0-9TZ]", "", started) + ".json"
