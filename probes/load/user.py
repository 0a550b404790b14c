"""The Locust user: the probe flow of probes.probe.driver, with Locust's client and gevent's sleep.

The only I/O loop of load mode. It sends, waits and hands what came back to
probes.probe.flow.FlowLog; the poll schedule is probes.probe.cadence's; the record is
FlowLog.record(). Requests show in Locust's stats as "upload" and
"progress poll" (never one name per task id); each finished flow's phases
are fired as PHASE rows and its record is appended to the run directory.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import gevent
from gevent import GreenletExit
from locust import task
from locust.contrib.fasthttp import FastHttpSession, FastHttpUser

from probes.probe import wire
from probes.probe.cadence import PollResult
from probes.probe.driver import ProbePlan, utc_now
from probes.probe.flow import FlowLog
from probes.load.phases import REQUEST_TYPE, failure_row, phase_rows
from probes.load.rundir import RecordFile
from probes.load.workload import ArrivalSlots, StartSpacing

UPLOAD_NAME = "upload"
POLL_NAME = "progress poll"
CLEANUP_NAME = "cleanup"
ARRIVAL_TYPE = "ARRIVAL"


class FlowFailed(Exception):
    """A flow that ended without completing; its text is the outcome (and error) Locust groups by."""


@dataclass
class LoadContext:
    """What every user of one process shares: the plan, the schedule, the records file."""

    plan: ProbePlan
    headers: dict[str, str]
    model: str
    think_time_s: float
    records: RecordFile
    id_prefix: str = ""
    slots: ArrivalSlots | None = None          # open model
    spacing: StartSpacing | None = None        # closed/ramp with a rate cap
    clock: Callable[[], float] = time.monotonic
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_probe_id(self) -> str:
        return f"{self.id_prefix}{next(self.ids):06d}"

    def wait_for_start(self) -> float | None:
        """Sleep until this flow may start; returns how late it started against its slot (open model)."""
        if self.slots is not None:
            intended = self.slots.claim()
            wait = intended - self.clock()
            if wait > 0:
                gevent.sleep(wait)
            return max(0.0, self.clock() - intended)
        if self.spacing is not None:
            wait = self.spacing.claim(self.clock()) - self.clock()
            if wait > 0:
                gevent.sleep(wait)
        return None


class LocustFlow:
    """One upload-and-poll flow over a FastHttpSession; `run()` returns its probes.jsonl record."""

    def __init__(self, client: FastHttpSession, plan: ProbePlan, headers: dict[str, str], probe_id: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.plan, self.headers, self.probe_id, self.clock = client, plan, headers, probe_id, clock
        self.log = FlowLog(started_at=utc_now())
        self.t0 = 0.0

    def now(self) -> float:
        return self.clock() - self.t0

    def run(self) -> dict[str, Any]:
        self.t0 = self.clock()
        self.log.started_at = utc_now()  # the wall-clock twin of t0: the upload request starts now
        try:
            if self._upload():
                self._poll_until_done()
                self._cleanup()
        except GreenletExit:
            self.log.outcome, self.log.error = "aborted", "interrupted"
            raise
        return self.record()

    def _upload(self) -> bool:
        files, data = wire.upload_form(self.plan.fixture, self.plan.audio)
        response = self.client.post(wire.UPLOAD_PATH, files=files, data=data, headers=self.headers, name=UPLOAD_NAME)
        if not response.status_code:  # a network error: Locust hands back an ErrorResponse
            error = getattr(response, "error", None)
            self.log.upload_failed(self.now(), f"{type(error).__name__}: {error}")
            return False
        return self.log.upload_answered(self.now(), response.status_code, response.content or b"",
                                        _header_dict(response.headers))

    def _poll_until_done(self) -> None:
        assert self.log.task_id is not None
        path = wire.progress_path(self.log.task_id)
        due = self.now()
        while due < self.plan.timeout_s:
            wait = due - self.now()
            if wait > 0:
                gevent.sleep(wait)
            start = self.now()
            self.log.lateness.append(max(0.0, start - due))
            result, retry_after = self._poll_once(path, start)
            next_due = self.log.next_due(self.plan.cadence, due, start, result, retry_after, self.now())
            if next_due is None:
                return
            due = next_due
        self.log.timed_out(self.plan.timeout_s)

    def _poll_once(self, path: str, start: float) -> tuple[PollResult, float | None]:
        response = self.client.get(path, headers=self.headers, name=POLL_NAME)
        latency = self.now() - start
        if not response.status_code:
            return self.log.poll_failed(start, latency, type(getattr(response, "error", None)).__name__), None
        headers = response.headers
        return self.log.poll_answered(start, latency, response.status_code, response.content or b"",
                                      lambda name: _one(headers.get(name)), time.time())

    def _cleanup(self) -> None:
        if not (self.plan.cleanup and self.log.diary_id):
            return
        response = self.client.delete(wire.diary_path(self.log.diary_id), headers=self.headers, name=CLEANUP_NAME)
        self.log.cleanup = "deleted" if 0 < response.status_code < 300 else "failed"

    def record(self) -> dict[str, Any]:
        return self.log.record(run_id=self.plan.run_id, probe_id=self.probe_id, target=self.plan.target,
                               label=self.plan.label, milestones=self.plan.milestones, end_s=self.now())


def _one(value: Any) -> str | None:
    """A header value as one string (geventhttpclient answers a list for a repeated header)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _header_dict(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    return {str(k): str(_one(headers.get(k))) for k in headers.keys()}


def fire_phases(environment: Any, record: dict[str, Any]) -> None:
    """The record's phases as PHASE rows in Locust's stats (failures carry the outcome)."""
    fire = environment.events.request.fire
    for name, ms in phase_rows(record):
        fire(request_type=REQUEST_TYPE, name=name, response_time=ms, response_length=0, exception=None, context={})
    failed = failure_row(record)
    if failed is not None:
        name, ms, text = failed
        fire(request_type=REQUEST_TYPE, name=name, response_time=ms, response_length=0, exception=FlowFailed(text),
             context={})


class ProbeUser(FastHttpUser):
    """A device running the app's flow over and over (closed) or taking arrival slots (open)."""

    # One flow at a time per user, like one phone: two connections cover upload + a poll.
    concurrency = 2
    network_timeout = 60.0
    connection_timeout = 15.0

    def wait_time(self) -> float:
        context: LoadContext | None = getattr(self.environment, "probes_load", None)
        return context.think_time_s if context is not None and context.model != "open" else 0.0

    @task
    def flow(self) -> None:
        context: LoadContext = self.environment.probes_load
        lateness = context.wait_for_start()
        flow = LocustFlow(self.client, context.plan, context.headers, context.next_probe_id(), context.clock)
        if lateness is not None:
            self.environment.events.request.fire(request_type=ARRIVAL_TYPE, name="start_lateness",
                                                 response_time=lateness * 1000, response_length=0, exception=None,
                                                 context={})
        try:
            record = flow.run()
        except GreenletExit:
            context.records.append(_with_lateness(flow.record(), lateness))
            raise
        context.records.append(_with_lateness(record, lateness))
        fire_phases(self.environment, record)


def _with_lateness(record: dict[str, Any], lateness: float | None) -> dict[str, Any]:
    record["start_lateness_s"] = None if lateness is None else round(lateness, 6)
    return record
