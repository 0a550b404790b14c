"""Each fault scenario over real HTTP: flaky, rate-limited, cold-start, stuck, failed, renamed, multi-instance."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from probes.errors import UsageError
from probes.sim.app import format_seconds
from probes.sim.server import running_simulator

from .conftest import upload

def poll_all(client: httpx.Client, base: str, task_id: str, seconds: float, interval: float = 0.005) -> list[httpx.Response]:
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = client.get(f"{base}/diary/voice/progress/{task_id}")
        out.append(r)
        if r.status_code == 200 and r.json()["status"] != "processing":
            break
        time.sleep(interval)
    return out


def test_flaky_some_503_and_still_completes(sim: Any, client: httpx.Client) -> None:
    base = sim("flaky", time_scale=0.05)
    task_id = upload(client, base).json()["task_id"]
    answers = poll_all(client, base, task_id, seconds=2.0)
    codes = [r.status_code for r in answers]
    assert set(codes) <= {200, 503}
    assert 0.05 < codes.count(503) / len(codes) < 0.3
    assert answers[-1].json()["status"] == "completed"
    assert "detail" in next(r for r in answers if r.status_code == 503).json()


def test_rate_limited_429_with_scaled_retry_after(sim: Any, client: httpx.Client) -> None:
    base = sim("rate-limited", time_scale=0.1)
    task_id = upload(client, base).json()["task_id"]
    answers = [client.get(f"{base}/diary/voice/progress/{task_id}") for _ in range(200)]
    limited = [r for r in answers if r.status_code == 429]
    assert 0.15 < len(limited) / len(answers) < 0.45
    assert {r.headers["retry-after"] for r in limited} == {"0.1"}
    assert {r.status_code for r in answers} == {200, 429}


def test_retry_after_formatting() -> None:
    assert format_seconds(1.0) == "1" and format_seconds(30.0) == "30"
    assert format_seconds(0.1) == "0.1" and format_seconds(0.05) == "0.05" and format_seconds(1.25) == "1.25"


def test_cold_start_delay_and_404_window(sim: Any, client: httpx.Client) -> None:
    scale = 0.02  # delay 6 s -> 0.12 s, idle 30 s -> 0.6 s, 404 window 1 s -> 0.02 s
    base = sim("cold-start", time_scale=scale)
    t = time.monotonic()
    first = upload(client, base)
    assert time.monotonic() - t >= 6.0 * scale
    task_id = first.json()["task_id"]
    assert client.get(f"{base}/diary/voice/progress/{task_id}").status_code == 404  # fresh: not found yet
    time.sleep(1.0 * scale + 0.01)
    assert client.get(f"{base}/diary/voice/progress/{task_id}").status_code == 200
    t = time.monotonic()
    upload(client, base)
    assert time.monotonic() - t < 6.0 * scale  # warm now
    events = client.get(f"{base}/_sim/tasks/{task_id}/events").json()
    assert events[0][0] >= 6.0 * scale - 0.005  # the schedule starts after the cold start
    time.sleep(30.0 * scale + 0.05)
    t = time.monotonic()
    upload(client, base)
    assert time.monotonic() - t >= 6.0 * scale  # idle again: cold again


def test_stuck_freezes_and_never_completes(sim: Any, client: httpx.Client) -> None:
    scale = 0.05  # timer reaches 55 % at (0.352 + 17.6) * 0.05 = 0.9 s
    base = sim("stuck", time_scale=scale)
    task_id = upload(client, base).json()["task_id"]
    time.sleep(1.0)
    a = client.get(f"{base}/diary/voice/progress/{task_id}").json()
    time.sleep(0.3)
    b = client.get(f"{base}/diary/voice/progress/{task_id}").json()
    assert a == b and a["progress"] == 55 and a["status"] == "processing" and a["step_name"] == "转录中"
    assert client.get(f"{base}/_sim/tasks/{task_id}/events").json()[-1][1:] == [55, "processing"]


def test_failed_job_shape(sim: Any, client: httpx.Client) -> None:
    base = sim("fail-transcription", time_scale=0.1)
    task_id = upload(client, base).json()["task_id"]
    final = poll_all(client, base, task_id, seconds=2.0)[-1]
    assert final.status_code == 200
    assert final.json() == {
        "task_id": task_id, "status": "failed", "progress": 24, "step": 1, "step_name": "转录中",
        "message": "正在努力识别你的声音...", "diary": None, "error": "TRANSCRIPTION_SERVICE_UNAVAILABLE",
    }
    events = client.get(f"{base}/_sim/tasks/{task_id}/events").json()
    assert events[-1][1:] == [24, "failed"] and events[-2][1:] == [24, "processing"]


def test_renamed_steps_show_other_names(sim: Any, client: httpx.Client) -> None:
    base = sim("renamed-steps", time_scale=0.05)
    task_id = upload(client, base).json()["task_id"]
    names = {r.json()["step_name"] for r in poll_all(client, base, task_id, seconds=2.0)}
    assert "语音识别" in names and "已完成" in names and "转录中" not in names


def test_multi_instance_non_owner_sees_persisted_multiples_of_5(sim: Any, client: httpx.Client) -> None:
    base = sim("multi-instance", time_scale=0.05)
    task_id = upload(client, base).json()["task_id"]
    time.sleep(0.03)  # 404 window 0.5 s * 0.05
    owner = client.get(f"{base}/_sim/tasks/{task_id}").json()["owner"]
    answers = [r for r in poll_all(client, base, task_id, seconds=2.0, interval=0.002) if r.status_code == 200]
    instances = {r.headers["x-instance"] for r in answers}
    assert instances == {"sim-0", "sim-1", "sim-2"}
    others = [r.json() for r in answers if r.headers["x-instance"] != owner]
    assert others and all(b["progress"] % 5 == 0 for b in others)
    owned = [r.json()["progress"] for r in answers if r.headers["x-instance"] == owner]
    assert any(p % 5 for p in owned)


def test_user_scenario_file_without_code_change(sim: Any, client: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'description = "mine"\nseed = 1\n'
        "[transcription]\nlatency = { s = 1.0 }\ncap = 40\n"
        "[llm]\nlatency = { s = 1.0 }\n[saving]\nlatency = { s = 0.2 }\n"
        '[labels.zh.transcribing]\nstep_name = "听写"\n'
    )
    base = sim(str(path), time_scale=0.1)
    assert client.get(f"{base}/health").json()["simulator"]["scenario"] == "mine"
    task_id = upload(client, base).json()["task_id"]
    answers = poll_all(client, base, task_id, seconds=2.0)
    assert answers[-1].json()["status"] == "completed"
    assert "听写" in {r.json()["step_name"] for r in answers}
    events = client.get(f"{base}/_sim/tasks/{task_id}/events").json()
    assert events[-1][0] == pytest.approx((0.002 + 0.35 + 1.0 + 0.02 + 1.0 + 0.2 + 0.1) * 0.1, abs=1e-5)


def test_same_seed_same_latencies(sim: Any, client: httpx.Client) -> None:
    a, b = sim("fast", time_scale=0.05, seed=99), sim("fast", time_scale=0.05, seed=99)
    plans = []
    for base in (a, b):
        task_id = upload(client, base).json()["task_id"]
        plans.append(client.get(f"{base}/_sim/tasks/{task_id}").json()["plan"])
    assert plans[0] == plans[1]


def test_unknown_scenario_is_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown scenario 'nope'; known: "):
        with running_simulator("nope"):
            pass
