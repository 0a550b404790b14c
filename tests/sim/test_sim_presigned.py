"""The app's presigned upload flow against the simulator over real HTTP on loopback.

POST /diary/audio/presigned-url -> PUT to the S3 stand-in -> POST /diary/voice/async-with-url
(with base64, or the URL only) -> poll; the stand-in's refusals; slow-s3 and presign-broken;
the ground truth of /_sim/tasks/{id}/upload.
"""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from probes.sim.s3 import MAX_OBJECT_BYTES
from probes.sim.server import running_simulator

from .conftest import AUDIO, upload

UPLOADED = (15, 1, "音频已上传", "音频上传完成,开始AI处理...", "processing")
APP_PUT = {"Content-Type": "audio/m4a"}  # what the app's XMLHttpRequest sends


@pytest.fixture(scope="module")
def fast() -> Iterator[str]:
    """One `fast` simulator at time scale 0.02 (a job in ~0.2 s) for the tests that need nothing else."""
    with running_simulator("fast", time_scale=0.02) as base:
        yield base


def presign(client: httpx.Client, base: str, headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
    data = fields or {"file_name": "recording.m4a", "content_type": "audio/m4a"}
    return client.post(f"{base}/diary/audio/presigned-url", data=data, headers=headers or {})


def create(client: httpx.Client, base: str, audio_url: str, *, duration: Any = 5, audio: bytes | None = None,
           encoded: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """async-with-url as the app sends it: base64 beside the URL when given."""
    data = {"audio_url": audio_url, "duration": str(duration)}
    if audio is not None or encoded is not None:
        data.update(audio_content_base64=encoded if encoded is not None else base64.b64encode(audio or b"").decode(),
                    audio_content_type="audio/m4a", audio_filename="recording.m4a")
    return client.post(f"{base}/diary/voice/async-with-url", data=data, headers=headers or {})


def uploaded(client: httpx.Client, base: str, body: bytes = AUDIO,
             headers: dict[str, str] | None = None) -> dict[str, str]:
    """Presign and PUT as the app does; the presign answer."""
    answer = presign(client, base, headers).json()
    assert client.put(answer["presigned_url"], content=body, headers=APP_PUT).status_code == 200
    return answer


def states_until_done(client: httpx.Client, base: str, task_id: str, seconds: float = 5.0) -> list[tuple]:
    """Distinct (progress, step, step_name, message, status) in the order polls saw them, to the final one."""
    seen: list[tuple] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        b = client.get(f"{base}/diary/voice/progress/{task_id}").json()
        state = (b["progress"], b["step"], b["step_name"], b["message"], b["status"])
        if not seen or seen[-1] != state:
            seen.append(state)
        if b["status"] != "processing":
            return seen
        time.sleep(0.002)
    raise AssertionError("task did not finish in time")


def ground_truth(client: httpx.Client, base: str, task_id: str) -> tuple[dict[str, Any], list[list[Any]]]:
    return (client.get(f"{base}/_sim/tasks/{task_id}/upload").json(),
            client.get(f"{base}/_sim/tasks/{task_id}/events").json())


def assert_one_clock(truth: dict[str, Any]) -> None:
    """presign, then the PUT, then the create at 0, in that order on the events' clock."""
    presign_, put, create_ = truth["presign"], truth["put"], truth["create"]
    assert presign_["start_s"] < presign_["end_s"] <= put["start_s"] < put["end_s"] <= create_["start_s"] == 0.0
    assert create_["end_s"] >= 0.0


# -- the flow, both variants -------------------------------------------------------------------------

def test_with_base64_shows_the_usual_states(fast: str, client: httpx.Client) -> None:
    base = fast
    answer = presign(client, base)
    assert answer.status_code == 200 and set(answer.json()) == {"presigned_url", "s3_key", "final_url"}
    p = answer.json()
    assert p["s3_key"].startswith("audio/") and p["s3_key"].endswith("-recording.m4a")
    assert p["final_url"] == f"{base}/_s3/thankly-sim-audio/{p['s3_key']}"
    assert p["presigned_url"].startswith(p["final_url"] + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&")
    put = client.put(p["presigned_url"], content=AUDIO, headers=APP_PUT)
    assert put.status_code == 200 and put.content == b"" and put.headers["etag"]
    r = create(client, base, p["final_url"], audio=AUDIO)
    assert r.status_code == 200 and set(r.json()) == {"task_id", "status", "message"}
    task_id = r.json()["task_id"]
    seen = states_until_done(client, base, task_id)
    assert seen[0] == (22, 1, "处理中", "准备正式开始处理...", "processing")
    assert (22, 1, "转录中", "正在努力识别你的声音...", "processing") in seen and UPLOADED not in seen
    assert seen[-1][0] == 100 and seen[-1][-1] == "completed"
    final = client.get(f"{base}/diary/voice/progress/{task_id}").json()
    assert final["diary"]["audio_url"] == p["final_url"]
    truth, events = ground_truth(client, base, task_id)
    assert truth["variant"] == "base64" and truth["key"] == p["s3_key"] and truth["fetch"] is None
    assert truth["put"]["status"] == 200 and truth["put"]["bytes"] == len(AUDIO) and truth["put"]["attempts"] == 1
    assert_one_clock(truth)
    assert events[0] == [0.0, 15, "processing"] and events[1][1] == 22 and events[1][0] < 0.001  # 15 % for 0.1 ms


def test_url_only_holds_15_percent_while_the_job_fetches(sim: Any, client: httpx.Client, tmp_path: Path) -> None:
    scale = 0.05
    slow_fetch = tmp_path / "slow-fetch.toml"  # a fetch long enough (0.1 s here) for many polls, a short job
    slow_fetch.write_text("[presigned]\nfetch = { s = 2.0 }\n[transcription]\nlatency = { s = 2.0 }\n"
                          "[llm]\nlatency = { s = 1.0 }\n")
    base = sim(str(slow_fetch), time_scale=scale)
    p = uploaded(client, base)
    task_id = create(client, base, p["final_url"]).json()["task_id"]
    seen = states_until_done(client, base, task_id)
    assert seen[0] == UPLOADED
    assert seen[1] == (22, 1, "处理中", "准备正式开始处理...", "processing")
    assert seen[2] == (22, 1, "转录中", "正在努力识别你的声音...", "processing") and seen[-1][-1] == "completed"
    truth, events = ground_truth(client, base, task_id)
    assert truth["variant"] == "url" and truth["fetch"] == {"start_s": 0.0, "end_s": pytest.approx(2.0 * scale),
                                                             "ok": True}
    assert_one_clock(truth)
    assert events[0] == [0.0, 15, "processing"] and events[1] == [truth["fetch"]["end_s"], 22, "processing"]
    en = client.get(f"{base}/diary/voice/progress/{task_id}", headers={"Accept-Language": "en"}).json()
    assert en["status"] == "completed" and en["diary"]["audio_url"] == p["final_url"]


def test_a_missing_object_fails_the_job_as_thankly_does(fast: str, client: httpx.Client) -> None:
    base = fast
    p = presign(client, base).json()  # never PUT
    task_id = create(client, base, p["final_url"]).json()["task_id"]
    seen = states_until_done(client, base, task_id)
    assert seen[-1] == (15, 1, "音频已上传", "音频上传完成,开始AI处理...", "failed")  # progress and names stay
    error = client.get(f"{base}/diary/voice/progress/{task_id}").json()["error"]
    assert error == (f"Client error '403 Forbidden' for url '{p['final_url']}'\n"
                     "For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/403")
    assert ground_truth(client, base, task_id)[0]["fetch"]["ok"] is False
    # another host is never fetched: the job fails as if nothing answered
    other = create(client, base, "https://thankly-audio.s3.amazonaws.com/audio/x-recording.m4a").json()["task_id"]
    states_until_done(client, base, other)
    assert client.get(f"{base}/diary/voice/progress/{other}").json()["error"] == "All connection attempts failed"
    # with base64 nothing is fetched, so the missing object does not matter
    with_b64 = create(client, base, p["final_url"], audio=AUDIO).json()["task_id"]
    assert states_until_done(client, base, with_b64)[-1][-1] == "completed"


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"encoded": "@@not base64@@"}, None),          # b64decode raises: fall back to the URL
    ({"audio": b"x" * 999}, None),                  # too small for validate_audio_quality: fall back
    ({"audio": AUDIO, "duration": 4}, "录音时长太短，至少需要5秒"),   # falls back, then the job's validation fails
    ({"duration": 601}, "录音时长不能超过600秒"),
])
def test_base64_problems_fall_back_to_the_url(fast: str, client: httpx.Client, kwargs: dict[str, Any],
                                              error: str | None) -> None:
    base = fast
    p = uploaded(client, base)
    task_id = create(client, base, p["final_url"], **kwargs).json()["task_id"]
    states_until_done(client, base, task_id)
    truth, events = ground_truth(client, base, task_id)
    assert truth["variant"] == "url" and truth["fetch"]["ok"] and events[1][0] == truth["fetch"]["end_s"] > 0
    final = client.get(f"{base}/diary/voice/progress/{task_id}").json()
    if error is None:
        assert final["status"] == "completed"
    else:
        assert (final["status"], final["progress"], final["error"]) == ("failed", 22, error)


