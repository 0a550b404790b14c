"""The presigned upload flow in the machine and on the wire: every rule without a network or a clock."""

from __future__ import annotations

import json

import pytest

from probes.analysis.shown_bar import shown_metrics, shown_timeline
from probes.probe import wire
from probes.probe.cadence import Cadence
from probes.probe.machine import (
    UPLOAD_TIMEOUT_S, Answer, Done, MachineConfig, ProbeMachine, RefreshToken, Refreshed, Send, TransportError,
    redact_record,
)

SIGNATURE = "c0ffee" + "5ec2e7" * 9 + "d00d"
QUERY = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAPROBESTEST000001%2F20261126%2Fus-east-1%2Fs3"
         "%2Faws4_request&X-Amz-Date=20261126T090102Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=content-type%3Bhost"
         f"&X-Amz-Signature={SIGNATURE}")
OBJECT = "https://thankly-audio.s3.amazonaws.com/audio/1a2b3c4d-recording.m4a"
PRESIGNED = f"{OBJECT}?{QUERY}"
CONFIG = MachineConfig(cadence=Cadence("fine", 0.05), timeout_s=300.0, upload="presigned")
FORBIDDEN_XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The '
                 b'request signature we calculated does not match</Message><SignatureProvided>' + SIGNATURE.encode()
                 + b"</SignatureProvided></Error>")
EXPIRED_XML = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"


def presign_answer(url: str = PRESIGNED, final: str = OBJECT, status: int = 200, at: float = 0.01) -> Answer:
    return Answer(0.0, at, status, {}, json.dumps({"presigned_url": url, "s3_key": "k", "final_url": final}).encode())


def progress(start: float, value: int, status: str = "processing", **extra) -> Answer:
    body = {"status": status, "progress": value, "step": 1, "step_name": "转录中", "message": "m", **extra}
    return Answer(start, start + 0.002, 200, {}, json.dumps(body).encode())


def through_put(m: ProbeMachine) -> Send:
    """Presign answered with PRESIGNED: the machine asks for the PUT."""
    first = m.start()
    assert (first.kind, first.method, first.path, first.not_before_s) == ("presign", "POST", wire.PRESIGN_PATH, 0.0)
    put = m.receive(presign_answer())
    assert isinstance(put, Send) and (put.kind, put.method, put.object_url) == ("put", "PUT", PRESIGNED)
    assert put.not_before_s == 0.01 and put.timeout_s == UPLOAD_TIMEOUT_S
    return put


def test_presign_put_create_then_polls_give_the_phases_and_the_bar():
    m = ProbeMachine(CONFIG)
    put = through_put(m)
    assert SIGNATURE not in repr(put)  # a Send is safe to print: the URL is not in its repr
    create = m.receive(Answer(0.02, 0.35, 200, {"etag": '"x"'}, b""))
    assert isinstance(create, Send) and (create.kind, create.path, create.object_url) == (
        "create", wire.CREATE_PATH, OBJECT)
    poll = m.receive(Answer(0.36, 0.40, 200, {"x-instance": "a"}, json.dumps({"task_id": "t-1"}).encode()))
    assert isinstance(poll, Send) and poll.path == "/diary/voice/progress/t-1" and poll.not_before_s == 0.40
    assert m.receive(progress(0.40, 22)).kind == "poll"
    assert m.receive(progress(0.45, 100, "completed", diary={"diary_id": "d-1"})) == Done("completed")
    rec = m.record(run_id="r", probe_id="0001", target="t", label="l")
    assert (rec["upload"], rec["failed_step"], rec["upload_status"]) == ("presigned", None, 200)
    assert (rec["presign_s"], rec["put_s"], rec["create_s"]) == (0.01, 0.33, 0.04)
    assert rec["upload_s"] == 0.40  # t = 0 (the presign's start) to the end of the create: what multipart's was
    assert rec["put_end_s"] == 0.35  # for replaying the bar from the record (the PUT's end reports 100 % upload)
    bar = shown_timeline(rec["samples"], created_s=0.40, put_end_s=0.35)
    expected = {k: None if v is None else round(v, 6) for k, v in shown_metrics(bar).items()}
    assert {k: rec[k] for k in expected} == expected and rec["shown_model"] == bar.model
    assert rec["shown_done_s"] == pytest.approx(0.452)  # the completed answer's arrival
    assert list(rec)[-1] == "samples"  # reports cut each line at its samples


