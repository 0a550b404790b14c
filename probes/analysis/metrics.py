"""Metrics by name: what one probe record measured, and the statistics SLOs and history use. Pure.

A metric name is the record's and the report's: `upload_s` (from the first
upload request's start to the end of the request that created the task),
the presigned flow's `presign_s`, `put_s` (the object PUT) and `create_s`
(each request's duration), `t_<m>` (first poll at >= m %, the milestone
estimate), `dwell_<m>` (time the backend's progress was seen exactly at m %),
`stall_s` (longest time the running maximum of progress stood still),
`transcription_s` (first poll at >= 20 % to the first poll past 55 %: the
Whisper answer), `total_s` (completed probes only), and the bar the user
sees (probes.analysis.shown_bar): `shown_held_32_s` (time the app's label
read 32 %), `shown_done_s` (when the result appeared; completed probes) and
`shown_lag_max_s` (how long the label trailed the backend at worst). A
metric a probe never observed is absent, never 0: a probe that failed at
24 % has no `dwell_32`, a multipart probe no `put_s`.

Statistics use the nearest-rank method (the smallest value with at least q of
the values at or below it), so a statistic is always a measured value and
p90 of three probes is their max: with few probes a percentile is no better
than what there is, and `nearest_rank_note` says so.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:  # `probes run` and `probes canary` must not pay ~0.4 s for pandas
    import pandas as pd

STATS = ("p50", "p90", "p99", "max")
RATE_METRIC = "completed"  # share of probes completed; its statistic is `rate`
UPLOAD_PHASES = ("presign_s", "put_s", "create_s")  # the presigned flow's requests, each its own duration
SHOWN_METRICS = ("shown_held_32_s", "shown_done_s", "shown_lag_max_s")  # the bar the user sees
# Per-probe times that are plain record fields (reports load them as columns of the same names).
RECORD_TIMES = ("upload_s", *UPLOAD_PHASES, *SHOWN_METRICS)
FIXED_METRICS = ("upload_s", *UPLOAD_PHASES, "stall_s", "transcription_s", "total_s", *SHOWN_METRICS)
_QUANTILE = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}


def milestone_columns(probes: "pd.DataFrame") -> list[str]:
    """t_<m> columns in numeric order."""
    cols = [c for c in probes.columns if c.startswith("t_") and c[2:].replace(".", "", 1).isdigit()]
    return sorted(cols, key=lambda c: float(c[2:]))


def is_metric_name(name: str) -> bool:
    """True for a timing metric name (`completed` is the rate, checked apart)."""
    if name in FIXED_METRICS:
        return True
    for prefix in ("t_", "dwell_"):
        if name.startswith(prefix) and name[len(prefix):].isdigit() and 0 < int(name[len(prefix):]) <= 100:
            return True
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) and f >= 0 else None


def record_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """Every timing metric one probes.jsonl record observed, in the record's (real) seconds."""
    out: dict[str, float] = {}
    if record.get("upload_status") is not None and (v := _number(record.get("upload_s"))) is not None:
        out["upload_s"] = v
    for key in UPLOAD_PHASES:  # present only for a request that was answered
        if (v := _number(record.get(key))) is not None:
            out[key] = v
    milestones = record.get("milestones")
    if isinstance(milestones, Mapping):
        for key, value in milestones.items():
            if isinstance(value, Mapping) and (v := _number(value.get("t_s"))) is not None:
                out[f"t_{key}"] = v
    dwell = record.get("dwell")
    if isinstance(dwell, Mapping):
        for key, value in dwell.items():
            if (v := _number(value)) is not None:
                out[f"dwell_{key}"] = v
    stall = record.get("longest_stall")
    if isinstance(stall, Mapping) and (v := _number(stall.get("s"))) is not None:
        out["stall_s"] = v
    if (v := _number(record.get("transcription_s"))) is not None:
        out["transcription_s"] = v
    if record.get("outcome") == "completed" and (v := _number(record.get("total_s"))) is not None:
        out["total_s"] = v
    for key in SHOWN_METRICS:  # shown_done_s is null unless the result appeared
        if (v := _number(record.get(key))) is not None:
            out[key] = v
    return out


def metric_values(records: Iterable[Mapping[str, Any]], metric: str, scale: float = 1.0) -> list[float]:
    """The metric's values over the records that observed it, divided by a simulator's time scale."""
    values = []
    for record in records:
        value = record_metrics(record).get(metric)
        if value is not None:
            values.append(value / scale)
    return values


def completed_rate(records: Iterable[Mapping[str, Any]]) -> tuple[float | None, int]:
    """(share of probes completed, n); None when there are no probes."""
    outcomes = [r.get("outcome") for r in records]
    if not outcomes:
        return None, 0
    return sum(1 for o in outcomes if o == "completed") / len(outcomes), len(outcomes)


def nearest_rank(values: Iterable[float], stat: str) -> float | None:
    """p50/p90/p99/max by nearest rank; None for no values.

    >>> nearest_rank([9.0, 10.0, 62.0], "p90"), nearest_rank([1.0, 2.0, 3.0, 4.0], "p50")
    (62.0, 2.0)
    """
    ordered = sorted(values)
    if not ordered:
        return None
    q = _QUANTILE[stat]
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def nearest_rank_note(stat: str, n: int) -> str | None:
    """Says when a percentile of n values is really the max (or, for n = 1, the only value)."""
    if stat == "max" or stat not in _QUANTILE or n == 0:
        return None
    if max(1, math.ceil(_QUANTILE[stat] * n - 1e-9)) >= n:
        return f"{stat} of {n} probe{'s' if n != 1 else ''} is the max"
    return None


def summarise(records: Iterable[Mapping[str, Any]], metrics: Iterable[str], scale: float = 1.0
              ) -> dict[str, dict[str, float | int | None]]:
    """{metric: {"n", "p50", "p90", "max"}} over the records, for history rows and tables."""
    records = list(records)
    out: dict[str, dict[str, float | int | None]] = {}
    for metric in metrics:
        values = metric_values(records, metric, scale)
        out[metric] = {"n": len(values), "p50": nearest_rank(values, "p50"), "p90": nearest_rank(values, "p90"),
                       "max": nearest_rank(values, "max")}
    return out
