"""The simulator's progress model: a task's drawn latencies in, its full schedule out.

The real backend fires a timer that bumps a virtual percentage while the real
work runs, keeping ``max(old, new)``. Here the whole sequence of states is
computed once, at upload, by `build_schedule`; the server answers a poll by
looking up the state at ``now - t0`` (`state_index`). No thread, timer or
clock per task, and the ground truth is exact by construction.

No I/O and no clock in this module.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Literal, Sequence

Phase = Literal["fetch", "validation", "transcription", "llm", "saving"]
Status = Literal["processing", "completed", "failed"]
# How the job got its audio: in the multipart upload; as base64 beside the presigned
# object's URL (async-with-url, files <= 5 MB); or only as that URL, fetched by the job.
Intake = Literal["multipart", "base64", "url"]

# Which step number each state label belongs to. Step names and messages are
# scenario data (see scenarios.DEFAULT_LABELS); the step numbers are not.
STEPS: dict[str, int] = {
    "received": 0,
    "uploaded": 1,
    "validating": 1,
    "transcribing": 1,
    "transcribing_wait": 1,
    "transcribed": 1,
    "polishing": 2,
    "saving": 3,
    "saved": 3,
    "done": 4,
}


@dataclass(frozen=True, slots=True)
class State:
    """One change of what the progress endpoint answers, ``t`` seconds after upload."""

    t: float
    progress: int
    step: int
    label: str
    status: Status = "processing"
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Timer:
    """A virtual timer: from ``origin`` % add 1 % every ``tick_s`` up to ``top`` per segment.

    A segment may name the state label its ticks show (None: the phase's own
    label): thankly's transcription loop says "语音识别中，请稍候..." once it
    slows down past 42 %, so a slow Whisper is seen waiting under that message.
    """

    origin: int
    segments: tuple[tuple[int, float], ...]
    labels: tuple[str | None, ...] = ()

    def ticks(self) -> list[tuple[float, int, str | None]]:
        """(elapsed seconds, value, label or None) of every 1 % tick, unscaled."""
        out: list[tuple[float, int, str | None]] = []
        base_t, value = 0.0, self.origin
        for i, (top, tick_s) in enumerate(self.segments):
            label = self.labels[i] if i < len(self.labels) else None
            n = 0
            start_value = value
            while value < top:
                n += 1
                value = start_value + n
                out.append((base_t + n * tick_s, value, label))
            base_t += n * tick_s
        return out


@dataclass(frozen=True, slots=True)
class ProgressModel:
    """The fixed percentages and timers of the thankly backend (DESIGN.md)."""

    created: int = 5
    uploaded: int = 15  # async-with-url creates its task at 15 %, step 1, "音频已上传"
    accept_s: float = 0.002
    validating: int = 22
    transcription_timer: Timer = Timer(18, ((42, 0.3), (55, 0.8)), (None, "transcribing_wait"))
    transcribed: int = 58
    handoff_s: float = 0.02
    polishing: int = 60
    llm_timer: Timer = Timer(60, ((88, 0.35),))
    saving: int = 88
    saved: int = 96
    finalize_s: float = 0.1


DEFAULT_MODEL = ProgressModel()


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """What was drawn for one task at upload: unscaled latencies and its fate.

    ``fail_phase`` fails the job when that phase's work returns (with ``error``);
    ``stuck_phase`` never returns, so the progress freezes at that phase's cap.
    ``intake`` says how the audio came; ``fetch_s`` is how long the job's GET of the
    object takes when it came only as a URL (the task shows 15 % meanwhile).
    """

    validation_s: float
    transcription_s: float
    llm_s: float
    saving_s: float
    transcription_cap: int = 100
    llm_cap: int = 100
    fail_phase: Phase | None = None
    error: str | None = None
    stuck_phase: Phase | None = None
    intake: Intake = "multipart"
    fetch_s: float = 0.0


class _Builder:
    """Accumulates states, keeping the server's ``max(old, new)`` rule."""

    def __init__(self) -> None:
        self.states: list[State] = []

    @property
    def progress(self) -> int:
        return self.states[-1].progress if self.states else 0

    def add(self, t: float, progress: int, label: str, status: Status = "processing", error: str | None = None) -> None:
        self.states.append(State(t, max(self.progress, progress), STEPS[label], label, status, error))

    def fail(self, t: float, error: str | None) -> None:
        last = self.states[-1]
        self.states.append(State(t, last.progress, last.step, last.label, "failed", error))

    def run_timer(self, timer: Timer, start: float, end: float | None, cap: int, label: str, scale: float) -> None:
        """Emit the timer's visible ticks in [start, end) (forever when ``end`` is None)."""
        for elapsed, value, tick_label in timer.ticks():
            t = start + elapsed * scale
            if end is not None and t >= end:
                break
            shown = min(value, cap)
            if shown > self.progress:
                self.add(t, shown, tick_label or label)


