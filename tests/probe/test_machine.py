"""The probe machine alone: events in, actions out, every rule without a network or a clock."""

from __future__ import annotations

import json

import pytest

from probes.probe.cadence import Cadence
from probes.probe.machine import (
    CLEANUP_MARGIN_S, POLL_TIMEOUT_S, UPLOAD_TIMEOUT_S, Answer, Done, MachineConfig, ProbeMachine, Refreshed,
    RefreshToken, Send, TransportError, redact_record,
)
from probes.redact import REDACTED

APP = MachineConfig(cadence=Cadence("app"), timeout_s=300.0)
FINE = MachineConfig(cadence=Cadence("fine", 0.05), timeout_s=300.0)


def body(**fields) -> bytes:
    return json.dumps({"status": "processing", "step": 1, "step_name": "转录中", "message": "m", **fields}).encode()


def ok(start: float, progress: int | float | None = 32, latency: float = 0.002, status_field="processing",
       http: int = 200, headers=None, **extra) -> Answer:
    fields = {"status": status_field, **extra}
    if progress is not None:
        fields["progress"] = progress
    return Answer(start, start + latency, http, headers or {}, body(**fields))


def accepted(machine: ProbeMachine, task_id: str = "t-1", at: float = 0.01) -> Send:
    action = machine.start()
    assert (action.kind, action.method, action.path, action.not_before_s) == ("upload", "POST",
                                                                              "/diary/voice/async", 0.0)
    assert action.timeout_s == min(UPLOAD_TIMEOUT_S, machine.config.timeout_s)
    action = machine.receive(Answer(0.0, at, 200, {"server": "x", "set-cookie": "s=1"},
                                    json.dumps({"task_id": task_id, "status": "processing"}).encode()))
    assert isinstance(action, Send) and action.kind == "poll"
    return action


def test_upload_then_polls_then_completed_gives_a_full_record():
    m = ProbeMachine(APP, started_at="2026-11-26T09:00:00Z")
    poll = accepted(m)
    assert (poll.path, poll.not_before_s, poll.timeout_s) == ("/diary/voice/progress/t-1", 0.01, POLL_TIMEOUT_S)
    assert m.first_headers == {"server": "x", "set-cookie": "[redacted]"}  # no cookie in a fingerprint
    nxt = m.receive(ok(0.01, 22, headers={"x-instance": "a"}))
    assert isinstance(nxt, Send) and nxt.not_before_s == pytest.approx(0.31)  # 300 ms after it was due
    done = m.receive(ok(0.31, 100, status_field="completed", diary={"diary_id": "d-1"}, headers={"x-instance": "b"}))
    assert done == Done("completed")
    rec = m.record(run_id="r", probe_id="0001", target="t", label="l")
    assert (rec["outcome"], rec["error"], rec["diary_id"], rec["total_s"], rec["cleanup"]) == (
        "completed", None, "d-1", 0.31, None)
    assert rec["instances"] == {"a": 1, "b": 1}
    assert rec["samples"][0] == [0.01, 200, 22, 1, "转录中", "processing", 0.002]
    assert rec["lateness"]["n"] == 2


@pytest.mark.parametrize("status, payload, outcome, error", [
    (400, {"detail": "录音时间太短"}, "rejected", "录音时间太短"),
    (422, {"detail": [{"loc": ["body", "duration"], "msg": "Field required"}]}, "rejected", "body.duration: Field required"),
    (403, {"detail": "forbidden"}, "auth_error", "forbidden"),
    (502, {}, "upload_error", "HTTP 502"),
    (200, {"status": "processing"}, "upload_error", "HTTP 200 without a task_id"),
])
def test_upload_answers_are_classified(status, payload, outcome, error):
    m = ProbeMachine(APP)
    m.start()
    assert m.receive(Answer(0.0, 0.1, status, {}, json.dumps(payload).encode())) == Done(outcome)
    assert m.error == error and m.upload_status == status


@pytest.mark.parametrize("task_id", ["a\r\nb", "a\tb", "a\x00b", "../../../admin?x=1", "x" * 200_000, "..", "a/b"])
def test_an_unsafe_task_id_never_becomes_a_path(task_id):
    m = ProbeMachine(APP)
    m.start()
    done = m.receive(Answer(0.0, 0.1, 200, {}, json.dumps({"task_id": task_id}).encode()))
    assert done == Done("upload_error") and "not a safe id" in m.error and len(m.error) < 200
    assert m.task_id is None