# -- validation like the real routes -----------------------------------------------------------------

def test_routes_validate_like_thankly(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.05, require_auth=True)
    auth = {"Authorization": "Bearer alice"}
    assert presign(client, base).status_code == 401
    assert create(client, base, "https://x/y", duration="x").status_code == 401  # before 422
    r = presign(client, base, auth, content_type="application/octet-stream")
    assert r.status_code == 400 and r.json() == {"detail": "Invalid content type: application/octet-stream. "
                                                           "Must be audio/*"}
    r = client.post(f"{base}/diaries/audio/presigned-url", headers=auth)  # both prefixes; form defaults
    assert r.status_code == 200 and r.json()["s3_key"].endswith("-recording.m4a")
    r = client.post(f"{base}/diary/voice/async-with-url", headers=auth)
    assert r.status_code == 422 and [e["loc"][1] for e in r.json()["detail"]] == ["audio_url", "duration"]
    r = create(client, base, "https://x/y", duration="five", headers=auth)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "int_parsing"
    for bad in ("http://example.com/audio/x.m4a", "ftp://x", "", base + "x", "https://" + "x" * 5000):
        r = create(client, base, bad, headers=auth)
        assert r.status_code == 400 and r.json() == {"detail": "无效的音频URL"}, bad
    assert create(client, base, "https://example.com/a.m4a", headers=auth, audio=AUDIO).status_code == 200
    p = uploaded(client, base, headers=auth)  # the PUT carries no app token: S3 knows none
    assert create(client, base, p["final_url"], headers=auth).status_code == 200


