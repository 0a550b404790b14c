"""The end-of-run table: grouping, percentiles and unscaling."""

from pytest import approx

from probes.probe.summary import summary_rows


def record(total, dwell, outcome="completed", label="a"):
    return {"target": "t", "label": label, "outcome": outcome, "upload_s": 0.01, "total_s": total,
            "milestones": {"32": {"t_s": 0.4, "lo_s": 0.3, "hi_s": 0.5}}, "dwell": {"32": dwell},
            "longest_stall": {"progress": 32, "s": dwell, "start_s": 0.4}}


def test_rows_per_target_and_label_in_scenario_seconds():
    records = [record(1.0, 0.5), record(2.0, 0.7), record(3.0, 0.9), record(None, 5.0, "timeout"),
               record(9.0, 0.1, label="b")]
    a, b = summary_rows(records, time_scale=0.1)
    assert (a["label"], a["n"], a["outcomes"]) == ("a", 4, {"completed": 3, "timeout": 1})
    assert a["total_s"] == approx({"p50": 20.0, "p90": 28.0, "max": 30.0})  # completed only, unscaled x10
    assert a["dwell_32"]["max"] == approx(50.0) and a["t_32"]["p50"] == approx(4.0)
    assert b["n"] == 1 and b["total_s"]["p50"] == approx(90.0)