def test_upload_transport_error_is_upload_error_with_one_line():
    m = ProbeMachine(APP)
    m.start()
    assert m.receive(TransportError(0.0, 3.0, "ConnectError: [Errno 111]\n refused")) == Done("upload_error")
    assert m.error == "ConnectError: [Errno 111] refused"
    assert m.record(run_id="r", probe_id="1", target="t", label="l")["end_s"] == 3.0


def test_the_deadline_bounds_the_upload():
    m = ProbeMachine(MachineConfig(timeout_s=10.0))
    assert m.start().timeout_s == 10.0  # not the 60 s an upload may otherwise take


def test_app_cadence_404_window_backoff_and_late_404_gives_up():
    m = ProbeMachine(APP)
    accepted(m, at=0.0)
    a = m.receive(Answer(0.0, 0.01, 404, {}, b""))
    assert a.not_before_s == pytest.approx(1.5)  # an early 404 waits 1.5 s
    a = m.receive(Answer(1.5, 1.51, 503, {}, b"<html>"))
    assert a.not_before_s == pytest.approx(3.5)  # errors back off 1, 2, 4 ... (2nd error in a row: 2 s)
    a = m.receive(TransportError(3.5, 3.6, "ReadError"))
    assert a.not_before_s == pytest.approx(7.5)
    a = m.receive(ok(7.5, 22))
    assert a.not_before_s == pytest.approx(7.8)  # success resets the back-off
    assert m.receive(Answer(11.0, 11.01, 404, {}, b"")) == Done("poll_error")
    assert m.error == "task not found after 10 s"


def test_fine_cadence_polls_through_late_404s():
    m = ProbeMachine(FINE)
    accepted(m, at=0.0)
    a = m.receive(Answer(12.0, 12.01, 404, {}, b""))
    assert isinstance(a, Send) and a.kind == "poll"  # late against its plan: the next poll goes at once


def test_retry_after_counts_from_the_answers_arrival():
    m = ProbeMachine(FINE)
    accepted(m, at=0.0)
    # due at 0.0, sent at 0.0, answered at 0.8 with Retry-After 0.5: next no earlier than 1.3 (not 0.5)
    a = m.receive(Answer(0.0, 0.8, 429, {"retry-after": "0.5"}, b""))
    assert a.not_before_s == pytest.approx(1.3)


def test_retry_after_as_an_http_date_uses_the_arrival_clock():
    m = ProbeMachine(FINE)
    accepted(m, at=0.0)
    a = m.receive(Answer(0.0, 0.1, 429, {"retry-after": "Sun, 06 Nov 1994 08:49:39 GMT"}, b"",
                         epoch_s=784111777.0))
    assert a.not_before_s == pytest.approx(0.1 + 2.0)


@pytest.mark.parametrize("retry", ["1e9", "Sun, 06 Nov 1994 09:49:37 GMT"])
def test_an_absurd_retry_after_is_capped_at_the_deadline_with_a_truthful_error(retry):
    m = ProbeMachine(MachineConfig(cadence=Cadence("app"), timeout_s=10.0))
    accepted(m, at=0.0)
    done = m.receive(Answer(0.0, 0.1, 429, {"retry-after": retry}, b"", epoch_s=784111777.0))
    assert done == Done("timeout")
    assert "Retry-After" in m.error and "reaches past the 10 s deadline" in m.error
    rec = m.record(run_id="r", probe_id="1", target="t", label="l")
    assert rec["outcome"] == "timeout" and rec["samples"][0][1] == 429


@pytest.mark.parametrize("answer, outcome, error", [
    ({"status": "failed", "error": "TRANSCRIPTION_SERVICE_UNAVAILABLE"}, "failed", "TRANSCRIPTION_SERVICE_UNAVAILABLE"),
    ({"status": "failed", "progress": 99.5, "error": "X"}, "failed", "X"),
    ({"status": "completed", "progress": "50"}, "completed", None),
    ({"status": "completed", "progress": 32.5}, "completed", None),
    ({"status": "completed"}, "completed", None),
])
def test_final_answers_are_decided_by_status(answer, outcome, error):
    """Issue 11: a final answer without an integer progress was a poll error, then a timeout 5 minutes later."""
    m = ProbeMachine(APP)
    accepted(m, at=0.0)
    assert m.receive(Answer(0.5, 0.51, 200, {}, json.dumps(answer).encode())) == Done(outcome)
    rec = m.record(run_id="r", probe_id="1", target="t", label="l")
    assert (rec["outcome"], rec["error"]) == (outcome, error)
    if outcome == "completed":
        assert rec["total_s"] == 0.5


