"""A `probes run` in virtual time: the real probe machine against the real simulator app, no sockets, no sleeping.

The confusion table needs hundreds of runs; live, at any time scale, they would take many
minutes. Everything that decides a record is real here: `ProbeMachine` decides every request and
builds the record, and every request goes through the simulator's own ASGI app (routing, the
multipart upload of the real fixture, its fault and task-store random streams, its multi-instance
round robin, its cold start and 404 window). Only the clock is virtual: the app's module sees a
`time` whose monotonic clock is the run's virtual now, and an `asyncio.sleep` (the cold start's
wait) that returns at once and delays that answer instead.

The probes are scheduled as `probes.probe.run.run_workers` schedules them (C workers, the first
uploads staggered over STAGGER_S, --idle-before's lone first probe), and each request takes
REQUEST_S of virtual time, half of it before the server reads its clock.
"""

from __future__ import annotations

import asyncio
import heapq
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from probes.analysis.diagnosis import Side
from probes.probe import wire
from probes.probe.cadence import Cadence
from probes.probe.machine import Answer, Done, MachineConfig, ProbeMachine, Send
from probes.probe.run import STAGGER_PER_PROBE_S, STAGGER_S
from probes.sim import app as sim_app
from probes.sim.scenarios import load_scenario

REQUEST_S = 0.002   # a loopback request's round trip, in real (scaled) seconds
EPOCH = 1.7e9       # the virtual wall clock's zero (Unix time)


@dataclass
class _Clock:
    now: float = 0.0
    slept: float = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return EPOCH + self.now

    async def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)


@contextmanager
def virtual_time(clock: _Clock) -> Iterator[None]:
    """The simulator app reads `clock` instead of the system's, only while inside."""
    saved = sim_app.time, sim_app.asyncio
    sim_app.time = types.SimpleNamespace(monotonic=clock.monotonic, time=clock.time)  # type: ignore[assignment]
    sim_app.asyncio = types.SimpleNamespace(sleep=clock.sleep)  # type: ignore[assignment]
    try:
        yield
    finally:
        sim_app.time, sim_app.asyncio = saved


async def _call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]],
                body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app: (status, lower-case headers, body)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
    sent = False
    status, out_headers, chunks = 0, {}, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in message["headers"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, out_headers, b"".join(chunks)


@dataclass
class _Probe:
    index: int
    machine: ProbeMachine
    t0: float
    action: Send
    worker: int | None  # None: the lone first probe after --idle-before, whose end starts no other


@dataclass
class VirtualRun:
    """What a run directory would hold: run.json's meta and the records, in probe order."""

    meta: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    def side(self) -> Side:
        return Side(self.meta, self.records)


def run(scenario: str, *, n: int, concurrency: int, time_scale: float, cadence: str = "app",
        interval: float = 0.05, timeout_s: float = 300.0, idle_before_s: float = 0.0, seed: int | None = None,
        fixture: tuple[dict[str, Any], bytes]) -> VirtualRun:
    """`probes run --url SIM -n N --concurrency C --cadence CADENCE [--idle-before S] [--timeout T]` in virtual time.

    `idle_before_s` and `timeout_s` are the flags' real seconds, as for a live simulator at `time_scale`;
    `seed` is the simulator's `--seed` (default: the scenario's).
    """
    return asyncio.run(_run(scenario, n, concurrency, time_scale, Cadence(cadence, interval), timeout_s,
                            idle_before_s, seed, fixture))


async def _run(scenario: str, n: int, concurrency: int, scale: float, cadence: Cadence, timeout_s: float,
               idle_before_s: float, seed: int | None, fixture: tuple[dict[str, Any], bytes]) -> VirtualRun:
    clock = _Clock()
    app = sim_app.create_app(load_scenario(scenario), time_scale=scale, seed=seed)
    entry, audio = fixture
    files, data = wire.upload_form(entry, audio)
    upload = httpx.Request("POST", "http://sim" + wire.UPLOAD_PATH, files=files, data=data)
    upload_body = upload.read()
    base = {**wire.request_headers(), "Authorization": "Bearer virtual-user"}
    plain = [(k.lower().encode(), v.encode()) for k, v in base.items()]
    upload_headers = plain + [(b"content-type", upload.headers["content-type"].encode()),
                              (b"content-length", str(len(upload_body)).encode())]
    config = MachineConfig(cadence=cadence, timeout_s=timeout_s)
    width = max(4, len(str(n)))
    run_id = f"virtual-{scenario}"
    out = VirtualRun({"run_id": run_id, "scenario": scenario, "time_scale": scale, "cadence": cadence.describe(),
                      "n": n, "concurrency": concurrency, "timeout_s": timeout_s,
                      "idle_before_s": idle_before_s or None})
    records: dict[int, dict[str, Any]] = {}
    first_headers: dict[str, str] | None = None
    with virtual_time(clock):
        health_status, health_headers, health_body = await _call(app, "GET", "/health", plain)
        next_index = 1
        heap: list[tuple[float, int, _Probe]] = []

        def launch(worker: int | None, at: float) -> None:
            nonlocal next_index
            if next_index > n:
                return
            machine = ProbeMachine(config)
            action = machine.start()
            assert isinstance(action, Send)
            probe = _Probe(next_index, machine, at, action, worker)
            next_index += 1
            heapq.heappush(heap, (at + action.not_before_s, probe.index, probe))

        async def drain() -> float:
            """Run the probes in the heap (and those their workers start next) to their end; the last end."""
            nonlocal first_headers
            last = 0.0
            while heap:
                at, _, probe = heapq.heappop(heap)
                send = probe.action
                clock.now, clock.slept = at + REQUEST_S / 2, 0.0
                if send.kind == "upload":
                    answer = await _call(app, "POST", send.path, upload_headers, upload_body)
                else:
                    answer = await _call(app, send.method, send.path, plain)
                end = at + REQUEST_S + clock.slept
                status, headers, body = answer
                action = probe.machine.receive(Answer(at - probe.t0, end - probe.t0, status, headers, body,
                                                      epoch_s=EPOCH + end))
                if isinstance(action, Send):
                    probe.action = action
                    heapq.heappush(heap, (max(probe.t0 + action.not_before_s, end), probe.index, probe))
                    continue
                assert isinstance(action, Done), action  # no token refresh: the simulator needs none
                if first_headers is None and probe.machine.first_headers is not None:
                    first_headers = probe.machine.first_headers
                records[probe.index] = probe.machine.record(run_id=run_id, probe_id=f"{probe.index:0{width}d}",
                                                            target="sim", label=scenario)
                finished = probe.t0 + probe.machine.end_s
                last = max(last, finished)
                if probe.worker is not None:  # the worker takes the next probe
                    launch(probe.worker, finished)
            return last

        start = 0.0
        if idle_before_s > 0:  # run_workers: wait, then the first probe alone, then the rest
            launch(None, idle_before_s)
            start = await drain()
        workers = min(concurrency, n - len(records))
        stagger = max(STAGGER_S, STAGGER_PER_PROBE_S * workers)
        for i in range(workers):
            launch(i, start + i * stagger / max(workers, 1))
        await drain()
    out.meta["fingerprint"] = {"health_status": health_status, "health": sim_app.orjson.loads(health_body),
                               "headers": health_headers, "upload_headers": first_headers or {}}
    out.records = [records[i] for i in sorted(records)]
    return out