def test_the_shown_bar_replays_in_the_apps_seconds_on_a_time_scaled_run():
    """At time scale 0.1 the same probe, ten times faster, shows the same bar in scenario seconds: the record
    keeps real seconds, so its shown_* are those of the unscaled probe times 0.1 (not a replay at 10x speed)."""
    def run(scale: float) -> dict:
        m = ProbeMachine(MachineConfig(cadence=Cadence("fine", 0.05), upload="presigned", time_scale=scale))
        m.start()
        m.receive(Answer(0.0, 0.01 * scale, 200, {}, json.dumps({"presigned_url": PRESIGNED,
                                                                  "final_url": OBJECT}).encode()))
        m.receive(Answer(0.01 * scale, 0.5 * scale, 200, {}, b""))
        m.receive(Answer(0.5 * scale, 0.6 * scale, 200, {}, json.dumps({"task_id": "t"}).encode()))
        for i, value in enumerate([22, 22, 24, 26, 28, 30, 31, 32, 32, 32, 32, 33, 45, 60, 88]):
            m.receive(Answer((0.6 + i) * scale, (0.61 + i) * scale, 200, {},
                             json.dumps({"status": "processing", "progress": value}).encode()))
        m.receive(Answer(16 * scale, 16.01 * scale, 200, {}, json.dumps({"status": "completed", "progress": 100,
                                                                          "diary": {"diary_id": "d"}}).encode()))
        return m.record(run_id="r", probe_id="1", target="t", label="l")

    real, scaled = run(1.0), run(0.1)
    assert real["shown_held_32_s"] > 2.0  # the bar sat at 32 % (its timer's cap, then the answers)
    for key in ("shown_held_32_s", "shown_done_s", "shown_lag_max_s"):
        assert scaled[key] == pytest.approx(real[key] * 0.1, abs=1e-6), key


def test_the_bar_starts_its_climb_to_20_when_the_put_ends_not_when_the_create_does():
    """A create that takes 1.7 s after the PUT: the app's bar was at 20 % already (the PUT's 100 %), so the
    first answer (22 %) shows within one short animation; replayed without the PUT's end it would lag 1.5 s."""
    m = ProbeMachine(CONFIG)
    through_put(m)
    m.receive(Answer(0.02, 0.3, 200, {}, b""))
    m.receive(Answer(0.3, 2.0, 200, {}, json.dumps({"task_id": "t"}).encode()))
    for t in (2.0, 2.5, 3.0, 3.5):
        m.receive(progress(t, 22))
    m.receive(progress(4.0, 100, "completed", diary={"diary_id": "d"}))
    rec = m.record(run_id="r", probe_id="1", target="t", label="l")
    with_put = shown_metrics(shown_timeline(rec["samples"], created_s=2.0, put_end_s=0.3))
    without = shown_metrics(shown_timeline(rec["samples"], created_s=2.0))
    assert rec["shown_lag_max_s"] == pytest.approx(with_put["shown_lag_max_s"], abs=1e-6)
    assert without["shown_lag_max_s"] > with_put["shown_lag_max_s"] + 0.5


@pytest.mark.parametrize("status, body, error", [
    (403, FORBIDDEN_XML, "object PUT: HTTP 403 SignatureDoesNotMatch"),
    (403, EXPIRED_XML, "object PUT: HTTP 403 AccessDenied (Request has expired)"),
    (401, b"", "object PUT: HTTP 401"),  # S3's, not ours: no token refresh
    (503, b"<Error><Code>SlowDown</Code></Error>", "object PUT: HTTP 503 SlowDown"),
    (204, b"", "object PUT: HTTP 204"),  # the app goes on only on 200 (xhr.status === 200)
    (403, b"<Error><Code>" + SIGNATURE.encode() + b"</Code></Error>", f"object PUT: HTTP 403 {SIGNATURE}"),
])
def test_a_refused_put_is_an_upload_error_naming_the_step_and_s3s_code(status, body, error):
    m = ProbeMachine(CONFIG)
    through_put(m)
    assert m.receive(Answer(0.02, 0.05, status, {}, body)) == Done("upload_error")
    rec = m.record(run_id="r", probe_id="1", target="t", label="l")
    assert (rec["error"], rec["failed_step"], rec["upload_status"], rec["put_s"]) == (error, "put", status, 0.03)
    assert rec["create_s"] is None and rec["task_id"] is None and rec["shown_held_32_s"] is None
    safe = redact_record(rec, m.secrets)  # what the drivers write: the echoed signature is gone
    assert SIGNATURE not in json.dumps(safe) and "AKIAPROBESTEST000001" not in json.dumps(safe)


def test_a_put_that_never_answers_is_an_upload_error():
    m = ProbeMachine(CONFIG)
    through_put(m)
    assert m.receive(TransportError(0.02, 60.02, "Timeout: no whole answer in 60 s")) == Done("upload_error")
    assert (m.error, m.failed_step, m.put_s, m.upload_status) == (
        "object PUT: Timeout: no whole answer in 60 s", "put", None, None)