def test_a_401_refreshes_the_token_once_and_repeats_the_request():
    m = ProbeMachine(APP)
    poll = accepted(m, at=0.0)
    assert m.receive(Answer(0.0, 0.01, 401, {}, b"")) == RefreshToken("HTTP 401 on progress")
    again = m.receive(Refreshed(0.2, True))
    assert isinstance(again, Send) and (again.path, again.not_before_s) == (poll.path, 0.2)
    nxt = m.receive(ok(0.2, 22))
    assert isinstance(nxt, Send)
    assert m.refreshes == 1
    # a second 401 straight after a refresh is an auth error
    m2 = ProbeMachine(APP)
    accepted(m2, at=0.0)
    m2.receive(Answer(0.0, 0.01, 401, {}, b""))
    m2.receive(Refreshed(0.1, True))
    assert m2.receive(Answer(0.1, 0.11, 401, {}, b"")) == Done("auth_error")
    assert m2.error == "HTTP 401 on progress"


def test_a_failed_refresh_is_an_auth_error_and_401_on_upload_refreshes_too():
    m = ProbeMachine(APP)
    m.start()
    assert m.receive(Answer(0.0, 0.01, 401, {}, b'{"detail": "expired"}')) == RefreshToken("HTTP 401 on upload")
    assert m.receive(Refreshed(0.5, False, "token_command exited 1: bad\npassword")) == Done("auth_error")
    assert m.error == "token refresh failed: token_command exited 1: bad password"


def test_cleanup_deletes_the_diary_retries_once_and_never_changes_the_outcome():
    config = MachineConfig(cadence=Cadence("app"), timeout_s=300.0, cleanup=True)
    m = ProbeMachine(config)
    accepted(m, at=0.0)
    delete = m.receive(ok(0.3, 100, status_field="completed", diary={"diary_id": "d-1"}))
    assert isinstance(delete, Send) and (delete.method, delete.path) == ("DELETE", "/diary/d-1")
    retry = m.receive(Answer(0.4, 0.5, 503, {}, b""))
    assert isinstance(retry, Send) and retry.path == "/diary/d-1"
    assert m.receive(Answer(0.5, 0.6, 200, {}, b"{}")) == Done("completed")
    assert (m.cleanup, m.cleanup_error) == ("deleted", None)

    m = ProbeMachine(config)
    accepted(m, at=0.0)
    m.receive(ok(0.3, 100, status_field="completed", diary={"diary_id": "d-1"}))
    m.receive(TransportError(0.4, 0.5, "ReadTimeout"))
    assert m.receive(Answer(0.5, 0.6, 500, {}, b"")) == Done("completed")
    assert (m.cleanup, m.cleanup_error) == ("failed", "HTTP 500")


@pytest.mark.parametrize("status", [400, 403, 404, 405, 409, 422, 500])
def test_a_refused_delete_is_never_counted_as_deleted(status):
    """Only a 2xx deletes: a 4xx (the diary another user's, the route wrong) leaves the diary behind."""
    m = ProbeMachine(MachineConfig(cleanup=True))
    accepted(m, at=0.0)
    m.receive(ok(0.3, 100, status_field="completed", diary={"diary_id": "d-1"}))
    retry = m.receive(Answer(0.4, 0.5, status, {}, b'{"detail": "no"}'))
    assert isinstance(retry, Send) and retry.method == "DELETE"  # retried once
    assert m.receive(Answer(0.5, 0.6, status, {}, b'{"detail": "no"}')) == Done("completed")
    assert (m.cleanup, m.cleanup_error) == ("failed", f"HTTP {status}")


@pytest.mark.parametrize("diary_id", ["../../account?confirm=yes", "a\r\nb", None])
def test_cleanup_never_sends_an_unsafe_diary_id(diary_id):
    m = ProbeMachine(MachineConfig(cleanup=True))
    accepted(m, at=0.0)
    diary = {"diary_id": diary_id} if diary_id is not None else None
    assert m.receive(ok(0.3, 100, status_field="completed", diary=diary)) == Done("completed")
    assert m.cleanup == "failed" and m.cleanup_error in ("diary id is not a safe id", "no diary id")


