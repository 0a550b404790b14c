"""Benchmark the embedded simulator; prints one JSON object.

(a) throughput: progress polls/s served by one simulator process vs a bare
    Starlette endpoint returning the same JSON (both uvicorn + uvloop +
    httptools, access log off, each in its own child process), driven by the
    same raw keep-alive HTTP/1.1 load loop in this process, alternating rounds.
(b) accuracy: 1,000 stale-32 tasks in flight, each polled every 300 ms (the
    app cadence). Staleness of an answer = how long the ground-truth state had
    already moved past the answered state when the request was sent (0 when it
    matches); t0 of each task comes from /_sim/tasks/{id} on the same
    monotonic clock. Also poll latency.

    .venv/bin/python bench/bench_sim.py [--seconds 5] [--rounds 2] [--tasks 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import subprocess
import sys
import time
from bisect import bisect_right
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import uvloop  # noqa: E402

from probes.sim.server import free_port, simulator_process  # noqa: E402

AUDIO = b"\x00" * 4000


# -- a minimal keep-alive HTTP/1.1 client: the load tool must not be the bottleneck --------------

class Conn(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.buf = b""
        self.fut: asyncio.Future[tuple[int, bytes, bytes]] | None = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport  # uvloop's TCPTransport is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end]
        lower = head.lower()
        i = lower.find(b"content-length:")
        length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None]) if i >= 0 else 0
        total = end + 4 + length
        if len(self.buf) < total:
            return
        status = int(head[9:12])
        body = self.buf[end + 4:total]
        self.buf = self.buf[total:]
        if self.fut is not None and not self.fut.done():
            self.fut.set_result((status, head, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError("closed"))

    async def get(self, request: bytes) -> tuple[int, bytes, bytes]:
        assert self.transport is not None
        self.fut = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.fut


def get_request(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def open_conns(port: int, n: int) -> list[Conn]:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(n):
        _, proto = await loop.create_connection(Conn, "127.0.0.1", port)
        conns.append(proto)
    return conns


async def load(port: int, paths: list[str], seconds: float, conns_n: int, warmup_s: float = 1.0) -> dict[str, Any]:
    """Closed-loop load: ``conns_n`` connections each send the next request as soon as one answers."""
    conns = await open_conns(port, conns_n)
    requests = [get_request(p, port) for p in paths]
    counts = {"ok": 0, "other": 0}
    measuring = False
    stop = False

    async def worker(k: int, conn: Conn) -> None:
        i = k
        while not stop:
            status, _, _ = await conn.get(requests[i % len(requests)])
            i += 1
            if measuring:
                counts["ok" if status == 200 else "other"] += 1

    tasks = [asyncio.create_task(worker(k, c)) for k, c in enumerate(conns)]
    await asyncio.sleep(warmup_s)
    measuring = True
    t = time.perf_counter()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.perf_counter() - t
    stop = True
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in conns:
        assert c.transport is not None
        c.transport.close()
    return {"rps": round(counts["ok"] / elapsed, 1), "non_200": counts["other"]}


# -- the bare baseline --------------------------------------------------------------------------

def serve_bare(port: int, body_file: str) -> None:
    """A bare Starlette endpoint returning the same JSON, served exactly like the simulator."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from probes.sim.server import bind_socket, uvicorn_config

    payload = json.loads(Path(body_file).read_text())

    async def progress(request: Any) -> JSONResponse:
        return JSONResponse(payload)

    app = Starlette(routes=[Route("/diary/voice/progress/{task_id}", progress)])
    sock = bind_socket("127.0.0.1", port)
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port)).run(sockets=[sock])


@contextmanager
def bare_process(body: bytes) -> Iterator[int]:
    port = free_port()
    body_file = ROOT / "bench" / "out" / "bare-body.json"
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_bytes(body)
    proc = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port), str(body_file)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        import httpx

        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/diary/voice/progress/x", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("bare baseline did not start")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def create_tasks(base: str, n: int, concurrency: int = 32) -> list[str]:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    ids: list[str] = []

    async def one(session: aiohttp.ClientSession) -> None:
        async with sem:
            form = aiohttp.FormData()
            form.add_field("duration", "5")
            form.add_field("audio", AUDIO, filename="recording.m4a", content_type="audio/m4a")
            async with session.post(f"{base}/diary/voice/async", data=form) as r:
                ids.append((await r.json())["task_id"])

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session) for _ in range(n)))
    return ids


