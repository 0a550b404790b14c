"""The table `probes run` ends with: per target and label, the few numbers a person checks first.

Computed from the in-memory records with the standard library rather than through
probes.report.tables (pandas): importing pandas would add about 0.4 s to every run (measured with -X importtime),
and the full tables are one `probes report` away.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any, Iterable

from rich.console import Console
from rich.table import Table


def _quantile(values: list[float], q: float) -> float | None:
    """numpy's default (linear) quantile, from the standard library: no numpy import for a 5-row table."""
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def summary_rows(records: Iterable[dict[str, Any]], time_scale: float | None = None) -> list[dict[str, Any]]:
    """One row per (target, label): n, outcomes and p50/p90/max of the key timings, in scenario seconds."""
    scale = 1.0 / time_scale if time_scale else 1.0
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["target"], record["label"]), []).append(record)
    rows = []
    for (target, label), group in groups.items():
        metrics = {
            "upload_s": [r["upload_s"] for r in group if r.get("upload_s") is not None],
            "t_32": [r["milestones"]["32"]["t_s"] for r in group if "32" in (r.get("milestones") or {})],
            "dwell_32": [r["dwell"]["32"] for r in group if "32" in (r.get("dwell") or {})],
            "longest_stall_s": [r["longest_stall"]["s"] for r in group if r.get("longest_stall")],
            "total_s": [r["total_s"] for r in group if r.get("total_s") is not None],
        }
        row: dict[str, Any] = {"target": target, "label": label, "n": len(group),
                               "outcomes": dict(Counter(r["outcome"] for r in group))}
        for name, values in metrics.items():
            values = [v * scale for v in values]
            row[name] = {"p50": _quantile(values, 0.5), "p90": _quantile(values, 0.9),
                         "max": max(values) if values else None}
        rows.append(row)
    return rows


METRICS = (("upload_s", "upload"), ("t_32", "time to 32 %"), ("dwell_32", "dwell at 32 %"),
           ("longest_stall_s", "longest stall"), ("total_s", "total"))


def _num(value: float | None) -> str:
    """Milliseconds stay visible (an upload of 0.004 s), long phases keep two decimals."""
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def print_summary(records: list[dict[str, Any]], time_scale: float | None = None) -> None:
    """Print the end-of-run table to stderr, so stdout carries only the run directory's path."""
    console = Console(stderr=True)
    title = "seconds"
    if time_scale and time_scale != 1:
        title += f" (time-scaled run x{time_scale:g}; shown in scenario seconds)"
    table = Table(title=title)
    for column in ("target / label", "n, outcomes", "metric", "p50", "p90", "max"):
        table.add_column(column, justify="right" if column in ("p50", "p90", "max") else "left")
    for row in summary_rows(records, time_scale):
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items()))
        for i, (key, name) in enumerate(METRICS):
            stats = row[key]
            table.add_row(f"{row['target']} / {row['label']}" if i == 0 else "",
                          f"n={row['n']}: {outcomes}" if i == 0 else "", name,
                          _num(stats["p50"]), _num(stats["p90"]), _num(stats["max"]),
                          end_section=i == len(METRICS) - 1)
    console.print(table)
