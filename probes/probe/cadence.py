"""When to send the next poll. Pure: planned times in, planned time out.

The `app` cadence is the thankly app's own: every 300 ms for the first 15 s,
then every 500 ms; a 404 in the first 10 s waits 1.5 s and retries (a fresh
task may not be visible yet); network errors and 5xx back off 1, 2, 4, 8,
16 s; a 429 waits what Retry-After says, counted from when the answer arrived;
a 404 after the first 10 s makes the app give up. `fine` polls at a fixed
interval for sharper timings, only honours Retry-After and never gives up
before the deadline: it measures the backend, not the app.

Polls are scheduled from the plan, not by sleeping after the answer, so slow
answers do not stretch the cadence: the next poll is due one interval after
the previous one was *due*, or at once when that moment has already passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

APP_FAST_INTERVAL_S = 0.3
APP_FAST_WINDOW_S = 15.0
APP_SLOW_INTERVAL_S = 0.5
APP_NOT_FOUND_WINDOW_S = 10.0
APP_NOT_FOUND_WAIT_S = 1.5
APP_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)


class PollResult(Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"  # network error, 5xx, or an answer that could not be read


@dataclass(frozen=True)
class Cadence:
    """A polling policy. `interval_s` is used by `fine` only.

    >>> Cadence("app").next_due(due_s=1.0, result=PollResult.OK, errors_in_row=0)
    1.3
    """

    name: str = "app"
    interval_s: float = 0.05

    def __post_init__(self) -> None:
        if self.name not in ("app", "fine"):
            raise ValueError(f"unknown cadence {self.name!r}; known: app, fine")
        if self.interval_s <= 0:
            raise ValueError("the poll interval must be > 0")

    def describe(self) -> dict:
        return {"name": "app"} if self.name == "app" else {"name": "fine", "interval_s": self.interval_s}

    @property
    def gives_up_on_late_404(self) -> bool:
        """The app shows an error when a task is still unknown after its 404 window; `fine` polls on."""
        return self.name == "app"

    def next_due(
        self,
        due_s: float,
        result: PollResult,
        errors_in_row: int,
        retry_after_s: float | None = None,
        answered_s: float | None = None,
    ) -> float:
        """Planned start of the next poll, given when the last one was due and how it went.

        Retry-After counts from `answered_s` (when the 429 arrived), never earlier than one interval.
        """
        if result is PollResult.RATE_LIMITED and retry_after_s is not None:
            base = due_s if answered_s is None else answered_s
            return max(base + retry_after_s, due_s + self._interval(due_s))
        if self.name == "fine":
            return round(due_s + self.interval_s, 9)
        if result is PollResult.NOT_FOUND and due_s < APP_NOT_FOUND_WINDOW_S:
            return due_s + APP_NOT_FOUND_WAIT_S
        if result is not PollResult.OK:
            step = min(max(errors_in_row, 1), len(APP_BACKOFF_S)) - 1
            return due_s + APP_BACKOFF_S[step]
        return round(due_s + self._interval(due_s), 9)

    def _interval(self, due_s: float) -> float:
        if self.name == "fine":
            return self.interval_s
        return APP_FAST_INTERVAL_S if due_s < APP_FAST_WINDOW_S else APP_SLOW_INTERVAL_S
