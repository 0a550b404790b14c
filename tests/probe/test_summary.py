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


def test_a_presigned_run_shows_its_requests_and_both_holds_at_32(capsys):
    from probes.probe.summary import print_summary

    presigned = [{**record(9.0, 0.0), "upload": "presigned", "upload_status": 200, "presign_s": 0.01,
                  "put_s": 0.3 + i, "create_s": 0.02, "shown_held_32_s": 2.5} for i in range(3)]
    (row,) = summary_rows(presigned)
    assert row["put_s"] == approx({"p50": 1.3, "p90": 2.1, "max": 2.3})
    assert row["shown_held_32_s"]["max"] == approx(2.5) and row["dwell_32"]["max"] == approx(0.0)
    print_summary(presigned)
    err = capsys.readouterr().err
    for name in ("presign", "object PUT", "create", "held at 32 % (bar shown)", "held at 32 % (backend)"):
        assert name in err, name
    print_summary([record(9.0, 0.0)])  # multipart: no rows for requests it never made
    err = capsys.readouterr().err
    assert "object PUT" not in err and "presign" not in err and "held at 32 % (bar shown)" in err