def test_presign_has_its_own_faults(sim: Any, client: httpx.Client, tmp_path: Path) -> None:
    failing = tmp_path / "presign-503.toml"
    failing.write_text("[faults.presign]\nerror_rate = 1.0\n")
    base = sim(str(failing), time_scale=0.05)
    r = presign(client, base)
    assert r.status_code == 503 and r.json() == {"detail": "服务暂时不可用，请稍后重试"}
    assert create(client, base, "https://example.com/a.m4a", audio=AUDIO).status_code == 200  # [faults.upload]'s


def test_multipart_tasks_have_upload_ground_truth_too(fast: str, client: httpx.Client) -> None:
    base = fast
    task_id = upload(client, base).json()["task_id"]
    truth = client.get(f"{base}/_sim/tasks/{task_id}/upload").json()
    assert truth["variant"] == "multipart" and truth["create"]["start_s"] == 0.0 and truth["create"]["end_s"] >= 0
    assert (truth["key"], truth["presign"], truth["put"], truth["fetch"]) == (None, None, None, None)
    assert client.get(f"{base}/_sim/tasks/nope/upload").status_code == 404


# -- the S3 stand-in's checks ------------------------------------------------------------------------

def s3_error(r: httpx.Response) -> tuple[int, str, str]:
    assert r.headers["content-type"] == "application/xml"
    text = r.text
    return r.status_code, text.split("<Code>")[1].split("</Code>")[0], text.split("<Message>")[1].split("</Message>")[0]


def test_put_checks_signature_key_and_content_type(fast: str, sim: Any, client: httpx.Client) -> None:
    base, other = fast, sim("fast", time_scale=0.05)
    p = presign(client, base).json()
    url = p["presigned_url"]
    sig = url.rsplit("=", 1)[1]
    forged = url[: -len(sig)] + ("0" if sig[0] != "0" else "1") + sig[1:]
    assert s3_error(client.put(forged, content=AUDIO, headers=APP_PUT))[:2] == (403, "SignatureDoesNotMatch")
    retyped = client.put(url, content=AUDIO, headers={"Content-Type": "audio/mp4"})
    assert s3_error(retyped)[:2] == (403, "SignatureDoesNotMatch")
    retargeted = url.replace("-recording.m4a?", "-other.m4a?")
    assert s3_error(client.put(retargeted, content=AUDIO, headers=APP_PUT))[:2] == (403, "SignatureDoesNotMatch")
    foreign = presign(client, other).json()["presigned_url"].replace(other, base)  # another process's secret
    assert s3_error(client.put(foreign, content=AUDIO, headers=APP_PUT))[:2] == (403, "SignatureDoesNotMatch")
    assert s3_error(client.put(p["final_url"], content=AUDIO, headers=APP_PUT)) == (403, "AccessDenied",
                                                                                  "Access Denied")
    assert s3_error(client.get(p["final_url"]))[:2] == (403, "AccessDenied")  # nothing stored by any of those
    assert s3_error(client.get(url))[:2] == (403, "SignatureDoesNotMatch")  # a PUT URL does not read
    ok = client.put(url, content=AUDIO, headers=APP_PUT)
    assert ok.status_code == 200
    got = client.get(p["final_url"])
    assert got.status_code == 200 and got.content == AUDIO and got.headers["content-type"] == "audio/m4a"
    assert got.headers["etag"] == ok.headers["etag"]
    assert client.get(f"{base}/_s3/another-bucket/{p['s3_key']}").status_code == 404


