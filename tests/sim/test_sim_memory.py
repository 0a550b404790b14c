"""The simulator's memory per task stays small: a load run keeps up to MAX_TASKS of them."""

from __future__ import annotations

import asyncio
import tracemalloc

import httpx

from probes.sim.app import MAX_TASKS, create_app
from probes.sim.scenarios import load_scenario

MAX_TOTAL_BYTES = 1 << 30  # MAX_TASKS tasks with every state answered stay under 1 GB


async def _one_task(audio: bytes):
    app = create_app(load_scenario("fast"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        answer = await client.post("/diary/voice/async", files={"audio": ("r.m4a", audio, "audio/m4a")},
                                   data={"duration": "5"})
    sim = app.state.sim
    return sim, sim.tasks[answer.json()["task_id"]]


def test_a_task_with_every_state_answered_and_cached_costs_kilobytes(fixtures_dir):
    sim, task = asyncio.run(_one_task((fixtures_dir / "speech-en-5s.m4a").read_bytes()))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        bodies = [sim.render(task, i, "zh") for i in range(len(task.schedule))]  # what the answer cache keeps
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    wire = sum(len(b) for b in bodies)
    # a cached answer holds about its own size (orjson's bytes kept a 4 KB buffer each: ~100 KB a task)
    assert held < 1.5 * wire + 64 * len(bodies), (held, wire, len(bodies))
    assert (held + 8 * 1024) * MAX_TASKS < MAX_TOTAL_BYTES  # plus the schedule and the diary
