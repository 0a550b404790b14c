"""Simulator scenarios: TOML data files, validated once, and the draws they imply.

A scenario says how long each phase of a job takes (fixed or lognormal), where
the virtual progress is capped while work is pending, which faults the API
injects, and which step names and messages it shows. Built-in scenarios live
in ``probes/sim/scenarios/*.toml``; a user passes a path to their own file and
no code changes. See ``fast.toml`` for every key with a comment.
"""

from __future__ import annotations

import math
import random
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from probes.errors import UsageError
from probes.sim.progress import STEPS, Intake, TaskPlan

PhaseName = Literal["validation", "transcription", "llm", "saving"]
Lang = Literal["zh", "en"]
LabelKey = Literal["received", "uploaded", "validating", "transcribing", "transcribing_wait", "transcribed", "polishing", "saving",
                   "saved", "done"]

# What the simulated backend says it is (X-App-Version, /health, /): thankly's
# last release tag, backend-v1.5.0, under the code at HEAD (3ad9b47). The real
# backend reports no version of its own (its `/` says a constant "1.0.0").
CURRENT_VERSION = "1.5.0"

# (step_name, message) per state label; the zh rows are what the real backend shows.
DEFAULT_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "zh": {
        "received": ("排队中", "已收到录音，等待处理..."),
        "uploaded": ("音频已上传", "音频上传完成,开始AI处理..."),
        "validating": ("处理中", "准备正式开始处理..."),
        "transcribing": ("转录中", "正在努力识别你的声音..."),
        "transcribing_wait": ("转录中", "语音识别中，请稍候..."),
        "transcribed": ("转录中", "声音识别完成..."),
        "polishing": ("AI润色", "正在美化文字..."),
        "saving": ("保存中", "准备保存日记..."),
        "saved": ("保存中", "数据保存成功..."),
        "done": ("完成", "日记创建成功"),
    },
    "en": {
        "received": ("Queued", "Recording received, waiting to start..."),
        "uploaded": ("Audio uploaded", "Audio uploaded, starting AI processing..."),
        "validating": ("Processing", "Getting ready to start..."),
        "transcribing": ("Transcribing", "Working hard to recognise your voice..."),
        "transcribing_wait": ("Transcribing", "Still recognising your voice, please wait..."),
        "transcribed": ("Transcribing", "Voice recognised..."),
        "polishing": ("AI polish", "Polishing your words..."),
        "saving": ("Saving", "Getting ready to save your diary..."),
        "saved": ("Saving", "Data saved..."),
        "done": ("Done", "Diary created"),
    },
}
assert set(DEFAULT_LABELS["zh"]) == set(STEPS) == set(DEFAULT_LABELS["en"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fixed(_Strict):
    """Always ``s`` seconds."""

    s: float = Field(ge=0)

    def draw(self, rng: random.Random) -> float:
        return self.s


class LogNormal(_Strict):
    """Lognormal around ``median_s`` with shape ``sigma``, clamped to [min_s, max_s]."""

    median_s: float = Field(gt=0)
    sigma: float = Field(ge=0)
    min_s: float = Field(0.0, ge=0)
    max_s: float | None = Field(None, gt=0)

    def draw(self, rng: random.Random) -> float:
        value = max(self.min_s, rng.lognormvariate(math.log(self.median_s), self.sigma))
        return value if self.max_s is None else min(self.max_s, value)


Latency = Union[Fixed, LogNormal]


class PhaseSpec(_Strict):
    """One phase of a job: ``timeouts`` attempts hang for ``timeout_s`` each, then one answers after ``latency``."""

    latency: Latency
    timeout_s: float | None = Field(None, gt=0)
    timeouts: int = Field(0, ge=0, le=10)

    @model_validator(mode="after")
    def _timeouts_need_timeout(self) -> "PhaseSpec":
        if self.timeouts and self.timeout_s is None:
            raise ValueError("timeouts > 0 needs timeout_s")
        return self

    def draw(self, rng: random.Random) -> float:
        return self.timeouts * (self.timeout_s or 0.0) + self.latency.draw(rng)


class TimedPhase(PhaseSpec):
    """A phase with a progress timer; the virtual progress never passes ``cap`` while it runs."""

    cap: int = Field(100, ge=0, le=100)


class ColdStart(_Strict):
    """An upload after ``idle_s`` without API requests waits ``delay_s`` (a cold instance)."""

    delay_s: float = Field(0.0, ge=0)
    idle_s: float = Field(60.0, ge=0)


class Faults(_Strict):
    """Share of requests answered 5xx (``error_status``) or 429 with Retry-After ``retry_after_s``."""

    error_rate: float = Field(0.0, ge=0, le=1)
    error_status: int = Field(503, ge=500, le=599)
    rate_limit_rate: float = Field(0.0, ge=0, le=1)
    retry_after_s: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _rates_sum(self) -> "Faults":
        if self.error_rate + self.rate_limit_rate > 1:
            raise ValueError("error_rate + rate_limit_rate must be <= 1")
        return self

    @property
    def active(self) -> bool:
        return self.error_rate > 0 or self.rate_limit_rate > 0


class EndpointFaults(_Strict):
    upload: Faults = Faults()  # POST /diary/voice/async and /diary/voice/async-with-url
    presign: Faults = Faults()  # POST /diary/audio/presigned-url
    progress: Faults = Faults()
    delete: Faults = Faults()


class TaskStore(_Strict):
    """How progress reads see the task store (DynamoDB in thankly) on a single instance.

    thankly answers a poll from the process's memory, else from DynamoDB, which
    holds only every fifth percent (the timers persist every 5 %) and whose
    throttled writes are dropped silently; a throttled read is swallowed and
    becomes "not found" (404). ``stale_read_rate`` of progress reads answer the
    last persisted state instead of the live one (progress can go backwards);
    ``lost_read_rate`` answer 404 although the task exists. Drawn from a seeded
    stream like the faults.
    """

    stale_read_rate: float = Field(0.0, ge=0, le=1)
    lost_read_rate: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _rates_sum(self) -> "TaskStore":
        if self.stale_read_rate + self.lost_read_rate > 1:
            raise ValueError("stale_read_rate + lost_read_rate must be <= 1")
        return self

    @property
    def active(self) -> bool:
        return self.stale_read_rate > 0 or self.lost_read_rate > 0


class Presigned(_Strict):
    """The app's presigned upload: the presign route, the PUT to the S3 stand-in, the job's GET of the object.

    ``put`` plus ``put_s_per_mb`` for every 1,000,000 bytes of body is how long an
    accepted PUT takes from its request to its answer; ``fetch`` is how long the
    job's GET of ``final_url`` takes when the audio came without base64 (the task
    shows 15 % meanwhile). All scaled by the time scale. ``expires_s`` is the
    X-Amz-Expires the backend signs (thankly: 3600). ``signing_secret = "stale"``
    signs with a secret the S3 stand-in does not hold, and ``clock_skew_s`` dates
    X-Amz-Date that far from the true clock; neither is scaled, because S3 compares
    them with its own wall clock.
    """

    presign: Latency = Fixed(s=0.01)
    put: Latency = Fixed(s=0.03)
    put_s_per_mb: float = Field(0.0, ge=0)
    fetch: Latency = Fixed(s=0.2)
    expires_s: int = Field(3600, ge=1, le=604_800)  # S3 refuses more than a week
    signing_secret: Literal["current", "stale"] = "current"
    clock_skew_s: float = Field(0.0, ge=-366 * 86_400, le=366 * 86_400)


class Stuck(_Strict):
    """Share of tasks whose ``phase`` never returns: progress freezes at that phase's cap."""

    rate: float = Field(0.0, ge=0, le=1)
    phase: PhaseName = "transcription"


class Failure(_Strict):
    """Share of tasks that fail when ``phase`` returns, with ``error`` as the code."""

    rate: float = Field(0.0, ge=0, le=1)
    phase: PhaseName = "transcription"
    error: str = Field("TRANSCRIPTION_SERVICE_UNAVAILABLE", min_length=1)


class LabelText(_Strict):
    step_name: str | None = None
    message: str | None = None


class Scenario(_Strict):
    """A validated scenario file. Durations are unscaled seconds."""

    name: str
    description: str = ""
    seed: int = 0
    version: str = Field(CURRENT_VERSION, min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")
    validation: PhaseSpec = PhaseSpec(latency=Fixed(s=0.35))
    transcription: TimedPhase = TimedPhase(latency=Fixed(s=4.5))
    llm: TimedPhase = TimedPhase(latency=Fixed(s=3.5))
    saving: PhaseSpec = PhaseSpec(latency=Fixed(s=0.6))
    cold_start: ColdStart = ColdStart()
    faults: EndpointFaults = EndpointFaults()
    db: TaskStore = TaskStore()
    presigned: Presigned = Presigned()
    stuck: Stuck = Stuck()
    failure: Failure = Failure()
    not_found_window_s: float = Field(0.0, ge=0)
    instances: int = Field(1, ge=1, le=16)
    labels: dict[Lang, dict[LabelKey, LabelText]] = {}

    def plan(self, rng: random.Random, intake: Intake = "multipart") -> TaskPlan:
        """Draw one task's latencies and fate. Always consumes the same draws, so seeds reproduce.

        The fetch is drawn last, whatever the intake, so the earlier draws are those of
        a scenario without a ``[presigned]`` table.
        """
        validation = self.validation.draw(rng)
        transcription = self.transcription.draw(rng)
        llm = self.llm.draw(rng)
        saving = self.saving.draw(rng)
        fails = rng.random() < self.failure.rate
        stuck = rng.random() < self.stuck.rate
        fetch = self.presigned.fetch.draw(rng)
        return TaskPlan(
            validation_s=validation,
            transcription_s=transcription,
            llm_s=llm,
            saving_s=saving,
            transcription_cap=self.transcription.cap,
            llm_cap=self.llm.cap,
            fail_phase=self.failure.phase if fails else None,
            error=self.failure.error if fails else None,
            stuck_phase=self.stuck.phase if stuck and not fails else None,
            intake=intake,
            fetch_s=fetch if intake == "url" else 0.0,
        )

    def label_table(self, lang: str) -> dict[str, tuple[str, str]]:
        """(step_name, message) per state label for ``lang``, defaults overlaid with this scenario's."""
        table = dict(DEFAULT_LABELS[lang])
        for key, text in self.labels.get(lang, {}).items():  # type: ignore[call-overload]
            name, message = table[key]
            table[key] = (text.step_name or name, text.message or message)
        return table


def _builtin_dir() -> Path:
    return Path(str(resources.files("probes.sim") / "scenarios"))


def builtin_names() -> list[str]:
    """Names of the scenarios shipped with the package."""
    return sorted(p.stem for p in _builtin_dir().glob("*.toml"))


def _is_path(name_or_path: str) -> bool:
    return name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path


def _format_error(path: Path, exc: ValidationError) -> str:
    err = exc.errors()[0]
    skip = {"Fixed", "LogNormal"}
    loc = ".".join(str(x) for x in err["loc"] if str(x) not in skip) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"scenario file {path}: key '{loc}': {msg}{more}"


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario file by path; UsageError if unknown or invalid."""
    if _is_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise UsageError(f"scenario file not found: {path}")
    else:
        path = _builtin_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            raise UsageError(f"unknown scenario {name_or_path!r}; known: {', '.join(builtin_names())}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"scenario file {path}: not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_format_error(path, exc)) from None