def test_expired_url_is_access_denied(sim: Any, client: httpx.Client, tmp_path: Path) -> None:
    skewed = tmp_path / "skewed.toml"
    skewed.write_text("[presigned]\nclock_skew_s = -7200\n")  # a backend clock 2 h behind: expired when issued
    base = sim(str(skewed), time_scale=0.05)
    p = presign(client, base).json()
    r = client.put(p["presigned_url"], content=AUDIO, headers=APP_PUT)
    assert s3_error(r) == (403, "AccessDenied", "Request has expired")
    assert "<X-Amz-Expires>3600</X-Amz-Expires>" in r.text


def _raw_put(url: str, head: dict[str, str], body: bytes) -> bytes:
    parts = urlsplit(url)
    lines = [f"PUT {parts.path}?{parts.query} HTTP/1.1", f"Host: {parts.netloc}", *(f"{k}: {v}" for k, v in head.items())]
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while b"</Error>" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def test_put_bounds(fast: str, client: httpx.Client) -> None:
    base = fast
    url = presign(client, base).json()["presigned_url"]
    answer = _raw_put(url, {**APP_PUT, "Content-Length": str(MAX_OBJECT_BYTES + 1)}, b"x" * 1000)  # refused unread
    assert answer.startswith(b"HTTP/1.1 400 ") and b"<Code>EntityTooLarge</Code>" in answer
    chunked = client.put(url, content=iter([AUDIO]), headers=APP_PUT)  # no Content-Length
    assert s3_error(chunked)[:2] == (411, "MissingContentLength")


# -- the scenarios -----------------------------------------------------------------------------------

def test_slow_s3_put_takes_its_fixed_time_plus_time_per_mb(sim: Any, client: httpx.Client) -> None:
    scale = 0.1  # 3 s + 8 s/MB -> 0.3 s + 0.8 s/MB
    slack = 0.2  # real seconds of scheduling noise on a busy 2-core machine
    base, fast_base = sim("slow-s3", time_scale=scale), sim("fast", time_scale=scale)
    timings = {}
    for size in (10_000, 500_000):
        p = presign(client, base).json()
        sent = time.monotonic()
        assert client.put(p["presigned_url"], content=b"a" * size, headers=APP_PUT).status_code == 200
        took = time.monotonic() - sent
        expected = (3.0 + size / 1e6 * 8.0) * scale
        assert expected <= took < expected + slack, (size, took)
        task_id = create(client, base, p["final_url"], audio=AUDIO).json()["task_id"]
        truth = client.get(f"{base}/_sim/tasks/{task_id}/upload").json()
        server = truth["put"]["end_s"] - truth["put"]["start_s"]
        assert expected - 1e-5 <= server < expected + slack and server <= took  # spans are rounded to 1 µs
        assert truth["presign"]["end_s"] - truth["presign"]["start_s"] < 0.01 + slack  # presign as fast
        timings[size] = server
    assert timings[500_000] - timings[10_000] == pytest.approx(0.49 * 8.0 * scale, abs=0.1)
    p = presign(client, fast_base).json()
    sent = time.monotonic()
    client.put(p["presigned_url"], content=b"a" * 500_000, headers=APP_PUT)
    assert time.monotonic() - sent < 0.1  # the same PUT on fast
    assert upload(client, base).status_code == 200  # the multipart upload does not go through S3


def test_presign_broken_urls_are_refused(sim: Any, client: httpx.Client) -> None:
    base = sim("presign-broken", time_scale=0.05)
    answer = presign(client, base)
    assert answer.status_code == 200  # the backend signs locally: nothing fails until the PUT
    p = answer.json()
    for _ in range(2):
        status, code, _message = s3_error(client.put(p["presigned_url"], content=AUDIO, headers=APP_PUT))
        assert (status, code) == (403, "SignatureDoesNotMatch")
    assert s3_error(client.get(p["final_url"]))[:2] == (403, "AccessDenied")  # nothing was stored
    # ground truth keeps the refused PUTs of the key, for a task created anyway
    task_id = create(client, base, p["final_url"], audio=AUDIO).json()["task_id"]
    put = client.get(f"{base}/_sim/tasks/{task_id}/upload").json()["put"]
    assert (put["status"], put["attempts"], put["bytes"]) == (403, 2, None)
