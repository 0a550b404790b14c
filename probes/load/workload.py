"""Workload shapes as schedule math: no clock, no I/O, no Locust.

Open model: flow k is *intended* to start at `start_s + k / rate`, whatever
the backend does; a free user takes the next slot, and how late it really
started is measured (`start_lateness_s`), so a saturated pool shows up as
lateness instead of silently lowering the arrival rate (coordinated
omission). Closed model: each user starts a new flow after its last one
ended plus a think time; a rate cap, when the target sets one, spaces starts
at least `1 / rate` apart in the process. Ramp: stages of (duration, users).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from probes.errors import UsageError

MODELS = ("closed", "open", "ramp")
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s|ms)?")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds from Locust-style spans: "90", "60s", "1m30s", "1.5m", "500ms".

    >>> parse_duration("1m30s")
    90.0
    """
    compact = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(compact):
        match = _SPAN.match(compact, pos)
        if not match:
            raise UsageError(f"bad duration {text!r}: use e.g. 60s, 2m, 1m30s")
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if not compact or total <= 0:
        raise UsageError(f"bad duration {text!r}: must be > 0, e.g. 60s")
    return total


class ArrivalSlots:
    """The open model's arrival schedule for one process: slot k at `start_s + k * interval`.

    >>> slots = ArrivalSlots(rate=4.0, start_s=10.0)
    >>> [slots.claim() for _ in range(3)]
    [10.0, 10.25, 10.5]
    """

    def __init__(self, rate: float, start_s: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.interval_s = 1.0 / rate
        self.start_s = start_s
        self.claimed = 0

    def claim(self) -> float:
        """The intended start of the next flow (may be in the past when every user was busy)."""
        intended = self.start_s + self.claimed * self.interval_s
        self.claimed += 1
        return intended


class StartSpacing:
    """The closed model's rate cap: starts at least `1 / rate` apart, never earlier than asked.

    >>> cap = StartSpacing(rate=2.0)
    >>> cap.claim(0.0), cap.claim(0.1), cap.claim(5.0)
    (0.0, 0.5, 5.0)
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.interval_s = 1.0 / rate
        self.last_s: float | None = None

    def claim(self, now_s: float) -> float:
        start = now_s if self.last_s is None else max(now_s, self.last_s + self.interval_s)
        self.last_s = start
        return start


def process_share(rate: float, workers: int, index: int) -> tuple[float, float]:
    """(rate, phase offset in s) of worker `index` of `workers`: interleaved so the sum is even.

    >>> process_share(10.0, 2, 1)
    (5.0, 0.1)
    """
    workers = max(1, workers)
    return rate / workers, (index % workers) / rate


@dataclass(frozen=True)
class Stage:
    """Hold `users` until `until_s` seconds into the run (users change at `spawn_rate` per s)."""

    until_s: float
    users: int
    spawn_rate: float


def parse_stages(text: str) -> list[Stage]:
    """"30s:10,60s:50,30s:0" → stages with cumulative end times; each spawn rate reaches its target in 1/3 of its span.

    >>> parse_stages("10s:4,20s:8")
    [Stage(until_s=10.0, users=4, spawn_rate=1.2), Stage(until_s=30.0, users=8, spawn_rate=0.6)]
    """
    stages: list[Stage] = []
    until, users_before = 0.0, 0
    for part in (p.strip() for p in text.split(",") if p.strip()):
        span, sep, count = part.partition(":")
        if not sep or not count.strip().isdigit():
            raise UsageError(f"bad stage {part!r}: use DURATION:USERS, e.g. 30s:10")
        seconds, users = parse_duration(span), int(count)
        until += seconds
        spawn = max(1.0, abs(users - users_before)) / max(seconds / 3, 0.001)
        stages.append(Stage(round(until, 6), users, round(spawn, 6)))
        users_before = users
    if not stages:
        raise UsageError("--probes-stages needs at least one DURATION:USERS stage")
    return stages


def default_stages(users: int, run_s: float) -> list[Stage]:
    """Ramp to `users` over the first quarter, hold half, ramp down over the last quarter."""
    q = run_s / 4
    up = max(1.0, users / q)
    return [Stage(q, users, up), Stage(3 * q, users, up), Stage(run_s, 0, up)]


def stage_at(stages: list[Stage], t_s: float) -> tuple[int, float] | None:
    """(users, spawn_rate) at `t_s` into the run; None once the last stage is over (the run ends)."""
    for stage in stages:
        if t_s < stage.until_s:
            return stage.users, stage.spawn_rate
    return None


def max_users(stages: list[Stage]) -> int:
    return max(stage.users for stage in stages)
