"""A probe record as Locust PHASE rows: which phase took how long. Pure.

A completed flow gives one row per phase (time_to_<m> for every milestone
reached, dwell_<m> for every milestone, longest_stall, total), so each PHASE
row's count equals the number of completed flows. A failed, timed-out or
refused flow gives one failed `total` row whose error is its outcome; an
aborted flow (cut off by the end of the run) gives none: it says nothing
about the backend.
"""

from __future__ import annotations

from typing import Any

REQUEST_TYPE = "PHASE"
SILENT_OUTCOMES = frozenset({"aborted"})


def phase_rows(record: dict[str, Any]) -> list[tuple[str, float]]:
    """[(name, milliseconds)] for a completed flow; [] otherwise."""
    if record.get("outcome") != "completed":
        return []
    rows = [(f"time_to_{m}", v["t_s"] * 1000) for m, v in (record.get("milestones") or {}).items()]
    rows += [(f"dwell_{m}", s * 1000) for m, s in (record.get("dwell") or {}).items()]
    stall = record.get("longest_stall")
    rows.append(("longest_stall", (stall["s"] if stall else 0.0) * 1000))
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
