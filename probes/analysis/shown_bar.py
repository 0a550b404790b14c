"""The bar the user sees: the thankly app's progress display, replayed from one probe's timeline.

The incident's criterion ("held at 32 % for less than 3 s") is about the bar
on the phone, and the app does not draw backend progress as is: it starts a
fake climb while uploading, a second one (20 -> 32 %) once the task exists,
lets a poll answer stop that timer only when it is more than 2 points ahead,
and animates every change. This module replays those rules, and only them, so
a change of the app's rules is a change of this one file.

Modelled version: deng-diana/thankly at ``3ad9b47`` (``MODEL``), from

- mobile/src/components/RecordingModal.tsx L175-258 ``smoothUpdateProgress``;
  L859-958 the processing start (5 %), the upload interval, the upload
  progress mapping, task creation (animate to 20 %, start the transition
  interval); L961-977 the poll callback; L979-989 the screen leaves the bar
  when polling returns or throws; L1746 the bar is drawn while ``isProcessing``;
- mobile/src/components/ProcessingModal.tsx L76 bar width ``processingProgress %``,
  L84 the label ``Math.round(processingProgress)%``;
- mobile/src/services/diaryService.ts L1115-1302 ``pollTaskProgress``: which
  answers reach the callback;
- mobile/src/services/audioUploadService.ts L169-316 ``uploadAudioAndCreateTask``
  (presign + file read in parallel, XHR PUT, POST async-with-url) and L342-395
  (the PUT's ``onload`` reports 100 %); chunked upload is disabled at that
  commit (chunkUploadService.ts L471 ``shouldUseChunkUpload``).

Interface (what the lead wires into records, metrics, SLOs, reports)::

    bar = shown_timeline(record["samples"], created_s=..., put_end_s=...)
    bar.points            ((t_s, label), ...): the percent label, at each change
    shown_metrics(bar)    {"shown_held_32_s", "shown_done_s", "shown_lag_max_s"}
    record_metrics(rec)   the same three (rounded to us) from a probes.jsonl record

Times are the record's: seconds since the first upload request started, and
real seconds, because the app's timers and animations are: replay a
time-scaled simulator run on its scenario seconds (every time divided by
the run's ``time_scale``). Everything is about the *label* (``Math.round`` of the bar's value, what the
user reads); the bar's width differs from it by less than half a point.

The rules, as replayed (each number is a constant below, with its line):

1. At t = 0 the bar shows 5 %; an interval adds 2 every 800 ms, capped at
   15 (``min(v + 2, 15)``, which sets the bar *down* when it was above 15).
2. The PUT's end (``put_end_s``, presigned flow) reports upload progress 100,
   mapped to ``round(100 * 0.2)`` = 20: an animation to ``max(20, v)``. The
   XHR's earlier progress events are not observed by a probe and not
   replayed (a 5 s clip's ~50 kB body leaves in one write).
3. Task creation (``created_s``, the end of the create request) stops the
   upload interval, animates to 20 and starts the transition interval:
   ``min(v + 1.2, 32)`` every 800 ms from creation (which can also set the
   bar down, to 32, when an answer took it above).
4. A poll answer reaches the callback when it is HTTP 2xx (``response.ok``)
   and its status is neither ``completed`` nor ``failed``; its progress
   (0 when missing or not a number, ``progress || 0``) stops the transition
   interval only when ``progress > v + 2``, then is animated to. 404s (before
   10 s of polling), other errors and network failures reach nothing.
5. An animation to ``target`` from ``v``: ignored when ``min(target, 100)``
   is within 0.01 of ``v`` or below it (the running animation then goes
   on); otherwise it cancels the running one and eases (easeOutCubic) from
   ``v`` over 600/1000/1500/2000/2500 ms for a jump < 5/10/20/30/more. Each
   frame (60 fps) sets ``max(v, eased)``; the last frame (elapsed >= the
   duration) sets the target exactly, which can set the bar down.
6. The bar leaves the screen at the arrival of a ``completed`` answer (the
   result screen; the callback's 100 % is never drawn), a ``failed`` answer,
   a 404 arriving 10 s or more after polling began (``expired``), or when
   polling has run 5 minutes (``gave_up``, at the request start of the first
   poll past it). Otherwise it is still up when the timeline ends (``open``).

Timing conventions: timers are ``setInterval`` ticks at exact multiples of
800 ms from their start; frames are the 60 fps vsync grid from t = 0; at one
instant, upload/poll events come first, then timer ticks, then the frame, and
an animation's first frame is the first grid frame at or after its start.
Between two events the bar is ``max(v, eased(frame))`` with ``eased``
increasing, so the label's changes are found by inverting easeOutCubic at
each half-point (then checked against the frame's own value) instead of
stepping frames: exact at frame resolution, O(events + label changes).
``tests/analysis/test_shown_bar.py`` checks it against a frame-by-frame
replay; about 0.35 ms for a 40-poll probe on a busy 2-core machine. Not replayed: a ``completed`` answer without a diary (the app retries
it; a sample does not say), Date.now()'s millisecond steps.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APP_COMMIT",
    "MODEL",
    "ShownBar",
    "js_round",
    "record_metrics",
    "shown_done_s",
    "shown_held_32_s",
    "shown_held_s",
    "shown_lag_max_s",
    "shown_metrics",
    "shown_timeline",
]

# -- the modelled app --------------------------------------------------------
APP_REPO = "deng-diana/thankly"
APP_COMMIT = "3ad9b47"
MODEL = f"thankly-app@{APP_COMMIT}"  # stored beside the metrics: which rules produced them

# RecordingModal.tsx
START_PERCENT = 5.0  # L869-870: setProcessingProgress(5) as processing starts
TIMER_MS = 800  # L875, L958: both intervals tick every 800 ms
UPLOAD_STEP = 2.0  # L872: min(current + 2, 15)
UPLOAD_CAP = 15.0  # L872
UPLOAD_SHARE = 0.2  # L895: Math.round(totalUploadProgress * 0.2): upload fills 0-20 %
UPLOAD_DONE_PERCENT = 100  # audioUploadService.ts L368: the PUT's onload reports 100
CREATED_TARGET = 20.0  # L953: smoothUpdateProgress(20) once the task exists
TRANSITION_STEP = 1.2  # L955: min(current + 1.2, 32)
TRANSITION_CAP = 32.0  # L955
STOP_MARGIN = 2.0  # L966: the interval stops when backend progress > current + 2
MIN_JUMP = 0.01  # L187: a target within 0.01 (or below) is ignored
MAX_PERCENT = 100.0  # L179: Math.min(target, 100)
JUMP_MS = ((5.0, 600), (10.0, 1000), (20.0, 1500), (30.0, 2000))  # L195-202: (jump below, ms)
LONGEST_JUMP_MS = 2500  # L204
FPS = 60  # requestAnimationFrame, L244/L255, on a 60 Hz display

# diaryService.ts pollTaskProgress
NOT_FOUND_GRACE_S = 10.0  # L1142: a 404 within 10 s of polling waits and retries; later the bar leaves
GIVE_UP_S = 300.0  # L1123: MAX_POLL_DURATION, 5 minutes

# Frame arithmetic snaps to a billionth of a frame, so 1.9 s * 60 is frame 114,
# not 113.99999999999999 (deterministic ceil/floor on hand-written times).
_SNAP_DIGITS = 9
_TICK_FRAMES = TIMER_MS * FPS / 1000  # 48.0, exact

# Events in their order at one instant; the timer ticks, then an animation's last
# frame, come after them (the order of the branches in _Replay.run).
_PUT_END, _CREATED, _POLL = range(3)
_ANSWER, _COMPLETED, _FAILED, _EXPIRED, _GAVE_UP = range(5)  # what a poll did
_ENDINGS = {_COMPLETED: "completed", _FAILED: "failed", _EXPIRED: "expired", _GAVE_UP: "gave_up"}
_ROW_LEN = 7


@dataclass(frozen=True, slots=True)
class ShownBar:
    """What the user saw, from the start of the upload until the bar left the screen.

    ``points`` are the label's change points ``(t_s, percent)``, the first at
    0.0 (5 %); the label holds each value until the next point, the last one
    until ``end_s``. ``ended`` says why the bar left: ``completed`` (the
    result screen), ``failed``, ``expired`` (a late 404), ``gave_up`` (5
    minutes of polling) or ``open`` (still up when the timeline ended).
    ``answers`` are the ``(arrival_s, progress)`` of the numeric poll answers
    that reached the app's callback, for the lag metric.
    """

    points: tuple[tuple[float, int], ...]
    end_s: float
    ended: str
    answers: tuple[tuple[float, float], ...]
    model: str = MODEL

    def label_at(self, t_s: float) -> int | None:
        """The label shown at ``t_s``; None outside [0, end_s)."""
        if not 0.0 <= t_s < self.end_s:
            return None
        return self.points[bisect.bisect_right(self.points, (t_s, math.inf)) - 1][1]


def js_round(x: float) -> int:
    """JavaScript's Math.round: halves go up (31.5 -> 32), unlike Python's round."""
    return math.floor(x + 0.5)


def shown_timeline(
    samples: Iterable[Sequence[Any]],
    *,
    created_s: float,
    put_end_s: float | None = None,
    until_s: float | None = None,
) -> ShownBar:
    """Replay the app's bar over one probe: the upload phases and its poll samples.

    ``samples`` are probes.jsonl rows ``[t_s, http_status, progress, step,
    step_name, status, latency_s]``; an answer arrives at ``t_s + latency_s``.
    ``created_s`` is when the task was created (the end of the create request:
    the multipart POST, or POST async-with-url); ``put_end_s`` when the
    object PUT ended (presigned flow; None for multipart, whose upload ends
    with the creation). ``until_s`` ends a timeline that is still open
    (default: the last sample's arrival); nothing after it is replayed.

    Malformed rows are skipped (they reached no callback); a bad
    ``created_s`` is a ValueError, a caller bug.
    """
    created = _finite(created_s)
    if created is None or created < 0.0:
        raise ValueError(f"created_s must be a finite time >= 0, got {created_s!r}")
    events, until = _events(samples, created, put_end_s)
    if until_s is not None:
        cut = _finite(until_s)
        if cut is None:
            raise ValueError(f"until_s must be a finite time, got {until_s!r}")
        events, until = [e for e in events if e[1] <= cut], cut
    return _Replay(created).run(events, until)


# -- metrics (pure functions of a ShownBar) -----------------------------------


def shown_held_s(bar: ShownBar, percent: int) -> float:
    """Seconds the label read ``percent`` in all, while the bar was up (0.0 if never)."""
    ends = [t for t, _ in bar.points[1:]] + [bar.end_s]
    return sum(end - t for (t, label), end in zip(bar.points, ends) if label == percent)


def shown_held_32_s(bar: ShownBar) -> float:
    """How long the user read "32%": the seed's "held at 32 %", as displayed.

    All the time at 32 added up, not the longest stretch: when an answer of
    33 races the timer's cap the label goes 32, 33, 32, ... and the user
    still waits at 32.
    """
    return shown_held_s(bar, 32)


def shown_done_s(bar: ShownBar) -> float | None:
    """When the user got the result: the completed answer's arrival; None if never."""
    return bar.end_s if bar.ended == "completed" else None


def shown_lag_max_s(bar: ShownBar) -> float | None:
    """The longest the label trailed what the backend had said; None without answers.

    For each numeric answer that reached the callback (arrival ``a``,
    progress ``p``): the time from ``a`` until the label first reads at least
    ``Math.round(min(p, 100))`` (0 if it already did at ``a``). When it never
    does while the bar is up, the lag runs to ``end_s`` (a lower bound: the
    bar left, or the timeline ended, first). The maximum over answers.
    """
    if not bar.answers:
        return None
    points = bar.points
    lags: list[float] = []
    waiting: list[tuple[int, float]] = []  # (target label, arrival), smallest target first
    j = 0
    for arrival, progress in bar.answers:
        while j < len(points) and points[j][0] <= arrival:
            _resolve(waiting, points[j], lags)
            j += 1
        target = js_round(min(progress, MAX_PERCENT))
        if points[j - 1][1] >= target:
            lags.append(0.0)
        else:
            heapq.heappush(waiting, (target, arrival))
    for point in points[j:]:
        _resolve(waiting, point, lags)
    lags.extend(bar.end_s - arrival for _, arrival in waiting)
    return max(lags)


def shown_metrics(bar: ShownBar) -> dict[str, float | None]:
    """The three metrics of one bar, under the names records and SLOs use."""
    return {
        "shown_held_32_s": shown_held_32_s(bar),
        "shown_done_s": shown_done_s(bar),
        "shown_lag_max_s": shown_lag_max_s(bar),
    }


def record_metrics(
    record: Mapping[str, Any], *, created_s: float | None = None, put_end_s: float | None = None
) -> dict[str, float | None]:
    """The three metrics for a probes.jsonl record, rounded to microseconds.

    ``created_s`` defaults to the record's ``upload_s`` (the multipart POST
    both uploads and creates the task); a presigned flow passes its create
    request's end and ``put_end_s``. All None when no task was created (no
    ``task_id`` or no usable upload time): the user saw an upload error, not
    the bar's climb. An open timeline ends at the last sample's arrival.
    """
    created = created_s if created_s is not None else _finite(record.get("upload_s"))
    samples = record.get("samples")
    if not record.get("task_id") or created is None or created < 0.0 or not isinstance(samples, list):
        return dict.fromkeys(("shown_held_32_s", "shown_done_s", "shown_lag_max_s"))
    metrics = shown_metrics(shown_timeline(samples, created_s=created, put_end_s=put_end_s))
    return {k: None if v is None else round(v, 6) for k, v in metrics.items()}


# -- the replay ----------------------------------------------------------------

# An event: (frame, t_s, kind, input order, poll kind, progress or NaN); sorted by frame, kind, order.
_Event = tuple[float, float, int, int, int, float]


def _finite(x: object) -> float | None:
    """x as a finite float (int or float, never bool), else None."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _events(samples: Iterable[Sequence[Any]], created: float, put_end_s: float | None) -> tuple[list[_Event], float]:
    """The upload events and the poll answers the app acts on, in time order; the last moment seen.

    The last moment seen is the latest arrival of any timed row (an error or a
    404 too: the probe was still waiting, so was the bar), at least ``created``.
    """
    nan = math.nan
    last = created
    raw: list[tuple[float, int, int, int, float]] = [(created, _CREATED, 0, 0, nan)]
    put_end = _finite(put_end_s)
    if put_end is not None:
        raw.append((min(max(put_end, 0.0), created), _PUT_END, 0, 0, nan))
    for order, row in enumerate(samples):
        if not isinstance(row, (list, tuple)) or len(row) != _ROW_LEN:
            continue
        t = _finite(row[0])
        if t is None or t < 0.0:
            continue
        if t - created >= GIVE_UP_S:  # the loop's check before this request ends polling
            raw.append((t, _POLL, order, _GAVE_UP, nan))
            last = max(last, t)
            continue
        latency = _finite(row[6])
        arrival = max(t + (latency if latency is not None and latency > 0.0 else 0.0), created)
        last = max(last, arrival)
        http, status = row[1], row[5]
        if not isinstance(http, int) or isinstance(http, bool):
            continue  # a network error: back-off, no callback
        if 200 <= http <= 299:
            if status == "completed":
                raw.append((arrival, _POLL, order, _COMPLETED, nan))
            elif status == "failed":
                raw.append((arrival, _POLL, order, _FAILED, nan))
            else:
                progress = _finite(row[2])
                raw.append((arrival, _POLL, order, _ANSWER, nan if progress is None else progress))
        elif http == 404 and arrival - created >= NOT_FOUND_GRACE_S:
            raw.append((arrival, _POLL, order, _EXPIRED, nan))
    events = [(_frame(t), t, kind, order, poll, progress) for t, kind, order, poll, progress in raw]
    events.sort(key=lambda e: (e[0], e[2], e[3]))
    return events, last


def _frame(t_s: float) -> float:
    """Seconds to frames, snapped (see _SNAP_DIGITS)."""
    return round(t_s * FPS, _SNAP_DIGITS)


def _jump_frames(jump: float) -> float:
    """The animation's duration in frames for a jump of ``jump`` points (L194-205)."""
    for below, ms in JUMP_MS:
        if jump < below:
            return ms * FPS / 1000
    return LONGEST_JUMP_MS * FPS / 1000


def _resolve(waiting: list[tuple[int, float]], point: tuple[float, int], lags: list[float]) -> None:
    """Answers whose target the label reaches at this point: their lag ends here."""
    t, label = point
    while waiting and waiting[0][0] <= label:
        lags.append(t - heapq.heappop(waiting)[1])


class _Replay:
    """One probe's replay: the bar's value ``v``, the running animation, the two timers.

    Time runs in frames (``x = t_s * 60``). Between two events the value at
    frame ``f`` is ``max(v, eased(f))`` while an animation runs, else ``v``.
    """

    def __init__(self, created: float) -> None:
        self.x_created = _frame(created)
        self.v = START_PERCENT
        self.anim: tuple[float, float, float, float] | None = None  # (x0, from, to, frames)
        self.anim_end = math.inf  # the frame that sets the target exactly
        self.seg = 0.0  # the frame of the last event; frames >= it are this segment's
        self.points: list[tuple[float, int]] = [(0.0, js_round(START_PERCENT))]
        self.upload_j = 1  # next upload tick: frame 48 * j, while before creation
        self.transition_x0: float | None = None
        self.transition_j = 1

    def run(self, events: list[_Event], until_s: float) -> ShownBar:
        """Apply the events and timer ticks in order; the bar's change points up to the end."""
        end_s, end_x, ended = until_s, _frame(until_s), "open"
        answers: list[tuple[float, float]] = []
        i, n = 0, len(events)
        inf = math.inf
        while True:
            ev_x = events[i][0] if i < n else inf
            up_x = _TICK_FRAMES * self.upload_j
            if up_x >= self.x_created:
                up_x = inf
            tr_x = inf
            if self.transition_x0 is not None:
                if self.anim is None and min(self.v + TRANSITION_STEP, TRANSITION_CAP) == self.v:
                    # At the cap with nothing animating a tick changes nothing: skip to the next event.
                    if ev_x < inf:
                        skip = math.ceil((ev_x - self.transition_x0) / _TICK_FRAMES)
                        self.transition_j = max(self.transition_j, skip)
                        tr_x = round(self.transition_x0 + _TICK_FRAMES * self.transition_j, _SNAP_DIGITS)
                else:
                    tr_x = round(self.transition_x0 + _TICK_FRAMES * self.transition_j, _SNAP_DIGITS)
            # Order at one instant: events, then ticks, then the animation's last frame.
            x = min(ev_x, up_x, tr_x, self.anim_end)
            if x == inf or x > end_x:
                break
            self._emit(x)
            self.v = self._value_before(x)
            self.seg = x
            if ev_x == x:
                _, t_s, kind, _, poll, progress = events[i]
                i += 1
                if kind == _PUT_END:
                    self._animate(x, max(js_round(UPLOAD_DONE_PERCENT * UPLOAD_SHARE), self.v))
                elif kind == _CREATED:
                    self._animate(x, CREATED_TARGET)
                    self.transition_x0 = x
                elif poll == _ANSWER:
                    if not math.isnan(progress):  # a number; else the app's `progress || 0`, which moves nothing
                        answers.append((t_s, progress))
                    else:
                        progress = 0.0
                    if progress > self.v + STOP_MARGIN:
                        self.transition_x0 = None
                    self._animate(x, progress)
                else:
                    end_s, end_x, ended = t_s, x, _ENDINGS[poll]
                    break
            elif up_x == x:
                self.v = min(self.v + UPLOAD_STEP, UPLOAD_CAP)
                self.upload_j += 1
            elif tr_x == x:
                self.v = min(self.v + TRANSITION_STEP, TRANSITION_CAP)
                self.transition_j += 1
            else:
                assert self.anim is not None
                self.v = self.anim[2]
                self.anim, self.anim_end = None, inf
            self._push(x / FPS, js_round(self.v))
        if ended == "open":
            self._emit(end_x)
        points = tuple(p for p in self.points if p[0] < end_s) or self.points[:1]
        return ShownBar(points=points, end_s=end_s, ended=ended, answers=tuple(answers))

    def _animate(self, x: float, target: float) -> None:
        """smoothUpdateProgress(target) at frame x (L175-258)."""
        safe = max(min(target, MAX_PERCENT), self.v)
        jump = safe - self.v
        if jump <= MIN_JUMP:
            return  # returns before cancelling: a running animation goes on
        frames = _jump_frames(jump)
        self.anim = (x, self.v, safe, frames)
        self.anim_end = math.ceil(round(x + frames, _SNAP_DIGITS))

    def _eased(self, f: int) -> float:
        """The animation's value at frame f (before its last frame): easeOutCubic, L223-235."""
        assert self.anim is not None
        x0, start, target, frames = self.anim
        return start + (target - start) * (1 - (1 - (f - x0) / frames) ** 3)

    def _value_before(self, x: float) -> float:
        """The bar's value just before the instant x: after every frame earlier than x."""
        if self.anim is None:
            return self.v
        f = math.ceil(x) - 1
        if f < math.ceil(self.seg):
            return self.v
        return max(self.v, self._eased(f))

    def _emit(self, x: float) -> None:
        """The label's changes on the frames of the current segment before x."""
        if self.anim is None:
            return
        x0, start, target, frames = self.anim
        f_lo, f_hi = math.ceil(self.seg), math.ceil(x) - 1
        label = self.points[-1][1]
        while f_lo <= f_hi:
            level = label + 0.5  # the label reads label + 1 from this value up
            share = (level - start) / (target - start)
            if share >= 1.0:
                return  # reached only by the last frame (an event of its own)
            if share <= 0.0:
                f = f_lo
            else:
                f = max(f_lo, math.ceil(x0 + frames * (1 - (1 - share) ** (1 / 3))))
                while self._eased(f) < level:  # the inverse is within a frame; the frame's value decides
                    f += 1
                while f > f_lo and self._eased(f - 1) >= level:
                    f -= 1
            if f > f_hi:
                return
            label = js_round(max(self.v, self._eased(f)))
            self._push(f / FPS, label)
            f_lo = f + 1

    def _push(self, t_s: float, label: int) -> None:
        """Append a change point; one instant keeps its last label (what that frame drew)."""
        points = self.points
        if points[-1][0] == t_s:
            points.pop()
        if not points or points[-1][1] != label:
            points.append((t_s, label))
