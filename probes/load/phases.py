"""A probe record as Locust PHASE rows: which phase took how long. Pure.

A completed flow gives one row per phase (time_to_<m> and dwell_<m> for every
milestone reached, longest_stall, transcription, total). A failed, timed-out
or refused flow gives one failed `total` row whose error is its outcome; a flow
cut off by the end of the run (or interrupted) gives none: it says nothing
about the backend. An open-model flow also gives `start_lateness`, how late
it started against its arrival slot.
"""

from __future__ import annotations

from typing import Any

REQUEST_TYPE = "PHASE"
SILENT_OUTCOMES = frozenset({"aborted", "cut_off"})


def phase_rows(record: dict[str, Any]) -> list[tuple[str, float]]:
    """[(name, milliseconds)] for a completed flow (and start_lateness for any flow that has one)."""
    rows = []
    if (late := record.get("start_lateness_s")) is not None:
        rows.append(("start_lateness", late * 1000))
    if record.get("outcome") != "completed":
        return rows
    rows += [(f"time_to_{m}", v["t_s"] * 1000) for m, v in (record.get("milestones") or {}).items()]
    rows += [(f"dwell_{m}", s * 1000) for m, s in (record.get("dwell") or {}).items()]
    stall = record.get("longest_stall")
    rows.append(("longest_stall", (stall["s"] if stall else 0.0) * 1000))
    if record.get("transcription_s") is not None:
        rows.append(("transcription", record["transcription_s"] * 1000))
    rows.append(("total", (record.get("total_s") or 0.0) * 1000))
    return rows


def failure_row(record: dict[str, Any]) -> tuple[str, float, str] | None:
    """("total", ms, "outcome: error") for a flow that ended without completing; None otherwise."""
    outcome = record.get("outcome")
    if outcome == "completed" or outcome in SILENT_OUTCOMES:
        return None
    error = record.get("error")
    return "total", (record.get("end_s") or 0.0) * 1000, f"{outcome}: {error}" if error else str(outcome)


def bucket_3sf(response_time: float) -> int:
    """Locust percentile bucket to 3 significant figures (its default is 2: 58,760 ms → 59,000).

    Replaces locust.stats.bucket_response_time: a 60 s phase then lands within
    ±50 ms instead of ±500 ms, for about three times as many histogram keys.

    >>> bucket_3sf(58760), bucket_3sf(1234.5), bucket_3sf(987.6), bucket_3sf(42.4)
    (58800, 1230, 988, 42)
    """
    if response_time < 1000:
        return round(response_time)
    digits = len(str(int(response_time))) - 3
    return int(round(response_time, -digits))


SUMMARY_COLUMNS = ("name", "flows", "failures", "p50_s", "p90_s", "p99_s", "max_s")


def phase_summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The final phase table from the raw records: exact nearest-rank percentiles, seconds, no Locust."""
    from probes.analysis.metrics import nearest_rank

    values: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    for record in records:
        for name, ms in phase_rows(record):
            values.setdefault(name, []).append(ms / 1000)
        failed = failure_row(record)
        if failed is not None:
            values.setdefault(failed[0], []).append(failed[1] / 1000)
            failures[failed[0]] = failures.get(failed[0], 0) + 1
    rows = []
    for name in sorted(values, key=phase_order):
        v = values[name]
        rows.append({"name": name, "flows": len(v), "failures": failures.get(name, 0),
                     "p50_s": nearest_rank(v, "p50"), "p90_s": nearest_rank(v, "p90"),
                     "p99_s": nearest_rank(v, "p99"), "max_s": max(v)})
    return rows


def phase_order(name: str) -> tuple[int, float, str]:
    """time_to_* and dwell_* by milestone, then the rest by name."""
    kind, _, mark = name.rpartition("_")
    rank = {"time_to": 0, "dwell": 1}.get(kind, 2)
    try:
        return rank, float(mark), name
    except ValueError:
        return rank, 0.0, name


def phase_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The phase table for the console, after Locust's own summary."""
    if not rows:
        return []
    lines = ["Flow phases (seconds; from the probe records, apart from Locust's request statistics)",
             f"{'phase':<16}{'flows':>7}{'fails':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"]
    for r in rows:
        lines.append(f"{r['name']:<16}{r['flows']:>7}{r['failures']:>7}{r['p50_s']:>9.2f}{r['p90_s']:>9.2f}"
                     f"{r['p99_s']:>9.2f}{r['max_s']:>9.2f}")
    return lines
