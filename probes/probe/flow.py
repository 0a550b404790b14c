"""What one upload-and-poll flow saw, and what it means: no I/O, no clock.

Both drivers (the httpx probe loop and the Locust user) feed a FlowLog with
what came back and when, and get back the decision the app would take (poll
again, and how; or stop, with which outcome). Only their request loops
differ; the bookkeeping, the classification and the probes.jsonl record are
this module's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from probes.probe import wire
from probes.probe.cadence import APP_NOT_FOUND_WINDOW_S, Cadence, PollResult
from probes.analysis.timeline import analyse, progress_band

RECORD_SCHEMA = 1
LATENESS_THRESHOLDS_MS = (5, 10, 20, 50, 100)


def lateness_summary(lateness: list[float]) -> dict[str, Any]:
    """How late the polls started against the plan: the harness's own measurement quality.

    `over_ms` counts polls later than each threshold, so probes add up to a run-wide share.
    """
    ordered = sorted(lateness)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 6)  # noqa: E731
    return {
        "n": len(ordered), "p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1], 6),
        "over_ms": {str(ms): sum(1 for x in ordered if x > ms / 1000) for ms in LATENESS_THRESHOLDS_MS},
    }


@dataclass
class FlowLog:
    """Everything a flow observed; times are seconds since its upload request started."""

    started_at: str
    outcome: str = "aborted"
    error: str | None = None
    task_id: str | None = None
    diary_id: str | None = None
    cleanup: str | None = None
    upload_status: int | None = None
    upload_s: float | None = None
    first_headers: dict[str, str] | None = None
    # Tuples of atoms: the garbage collector stops tracking them, which keeps its passes short
    # with hundreds of flows holding thousands of samples (lists would stay tracked).
    samples: list[tuple[Any, ...]] = field(default_factory=list)
    states: list[list[Any]] = field(default_factory=list)
    instances: dict[str, int] = field(default_factory=dict)
    lateness: list[float] = field(default_factory=list)
    errors_in_row: int = 0
    last_progress: int | None = None
    last_step_name: str | None = None

    # -- upload ---------------------------------------------------------------------------

    def upload_failed(self, t_s: float, error: str) -> None:
        self.upload_s = round(t_s, 6)
        self.outcome, self.error = "upload_error", " ".join(error.split())[:300]

    def upload_answered(self, t_s: float, status: int, body: bytes, headers: dict[str, str]) -> bool:
        """True when the job was accepted and polling should start."""
        self.upload_s = round(t_s, 6)
        self.upload_status = status
        self.first_headers = wire.safe_headers(headers)
        answer = wire.parse_upload(status, body)
        if answer.outcome is not None:
            self.outcome, self.error = answer.outcome, answer.error
            return False
        self.task_id = answer.task_id
        return True

    # -- polls ----------------------------------------------------------------------------

    def poll_failed(self, start: float, latency: float, error: str) -> PollResult:
        self.error = error
        self.samples.append((round(start, 6), None, None, None, None, None, round(latency, 6)))
        return PollResult.ERROR

    def poll_answered(
        self, start: float, latency: float, status: int, body: bytes, header: Callable[[str], str | None],
        now_epoch: float,
    ) -> tuple[PollResult, float | None]:
        """Record one answered poll; returns how it went and the Retry-After seconds of a 429."""
        answer = wire.parse_progress(status, body)
        self.samples.append(
            (round(start, 6), status, answer.progress, answer.step, answer.step_name, answer.status, round(latency, 6))
        )
        instance = wire.instance_of(header)
        if instance:
            self.instances[instance] = self.instances.get(instance, 0) + 1
        if answer.progress is None:
            if status == 404:
                return PollResult.NOT_FOUND, None
            if status == 429:
                return PollResult.RATE_LIMITED, wire.retry_after_s(header("retry-after"), now_epoch)
            return PollResult.ERROR, None
        self.last_progress, self.last_step_name = answer.progress, answer.step_name
        state = [progress_band(answer.progress), answer.step_name, answer.message]
        if state not in self.states:
            self.states.append(state)
        if answer.terminal:
            self.outcome = answer.status or "completed"
            self.error = answer.error if answer.status == "failed" else None
            self.diary_id = answer.diary_id
        return PollResult.OK, None

    def should_stop(self, result: PollResult, start: float) -> bool:
        """The app's decision after a poll: stop on a final answer, a late 404, or a refusal."""
        if self.outcome in ("completed", "failed"):
            return True
        if result is PollResult.NOT_FOUND and start >= APP_NOT_FOUND_WINDOW_S:
            self.outcome, self.error = "poll_error", f"task not found after {APP_NOT_FOUND_WINDOW_S:g} s"
            return True
        status = self.samples[-1][1] if self.samples else None
        if status in wire.AUTH_STATUSES:
            self.outcome, self.error = "auth_error", f"HTTP {status} on progress"
            return True
        return False

    def next_due(
        self, cadence: Cadence, due: float, start: float, result: PollResult, retry_after: float | None, now: float
    ) -> float | None:
        """When the next poll is due (never in the past), or None when the app stops after this one."""
        if self.should_stop(result, start):
            return None
        self.errors_in_row = 0 if result is PollResult.OK else self.errors_in_row + 1
        return max(cadence.next_due(due, result, self.errors_in_row, retry_after), now)

    def timed_out(self, timeout_s: float) -> None:
        self.outcome = "timeout"
        self.error = self.error or f"not done after {timeout_s:g} s"

    # -- the record -----------------------------------------------------------------------

    def record(
        self, *, run_id: str, probe_id: str, target: str, label: str, milestones: Iterable[int], end_s: float
    ) -> dict[str, Any]:
        """The probes.jsonl line (docs/run-format.md). `end_s` is used only when no poll was made."""
        timeline = analyse(self.samples, tuple(milestones))
        record: dict[str, Any] = {
            "schema": RECORD_SCHEMA, "run_id": run_id, "probe_id": probe_id, "target": target, "label": label,
            "started_at": self.started_at, "outcome": self.outcome,
            "error": self.error if self.outcome != "completed" else None,
            "task_id": self.task_id, "diary_id": self.diary_id, "cleanup": self.cleanup,
            "upload_status": self.upload_status, "upload_s": self.upload_s,
        }
        record.update(timeline.to_record())
        if not self.samples:
            record["end_s"] = round(end_s, 6)
        record["lateness"] = lateness_summary(self.lateness) if self.lateness else None
        record["instances"] = self.instances
        record["states"] = self.states
        record["samples"] = [list(row) for row in self.samples]
        return record
