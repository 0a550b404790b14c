"""Timeline analysis: a probe's poll samples in, phase timings out.

Pure on purpose (no I/O, no clock, no randomness) so the httpx driver, the
Locust user and the reports all derive the same numbers from the same rows,
and so this module can be tested exhaustively without a server.

A sample row is ``[t_s, http_status, progress, step, step_name, status,
latency_s]`` (docs/run-format.md). ``t_s`` is the poll's request start in
seconds since the upload started; ``latency_s`` is how long the answer took.

A *valid* poll is a well-formed row with a finite ``t_s >= 0``, HTTP status
200 and a numeric progress (an ``int``, or a finite ``float``; never a
``bool``). Every other row -- network error, 404/429/5xx, missing or garbage
progress, a row that is not a 7-item list/tuple -- is a *poll error*. Bad
sample content never raises: it is counted.

Stalls and dwell are measured on the *running maximum* of progress: on a
multi-instance backend a poll served by an instance that holds an older
value (32, 30, 30, ...) is no progress, and the bar the app draws never goes
backwards either. A freeze is the running maximum standing still.

Rows are stably sorted by ``t_s`` before analysis. The driver already appends
them in order, so this is a no-op there, but "first poll that saw >= p" and
"regression" only mean something in time order, and merged or reloaded rows
should not silently change the answer. Rows without a usable ``t_s`` take part
only in ``poll_count``/``poll_errors``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from probes import defaults

__all__ = [
    "DEFAULT_MILESTONES",
    "SHOWN_KEYS",
    "Milestone",
    "Plateau",
    "Timeline",
    "analyse",
    "progress_band",
    "shown_bar_fields",
]

DEFAULT_MILESTONES: tuple[int, ...] = defaults.MILESTONES

_ROW_LEN = 7
_TERMINAL_STATUSES = frozenset({"completed", "failed"})

Progress = int | float


@dataclass(frozen=True)
class Milestone:
    """When progress first reached a milestone, with the bracket that contains the truth.

    The true crossing lies in ``[lo_s, hi_s]``: ``lo_s`` is the request start
    of the previous valid poll (which saw < p; 0.0 = upload start if there was
    none), ``hi_s`` is when the answer that first saw >= p arrived (its
    ``t_s + latency_s``). ``t_s`` is the best estimate inside the bracket: the
    midpoint between the two polls' server-side reads, each taken as the
    middle of its request (``t_s + latency_s / 2``). That halves the error of
    reporting the poll itself: at most half an interval plus half a latency.

    ``hi_s`` holds even with stale reads (a stale value is never above the
    truth). ``lo_s`` assumes the previous read was current: if a stale
    instance answered it, the real crossing may be earlier than ``lo_s``;
    ``Timeline.regressions`` > 0 is the hint that this happened.
    """

    t_s: float
    lo_s: float
    hi_s: float


@dataclass(frozen=True)
class Plateau:
    """A maximal run of consecutive valid polls that saw the same progress.

    It lasts from its first poll to the first poll of the next plateau (the
    last one ends at the last valid poll), so plateaus tile the observed span.
    """

    progress: Progress
    start_s: float
    end_s: float
    polls: int

    @property
    def s(self) -> float:
        """Duration in seconds; what "stalled for N s" means."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Timeline:
    """Everything the reports need from one probe's samples.

    ``total_s`` is None when no HTTP-200 answer said ``completed`` (with or
    without a progress value). ``end_s`` is the last sample's ``t_s`` (0.0
    without samples). ``milestones`` and ``dwell`` hold only the milestones
    reached (dwell 0.0 when progress went past without stopping exactly there).
    ``transcription_s`` is the transcription phase: from the first valid poll
    at >= 20 % to the first valid poll past 55 % (the Whisper answer), None
    unless both were seen. ``longest_stall`` is None when no plateau qualifies.
    """

    total_s: float | None
    end_s: float
    milestones: dict[int, Milestone]
    dwell: dict[int, float]
    plateaus: tuple[Plateau, ...]
    longest_stall: Plateau | None
    poll_count: int
    poll_errors: int
    regressions: int
    transcription_s: float | None = None

    def to_record(self) -> dict[str, Any]:
        """The timeline keys of a probes.jsonl record (docs/run-format.md).

        Floats are rounded to microseconds here only, so in-memory values stay
        exact for further arithmetic; string keys because JSON has no others.
        """
        stall = self.longest_stall
        return {
            "total_s": None if self.total_s is None else _us(self.total_s),
            "end_s": _us(self.end_s),
            "poll_count": self.poll_count,
            "poll_errors": self.poll_errors,
            "regressions": self.regressions,
            "transcription_s": None if self.transcription_s is None else _us(self.transcription_s),
            "milestones": {
                str(p): {"t_s": _us(m.t_s), "lo_s": _us(m.lo_s), "hi_s": _us(m.hi_s)}
                for p, m in self.milestones.items()
            },
            "dwell": {str(p): _us(s) for p, s in self.dwell.items()},
            "longest_stall": None
            if stall is None
            else {"progress": stall.progress, "s": _us(stall.s), "start_s": _us(stall.start_s)},
        }