def build_schedule(plan: TaskPlan, model: ProgressModel = DEFAULT_MODEL, scale: float = 1.0, offset: float = 0.0) -> list[State]:
    """Every state change of one task, in time order, ``t`` in scaled seconds since upload.

    ``offset`` (already scaled) delays the whole schedule, e.g. by a cold start.
    Entries may share a ``t``; the later one is what a poll at that instant sees.
    The last entry is final: completed, failed, or frozen (a stuck task).
    """
    b = _Builder()

    def phase_end(phase: Phase, start: float, latency_s: float) -> float | None:
        return None if plan.stuck_phase == phase else start + latency_s * scale

    def settle(phase: Phase, end: float | None) -> float | None:
        """When the next phase starts; None when the task stops here (stuck, or failed at `end`)."""
        if end is not None and plan.fail_phase == phase:
            b.fail(end, plan.error)
            return None
        return end

    t: float | None = offset
    if plan.intake == "multipart":
        b.add(offset, model.created, "received")
        t = offset + model.accept_s * scale
    else:  # async-with-url: 15 % "音频已上传" while the job gets its audio (a GET of the object, or the base64 at once)
        b.add(offset, model.uploaded, "uploaded")
        t = settle("fetch", offset + (plan.fetch_s if plan.intake == "url" else model.accept_s) * scale)
        if t is None:
            return b.states
    b.add(t, model.validating, "validating")

    # validation: no timer
    t = settle("validation", phase_end("validation", t, plan.validation_s))
    if t is None:
        return b.states

    # transcription: timer from 18 %, capped, until the work returns
    b.add(t, model.validating, "transcribing")
    end = phase_end("transcription", t, plan.transcription_s)
    b.run_timer(model.transcription_timer, t, end, plan.transcription_cap, "transcribing", scale)
    t = settle("transcription", end)
    if t is None:
        return b.states
    b.add(t, model.transcribed, "transcribed")
    t += model.handoff_s * scale

    # LLM: timer from 60 %, capped, until the work returns
    b.add(t, model.polishing, "polishing")
    end = phase_end("llm", t, plan.llm_s)
    b.run_timer(model.llm_timer, t, end, plan.llm_cap, "polishing", scale)
    t = settle("llm", end)
    if t is None:
        return b.states

    # saving: 88 %, 96 % when stored, then completed
    b.add(t, model.saving, "saving")
    t = settle("saving", phase_end("saving", t, plan.saving_s))
    if t is None:
        return b.states
    b.add(t, model.saved, "saved")
    t += model.finalize_s * scale
    b.add(t, 100, "done", "completed")
    return b.states


def times_of(schedule: Sequence[State]) -> list[float]:
    """The ``t`` column, for bisecting."""
    return [s.t for s in schedule]


def state_index(times: Sequence[float], elapsed: float) -> int:
    """Index of the state in force ``elapsed`` seconds after upload (-1 before the first)."""
    return bisect_right(times, elapsed) - 1


def persisted_indices(schedule: Sequence[State], every: int = 5) -> list[int]:
    """For each state, the latest state at or before it that a shared store holds.

    A multi-instance backend persists only every ``every``-th percent (and final
    states); an instance that does not own the task answers from that.
    """
    out: list[int] = []
    last = 0
    for i, s in enumerate(schedule):
        if s.status != "processing" or s.progress % every == 0:
            last = i
        out.append(last)
    return out


def progress_events(schedule: Sequence[State], elapsed: float | None = None) -> list[list[object]]:
    """Ground truth ``[[t_s, progress, status], ...]``: changes of progress or status up to ``elapsed``."""
    out: list[list[object]] = []
    for s in schedule:
        if elapsed is not None and s.t > elapsed:
            break
        if out and out[-1][1] == s.progress and out[-1][2] == s.status:
            continue
        out.append([round(s.t, 6), s.progress, s.status])
    return out


def plateau(schedule: Sequence[State], progress: int) -> float | None:
    """Seconds the progress stands at exactly ``progress`` (None if never, inf if forever)."""
    start: float | None = None
    for s in schedule:
        if start is None and s.progress == progress:
            start = s.t
        elif start is not None and s.progress != progress:
            return s.t - start
    return None if start is None else float("inf")
