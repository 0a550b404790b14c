"""One canary run as a history row: run.json + probes.jsonl records in, summary out. Pure.

Metric values are in scenario seconds (real seconds divided by run.json's
`time_scale` when it is a number > 0), the unit SLOs and reports use, so a
time-scaled simulator run and a real backend share one axis in the trend.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from probes.errors import UsageError

# The metrics a history row keeps as columns (n, p50, p90, max each); the trend plots three of them.
METRICS = ("upload_s", "t_32", "dwell_32", "stall_s", "transcription_s", "total_s")
STATS = ("n", "p50", "p90", "max")
# `probes run` exits 3 when every probe ended in one of these: the target was not reached or refused the token.
UNREACHED = frozenset({"upload_error", "auth_error"})
# A probe's `error` is one line from the server or an exception class; longer text is noise in a table.
MAX_ERROR_CHARS = 200
HASH_CHARS = 16  # 64 bits of sha256: collisions among a target's fingerprints are not a practical concern


@dataclass(frozen=True)
class ProbeRow:
    """One probe of a run, as the history keeps it."""

    run_id: str
    probe_id: str
    target: str
    started_at: str | None
    outcome: str
    error: str | None
    metrics: dict[str, float | None]
    poll_count: int | None
    poll_errors: int | None


@dataclass(frozen=True)
class RunSummary:
    """One run, as the history keeps it: what the trend, the alerts and the metrics read."""

    run_id: str
    target: str
    label: str | None
    started_at: str
    started_ts: float
    ended_at: str | None
    ended_ts: float | None
    n: int
    n_planned: int | None
    outcomes: dict[str, int]
    scenario: str | None
    time_scale: float | None
    metrics: dict[str, dict[str, float | int | None]]
    slo_ok: bool | None
    slo_results: list[dict[str, Any]]
    ok: bool
    exit_code: int | None
    fingerprint_hash: str | None
    signature: list[Any]
    signature_hash: str | None
    run_dir: str | None
    probes: list[ProbeRow] = field(default_factory=list, repr=False)

    @property
    def completed(self) -> int:
        return self.outcomes.get("completed", 0)


def parse_utc(text: Any) -> float | None:
    """Epoch seconds from run.json's UTC ISO 8601 time; None when absent or not a time."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def stable_hash(value: Any) -> str:
    """A short hash that is the same for equal JSON values, whatever their key order."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def time_scale_of(meta: Mapping[str, Any]) -> float | None:
    scale = meta.get("time_scale")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        return None
    return float(scale)


def slo_of(meta: Mapping[str, Any]) -> tuple[bool | None, list[dict[str, Any]]]:
    """(ok, results) from run.json's `slo`; (None, []) when the run was not judged."""
    slo = meta.get("slo")
    if not isinstance(slo, Mapping) or not isinstance(slo.get("ok"), bool):
        return None, []
    keys = ("metric", "stat", "threshold", "value", "n", "ok")
    results = [{k: r.get(k) for k in keys} for r in slo.get("results") or [] if isinstance(r, Mapping)]
    return slo["ok"], results


def run_ok(records: list[Mapping[str, Any]], slo_ok: bool | None, exit_code: int | None) -> bool:
    """Healthy: `probes run` exited 0 (or, for a back-filled run, reached the target) and no SLO broke."""
    if slo_ok is False:
        return False
    if exit_code is not None:
        return exit_code == 0
    return bool(records) and not all(r.get("outcome") in UNREACHED for r in records)


def _one_line(text: Any) -> str | None:
    if text is None:
        return None
    flat = " ".join(str(text).split())
    return flat[:MAX_ERROR_CHARS]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def summarise_run(meta: Mapping[str, Any], records: Iterable[Mapping[str, Any]], run_dir: str | None = None,
                  exit_code: int | None = None) -> RunSummary:
    """The history row of one run. `meta` is run.json, `records` the lines of probes.jsonl."""
    from probes.analysis.metrics import record_metrics, summarise  # imports pandas: only once a run has ended

    records = [r for r in records if isinstance(r, Mapping)]
    run_id, target, started_at = meta.get("run_id"), meta.get("target"), meta.get("started_at")
    where = run_dir or "run.json"
    if not isinstance(run_id, str) or not run_id:
        raise UsageError(f"{where}: run.json has no run_id")
    if not isinstance(target, str) or not target:
        raise UsageError(f"{where}: run.json has no target")
    started_ts = parse_utc(started_at)
    if started_ts is None:
        raise UsageError(f"{where}: run.json has no valid started_at")
    scale = time_scale_of(meta)
    divide = scale or 1.0
    slo_ok, slo_results = slo_of(meta)
    fp = meta.get("fingerprint") if isinstance(meta.get("fingerprint"), Mapping) else None
    signature = list(fp.get("signature") or []) if fp else []
    probes = []
    for record in records:
        observed = record_metrics(record)
        probes.append(ProbeRow(
            run_id=run_id, probe_id=str(record.get("probe_id")), target=target,
            started_at=record.get("started_at") if isinstance(record.get("started_at"), str) else None,
            outcome=str(record.get("outcome")), error=_one_line(record.get("error")),
            metrics={m: (observed[m] / divide if m in observed else None) for m in METRICS},
            poll_count=_int(record.get("poll_count")), poll_errors=_int(record.get("poll_errors")),
        ))
    return RunSummary(
        run_id=run_id, target=target, label=meta.get("label") if isinstance(meta.get("label"), str) else None,
        started_at=started_at, started_ts=started_ts,
        ended_at=meta.get("ended_at") if isinstance(meta.get("ended_at"), str) else None,
        ended_ts=parse_utc(meta.get("ended_at")), n=len(records), n_planned=_int(meta.get("n")),
        outcomes=dict(Counter(str(r.get("outcome")) for r in records)),
        scenario=meta.get("scenario") if isinstance(meta.get("scenario"), str) else None, time_scale=scale,
        metrics=summarise(records, METRICS, divide), slo_ok=slo_ok, slo_results=slo_results,
        ok=run_ok(records, slo_ok, exit_code), exit_code=exit_code,
        fingerprint_hash=stable_hash({"health": fp.get("health"), "signature": signature}) if fp else None,
        signature=signature, signature_hash=stable_hash(signature) if fp else None,
        run_dir=run_dir, probes=probes,
    )
