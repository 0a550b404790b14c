"""What a fine-cadence poller sees equals the simulator's ground truth, and the scenarios' numbers hold."""

from __future__ import annotations

import gc
import random
import time
from bisect import bisect_right
from typing import Any

import httpx

from probes.sim.progress import build_schedule, plateau
from probes.sim.scenarios import load_scenario

from .conftest import upload


def poll_until_done(base: str, limit_s: float) -> tuple[float, str, list[tuple[float, float, dict[str, Any]]]]:
    """Upload, then poll back-to-back; returns (upload send time, task_id, [(send, recv, body)])."""
    polls: list[tuple[float, float, dict[str, Any]]] = []
    gc.disable()  # a collection mid-loop would widen the brackets around a change
    try:
        return _poll(base, limit_s, polls)
    finally:
        gc.enable()


def _poll(base: str, limit_s: float, polls: list[tuple[float, float, dict[str, Any]]]
          ) -> tuple[float, str, list[tuple[float, float, dict[str, Any]]]]:
    with httpx.Client(timeout=5.0) as client:
        sent = time.monotonic()
        r = upload(client, base)
        task_id = r.json()["task_id"]
        url = f"{base}/diary/voice/progress/{task_id}"
        deadline = sent + limit_s
        while time.monotonic() < deadline:
            s = time.monotonic()
            resp = client.get(url)
            e = time.monotonic()
            assert resp.status_code == 200
            body = resp.json()
            polls.append((s, e, body))
            if body["status"] != "processing":
                break
    return sent, task_id, polls


def ground_truth(base: str, task_id: str) -> tuple[float, list[list[Any]], list[dict[str, Any]]]:
    with httpx.Client(timeout=5.0) as client:
        detail = client.get(f"{base}/_sim/tasks/{task_id}").json()
        events = client.get(f"{base}/_sim/tasks/{task_id}/events").json()
    return detail["t0_monotonic"], events, detail["states"]


def assert_polls_match_truth(base: str, task_id: str, polls: list[tuple[float, float, dict[str, Any]]]) -> None:
    """Each answer is the schedule's state at some instant between send and receive."""
    t0, events, states = ground_truth(base, task_id)
    times = [e[0] for e in events]
    eps = 1e-5  # events are rounded to the microsecond
    for s, e, body in polls:
        lo = max(0, bisect_right(times, s - t0 - eps) - 1)
        hi = bisect_right(times, e - t0 + eps) - 1
        candidates = [(ev[1], ev[2]) for ev in events[lo:hi + 1]]
        assert (body["progress"], body["status"]) in candidates, (s - t0, e - t0, body["progress"], candidates)
    state_times = [st["t_s"] for st in states]
    for s, e, body in polls:
        lo = max(0, bisect_right(state_times, s - t0 - eps) - 1)
        hi = bisect_right(state_times, e - t0 + eps) - 1
        window = [(st["progress"], st["step"], st["step_name"], st["message"]) for st in states[lo:hi + 1]]
        assert (body["progress"], body["step"], body["step_name"], body["message"]) in window


def test_fast_sequence_monotone_complete_and_matches_truth(sim: Any) -> None:
    scale = 0.2
    base = sim("fast", time_scale=scale)
    sent, task_id, polls = poll_until_done(base, limit_s=13 * scale + 2)
    progresses = [b["progress"] for _, _, b in polls]
    assert progresses == sorted(progresses)
    assert polls[-1][2]["status"] == "completed"
    seen = {(b["step"], b["step_name"]) for _, _, b in polls}
    assert {(1, "处理中"), (1, "转录中"), (2, "AI润色"), (3, "保存中"), (4, "完成")} <= seen
    total = polls[-1][1] - sent
    assert 8.0 * scale < total < 12.1 * scale + 0.05
    assert_polls_match_truth(base, task_id, polls)
    # the server-side total is the seeded draw for task 0 of the scenario
    sc = load_scenario("fast")
    expected = build_schedule(sc.plan(random.Random(f"{sc.seed}:0")), scale=scale)
    t0, events, _ = ground_truth(base, task_id)
    assert events[-1][0] == round(expected[-1].t, 6)


def test_stale_32_plateau_and_total(sim: Any) -> None:
    scale = 0.1
    base = sim("stale-32", time_scale=scale)
    sent, task_id, polls = poll_until_done(base, limit_s=62.1 * scale + 2)
    progresses = [b["progress"] for _, _, b in polls]
    assert progresses == sorted(progresses) and polls[-1][2]["status"] == "completed"
    assert max(p for p in progresses if p < 58) == 32  # capped while transcription is pending
    i = next(k for k, b in enumerate(progresses) if b == 32)
    j = next(k for k, b in enumerate(progresses) if b > 32)
    # the change to 32 happened within [send of poll i-1, receive of poll i]; the change away likewise
    start_lo, start_hi = polls[i - 1][0], polls[i][1]
    end_lo, end_hi = polls[j - 1][0], polls[j][1]
    expected = 51.8 * scale
    tolerance = 0.050 * scale
    assert end_lo - start_hi - tolerance <= expected <= end_hi - start_lo + tolerance
    if max(start_hi - start_lo, end_hi - end_lo) <= tolerance:  # no scheduling hiccup around the edges
        measured = (end_lo + end_hi) / 2 - (start_lo + start_hi) / 2
        assert abs(measured - expected) <= tolerance, (measured, expected)
    total = polls[-1][1] - sent
    assert 62.072 * scale - 0.01 < total < 62.072 * scale + 0.05
    assert_polls_match_truth(base, task_id, polls)
    _, events, _ = ground_truth(base, task_id)
    assert abs(plateau_from_events(events, 32) - 51.8 * scale) < 1e-5


def plateau_from_events(events: list[list[Any]], progress: int) -> float:
    start = next(e[0] for e in events if e[1] == progress)
    end = next(e[0] for e in events if e[1] > progress)
    return end - start


def test_stale_32_numbers_at_scale_1() -> None:
    """The numbers in the scenario file's comment."""
    s = build_schedule(load_scenario("stale-32").plan(random.Random(0)))
    assert abs(plateau(s, 32) - 51.8) < 1e-9
