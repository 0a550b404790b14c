"""Service level objectives: a table of thresholds in, pass/fail per objective out. Pure.

    [targets.prod.slo]
    total_s         = { p90 = 15 }   # a timing metric passes when its statistic is <= the threshold
    shown_held_32_s = { p90 = 3 }
    transcription_s = { p90 = 8 }
    completed       = { rate = 1.0 } # the share of probes completed passes when >= the threshold

The defaults are the thankly incident's own success criteria: a 5 s clip done
in under 15 s, the bar the user sees held at 32 % for under 3 s (the seed's
criterion is about the phone's bar, so it is judged on the app's displayed
label, probes.analysis.shown_bar; the backend's `dwell_32` is reported beside
it), Whisper's transcription under 8 s, every probe completed. Metrics and statistics are those of
probes.analysis.metrics (nearest rank: p90 of 3 probes is their max, and the
result says so). Values are judged in the seconds a report shows: a
time-scaled simulator run in its scenario seconds. Probes that were
interrupted or cut off by a load run's end say nothing about the backend and
are left out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Mapping

from probes.analysis.metrics import (
    RATE_METRIC, STATS, completed_rate, is_metric_name, metric_values, nearest_rank, nearest_rank_note,
)

NOT_JUDGED = frozenset({"aborted", "cut_off"})


@dataclass(frozen=True)
class Slo:
    metric: str
    stat: str
    threshold: float

    def describe(self) -> str:
        op = ">=" if self.stat == "rate" else "<="
        unit = "" if self.stat == "rate" else " s"
        return f"{self.metric} {self.stat} {op} {self.threshold:g}{unit}"


DEFAULT_SLOS: tuple[Slo, ...] = (
    Slo("total_s", "p90", 15.0),
    Slo("shown_held_32_s", "p90", 3.0),
    Slo("transcription_s", "p90", 8.0),
    Slo(RATE_METRIC, "rate", 1.0),
)


def parse_slo_table(table: Any) -> tuple[Slo, ...]:
    """`{metric: {stat: threshold}}` to SLOs; a ValueError names the key and the fix."""
    if not isinstance(table, Mapping) or not table:
        raise ValueError("must be a table of metric = { statistic = threshold }, e.g. total_s = { p90 = 15 }")
    out: list[Slo] = []
    for metric, spec in table.items():
        if not isinstance(spec, Mapping) or not spec:
            raise ValueError(f"{metric}: must be a table like {{ p90 = 15 }}")
        if metric != RATE_METRIC and not is_metric_name(str(metric)):
            raise ValueError(f"{metric}: unknown metric; use upload_s, presign_s, put_s, create_s, t_<m>, dwell_<m>, "
                             f"stall_s, transcription_s, total_s, shown_held_32_s, shown_done_s, shown_lag_max_s "
                             f"or completed")
        for stat, threshold in spec.items():
            allowed = ("rate",) if metric == RATE_METRIC else STATS
            if stat not in allowed:
                raise ValueError(f"{metric}.{stat}: unknown statistic; use {', '.join(allowed)}")
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
                raise ValueError(f"{metric}.{stat}: the threshold must be a number, got {threshold!r}")
            if stat == "rate" and not 0 <= threshold <= 1:
                raise ValueError(f"{metric}.{stat}: a rate is a share between 0 and 1, got {threshold:g}")
            if stat != "rate" and threshold <= 0:
                raise ValueError(f"{metric}.{stat}: the threshold must be > 0 seconds, got {threshold:g}")
            out.append(Slo(str(metric), str(stat), float(threshold)))
    return tuple(out)


@dataclass(frozen=True)
class SloResult:
    metric: str
    stat: str
    threshold: float
    value: float | None
    n: int
    ok: bool
    note: str | None = None


@dataclass(frozen=True)
class SloReport:
    ok: bool
    results: tuple[SloResult, ...]
    source: str  # where the objectives came from: "targets.prod.slo", "defaults", a --slo file

    def to_json(self) -> dict[str, Any]:
        """run.json's "slo" (DESIGN "SLOs"): ok, and one entry per objective."""
        return {"ok": self.ok, "source": self.source,
                "results": [{k: v for k, v in asdict(r).items()} for r in self.results]}


def evaluate(slos: Iterable[Slo], records: Iterable[Mapping[str, Any]], scale: float = 1.0,
             source: str = "defaults") -> SloReport:
    """Judge each objective over probes.jsonl records (times divided by a simulator's time scale)."""
    judged = [r for r in records if r.get("outcome") not in NOT_JUDGED]
    return judge(slos, lambda metric: metric_values(judged, metric, scale), completed_rate(judged), source)


def evaluate_table(slos: Iterable[Slo], probes: Any, source: str = "defaults") -> SloReport:
    """Judge each objective over a report's probes table (pandas; its columns are the metric names,
    its times already in scenario seconds)."""
    judged = probes[~probes["outcome"].isin(NOT_JUDGED)]
    done = judged["outcome"] == "completed"

    def values(metric: str) -> list[float]:
        if metric not in judged.columns:
            return []
        column = (judged.loc[done, metric] if metric in ("total_s", "shown_done_s") else judged[metric]).dropna()
        return column[column >= 0].astype(float).tolist()

    rate = (float(done.mean()), int(len(judged))) if len(judged) else (None, 0)
    return judge(slos, values, rate, source)


def judge(slos: Iterable[Slo], values: Callable[[str], list[float]], rate: tuple[float | None, int],
          source: str) -> SloReport:
    """The objectives against a metric's observed values and the completed share."""
    results = []
    for slo in slos:
        if slo.stat == "rate":
            value, n = rate
            ok = value is not None and value >= slo.threshold - 1e-12
            note = None if n else "no probes"
        else:
            observed = values(slo.metric)
            n = len(observed)
            values_ = observed
            value = nearest_rank(values_, slo.stat)
            ok = value is not None and value <= slo.threshold
            note = nearest_rank_note(slo.stat, n) if n else "no probe measured it"
        results.append(SloResult(slo.metric, slo.stat, slo.threshold,
                                 None if value is None else round(value, 6), n, ok, note))
    return SloReport(all(r.ok for r in results), tuple(results), source)


def slo_from_json(data: Any) -> SloReport | None:
    """run.json's "slo" back into a report; None when absent or not of that shape."""
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        return None
    results = []
    for item in data["results"]:
        if not isinstance(item, Mapping):
            continue
        try:
            value = item.get("value")
            results.append(SloResult(str(item["metric"])[:40], str(item["stat"])[:8], float(item["threshold"]),
                                     None if value is None else float(value), int(item.get("n") or 0),
                                     bool(item.get("ok")), _text(item.get("note"))))
        except (KeyError, TypeError, ValueError):
            continue
    return SloReport(all(r.ok for r in results) and bool(data.get("ok")), tuple(results),
                     _text(data.get("source")) or "run.json")


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None