def throughput(seconds: float, rounds: int, conns: int) -> dict[str, Any]:
    out: dict[str, Any] = {"conns": conns, "seconds_per_round": seconds, "rounds": []}
    with simulator_process("fast", time_scale=1.0) as base:
        port = int(base.rsplit(":", 1)[1])
        ids = uvloop.run(create_tasks(base, 100))
        paths = [f"/diary/voice/progress/{t}" for t in ids]
        import httpx

        body = httpx.get(f"{base}{paths[0]}").content
        with bare_process(body) as bare_port:
            for _ in range(rounds):
                sim = uvloop.run(load(port, paths, seconds, conns))
                bare = uvloop.run(load(bare_port, paths, seconds, conns))
                out["rounds"].append({"sim_rps": sim["rps"], "bare_rps": bare["rps"],
                                      "non_200": sim["non_200"] + bare["non_200"]})
    sim_rps = sorted(r["sim_rps"] for r in out["rounds"])[len(out["rounds"]) // 2]
    bare_rps = sorted(r["bare_rps"] for r in out["rounds"])[len(out["rounds"]) // 2]
    out.update(sim_rps=sim_rps, bare_rps=bare_rps, ratio=round(sim_rps / bare_rps, 3), goal_ratio=0.7)
    return out


# -- accuracy with 1,000 tasks in flight ------------------------------------------------------

async def poll_fleet(port: int, ids: list[str], seconds: float, interval: float, conns_n: int
                     ) -> tuple[list[tuple[str, float, float, Any]], list[float]]:
    """Each task polled every ``interval`` (phases spread evenly); one worker per connection.

    Returns the polls (task_id, sent, received, raw body) and, per poll, how late
    the client sent it (the load tool's own lag, reported separately).
    """
    conns = await open_conns(port, conns_n)
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    requests = [get_request(f"/diary/voice/progress/{t}", port) for t in ids]
    records: list[tuple[str, float, float, Any]] = []
    lags: list[float] = []
    start = time.monotonic()
    deadline = start + seconds

    async def scheduler() -> None:
        due = [(start + interval * k / len(ids), k) for k in range(len(ids))]
        heapq.heapify(due)
        while due[0][0] < deadline:
            now = time.monotonic()
            while due[0][0] <= now:
                at, k = heapq.heappop(due)
                queue.put_nowait((k, at))
                heapq.heappush(due, (at + interval, k))
            await asyncio.sleep(max(0.0, due[0][0] - time.monotonic()))
        for _ in conns:
            queue.put_nowait(None)

    async def worker(conn: Conn) -> None:
        while (item := await queue.get()) is not None:
            k, at = item
            sent = time.monotonic()
            status, _, body = await conn.get(requests[k])
            recv = time.monotonic()
            lags.append(sent - at)
            if status == 200:
                records.append((ids[k], sent, recv, body))  # parsed after the run, off the clock

    await asyncio.gather(scheduler(), *(worker(c) for c in conns))
    for c in conns:
        c.transport.close()
    return records, lags


async def fetch_truth(base: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    import aiohttp

    sem = asyncio.Semaphore(32)
    out: dict[str, dict[str, Any]] = {}

    async def one(session: aiohttp.ClientSession, task_id: str) -> None:
        async with sem:
            async with session.get(f"{base}/_sim/tasks/{task_id}") as r:
                out[task_id] = await r.json()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, t) for t in ids))
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def staleness_of(truth: dict[str, Any], sent: float, answer: dict[str, Any]) -> float:
    """Seconds the true state had moved past the answered one when the poll was sent (0 if current or newer)."""
    states = truth["states"]
    times = [s["t_s"] for s in states]
    elapsed = sent - truth["t0_monotonic"]
    now_idx = bisect_right(times, elapsed) - 1
    key = (answer["progress"], answer["step"], answer["step_name"], answer["status"])
    matches = [i for i, s in enumerate(states) if (s["progress"], s["step"], s["step_name"], s["status"]) == key]
    if not matches:
        return float("inf")
    answered = max(matches)
    if answered >= now_idx:
        return 0.0
    return max(0.0, elapsed - times[answered + 1])


def accuracy(n_tasks: int, seconds: float, interval: float, time_scale: float) -> dict[str, Any]:
    with simulator_process("stale-32", time_scale=time_scale) as base:
        port = int(base.rsplit(":", 1)[1])
        t = time.monotonic()
        ids = uvloop.run(create_tasks(base, n_tasks))
        create_s = time.monotonic() - t
        records, lags = uvloop.run(poll_fleet(port, ids, seconds, interval, conns_n=64))
        truth = uvloop.run(fetch_truth(base, ids))
    stale = [staleness_of(truth[tid], sent, orjson.loads(body)) for tid, sent, _, body in records]
    latency = [recv - sent for _, sent, recv, _ in records]
    return {
        "scenario": "stale-32", "time_scale": time_scale, "tasks": n_tasks, "create_s": round(create_s, 2),
        "interval_s": interval, "polls": len(records), "polls_per_s": round(len(records) / seconds, 1),
        "staleness_ms": {"p50": round(pct(stale, 0.5) * 1000, 3), "p99": round(pct(stale, 0.99) * 1000, 3),
                         "max": round(max(stale) * 1000, 3), "nonzero": sum(1 for s in stale if s > 0)},
        "poll_latency_ms": {"p50": round(pct(latency, 0.5) * 1000, 3), "p99": round(pct(latency, 0.99) * 1000, 3),
                            "max": round(max(latency) * 1000, 3)},
        "client_send_lag_ms": {"p50": round(pct(lags, 0.5) * 1000, 3), "p99": round(pct(lags, 0.99) * 1000, 3)},
        "goal_ms": 10,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating sim/bare rounds")
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    parser.add_argument("--time-scale", type=float, default=0.25)
    args = parser.parse_args()
    result = {
        "cpus": os.cpu_count(),
        "throughput": throughput(args.seconds, args.rounds, args.conns),
        "accuracy": accuracy(args.tasks, args.poll_seconds, 0.3, args.time_scale),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
