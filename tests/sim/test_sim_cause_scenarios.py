"""The scenarios made to be evidence for one suspected cause each, over real HTTP on loopback.

    stale-deploy     -> stale_deploy        older version header, other step names, fast's timings
    slow-whisper     -> slow_transcription  slow climb to 55 %, plateau there until Whisper answers
    throttled-db     -> lost_state          one instance: progress goes backwards, 404 after seen
    slow-visibility  -> frontend_polling    404 for 12 s (longer than the app's 10 s), then done

Each test also checks what must NOT be there (5xx, 429, more instances), so
the scenario gives no evidence for another cause.
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
import pytest

from probes.sim.progress import build_schedule, plateau
from probes.sim.scenarios import CURRENT_VERSION, load_scenario

from .conftest import upload


def poll_until_done(client: httpx.Client, base: str, task_id: str, seconds: float = 5.0,
                    interval: float = 0.002) -> list[tuple[float, httpx.Response]]:
    """Every answer with the monotonic time its request was sent, until a final answer."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sent = time.monotonic()
        r = client.get(f"{base}/diary/voice/progress/{task_id}")
        out.append((sent, r))
        if r.status_code == 200 and r.json()["status"] != "processing":
            return out
        time.sleep(interval)
    raise AssertionError("task did not finish in time")


def assert_one_healthy_instance(answers: list[httpx.Response]) -> None:
    """No evidence for backend_errors, rate_limiting or a multi-instance deployment."""
    assert all(r.status_code < 429 for r in answers)
    assert {r.headers["x-instance"] for r in answers} == {"sim-0"}


# -- stale-deploy -----------------------------------------------------------------------------------

def test_stale_deploy_is_fast_with_older_names_and_version() -> None:
    stale, fast = load_scenario("stale-deploy"), load_scenario("fast")
    draws = [(stale.plan(random.Random(f"{stale.seed}:{n}")), fast.plan(random.Random(f"{fast.seed}:{n}")))
             for n in range(20)]
    assert all(a == b for a, b in draws)  # the same timings, draw for draw
    assert stale.version < fast.version == CURRENT_VERSION
    old, new = stale.label_table("zh"), fast.label_table("zh")
    for key in ("validating", "transcribing", "transcribing_wait", "transcribed", "polishing", "saving", "saved"):
        assert old[key] != new[key], key


def test_stale_deploy_live(sim: Any, client: httpx.Client) -> None:
    base = sim("stale-deploy", time_scale=0.05)
    health = client.get(f"{base}/health")
    assert health.json()["version"] == "1.2.0" and health.headers["x-app-version"] == "1.2.0"
    task_id = upload(client, base).json()["task_id"]
    answers = [r for _, r in poll_until_done(client, base, task_id)]
    assert_one_healthy_instance(answers)
    assert {r.headers["x-app-version"] for r in answers} == {"1.2.0"}
    seen = {(r.json()["step_name"], r.json()["message"]) for r in answers}
    assert ("准备上传", "准备上传音频...") in seen and ("转录中", "正在把语音转为文字...") in seen
    assert ("AI润色", "正在优化文字表达...") in seen
    current = set(load_scenario("fast").label_table("zh").values())
    assert seen & current <= {("排队中", "已收到录音，等待处理..."), ("完成", "日记创建成功")}  # only the shared ends
    assert answers[-1].json()["status"] == "completed"


# -- slow-whisper -----------------------------------------------------------------------------------

def test_slow_whisper_matches_the_reference_timings() -> None:
    sc = load_scenario("slow-whisper")
    for n in range(30):
        plan = sc.plan(random.Random(f"{sc.seed}:{n}"))
        s = build_schedule(plan)
        first = {}
        for state in s:
            first.setdefault(state.progress, state.t)
        assert first[22] < 0.4
        assert first[42] == pytest.approx(7.7, abs=0.2)  # 1 %/0.3 s
        assert first[55] == pytest.approx(17.9, abs=0.1)  # then 1 %/0.8 s
        assert first[58] == pytest.approx(20.1, abs=0.8)  # Whisper answers
        assert plateau(s, 55) == pytest.approx(first[58] - first[55])  # about Whisper's time minus ~17.7 s
        assert plateau(s, 55) > 1.0
        assert s[-1].t - first[60] == pytest.approx(2.0, abs=0.5) and 21.0 < s[-1].t < 23.5
        assert plateau(s, 32) < 0.5  # no freeze at 32 %: that would point at older code
        assert s[-1].status == "completed"
        assert {x.label for x in s if x.progress > 42 and x.progress <= 55} == {"transcribing_wait"}


