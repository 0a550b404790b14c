"""SLO judging alone (probes/analysis/slo.py): the boundaries the README states, on records and on tables.

"A metric passes when the statistic is <= the threshold"; the completed rate passes when it is >=
the threshold. Both paths (run records, a report's probes table) must agree at the boundary.
"""

from __future__ import annotations

import pandas as pd
import pytest

from probes.analysis.slo import DEFAULT_SLOS, Slo, evaluate, evaluate_table


def record(total: float | None, outcome: str = "completed", dwell_32: float | None = None,
           shown_32: float | None = None) -> dict:
    rec = {"outcome": outcome, "total_s": total, "upload_status": 200, "upload_s": 0.01,
           "dwell": {} if dwell_32 is None else {"32": dwell_32}, "shown_held_32_s": shown_32}
    return rec


def table(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"outcome": r["outcome"], "total_s": r["total_s"],
                          "dwell_32": r["dwell"].get("32")} for r in records])


def judged(slos, records):
    """(ok, value) of each objective, from records and from the table: they must agree."""
    from_records = evaluate(slos, records)
    from_table = evaluate_table(slos, table(records))
    pairs = [(r.ok, r.value) for r in from_records.results]
    assert pairs == [(r.ok, r.value) for r in from_table.results]
    assert from_records.ok == from_table.ok == all(ok for ok, _ in pairs)
    return pairs


@pytest.mark.parametrize("worst, ok", [(15.0, True), (15.001, False), (14.999, True)])
def test_a_timing_at_its_threshold_passes(worst, ok):
    """p90 of three probes is their max: exactly 15 s against `total_s <= 15` is a pass."""
    records = [record(9.0), record(12.0), record(worst)]
    assert judged([Slo("total_s", "p90", 15.0)], records) == [(ok, worst)]


@pytest.mark.parametrize("completed, ok", [(2, True), (1, False)])
def test_a_rate_at_its_threshold_passes(completed, ok):
    records = [record(10.0) for _ in range(completed)] + [record(None, "failed") for _ in range(3 - completed)]
    (result,) = judged([Slo("completed", "rate", 2 / 3)], records)
    assert result == (ok, round(completed / 3, 6))


def test_interrupted_and_cut_off_probes_are_not_judged():
    records = [record(10.0), record(11.0), record(None, "aborted"), record(None, "cut_off")]
    assert judged([Slo("completed", "rate", 1.0), Slo("total_s", "max", 11.0)], records) == [(True, 1.0), (True, 11.0)]


def test_the_defaults_are_the_incidents_criteria_and_a_missing_metric_fails():
    """Held at 32 % is judged on the bar the user saw (issue 17), not the backend's dwell."""
    records = [record(15.0, dwell_32=9.0, shown_32=3.0), record(14.0, dwell_32=9.0, shown_32=0.5),
               record(13.0, dwell_32=9.0, shown_32=1.0)]
    report = evaluate(DEFAULT_SLOS, records)
    by = {r.metric: r for r in report.results}
    assert "dwell_32" not in by
    assert (by["total_s"].ok, by["shown_held_32_s"].ok, by["completed"].ok) == (True, True, True)  # at the boundary
    # no probe measured the transcription phase: not a pass by default
    assert by["transcription_s"].value is None and not by["transcription_s"].ok and not report.ok
    assert by["transcription_s"].note == "no probe measured it"


def test_a_time_scaled_run_is_judged_in_scenario_seconds():
    records = [record(1.2), record(1.4), record(1.6)]  # real seconds at time scale 0.1: 12, 14, 16 s
    (result,) = evaluate([Slo("total_s", "p90", 15.0)], records, scale=0.1).results
    assert not result.ok and result.value == pytest.approx(16.0)
