"""A run directory's numbers as the history row holds them: nearest rank, scenario seconds, stable hashes."""

from __future__ import annotations

import pytest

from probes.canary.summary import METRICS, run_ok, stable_hash, summarise_run
from probes.errors import UsageError
from tests.canary.conftest import SIGNATURE, probe_record


def meta(**extra):
    base = {"run_id": "r1", "target": "prod", "label": "canary", "started_at": "2026-11-26T09:00:00Z",
            "ended_at": "2026-11-26T09:01:00Z", "n": 3,
            "fingerprint": {"health": {"status": "healthy", "version": "1.4"}, "headers": {"date": "x"},
                            "signature": SIGNATURE}}
    return {**base, **extra}


def records(totals, **kw):
    return [probe_record("r1", f"{i:04d}", total=t, **kw) for i, t in enumerate(totals, 1)]


def test_nearest_rank_statistics_per_metric() -> None:
    row = summarise_run(meta(), records([9.0, 10.0, 62.0]))
    assert row.metrics["total_s"] == {"n": 3, "p50": 10.0, "p90": 62.0, "max": 62.0}  # p90 of 3 is the max
    assert row.metrics["dwell_32"]["p50"] == 0.5
    assert set(row.metrics) == set(METRICS)
    assert row.n == 3 and row.outcomes == {"completed": 3} and row.completed == 3
    assert row.started_ts == 1795683600.0 and row.ended_ts == 1795683660.0
    assert [p.metrics["total_s"] for p in row.probes] == [9.0, 10.0, 62.0]


def test_time_scaled_run_is_in_scenario_seconds() -> None:
    row = summarise_run(meta(time_scale=0.1), records([0.9, 1.0, 6.2]))
    assert row.metrics["total_s"]["p50"] == pytest.approx(10.0)
    assert row.probes[2].metrics["total_s"] == pytest.approx(62.0)
    assert row.time_scale == 0.1
    for bogus in (0, -1, "0.1", True, None):
        assert summarise_run(meta(time_scale=bogus), records([1.0])).metrics["total_s"]["p50"] == 1.0


def test_missing_metrics_are_absent_not_zero() -> None:
    failed = probe_record("r1", "0001", outcome="failed", total=None, transcription=None)
    row = summarise_run(meta(), [failed])
    assert row.metrics["total_s"] == {"n": 0, "p50": None, "p90": None, "max": None}
    assert row.metrics["transcription_s"]["n"] == 0
    assert row.probes[0].metrics["total_s"] is None


def test_slo_and_health() -> None:
    slo = {"ok": False, "results": [{"metric": "total_s", "stat": "p90", "threshold": 15, "value": 62.0, "n": 3,
                                     "ok": False, "extra": "dropped"}]}
    row = summarise_run(meta(slo=slo), records([9.0, 10.0, 62.0]))
    assert row.slo_ok is False and not row.ok
    assert row.slo_results == [{"metric": "total_s", "stat": "p90", "threshold": 15, "value": 62.0, "n": 3,
                                "ok": False}]
    assert summarise_run(meta(), records([9.0])).slo_ok is None  # not judged
    unreached = [probe_record("r1", "0001", outcome="upload_error", total=None)]
    assert not run_ok(unreached, None, None)
    assert not run_ok([], None, None)
    assert run_ok(records([9.0]), None, None)
    assert not run_ok(records([9.0]), True, 1) and run_ok(records([9.0]), True, 0)


def test_fingerprint_hash_is_stable_and_follows_health_and_signature() -> None:
    a = summarise_run(meta(), records([9.0]))
    reordered = meta(fingerprint={"signature": SIGNATURE, "headers": {"date": "other"},
                                  "health": {"version": "1.4", "status": "healthy"}})
    b = summarise_run(reordered, records([9.0]))
    assert a.fingerprint_hash == b.fingerprint_hash  # key order and response headers do not matter
    new_health = summarise_run(meta(fingerprint={**meta()["fingerprint"], "health": {"version": "1.5"}}),
                               records([9.0]))
    assert new_health.fingerprint_hash != a.fingerprint_hash and new_health.signature_hash == a.signature_hash
    new_sig = summarise_run(meta(fingerprint={**meta()["fingerprint"], "signature": SIGNATURE[:1]}), records([9.0]))
    assert new_sig.signature_hash != a.signature_hash and new_sig.fingerprint_hash != a.fingerprint_hash
    assert a.signature == SIGNATURE and len(a.fingerprint_hash) == 16
    assert stable_hash({"b": 1, "a": [1, "二"]}) == stable_hash({"a": [1, "二"], "b": 1})


@pytest.mark.parametrize("bad", [{"run_id": None}, {"target": ""}, {"started_at": "yesterday"}])
def test_a_run_json_without_identity_is_refused(bad) -> None:
    with pytest.raises(UsageError):
        summarise_run(meta(**bad), [], run_dir="reports/runs/x")