@pytest.mark.parametrize("status, body, outcome, error", [
    (403, {"detail": "forbidden"}, "auth_error", "presign: forbidden"),
    (400, {"detail": "Invalid content type: x. Must be audio/*"}, "rejected",
     "presign: Invalid content type: x. Must be audio/*"),
    (500, {}, "upload_error", "presign: HTTP 500"),
    (200, {"final_url": OBJECT}, "upload_error", "presign: HTTP 200 without a presigned_url"),
    (200, {"presigned_url": PRESIGNED}, "upload_error", "presign: HTTP 200 without a final_url"),
    (200, {"presigned_url": ["x"], "final_url": OBJECT}, "upload_error", "presign: HTTP 200 without a presigned_url"),
])
def test_presign_answers_are_classified_like_the_upload(status, body, outcome, error):
    m = ProbeMachine(CONFIG)
    m.start()
    assert m.receive(Answer(0.0, 0.1, status, {}, json.dumps(body).encode())) == Done(outcome)
    assert (m.error, m.failed_step, m.upload_status) == (error, "presign", status)


@pytest.mark.parametrize("url, why", [
    ("ftp://bucket.example/audio/x?X-Amz-Signature=abc", "not an http(s) URL"),
    ("http://evil.example/audio/x?X-Amz-Signature=abc", "plain http to a host other than the loopback target's"),
    ("http://127.0.0.1:9/_s3/x?sig=abc", "plain http to a host other than the loopback target's"),  # not loopback
    ("https://user:pw@bucket.example/x", "carries a user or password"),
    ("https://bucket.example/x#frag", "carries a fragment"),
    ("https://bucket.example/x?a=" + "b" * wire.MAX_OBJECT_URL, "longer than 8192 characters"),
    ("https://bucket.example/a b", "spaces, control or non-ASCII characters"),
    ("https://bucket.example/\r\nX-Injected: 1", "spaces, control or non-ASCII characters"),
    ("https://[::1/x", "not a valid URL"),
    ("https://bucket.example:99999/x", "not a valid URL"),
    ("javascript:alert(1)", "not an http(s) URL"),
])
def test_a_presigned_url_the_rule_refuses_is_never_put_to(url, why):
    """https anywhere; plain http only to a loopback target's hosts (none here); bounded, no userinfo."""
    m = ProbeMachine(CONFIG)
    m.start()
    assert m.receive(presign_answer(url)) == Done("upload_error")
    assert m.error.startswith("presign: HTTP 200 with a presigned_url refused: ") and why in m.error
    assert "evil" not in m.error and "user" not in m.error.split("refused: ")[0] and len(m.error) < 200


def test_plain_http_goes_only_to_a_loopback_targets_hosts():
    hosts = frozenset({"127.0.0.1", "::1", "localhost"})
    assert wire.object_url_problem("http://127.0.0.1:8765/_s3/b/k?X-Amz-Signature=a", hosts) is None
    assert wire.object_url_problem("http://[::1]:8765/_s3/b/k", hosts) is None
    assert wire.object_url_problem("http://10.0.0.1/_s3/b/k", hosts) is not None
    assert wire.object_url_problem("https://anywhere.example/k?sig=1", frozenset()) is None
    # the final URL is only sent back to the backend: any scheme-valid http(s) URL, never contacted
    m = ProbeMachine(MachineConfig(upload="presigned", plain_http_hosts=hosts))
    m.start()
    put = m.receive(presign_answer("http://127.0.0.1:8765/_s3/b/k?X-Amz-Signature=abcdef0123456789",
                                   final="http://bucket.internal/k"))
    assert isinstance(put, Send) and put.kind == "put"


def test_presign_401_refreshes_and_repeats_the_presign_but_the_put_never_carries_a_refresh():
    m = ProbeMachine(CONFIG)
    m.start()
    assert isinstance(m.receive(Answer(0.0, 0.01, 401, {}, b"{}")), RefreshToken)
    again = m.receive(Refreshed(0.02, True))
    assert isinstance(again, Send) and again.kind == "presign" and again.not_before_s == 0.02
    put = m.receive(presign_answer(at=0.05))
    assert put.kind == "put"
    assert m.receive(Answer(0.05, 0.06, 401, {}, b"")) == Done("upload_error")  # S3 refused: nothing to refresh
    assert m.refreshes == 1


def test_a_failed_refresh_during_the_create_names_the_step():
    m = ProbeMachine(CONFIG)
    through_put(m)
    m.receive(Answer(0.02, 0.03, 200, {}, b""))
    assert isinstance(m.receive(Answer(0.03, 0.04, 401, {}, b"{}")), RefreshToken)
    assert m.receive(Refreshed(0.05, False, "no token")) == Done("auth_error")
    assert (m.error, m.failed_step) == ("create: token refresh failed: no token", "create")


