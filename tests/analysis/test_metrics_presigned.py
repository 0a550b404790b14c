"""The presigned flow's phases and the bar the user sees as metrics: registry, SLOs, defaults. Pure."""

from __future__ import annotations

import pytest

from probes.analysis.metrics import FIXED_METRICS, is_metric_name, record_metrics
from probes.analysis.slo import DEFAULT_SLOS, Slo, evaluate, parse_slo_table


def record(outcome: str = "completed", **fields) -> dict:
    base = {"outcome": outcome, "upload_status": 200, "upload_s": 0.4, "presign_s": 0.01, "put_s": 0.33,
            "create_s": 0.04, "total_s": 9.0, "shown_held_32_s": 2.5, "shown_done_s": 9.01, "shown_lag_max_s": 1.2,
            "milestones": {}, "dwell": {"32": 0.3}}
    return {**base, **fields}


def test_the_phases_and_the_bar_are_metrics_of_a_record():
    got = record_metrics(record())
    assert {k: got[k] for k in ("presign_s", "put_s", "create_s", "shown_held_32_s", "shown_done_s",
                                "shown_lag_max_s", "dwell_32")} == {
        "presign_s": 0.01, "put_s": 0.33, "create_s": 0.04, "shown_held_32_s": 2.5, "shown_done_s": 9.01,
        "shown_lag_max_s": 1.2, "dwell_32": 0.3}
    # absent, never 0: a multipart probe has no PUT, a failed one no result on screen
    multipart = record_metrics(record(presign_s=None, put_s=None, create_s=None))
    assert not {"presign_s", "put_s", "create_s"} & set(multipart)
    failed = record_metrics(record("upload_error", shown_held_32_s=None, shown_done_s=None, shown_lag_max_s=None,
                                   put_s=True))
    assert not {"shown_held_32_s", "shown_done_s", "put_s", "total_s"} & set(failed)


def test_slos_name_the_new_metrics_and_the_default_judges_the_bar():
    assert all(is_metric_name(m) for m in ("presign_s", "put_s", "create_s", "shown_held_32_s", "shown_done_s",
                                           "shown_lag_max_s"))
    assert set(FIXED_METRICS) >= {"upload_s", "put_s", "shown_held_32_s"}
    assert parse_slo_table({"put_s": {"p90": 2}, "shown_lag_max_s": {"max": 5}}) == (
        Slo("put_s", "p90", 2.0), Slo("shown_lag_max_s", "max", 5.0))
    with pytest.raises(ValueError, match="put: unknown metric; use upload_s, presign_s, put_s, create_s"):
        parse_slo_table({"put": {"p90": 2}})
    assert Slo("shown_held_32_s", "p90", 3.0) in DEFAULT_SLOS
    assert not any(s.metric == "dwell_32" for s in DEFAULT_SLOS)  # the backend's dwell is reported, not judged


def test_the_default_held_at_32_is_the_bar_not_the_backend():
    """The backend passed 32 % at once (dwell 0) while the phone's bar sat there: the seed's SLO breaks."""
    records = [record(dwell={"32": 0.0}, shown_held_32_s=h) for h in (2.0, 4.5, 5.0)]
    report = evaluate(DEFAULT_SLOS, records, scale=1.0)
    by = {r.metric: r for r in report.results}
    assert not by["shown_held_32_s"].ok and by["shown_held_32_s"].value == 5.0 and not report.ok
    scaled = {r.metric: r for r in evaluate(DEFAULT_SLOS, records, scale=2.0).results}
    assert scaled["shown_held_32_s"].value == 2.5 and scaled["shown_held_32_s"].ok  # judged in scenario seconds
