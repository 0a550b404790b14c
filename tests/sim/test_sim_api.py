"""Every endpoint and status of the simulator over real HTTP on loopback."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from .conftest import upload

def wait_done(client: httpx.Client, base: str, task_id: str, headers: dict[str, str] | None = None,
              timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get(f"{base}/diary/voice/progress/{task_id}", headers=headers or {})
        if r.status_code == 200 and r.json()["status"] != "processing":
            return r.json()
        time.sleep(0.01)
    raise AssertionError("task did not finish in time")


def test_health(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.1)
    r = client.get(f"{base}/health")
    assert r.status_code == 200 and r.headers["x-instance"] == "sim-0"
    body = r.json()
    assert body["status"] == "healthy" and body["service"] == "thankly-sim" and body["version"]
    assert body["simulator"]["scenario"] == "fast" and body["simulator"]["time_scale"] == 0.1


def test_upload_then_completed_diary_and_delete(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.05)
    h = {"Authorization": "Bearer user-a", "X-User-Name": "Probe"}
    r = upload(client, base, headers=h, fields={"image_urls": '["https://x/1.jpg"]', "content": "hi"})
    assert r.status_code == 200 and r.headers["x-instance"] == "sim-0"
    body = r.json()
    assert body["status"] == "processing" and body["message"] and set(body) == {"task_id", "status", "message"}
    final = wait_done(client, base, body["task_id"], h)
    assert set(final) == {"task_id", "status", "progress", "step", "step_name", "message", "diary", "error"}
    assert final["status"] == "completed" and final["progress"] == 100 and final["step"] == 4
    assert (final["step_name"], final["message"], final["error"]) == ("完成", "日记创建成功", None)
    diary = final["diary"]
    assert set(diary) == {"diary_id", "user_id", "created_at", "date", "language", "title", "original_content",
                          "polished_content", "ai_feedback", "audio_url", "audio_duration", "image_urls",
                          "emotion_data"}
    assert diary["user_id"] == "user-a" and diary["audio_duration"] == 5 and diary["image_urls"] == ["https://x/1.jpg"]
    assert diary["emotion_data"]["emotion"] == "Grateful"
    d = client.delete(f"{base}/diary/{diary['diary_id']}", headers=h)
    assert d.status_code == 200 and d.json()["status"] == "deleted"
    assert client.delete(f"{base}/diary/{diary['diary_id']}", headers=h).status_code == 404
    assert client.delete(f"{base}/diary/no-such-diary", headers=h).status_code == 404


def test_delete_before_completion_is_404_and_other_user_403(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.05)
    a, b = {"Authorization": "Bearer a"}, {"Authorization": "Bearer b"}
    task_id = upload(client, base, headers=a).json()["task_id"]
    final = wait_done(client, base, task_id, a)
    diary_id = final["diary"]["diary_id"]
    assert client.delete(f"{base}/diary/{diary_id}", headers=b).status_code == 403
    assert client.delete(f"{base}/diary/{diary_id}", headers=a).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({"duration": 4}, "录音时长太短，至少需要5秒"),
        ({"duration": 601}, "录音时长不能超过600秒"),
        ({"audio": b"x" * 999}, "音频文件太小或为空"),
        ({"ctype": "application/octet-stream"}, "不支持的文件类型，请上传音频文件"),
        ({"ctype": "Audio/m4a"}, "不支持的文件类型，请上传音频文件"),  # case-sensitive
    ],
)
def test_validation_400(sim: Any, client: httpx.Client, kwargs: dict[str, Any], detail: str) -> None:
    base = sim("fast", time_scale=0.1)
    r = upload(client, base, **kwargs)
    assert r.status_code == 400 and r.json() == {"detail": detail}


def test_boundaries_accepted(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.1)
    assert upload(client, base, duration=5, audio=b"x" * 1000).status_code == 200
    assert upload(client, base, duration=600).status_code == 200


def test_english_messages(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.05)
    en = {"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"}
    assert upload(client, base, duration=4, headers=en).json()["detail"].startswith("Recording is too short")
    assert upload(client, base, duration=4, headers={"Accept-Language": "zh-CN,en;q=0.5"}).json()["detail"] == \
        "录音时长太短，至少需要5秒"
    r = upload(client, base, headers=en)
    assert r.json()["message"].startswith("Task created")
    final = wait_done(client, base, r.json()["task_id"], en)
    assert (final["step_name"], final["message"]) == ("Done", "Diary created")
    assert final["diary"]["language"] == "en"


def test_422_missing_and_non_integer(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.1)
    r = upload(client, base, duration=None)
    assert r.status_code == 422
    assert r.json() == {"detail": [{"type": "missing", "loc": ["body", "duration"], "msg": "Field required",
                                    "input": None}]}
    r = upload(client, base, duration="five")
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "duration"] and err["type"] == "int_parsing" and err["input"] == "five"
    r = upload(client, base, audio=None)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "audio"]
    r = client.post(f"{base}/diary/voice/async")
    assert r.status_code == 422 and [e["loc"][1] for e in r.json()["detail"]] == ["audio", "duration"]


def test_require_auth_401_before_anything_else(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.1, require_auth=True)
    assert upload(client, base).status_code == 401
    assert upload(client, base, duration="x").status_code == 401  # before 422
    assert upload(client, base, headers={"Authorization": "Basic abc"}).status_code == 401
    assert upload(client, base, headers={"Authorization": "Bearer"}).status_code == 401
    assert client.get(f"{base}/diary/voice/progress/unknown").status_code == 401  # before 404
    assert client.delete(f"{base}/diary/unknown").status_code == 401
    assert "detail" in upload(client, base).json()
    ok = upload(client, base, headers={"Authorization": "Bearer tok"})
    assert ok.status_code == 200
    assert client.get(f"{base}/health").status_code == 200


def test_progress_404_unknown_and_403_other_user(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.1)
    r = client.get(f"{base}/diary/voice/progress/no-such-task")
    assert r.status_code == 404 and "detail" in r.json() and r.headers["x-instance"] == "sim-0"
    task_id = upload(client, base, headers={"Authorization": "Bearer alice"}).json()["task_id"]
    assert client.get(f"{base}/diary/voice/progress/{task_id}", headers={"Authorization": "Bearer bob"}).status_code == 403
    assert client.get(f"{base}/diary/voice/progress/{task_id}").status_code == 403  # anonymous is another user
    ok = client.get(f"{base}/diary/voice/progress/{task_id}", headers={"Authorization": "Bearer alice"})
    assert ok.status_code == 200 and ok.json()["status"] == "processing" and ok.json()["diary"] is None


def test_unknown_route_is_json_404(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.1)
    r = client.get(f"{base}/nope")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"} and r.headers["x-instance"]


def test_ground_truth_endpoints(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.05)
    task_id = upload(client, base).json()["task_id"]
    early = client.get(f"{base}/_sim/tasks/{task_id}/events").json()
    assert early[0] == [0.0, 5, "processing"]
    wait_done(client, base, task_id)
    events = client.get(f"{base}/_sim/tasks/{task_id}/events").json()
    assert all(len(e) == 3 for e in events) and events[-1][1:] == [100, "completed"]
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(events, events[1:]))
    detail = client.get(f"{base}/_sim/tasks/{task_id}").json()
    assert detail["states"][-1]["step_name"] == "完成" and isinstance(detail["t0_monotonic"], float)
    assert client.get(f"{base}/_sim/tasks/nope/events").status_code == 404
