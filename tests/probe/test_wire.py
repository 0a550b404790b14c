"""The wire format: every answer a server can give becomes a value, never an exception."""

import json

import pytest

from probes.probe import wire


def test_upload_accepted_gives_task_id():
    answer = wire.parse_upload(200, json.dumps({"task_id": "t1", "status": "processing"}).encode())
    assert answer == wire.UploadAnswer(None, "t1", None)


@pytest.mark.parametrize(
    ("status", "body", "outcome", "error"),
    [
        (400, {"detail": "音频时长不能少于5秒"}, "rejected", "音频时长不能少于5秒"),
        (413, b"too big", "rejected", "HTTP 413"),
        (422, {"detail": [{"loc": ["body", "duration"], "msg": "Field required"}]}, "rejected",
         "body.duration: Field required"),
        (401, {"detail": "Not authenticated"}, "auth_error", "Not authenticated"),
        (403, b"", "auth_error", "HTTP 403"),
        (503, b"<html>down</html>", "upload_error", "HTTP 503"),
        (200, b"not json", "upload_error", "HTTP 200 without a task_id"),
        (200, {"task_id": ""}, "upload_error", "HTTP 200 without a task_id"),
    ],
)
def test_upload_classification(status, body, outcome, error):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = wire.parse_upload(status, raw)
    assert (answer.outcome, answer.task_id, answer.error) == (outcome, None, error)


def test_progress_reads_completed_answer_and_diary_id():
    body = {"task_id": "t", "status": "completed", "progress": 100, "step": 4, "step_name": "完成",
            "message": "日记创建成功", "diary": {"diary_id": "d1"}, "error": None}
    answer = wire.parse_progress(200, json.dumps(body).encode())
    assert (answer.progress, answer.status, answer.diary_id, answer.terminal) == (100, "completed", "d1", True)


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b"<html>"), (200, b"[1,2]"), (200, b'{"progress": "32"}'), (200, b'{"progress": true}'),
     (404, b'{"progress": 50}'), (500, b""), (200, b"\xff\xfe")],
)
def test_progress_garbage_gives_no_progress(status, body):
    assert wire.parse_progress(status, body).progress is None


def test_progress_failed_job_keeps_error_code():
    body = {"status": "failed", "progress": 24, "error": "TRANSCRIPTION_CONTENT_TOO_SHORT"}
    answer = wire.parse_progress(200, json.dumps(body).encode())
    assert (answer.progress, answer.terminal, answer.error) == (24, True, "TRANSCRIPTION_CONTENT_TOO_SHORT")


def test_upload_form_matches_the_app():
    files, data = wire.upload_form({"name": "speech-en-5s.m4a", "content_type": "audio/m4a", "form_duration": 5}, b"x")
    assert files == {"audio": ("speech-en-5s.m4a", b"x", "audio/m4a")}
    assert data == {"duration": "5"}


def test_requests_identify_themselves_and_carry_the_token_only_in_authorization():
    from probes import __version__

    assert wire.request_headers("probe") == {
        "Accept": "application/json", "User-Agent": f"probes/{__version__}", "Accept-Encoding": "gzip, deflate",
        "X-User-Name": "probe"}
    assert "X-User-Name" not in wire.request_headers(None)
    assert wire.auth_header("abc") == {"Authorization": "Bearer abc"} and wire.auth_header(None) == {}


@pytest.mark.parametrize("value, safe", [("742dffca-ca99-4cfd-89c0-bc646f61af83", True), ("a.b_c~d", True),
                                         ("..", False), (".", False), ("a/b", False), ("a\r\nb", False),
                                         ("a b", False), ("", False), ("x" * 129, False), (None, False), (5, False)])
def test_safe_id(value, safe):
    assert (wire.safe_id(value) is not None) == safe


@pytest.mark.parametrize(("value", "expected"), [("2", 2.0), ("0.15", 0.15), ("-3", 0.0), (None, None),
                                                   ("soon", None), ("Thu, 26 Nov 2026 09:00:10 GMT", 10.0),
                                                   ("1e9", 1e9), ("nan", None), ("inf", None), ("9" * 100, None)])
def test_retry_after(value, expected):
    from email.utils import parsedate_to_datetime
    now = parsedate_to_datetime("Thu, 26 Nov 2026 09:00:00 GMT").timestamp()
    assert wire.retry_after_s(value, now) == expected


def test_safe_headers_drop_credentials():
    kept = wire.safe_headers({"Server": "uvicorn", "Set-Cookie": "s=1", "X-Auth-Token": "t",
                              "Authorization": "Bearer x", "X-Api-Key": "k", "X-Instance": "a"})
    assert kept == {"server": "uvicorn", "x-instance": "a", "set-cookie": "[redacted]", "x-auth-token": "[redacted]",
                    "authorization": "[redacted]", "x-api-key": "[redacted]"}