@dataclass(frozen=True)
class _Poll:
    """A valid poll reduced to what the analysis reads."""

    t_s: float
    progress: Progress
    status: object
    latency_s: float


def analyse(samples: Iterable[Sequence[Any]], milestones: Iterable[int] = DEFAULT_MILESTONES) -> Timeline:
    """Derive milestones, dwell, plateaus, stalls and counters from one probe's samples.

    Never raises on sample content (malformed rows are poll errors). Raises
    TypeError only when a milestone is not an int, since that is a caller bug.
    """
    marks = _check_milestones(milestones)
    rows = list(samples)
    timed: list[tuple[float, Sequence[Any]]] = []
    for row in rows:
        t = _row_time(row)
        if t is not None:
            timed.append((t, row))
    timed.sort(key=lambda pair: pair[0])  # stable: equal t_s keep input order

    polls = [p for p in (_valid_poll(t, row) for t, row in timed) if p is not None]
    end_s = timed[-1][0] if timed else 0.0
    peaks = _running_max(polls)
    plateaus, plateau_statuses = _plateaus(peaks)
    milestones = {m: ms for m in marks if (ms := _milestone(polls, m)) is not None}

    return Timeline(
        total_s=next((t for t, row in timed if _says_completed(row)), None),
        end_s=end_s,
        milestones=milestones,
        dwell={m: _dwell(peaks, m) for m in marks if m in milestones},
        plateaus=plateaus,
        longest_stall=_longest_stall(plateaus, plateau_statuses),
        poll_count=len(rows),
        poll_errors=len(rows) - len(polls),
        regressions=sum(1 for a, b in zip(polls, polls[1:]) if b.progress < a.progress),
        transcription_s=_transcription(polls),
    )


def progress_band(progress: Progress) -> str:
    """Ten-percent band of a progress value, for progress-state signatures.

    ``"0-9"`` .. ``"90-99"``, ``"100"`` for exactly 100; values outside 0..100
    give ``"<0"`` / ``">100"`` so an anomaly stays visible in a signature
    instead of raising in the middle of a run.
    """
    if not _is_number(progress):
        raise TypeError(f"progress must be an int or float, got {type(progress).__name__}")
    if isinstance(progress, float) and not math.isfinite(progress):
        raise ValueError(f"progress must be finite, got {progress!r}")
    if progress < 0:
        return "<0"
    if progress > 100:
        return ">100"
    if progress == 100:
        return "100"
    low = int(progress) // 10 * 10
    return f"{low}-{low + 9}"


# --- helpers -------------------------------------------------------------


def _us(x: float) -> float:
    """Round to microseconds: finer than any clock we poll with, stable in JSON."""
    return round(x, 6)


