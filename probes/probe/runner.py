"""Many probes against one target from one process: a shared client, C in flight, N in all.

Every finished probe goes to the RunWriter at once. On cancellation (Ctrl-C)
the probes in flight are written as `aborted` with the samples they have.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Callable

import httpx
from httpx_aiohttp import AiohttpTransport

from probes.probe import wire
from probes.probe.cadence import APP_FAST_INTERVAL_S
from probes.probe.driver import POLL_TIMEOUT_S, Probe, ProbePlan, ProbeState
from probes.probe.poll_transport import PollTransport
from probes.probe.store import RunWriter

HEALTH_TIMEOUT_S = 5.0
STAGGER_S = APP_FAST_INTERVAL_S
STAGGER_PER_PROBE_S = 0.003  # an upload costs the harness ~1.4 ms of CPU: keep the ramp-up under half a core


def make_client(
    base_url: str, concurrency: int, headers: dict[str, str]
) -> tuple[httpx.AsyncClient, PollTransport]:
    """A client for uploads, /health and cleanup, and the transport the polls go to.

    The client is httpx's API on aiohttp's transport (a plain AsyncClient collapses
    near 500 flows, encode/httpx#3215). Polls are requests the client builds and
    sends straight to the PollTransport (see Probe._poll_until_done); close it too.
    The credentials ride as the client's default headers, so no request needs them passed again.
    """
    size = max(10, concurrency * 2)
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    transport = AiohttpTransport(limits=limits, trust_env=False)
    client = httpx.AsyncClient(
        base_url=base_url, headers=headers, transport=transport, trust_env=False, timeout=httpx.Timeout(POLL_TIMEOUT_S)
    )
    return client, PollTransport(transport.ssl_context)


async def fingerprint(client: httpx.AsyncClient) -> dict[str, Any]:
    """What the target says about itself: /health and its response headers (no credentials)."""
    try:
        response = await client.get(wire.HEALTH_PATH, timeout=HEALTH_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return {"health_status": None, "health": None, "health_error": type(exc).__name__, "headers": {}}
    try:
        body: Any = response.json()
    except (ValueError, UnicodeDecodeError):
        body = response.text[:500]
    return {"health_status": response.status_code, "health": body, "headers": wire.safe_headers(response.headers)}


def simulator_info(health: Any) -> tuple[str | None, float | None]:
    """(scenario, time_scale) when the target is the embedded simulator."""
    sim = health.get("simulator") if isinstance(health, dict) else None
    if not isinstance(sim, dict):
        return None, None
    scale = sim.get("time_scale")
    return sim.get("scenario"), float(scale) if isinstance(scale, (int, float)) else None


async def run_probes_async(
    client: httpx.AsyncClient,
    transport: httpx.AsyncBaseTransport,
    plan: ProbePlan,
    n: int,
    concurrency: int,
    writer: RunWriter,
    on_update: Callable[[ProbeState], None] | None = None,
) -> dict[str, str] | None:
    """Run the probes; returns the first upload answer's headers for the fingerprint."""
    ids = itertools.count(1)
    width = max(4, len(str(n)))
    first_headers: list[dict[str, str]] = []

    async def worker(delay: float) -> None:
        await asyncio.sleep(delay)
        while (index := next(ids)) <= n:
            probe = Probe(client, transport, plan, f"{index:0{width}d}", on_update)
            try:
                record = await probe.run()
            except asyncio.CancelledError:
                writer.append(probe.record())
                raise
            if not first_headers and probe.log.first_headers is not None:
                first_headers.append(probe.log.first_headers)
            writer.append(record)

    workers = min(concurrency, n)
    # Spread the first uploads over one poll interval (longer for hundreds of probes), as users
    # would arrive: started together, C probes would poll in lock-step bursts and measure their
    # own queueing, and 500 uploads in 300 ms made the first polls of every probe late.
    stagger = max(STAGGER_S, STAGGER_PER_PROBE_S * workers)
    async with asyncio.TaskGroup() as group:
        for i in range(workers):
            group.create_task(worker(i * stagger / workers))
    return first_headers[0] if first_headers else None
