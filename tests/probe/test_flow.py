"""FlowLog: the decisions both drivers share, fed with what a server answered."""

import json

from probes.probe.cadence import PollResult
from probes.probe.flow import FlowLog, lateness_summary


def answer(**fields):
    return json.dumps({"status": "processing", "step": 1, "step_name": "转录中", "message": "m", **fields}).encode()


def headers(mapping):
    return {k.lower(): v for k, v in mapping.items()}.get


def test_accepted_upload_then_completed_poll_gives_a_full_record():
    log = FlowLog(started_at="2026-11-26T09:00:00Z")
    assert log.upload_answered(0.01, 200, b'{"task_id": "t1"}', {"Server": "x", "Set-Cookie": "s=1"})
    assert log.first_headers == {"server": "x"}
    assert log.poll_answered(0.3, 0.002, 200, answer(progress=32), headers({"X-Instance": "a"}), 0) == (
        PollResult.OK, None)
    assert not log.should_stop(PollResult.OK, 0.3)
    done = answer(progress=100, status="completed", diary={"diary_id": "d1"})
    log.poll_answered(0.6, 0.002, 200, done, headers({"X-Instance": "b"}), 0)
    assert log.should_stop(PollResult.OK, 0.6)
    record = log.record(run_id="r", probe_id="0001", target="t", label="l", milestones=(32, 100), end_s=0.7)
    assert (record["outcome"], record["error"], record["diary_id"], record["total_s"]) == ("completed", None, "d1", 0.6)
    assert record["instances"] == {"a": 1, "b": 1}
    assert [s[0] for s in record["states"]] == ["30-39", "100"]
    assert record["samples"][0] == [0.3, 200, 32, 1, "转录中", "processing", 0.002]


def test_rejected_upload_and_network_error():
    log = FlowLog(started_at="x")
    assert not log.upload_answered(0.01, 400, b'{"detail": "too short"}', {})
    assert (log.outcome, log.error) == ("rejected", "too short")
    log = FlowLog(started_at="x")
    log.upload_failed(0.02, "ConnectError: [Errno 111]\n refused")
    assert (log.outcome, log.error) == ("upload_error", "ConnectError: [Errno 111] refused")
    record = log.record(run_id="r", probe_id="1", target="t", label="l", milestones=(32,), end_s=0.02)
    assert record["samples"] == [] and record["end_s"] == 0.02


def test_poll_classification_and_the_apps_stop_rules():
    log = FlowLog(started_at="x")
    assert log.poll_answered(0.1, 0.01, 404, b"", headers({}), 0) == (PollResult.NOT_FOUND, None)
    assert not log.should_stop(PollResult.NOT_FOUND, 0.1)  # early 404: a fresh task, retry
    assert log.poll_answered(0.2, 0.01, 429, b"", headers({"Retry-After": "0.5"}), 0) == (
        PollResult.RATE_LIMITED, 0.5)
    assert log.poll_answered(0.3, 0.01, 503, b"<html>", headers({}), 0) == (PollResult.ERROR, None)
    assert log.poll_answered(0.4, 0.01, 200, b"not json", headers({}), 0) == (PollResult.ERROR, None)
    assert log.poll_failed(0.5, 1.0, "ReadTimeout") is PollResult.ERROR and log.samples[-1][1] is None
    log.poll_answered(11.0, 0.01, 404, b"", headers({}), 0)
    assert log.should_stop(PollResult.NOT_FOUND, 11.0) and log.outcome == "poll_error"


def test_failed_job_and_forbidden_poll():
    log = FlowLog(started_at="x")
    log.poll_answered(1.0, 0.01, 200, answer(progress=24, status="failed", error="EMPTY_TRANSCRIPT"), headers({}), 0)
    assert log.should_stop(PollResult.OK, 1.0) and (log.outcome, log.error) == ("failed", "EMPTY_TRANSCRIPT")
    log = FlowLog(started_at="x")
    log.poll_answered(1.0, 0.01, 403, b"{}", headers({}), 0)
    assert log.should_stop(PollResult.ERROR, 1.0) and log.outcome == "auth_error"


def test_lateness_summary_counts_polls_over_each_threshold():
    summary = lateness_summary([0.0, 0.001, 0.006, 0.012, 0.025, 0.3])
    assert summary["n"] == 6 and summary["max"] == 0.3
    assert summary["over_ms"] == {"5": 4, "10": 3, "20": 2, "50": 1, "100": 1}


def test_next_due_counts_errors_in_a_row_and_stops_on_a_final_answer():
    from probes.probe.cadence import Cadence

    app, log = Cadence("app"), FlowLog(started_at="x")
    log.poll_answered(0.0, 0.01, 503, b"", headers({}), 0)
    assert log.next_due(app, 0.0, 0.0, PollResult.ERROR, None, now=0.01) == 1.0   # first back-off step
    log.poll_answered(1.0, 0.01, 503, b"", headers({}), 0)
    assert log.next_due(app, 1.0, 1.0, PollResult.ERROR, None, now=1.01) == 3.0   # second: 2 s
    log.poll_answered(3.0, 0.01, 200, answer(progress=40), headers({}), 0)
    assert log.next_due(app, 3.0, 3.0, PollResult.OK, None, now=3.5) == 3.5       # late: due now, not in the past
    assert log.errors_in_row == 0
    log.poll_answered(3.5, 0.01, 200, answer(progress=100, status="completed"), headers({}), 0)
    assert log.next_due(app, 3.5, 3.5, PollResult.OK, None, now=3.6) is None
