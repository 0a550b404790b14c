"""One probe over httpx: upload a fixture, poll like the app, record every poll.

The only I/O seam of the probe engine. What a request looks like and what an
answer means live in `wire`; when to poll lives in `cadence`; what the
timeline means lives in `timeline`. This loop only sends, waits and writes
down what it saw. Nothing here raises on a bad answer: every way a probe can
end is an outcome in its record.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import httpx

from probes import wire
from probes.cadence import APP_NOT_FOUND_WINDOW_S, Cadence, PollResult
from probes.timeline import analyse, progress_band

RECORD_SCHEMA = 1
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


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


LATENESS_THRESHOLDS_MS = (5, 10, 20, 50, 100)


def lateness_summary(lateness: list[float]) -> dict[str, Any]:
    """How late this probe's polls started against the plan: the harness's own measurement quality.

    `over_ms` counts polls later than each threshold, so probes can be summed into a run-wide share.
    """
    ordered = sorted(lateness)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 6)  # noqa: E731
    return {
        "n": len(ordered), "p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1], 6),
        "over_ms": {str(ms): sum(1 for x in ordered if x > ms / 1000) for ms in LATENESS_THRESHOLDS_MS},
    }


class Probe:
    """A single upload-and-poll flow. `run()` returns its probes.jsonl record."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        plan: ProbePlan,
        probe_id: str,
        on_update: Callable[[ProbeState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.plan = plan
        self.state = ProbeState(probe_id)
        self.on_update = on_update or (lambda state: None)
        self.clock = clock
        self.started_at = _utc_now()
        self.t0 = 0.0
        self.samples: list[list[Any]] = []
        self.states: list[list[Any]] = []
        self.instances: dict[str, int] = {}
        self.lateness: list[float] = []
        self.outcome = "aborted"
        self.error: str | None = None
        self.task_id: str | None = None
        self.diary_id: str | None = None
        self.cleanup: str | None = None
        self.upload_status: int | None = None
        self.upload_s: float | None = None
        self.first_headers: dict[str, str] | None = None

    def now(self) -> float:
        return self.clock() - self.t0

    async def run(self) -> dict[str, Any]:
        self.t0 = self.clock()
        try:
            if await self._upload():
                await self._poll_until_done()
                await self._cleanup()
        except asyncio.CancelledError:
            self.outcome, self.error = "aborted", "interrupted"
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
            self.upload_s = round(self.now(), 6)
            self.outcome, self.error = "upload_error", f"{type(exc).__name__}: {exc}"[:300]
            return False
        self.upload_s = round(self.now(), 6)
        self.upload_status = response.status_code
        self.first_headers = wire.safe_headers(response.headers)
        answer = wire.parse_upload(response.status_code, response.content)
        if answer.outcome is not None:
            self.outcome, self.error = answer.outcome, answer.error
            return False
        self.task_id = answer.task_id
        return True

    async def _poll_until_done(self) -> None:
        assert self.task_id is not None
        # Built once and re-sent: building a request (URL merge, header merge) per poll cost
        # more CPU than sending it (bench/bench_probe.py).
        request = self.client.build_request("GET", wire.progress_path(self.task_id))
        cadence = self.plan.cadence
        due = self.now()
        errors_in_row = 0
        while True:
            wait = due - self.now()
            if due >= self.plan.timeout_s:
                self.outcome = "timeout"
                self.error = self.error or f"not done after {self.plan.timeout_s:g} s"
                return
            if wait > 0:
                await asyncio.sleep(wait)
            start = self.now()
            self.lateness.append(max(0.0, start - due))
            result, retry_after, answer = await self._poll_once(request, start)
            if answer.progress is not None:
                self.state.progress, self.state.step_name = answer.progress, answer.step_name
                self.on_update(self.state)
            if answer.terminal:
                self.outcome = answer.status or "completed"
                self.error = answer.error if answer.status == "failed" else None
                self.diary_id = answer.diary_id
                return
            if result is PollResult.NOT_FOUND and start >= APP_NOT_FOUND_WINDOW_S:
                self.outcome, self.error = "poll_error", f"task not found after {APP_NOT_FOUND_WINDOW_S:g} s"
                return
            if self.samples[-1][1] in wire.AUTH_STATUSES:
                self.outcome, self.error = "auth_error", f"HTTP {self.samples[-1][1]} on progress"
                return
            errors_in_row = 0 if result is PollResult.OK else errors_in_row + 1
            next_due = cadence.next_due(due, result, errors_in_row, retry_after)
            due = max(next_due, self.now())

    async def _poll_once(
        self, request: httpx.Request, start: float
    ) -> tuple[PollResult, float | None, wire.ProgressAnswer]:
        remaining = self.plan.timeout_s - start
        if remaining < POLL_TIMEOUT_S:  # the last polls must not outlive the probe's deadline
            request.extensions["timeout"] = httpx.Timeout(max(0.5, remaining)).as_dict()
        try:
            response = await self.client.send(request)
        except httpx.HTTPError as exc:
            self.error = f"{type(exc).__name__}"
            self.samples.append([round(start, 6), None, None, None, None, None, round(self.now() - start, 6)])
            return PollResult.ERROR, None, wire.EMPTY_ANSWER
        latency = self.now() - start
        status = response.status_code
        answer = wire.parse_progress(status, response.content)
        self.samples.append(
            [round(start, 6), status, answer.progress, answer.step, answer.step_name, answer.status, round(latency, 6)]
        )
        instance = wire.instance_of(response.headers)
        if instance:
            self.instances[instance] = self.instances.get(instance, 0) + 1
        if answer.progress is not None:
            state = [progress_band(answer.progress), answer.step_name, answer.message]
            if state not in self.states:
                self.states.append(state)
            return PollResult.OK, None, answer
        if status == 404:
            return PollResult.NOT_FOUND, None, answer
        if status == 429:
            return PollResult.RATE_LIMITED, wire.retry_after_s(response.headers.get("retry-after"), time.time()), answer
        return PollResult.ERROR, None, answer

    async def _cleanup(self) -> None:
        if not (self.plan.cleanup and self.diary_id):
            return
        try:
            response = await self.client.delete(wire.diary_path(self.diary_id))
            self.cleanup = "deleted" if response.status_code < 300 else "failed"
        except httpx.HTTPError:
            self.cleanup = "failed"

    def record(self) -> dict[str, Any]:
        """The probes.jsonl line (docs/run-format.md)."""
        timeline = analyse(self.samples, self.plan.milestones)
        record: dict[str, Any] = {
            "schema": RECORD_SCHEMA,
            "run_id": self.plan.run_id,
            "probe_id": self.state.probe_id,
            "target": self.plan.target,
            "label": self.plan.label,
            "started_at": self.started_at,
            "outcome": self.outcome,
            "error": self.error if self.outcome != "completed" else None,
            "task_id": self.task_id,
            "diary_id": self.diary_id,
            "cleanup": self.cleanup,
            "upload_status": self.upload_status,
            "upload_s": self.upload_s,
        }
        record.update(timeline.to_record())
        if not self.samples:
            record["end_s"] = round(self.now(), 6) if self.outcome == "aborted" else self.upload_s
        record["lateness"] = lateness_summary(self.lateness) if self.lateness else None
        record["instances"] = self.instances
        record["states"] = self.states
        record["samples"] = self.samples
        return record