def _is_number(x: object) -> bool:
    """int or float but not bool (``True`` is an int in Python, not a progress)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _finite_float(x: object) -> float | None:
    """x as a finite float, or None (huge ints overflow, NaN/inf are not times)."""
    if not _is_number(x):
        return None
    try:
        f = float(x)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _check_milestones(milestones: Iterable[int]) -> tuple[int, ...]:
    marks = tuple(milestones)
    for m in marks:
        if not isinstance(m, int) or isinstance(m, bool):
            raise TypeError(f"milestones must be ints, got {m!r}")
    return tuple(dict.fromkeys(marks))  # drop duplicates, keep the caller's order


def _row_time(row: object) -> float | None:
    """The row's t_s if the row is well-formed enough to place in time, else None."""
    if not isinstance(row, (list, tuple)) or len(row) != _ROW_LEN:
        return None
    t = _finite_float(row[0])
    return t if t is not None and t >= 0.0 else None


def _valid_poll(t_s: float, row: Sequence[Any]) -> _Poll | None:
    """A _Poll if the row is a valid poll (HTTP 200 with a numeric progress), else None."""
    http_status, progress, status = row[1], row[2], row[5]
    if not isinstance(http_status, int) or isinstance(http_status, bool) or http_status != 200:
        return None
    if not _is_number(progress):
        return None
    if isinstance(progress, float) and not math.isfinite(progress):
        return None
    # An unusable latency (missing, negative, NaN) shrinks hi_s to t_s rather
    # than discarding a poll that did carry a progress value.
    latency = _finite_float(row[6])
    if latency is None or latency < 0.0 or not math.isfinite(t_s + latency):
        latency = 0.0
    return _Poll(t_s=t_s, progress=progress, status=status, latency_s=latency)


def _says_completed(row: Sequence[Any]) -> bool:
    """An HTTP-200 answer whose status is completed: final, whatever its progress field held."""
    status = row[1]
    return isinstance(status, int) and not isinstance(status, bool) and status == 200 and row[5] == "completed"


def _running_max(polls: list[_Poll]) -> list[_Poll]:
    """The polls with progress replaced by the highest progress seen so far."""
    out, peak = [], None
    for poll in polls:
        peak = poll.progress if peak is None or poll.progress > peak else peak
        out.append(poll if poll.progress == peak else _Poll(poll.t_s, peak, poll.status, poll.latency_s))
    return out


TRANSCRIPTION_FROM = 20  # the first poll at >= 20 %: validation done, transcription under way
TRANSCRIPTION_PAST = 55  # the first poll past 55 %: the timer stops at 55 until Whisper answers


def _transcription(polls: list[_Poll]) -> float | None:
    """None unless a poll saw the phase under way (20-55 %) before one saw it done: a first answer
    that is already past 55 % (the task was invisible until then) measured nothing."""
    start = next((p for p in polls if p.progress >= TRANSCRIPTION_FROM), None)
    end = next((p.t_s for p in polls if p.progress > TRANSCRIPTION_PAST), None)
    if start is None or end is None or start.progress > TRANSCRIPTION_PAST or end < start.t_s:
        return None
    return end - start.t_s


def _milestone(polls: list[_Poll], mark: int) -> Milestone | None:
    """First reaching only: a later stale read that dips below and rises again is no new crossing."""
    for i, poll in enumerate(polls):
        if poll.progress >= mark:
            read = poll.t_s + poll.latency_s / 2
            if i == 0:
                return Milestone(t_s=read / 2, lo_s=0.0, hi_s=poll.t_s + poll.latency_s)
            before = polls[i - 1]
            estimate = (before.t_s + before.latency_s / 2 + read) / 2
            hi = poll.t_s + poll.latency_s
            # Overlapping requests (merged rows) can put the midpoint past hi_s; the truth cannot be.
            return Milestone(t_s=min(max(estimate, before.t_s), hi), lo_s=before.t_s, hi_s=hi)
    return None


