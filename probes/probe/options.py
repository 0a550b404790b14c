"""What a run is asked to do: one frozen, validated RunOptions, built by each front end and passed down.

`probes run` (probes.cli), the canary and the demo build one; `probes load`
checks its flow options with the same functions. Every limit is checked here
and only here, when the options are made, so a bad flag is one line (exit 2)
before anything is read, started or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from probes import defaults
from probes.errors import UsageError
from probes.probe.cadence import Cadence
from probes.probe.wire import UPLOADS

MAX_PROBES = 100_000      # one run directory; a bigger study is several runs
MAX_CONCURRENCY = 5_000   # the probe engine holds ~3,000 flows on time per process (BENCHMARKS.md)
MAX_TIMEOUT_S = 3600.0    # the app gives up after 5 minutes; an hour bounds any run
MAX_IDLE_BEFORE_S = 3600.0


def check_milestones(values: tuple[int, ...] | list[int], flag: str = "--milestones") -> tuple[int, ...]:
    """Sorted distinct milestones, each a whole percent in 1..100."""
    if not values or any(isinstance(m, bool) or not isinstance(m, int) or not 0 < m <= 100 for m in values):
        raise UsageError(f"{flag} must be whole numbers in 1..100")
    return tuple(sorted(set(values)))


def check_timeout(seconds: float, flag: str = "--timeout") -> float:
    if not 0 < seconds <= MAX_TIMEOUT_S:
        raise UsageError(f"{flag} must be in (0, {MAX_TIMEOUT_S:g}] seconds")
    return float(seconds)


def check_cadence(name: str, interval_s: float, flag: str = "--cadence") -> Cadence:
    try:
        return Cadence(name, interval_s)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def check_upload(value: str | None, flag: str = "--upload") -> str | None:
    if value is not None and value not in UPLOADS:
        raise UsageError(f"{flag} must be {' or '.join(UPLOADS)}, got {value!r}")
    return value


@dataclass(frozen=True)
class RunOptions:
    """One `probes run`: which target, how many probes, how to poll, where to write, how to judge.

    >>> RunOptions(url="http://127.0.0.1:8765", n=3).cadence_policy.name
    'app'
    """

    target: str | None = None
    url: str | None = None
    token_env: str | None = None
    n: int = 5
    concurrency: int = 1
    label: str = "manual"
    fixture: str = defaults.FIXTURE
    cadence: str = "app"
    interval: float = defaults.FINE_INTERVAL_S
    milestones: tuple[int, ...] = tuple(defaults.MILESTONES)
    timeout_s: float = defaults.PROBE_TIMEOUT_S
    out: Path = defaults.RUNS_DIR
    targets_file: Path = defaults.TARGETS_FILE
    fixtures_dir: Path = defaults.FIXTURES_DIR
    quiet: bool = False
    fast: bool | None = None          # the fast transport: None = from FAST_FROM probes in flight
    slo_file: Path | None = None
    no_slo: bool = False
    baseline: str | None = None       # a run directory or latest:LABEL
    idle_before_s: float = 0.0
    upload: str | None = None         # overrides the target's `upload`

    def __post_init__(self) -> None:
        if not 1 <= self.n <= MAX_PROBES:
            raise UsageError(f"-n must be between 1 and {MAX_PROBES}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise UsageError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
        check_timeout(self.timeout_s)
        object.__setattr__(self, "milestones", check_milestones(tuple(self.milestones)))
        if not 0 <= self.idle_before_s <= MAX_IDLE_BEFORE_S:
            raise UsageError(f"--idle-before must be in [0, {MAX_IDLE_BEFORE_S:g}] seconds")
        check_cadence(self.cadence, self.interval)
        check_upload(self.upload)
        if self.baseline is not None and not self.baseline.strip():
            raise UsageError("--baseline needs a run directory or latest:LABEL")

    @property
    def cadence_policy(self) -> Cadence:
        return Cadence(self.cadence, self.interval)
