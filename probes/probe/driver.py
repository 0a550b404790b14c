"""One probe over httpx: upload a fixture, poll like the app, record every poll.

The only I/O seam of the probe engine. What a request looks like and what an
answer means live in `wire`; when to poll in `cadence`; what the flow saw and
what the app would do next in `flow`. This loop only sends, waits and hands
over what came back. Nothing here raises on a bad answer: every way a probe
can end is an outcome in its record.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import httpx

from probes.probe import wire
from probes.probe.cadence import Cadence, PollResult
from probes.probe.flow import FlowLog

UPLOAD_TIMEOUT_S = 60.0
POLL_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ProbePlan:
    """Everything a probe needs but the client (which carries the credentials as default headers)."""

    run_id: str
    target: str
    label: str
    fixture: Mapping[str, Any]
    audio: bytes = field(repr=False)
    cadence: Cadence
    milestones: tuple[int, ...]
    timeout_s: float
    cleanup: bool = False


@dataclass
class ProbeState:
    """What a probe has seen so far; the live progress bars read it."""

    probe_id: str
    progress: int | None = None
    step_name: str | None = None
    done: bool = False


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


async def _read_body(response: httpx.Response) -> bytes:
    """The body; straight from the stream unless it is content-encoded (aread's decoder layers cost
    a sixth of a poll's CPU for a 300-byte JSON answer)."""
    if "content-encoding" in response.headers:
        return await response.aread()
    return b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]


class Probe:
    """A single upload-and-poll flow. `run()` returns its probes.jsonl record."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport,
        plan: ProbePlan,
        probe_id: str,
        on_update: Callable[[ProbeState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.transport = transport
        self.plan = plan
        self.state = ProbeState(probe_id)
        self.on_update = on_update or (lambda state: None)
        self.clock = clock
        self.log = FlowLog(started_at=utc_now())
        self.t0 = 0.0

    def now(self) -> float:
        return self.clock() - self.t0

    async def run(self) -> dict[str, Any]:
        self.t0 = self.clock()
        self.log.started_at = utc_now()  # the wall-clock twin of t0: the upload request starts now
        try:
            if await self._upload():
                await self._poll_until_done()
                await self._cleanup()
        except asyncio.CancelledError:
            self.log.outcome, self.log.error = "aborted", "interrupted"
            raise
        finally:
            self.state.done = True
            self.on_update(self.state)
        return self.record()

    async def _upload(self) -> bool:
        files, data = wire.upload_form(self.plan.fixture, self.plan.audio)
        try:
            response = await self.client.post(wire.UPLOAD_PATH, files=files, data=data, timeout=UPLOAD_TIMEOUT_S)
        except httpx.HTTPError as exc:
            self.log.upload_failed(self.now(), f"{type(exc).__name__}: {exc}")
            return False
        return self.log.upload_answered(self.now(), response.status_code, response.content, response.headers)

    async def _poll_until_done(self) -> None:
        assert self.log.task_id is not None
        # Built once (with the client's headers and any cookie the upload answer set, such as a
        # load balancer's sticky-session cookie) and re-sent straight to the transport: the
        # client's per-request machinery (URL and header merge, cookie extraction, redirects)
        # cost more CPU than the request itself and made hundreds of probes late (BENCHMARKS.md).
        request = self.client.build_request("GET", wire.progress_path(self.log.task_id))
        due = self.now()
        while due < self.plan.timeout_s:
            wait = due - self.now()
            if wait > 0:
                await asyncio.sleep(wait)
            start = self.now()
            self.log.lateness.append(max(0.0, start - due))
            result, retry_after = await self._poll_once(request, start)
            if self.log.last_progress is not None:
                self.state.progress, self.state.step_name = self.log.last_progress, self.log.last_step_name
                self.on_update(self.state)
            next_due = self.log.next_due(self.plan.cadence, due, start, result, retry_after, self.now())
            if next_due is None:
                return
            due = next_due
        self.log.timed_out(self.plan.timeout_s)

    async def _poll_once(self, request: httpx.Request, start: float) -> tuple[PollResult, float | None]:
        remaining = self.plan.timeout_s - start
        if remaining < POLL_TIMEOUT_S:  # the last polls must not outlive the probe's deadline
            request.extensions["timeout"] = httpx.Timeout(max(0.5, remaining)).as_dict()
        try:
            response = await self.transport.handle_async_request(request)
            try:
                body = await _read_body(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            return self.log.poll_failed(start, self.now() - start, type(exc).__name__), None
        return self.log.poll_answered(
            start, self.now() - start, response.status_code, body, response.headers.get, time.time()
        )

    async def _cleanup(self) -> None:
        if not (self.plan.cleanup and self.log.diary_id):
            return
        try:
            response = await self.client.delete(wire.diary_path(self.log.diary_id))
            self.log.cleanup = "deleted" if response.status_code < 300 else "failed"
        except httpx.HTTPError:
            self.log.cleanup = "failed"

    def record(self) -> dict[str, Any]:
        """The probes.jsonl line (docs/run-format.md)."""
        return self.log.record(
            run_id=self.plan.run_id, probe_id=self.state.probe_id, target=self.plan.target, label=self.plan.label,
            milestones=self.plan.milestones, end_s=self.now(),
        )