def _dwell(polls: list[_Poll], mark: int) -> float:
    """From the first poll whose running maximum is exactly ``mark`` to the first that is higher.

    0.0 when progress went past ``mark`` without a poll seeing it exactly. If
    nothing higher followed, the dwell runs to the last valid poll and is a
    lower bound (the probe ended while still at ``mark``).
    """
    first = next((i for i, p in enumerate(polls) if p.progress == mark), None)
    if first is None:
        return 0.0
    start = polls[first].t_s
    for poll in polls[first + 1 :]:
        if poll.progress > mark:
            return poll.t_s - start
    return polls[-1].t_s - start


def _plateaus(polls: list[_Poll]) -> tuple[tuple[Plateau, ...], tuple[object, ...]]:
    """Plateaus of the running maximum tiling [first valid t_s, last valid t_s], and each one's first status."""
    runs: list[tuple[int, int]] = []  # [start index, end index) into polls
    for i, poll in enumerate(polls):
        if runs and polls[runs[-1][0]].progress == poll.progress:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    plateaus = []
    for k, (a, b) in enumerate(runs):
        end = polls[runs[k + 1][0]].t_s if k + 1 < len(runs) else polls[-1].t_s
        plateaus.append(Plateau(progress=polls[a].progress, start_s=polls[a].t_s, end_s=end, polls=b - a))
    return tuple(plateaus), tuple(polls[a].status for a, _ in runs)


def _longest_stall(plateaus: tuple[Plateau, ...], first_statuses: tuple[object, ...]) -> Plateau | None:
    """Longest plateau of non-zero length that began before the job had finished.

    A plateau whose first poll already said ``completed`` or ``failed`` is the
    job sitting finished (e.g. the probe polled on after 100 %), not a stall.
    A plateau at 100 still ``processing`` does count: the user is waiting.
    Ties go to the earliest.
    """
    best: Plateau | None = None
    for plateau, status in zip(plateaus, first_statuses):
        if plateau.s <= 0.0 or (isinstance(status, str) and status in _TERMINAL_STATUSES):
            continue
        if best is None or plateau.s > best.s:
            best = plateau
    return best


SHOWN_KEYS = ("shown_held_32_s", "shown_done_s", "shown_lag_max_s")


def shown_bar_fields(samples: Sequence[Sequence[Any]], *, created_s: float | None, put_end_s: float | None,
                     time_scale: float = 1.0) -> dict[str, Any]:
    """The record's `shown_*` keys: the bar the app draws (probes.analysis.shown_bar), replayed once a probe ends.

    The app's timers and animations run in real seconds on the phone, so a time-scaled
    simulator run is replayed in its scenario seconds (every time divided by
    `time_scale`) and the results are scaled back to the record's real seconds, like
    every other time in it. No task (`created_s` None): the user saw an upload error,
    not the bar's climb, and every key is None.
    """
    from probes.analysis import shown_bar

    if created_s is None or not math.isfinite(created_s) or created_s < 0:
        return {"shown_model": None, **dict.fromkeys(SHOWN_KEYS)}
    scale = time_scale if math.isfinite(time_scale) and time_scale > 0 else 1.0
    rows: Iterable[Sequence[Any]] = samples
    if scale != 1.0:
        rows = [(_div(r[0], scale), *r[1:6], _div(r[6], scale)) if len(r) == _ROW_LEN else r for r in samples]
    bar = shown_bar.shown_timeline(rows, created_s=created_s / scale,
                                   put_end_s=None if put_end_s is None else put_end_s / scale)
    metrics = shown_bar.shown_metrics(bar)
    return {"shown_model": bar.model,
            **{k: None if metrics[k] is None else _us(metrics[k] * scale) for k in SHOWN_KEYS}}


def _div(value: Any, scale: float) -> Any:
    """A sample's time in the app's seconds; anything that is not a number is left for the replay to skip."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return value / scale