@pytest.mark.parametrize("status, payload, outcome, error", [
    (400, {"detail": "音频URL无效"}, "rejected", "create: 音频URL无效"),
    (502, {}, "upload_error", "create: HTTP 502"),
    (200, {"task_id": "../admin"}, "upload_error", "create: HTTP 200 with a task_id that is not a safe id"),
])
def test_create_answers_are_classified_like_the_upload(status, payload, outcome, error):
    m = ProbeMachine(CONFIG)
    through_put(m)
    m.receive(Answer(0.02, 0.03, 200, {}, b""))
    assert m.receive(Answer(0.03, 0.05, status, {}, json.dumps(payload).encode())) == Done(outcome)
    assert m.error.startswith(error) and m.failed_step == "create" and m.create_s == 0.02


def test_the_deadline_during_an_upload_step_names_it():
    m = ProbeMachine(MachineConfig(upload="presigned", timeout_s=1.0))
    m.start()
    m.receive(presign_answer(at=0.6))  # 0.4 s left: less than a request may be sent with
    assert (m.outcome, m.failed_step) == ("timeout", "put")  # the step that had no time left to run


def test_multipart_records_say_so_and_keep_their_fields():
    m = ProbeMachine(MachineConfig(cadence=Cadence("fine", 0.05)))
    assert m.start().kind == "upload"
    m.receive(Answer(0.0, 0.2, 502, {}, b"{}"))
    rec = m.record(run_id="r", probe_id="1", target="t", label="l")
    assert (rec["upload"], rec["error"], rec["failed_step"]) == ("multipart", "HTTP 502", "upload")
    assert rec["presign_s"] is rec["put_s"] is rec["create_s"] is None


def test_the_url_secrets_cover_the_query_and_each_value_raw_and_decoded():
    found = set(wire.url_secrets(PRESIGNED))
    assert {QUERY, SIGNATURE, "AKIAPROBESTEST000001", "AKIAPROBESTEST000001/20261126/us-east-1/s3/aws4_request",
            "AKIAPROBESTEST000001%2F20261126%2Fus-east-1%2Fs3%2Faws4_request"} <= found
    assert not found & {"AWS4-HMAC-SHA256", "20261126T090102Z", "3600", "content-type;host"}  # how, not with what
    assert wire.url_secrets(OBJECT) == ()


def test_an_echoed_signature_never_reaches_the_live_bar_or_the_record():
    m = ProbeMachine(CONFIG)
    through_put(m)
    m.receive(Answer(0.02, 0.03, 200, {}, b""))
    m.receive(Answer(0.03, 0.04, 200, {"x-debug": SIGNATURE}, json.dumps({"task_id": "t"}).encode()))
    m.receive(Answer(0.04, 0.05, 200, {}, json.dumps({"status": "processing", "progress": 22,
                                                      "step_name": f"sig {SIGNATURE}"}).encode()))
    assert SIGNATURE not in m.last_step_name and SIGNATURE not in json.dumps(m.first_headers)
    rec = redact_record(m.record(run_id="r", probe_id="1", target="t", label="l"), m.secrets)
    assert SIGNATURE not in json.dumps(rec)


@pytest.mark.parametrize("size, inline", [(1, True), (wire.BASE64_MAX_BYTES, True), (wire.BASE64_MAX_BYTES + 1, False),
                                          (0, False)])
def test_the_create_form_carries_base64_up_to_5_mb_as_the_app_does(size, inline):
    fixture = {"name": "recording.m4a", "content_type": "audio/m4a", "form_duration": 5}
    forms = wire.presigned_forms(fixture, b"a" * size, base64_enabled=True, boundary="B")
    assert forms.base64 is inline
    body = forms.create(OBJECT)
    assert (b'name="audio_content_base64"' in body) is inline
    assert body.startswith(b'--B\r\nContent-Disposition: form-data; name="audio_url"\r\n\r\n' + OBJECT.encode()
                           + b'\r\n--B\r\nContent-Disposition: form-data; name="duration"\r\n\r\n5\r\n')
    assert body.endswith(b"--B--\r\n") and forms.content_type == "multipart/form-data; boundary=B"
    assert not wire.presigned_forms(fixture, b"a", base64_enabled=False, boundary="B").base64
    assert forms.presign == (b'--B\r\nContent-Disposition: form-data; name="file_name"\r\n\r\nrecording.m4a\r\n'
                             b'--B\r\nContent-Disposition: form-data; name="content_type"\r\n\r\naudio/m4a\r\n--B--\r\n')