def test_slow_whisper_live(sim: Any, client: httpx.Client) -> None:
    scale = 0.05  # the ~22 s job in ~1.1 s: its 55 % plateau lasts >= 50 ms, polled every 2 ms even when busy
    base = sim("slow-whisper", time_scale=scale)
    task_id = upload(client, base).json()["task_id"]
    answers = [r for _, r in poll_until_done(client, base, task_id)]
    assert_one_healthy_instance(answers)
    bodies = [r.json() for r in answers]
    assert {r.headers["x-app-version"] for r in answers} == {CURRENT_VERSION}
    at_55 = [b for b in bodies if b["progress"] == 55]
    assert len(at_55) >= 5  # the plateau is long enough to be polled many times
    assert {(b["step"], b["step_name"], b["message"]) for b in at_55} == {(1, "转录中", "语音识别中，请稍候...")}
    progress = [b["progress"] for b in bodies]
    assert progress == sorted(progress) and progress[-1] == 100
    events = client.get(f"{base}/_sim/tasks/{task_id}/events").json()
    t55 = next(t for t, p, _ in events if p == 55)
    t58 = next(t for t, p, _ in events if p == 58)
    assert t55 / scale == pytest.approx(17.95, abs=0.05) and 1.0 < (t58 - t55) / scale < 3.5


# -- throttled-db -----------------------------------------------------------------------------------

def test_throttled_db_live(sim: Any, client: httpx.Client) -> None:
    base = sim("throttled-db", time_scale=0.05)
    task_id = upload(client, base).json()["task_id"]
    answers = [r for _, r in poll_until_done(client, base, task_id, interval=0.001)]
    assert_one_healthy_instance(answers)  # lost state without more instances and without 5xx
    codes = [r.status_code for r in answers]
    assert set(codes) == {200, 404}
    first_ok = codes.index(200)
    assert 404 in codes[first_ok:]  # "not found" for a task already seen
    progress = [r.json()["progress"] for r in answers if r.status_code == 200]
    regressions = [(a, b) for a, b in zip(progress, progress[1:]) if b < a]
    assert len(regressions) >= 3
    assert all(b % 5 == 0 for _, b in regressions)  # what a regression shows: a persisted multiple of 5
    assert answers[-1].json()["status"] == "completed"
    events = client.get(f"{base}/_sim/tasks/{task_id}/events").json()
    assert all(a[1] <= b[1] for a, b in zip(events, events[1:]))  # the job itself never went backwards


def test_throttled_db_reads_are_seeded(sim: Any, client: httpx.Client) -> None:
    """Two servers with the same seed answer the same sequence of statuses to the same sequence of polls."""
    runs = []
    for _ in range(2):
        base = sim("throttled-db", time_scale=100.0)  # the job stays in its first states for the whole test
        task_id = upload(client, base).json()["task_id"]
        runs.append([client.get(f"{base}/diary/voice/progress/{task_id}").status_code for _ in range(200)])
    assert runs[0] == runs[1] and 404 in runs[0]


# -- slow-visibility --------------------------------------------------------------------------------

def test_slow_visibility_live(sim: Any, client: httpx.Client) -> None:
    scale = 0.05  # 12 s of 404 -> 0.6 s
    slack = 0.25  # real seconds of scheduling noise on a busy 2-core machine
    base = sim("slow-visibility", time_scale=scale)
    sent = time.monotonic()
    r = upload(client, base)
    upload_s = time.monotonic() - sent
    assert r.status_code == 200 and upload_s < 1.0 * scale + slack  # a fast upload: not a cold start
    task_id = r.json()["task_id"]
    answers = poll_until_done(client, base, task_id, interval=0.005)
    assert_one_healthy_instance([a for _, a in answers])
    codes = [a.status_code for _, a in answers]
    first_ok = codes.index(200)
    assert set(codes[:first_ok]) == {404} and set(codes[first_ok:]) == {200}  # 404 only before it is visible
    first_ok_at = (answers[first_ok][0] - sent) / scale
    last_404_at = (answers[first_ok - 1][0] - sent) / scale
    assert last_404_at > 10.0  # past the app's 10 s window: the app would have given up
    assert 12.0 <= first_ok_at < 12.0 + slack / scale
    assert answers[-1][1].json()["status"] == "completed"
    detail = client.get(f"{base}/_sim/tasks/{task_id}").json()
    assert detail["visible_after_s"] == pytest.approx(12.0 * scale)