def test_cleanup_may_run_a_margin_past_the_deadline_but_no_further():
    m = ProbeMachine(MachineConfig(cadence=Cadence("fine", 0.5), timeout_s=2.0, cleanup=True))
    accepted(m, at=0.0)
    delete = m.receive(ok(1.9, 100, status_field="completed", diary={"diary_id": "d"}, latency=0.05))
    assert isinstance(delete, Send) and delete.timeout_s == pytest.approx(2.0 + CLEANUP_MARGIN_S - 1.95)


def test_the_deadline_ends_polling_as_a_timeout_with_the_last_error():
    m = ProbeMachine(MachineConfig(cadence=Cadence("fine", 0.5), timeout_s=1.0))
    accepted(m, at=0.0)
    a = m.receive(ok(0.0, 32))
    assert a.timeout_s == pytest.approx(1.0 - 0.5)  # the last poll must not outlive the probe
    assert m.receive(Answer(0.5, 0.6, 503, {}, b"")) == Done("timeout")
    assert m.error == "not done after 1 s (last poll: HTTP 503)"


def test_hostile_strings_are_clipped_and_states_capped():
    m = ProbeMachine(FINE)
    accepted(m, at=0.0)
    t = 0.0
    for i in range(200):
        t += 0.05
        m.receive(ok(t, 30, step_name=f"{i}" + "x" * 1_000_000, message="m" * 5000))
    rec = m.record(run_id="r", probe_id="1", target="t", label="l")
    assert max(len(s[4]) for s in rec["samples"]) <= 200
    # README: "states capped (64 a probe)": the first 64 seen are kept, in order, and no more
    assert len(rec["states"]) == 64 and rec["states"][0][1].startswith("0x") and rec["states"][-1][1].startswith("63x")
    assert len(json.dumps(rec)) < 200 * 400 + 50_000


def test_abort_keeps_what_was_measured():
    m = ProbeMachine(APP)
    accepted(m, at=0.0)
    m.receive(ok(0.0, 22))
    m.abort(0.4)
    rec = m.record(run_id="r", probe_id="1", target="t", label="l")
    assert (rec["outcome"], rec["error"], len(rec["samples"])) == ("aborted", "interrupted", 1)
    m.abort(0.5, "cut_off", "late")  # a second stop changes nothing
    assert m.outcome == "aborted"


TOKEN = "tok-9f3c1d7e5b2a-SECRET"


def test_redact_record_removes_an_echoed_token_from_every_string_a_backend_sent():
    """The driver and the Locust user write records through redact_record: a token a backend echoes in a step
    name, a status, an error, an instance header or an id never reaches probes.jsonl."""
    m = ProbeMachine(MachineConfig(cadence=Cadence("fine", 0.05), cleanup=True))
    accepted(m, task_id=f"t-{TOKEN}", at=0.0)
    m.receive(ok(0.0, 22, step_name=f"echo {TOKEN}", message=f"you sent {TOKEN}", headers={"x-instance": TOKEN}))
    m.receive(ok(0.05, 30, status_field=f"busy-{TOKEN}"))
    m.receive(ok(0.1, 100, status_field="completed", diary={"diary_id": f"d-{TOKEN}"}))
    m.receive(Answer(0.2, 0.3, 500, {}, b""))
    m.receive(TransportError(0.3, 0.4, f"ReadError: peer said {TOKEN}"))
    record = m.record(run_id="r", probe_id="1", target="t", label="l")
    assert TOKEN in json.dumps(record)  # the machine itself keeps what it was sent...
    clean = redact_record(record, ["", TOKEN])
    assert TOKEN not in json.dumps(clean)  # ...and redaction takes it out of every string
    assert clean["samples"][0][:5] == [0.0, 200, 22, 1, f"echo {REDACTED}"]  # the rest of the row is intact
    assert clean["samples"][1][5] == f"busy-{REDACTED}" and clean["instances"] == {REDACTED: 1}
    assert (clean["task_id"], clean["diary_id"]) == (f"t-{REDACTED}", f"d-{REDACTED}")
    assert clean["cleanup_error"] == f"ReadError: peer said {REDACTED}"
    assert [REDACTED in " ".join(state[1:]) for state in clean["states"]] == [True, False, False]
    assert redact_record({"samples": [[0.1, 200, 5, 1, "x", "processing", 0.0]]}, ["", None]) == {
        "samples": [[0.1, 200, 5, 1, "x", "processing", 0.0]]}  # no secret: the record as it was
