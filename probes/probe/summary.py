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

from probes.analysis.metrics import record_metrics
from probes.analysis.diagnosis import Finding
from probes.analysis.slo import Slo, SloReport
from probes.textsafe import terminal_text


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
        observed = [record_metrics(r) for r in group]
        metrics = {name: [m[key] for m in observed if key in m] for name, key in METRIC_KEYS}
        row: dict[str, Any] = {"target": target, "label": label, "n": len(group),
                               "outcomes": dict(Counter(r["outcome"] for r in group)),
                               "cleanup": dict(Counter(r["cleanup"] for r in group if r.get("cleanup")))}
        for name, values in metrics.items():
            values = [v * scale for v in values]
            row[name] = {"p50": _quantile(values, 0.5), "p90": _quantile(values, 0.9),
                         "max": max(values) if values else None}
        rows.append(row)
    return rows


METRICS = (("upload_s", "upload"), ("presign_s", "  presign"), ("put_s", "  object PUT"), ("create_s", "  create"),
           ("t_32", "time to 32 %"), ("shown_held_32_s", "held at 32 % (bar shown)"),
           ("dwell_32", "held at 32 % (backend)"), ("transcription_s", "transcription"),
           ("longest_stall_s", "longest stall"), ("total_s", "total"))
# summary row key -> probes.analysis.metrics name
METRIC_KEYS = (("upload_s", "upload_s"), ("presign_s", "presign_s"), ("put_s", "put_s"), ("create_s", "create_s"),
               ("t_32", "t_32"), ("shown_held_32_s", "shown_held_32_s"), ("dwell_32", "dwell_32"),
               ("transcription_s", "transcription_s"), ("longest_stall_s", "stall_s"), ("total_s", "total_s"))
OPTIONAL_ROWS = frozenset({"presign_s", "put_s", "create_s"})  # the presigned flow's steps: shown when measured


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
        table.add_column(column, justify="right" if column in ("p50", "p90", "max") else "left",
                         no_wrap=column == "metric")  # "held at 32 % (backend)" reads as one line
    cleanup_lines = []
    for row in summary_rows(records, time_scale):
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items()))
        if row["cleanup"]:
            deleted = row["cleanup"].get("deleted", 0)
            cleanup_lines.append(f"{row['target']} / {row['label']}: cleanup: {deleted} deleted, "
                                 f"{sum(row['cleanup'].values()) - deleted} left")
        shown = [(key, name) for key, name in METRICS if key not in OPTIONAL_ROWS or row[key]["max"] is not None]
        for i, (key, name) in enumerate(shown):
            stats = row[key]
            # Target and label are data (a label of '[/]' is text, not markup): Text cells, never markup.
            table.add_row(terminal_text(f"{row['target']} / {row['label']}" if i == 0 else ""),
                          terminal_text(f"n={row['n']}: {outcomes}" if i == 0 else ""), name,
                          _num(stats["p50"]), _num(stats["p90"]), _num(stats["max"]),
                          end_section=i == len(shown) - 1)
    console.print(table)
    for line in cleanup_lines:  # diaries the probes created and deleted again (targets with cleanup = true)
        console.print(terminal_text(line))


def print_slo(report: SloReport) -> None:
    """The SLO table after the summary: one line per objective, pass or FAIL, and what it means."""
    console = Console(stderr=True)
    table = Table(title=f"SLOs ({report.source}): {'pass' if report.ok else 'BROKEN'}", title_justify="left")
    for column in ("objective", "value", "n", "result", "note"):
        table.add_column(column, justify="right" if column in ("value", "n") else "left")
    for r in report.results:
        slo = Slo(r.metric, r.stat, r.threshold)
        value = "-" if r.value is None else (f"{r.value:.0%}" if r.stat == "rate" else _num(r.value))
        table.add_row(terminal_text(slo.describe()), value, str(r.n),
                      terminal_text("pass" if r.ok else "FAIL", "green" if r.ok else "bold red"),
                      terminal_text(r.note or ""))
    console.print(table)


VERDICT_STYLES = {"for": "bold red", "against": "green", "none": "dim"}
VERDICT_WORDS = {"for": "evidence for", "against": "evidence against", "none": "no evidence"}


def print_diagnosis(findings: list[Finding]) -> None:
    """The diagnosis, last: per suspected cause its verdict, the numbers behind it and what to check next."""
    if not findings:
        return
    console = Console(stderr=True, emoji=False, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=True, emoji=False, highlight=False, width=140)
    console.print(terminal_text("Diagnosis: the incident's suspects", "bold"))
    for f in sorted(findings, key=lambda f: ("for", "none", "against").index(f.verdict)):
        line = terminal_text(f"  {f.cause:<19}")
        line.append_text(terminal_text(f"{VERDICT_WORDS[f.verdict]:<17}", VERDICT_STYLES[f.verdict]))
        line.append_text(terminal_text(f.next))
        console.print(line)
        if f.evidence and f.verdict != "against":
            console.print(terminal_text(f"  {'':<19}{'':<17}{evidence_line(f.evidence)}", "dim"))


def evidence_line(evidence: dict[str, Any]) -> str:
    """The numbers behind a finding in one line (empty and zero values left out)."""
    parts = []
    for key, value in evidence.items():
        if value in (None, [], {}, 0, False, ""):
            continue
        parts.append(f"{key}={value}")
    return ", ".join(parts)
