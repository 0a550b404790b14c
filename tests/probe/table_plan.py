"""What the three runners of the scripted table share: the plan and a token source (no Locust here)."""

from __future__ import annotations

from probes.probe.cadence import Cadence
from probes.probe.machine import MachineConfig
from probes.probe.plan import ProbePlan

FIXTURE = {"name": "recording.m4a", "content_type": "audio/m4a", "form_duration": 5}
AUDIO = b"\0" * 2000


class CountingTokens:
    """A token source whose every refresh is a new token: token-1, token-2, ..."""

    def __init__(self) -> None:
        self.n = 1

    def current(self) -> str:
        return f"token-{self.n}"

    def refresh(self, stale: str | None) -> str:
        self.n += 1
        return self.current()

    def secrets(self) -> tuple[str, ...]:
        return tuple(f"token-{i}" for i in range(1, self.n + 1))


def plan(cadence: str, interval: float, timeout: float, cleanup: bool, upload: str = "multipart") -> ProbePlan:
    """The scripted servers speak multipart unless a case says presigned (their object store is on 127.0.0.1)."""
    config = MachineConfig(cadence=Cadence(cadence, interval), timeout_s=timeout, cleanup=cleanup, upload=upload,
                           plain_http_hosts=frozenset({"127.0.0.1"}))
    return ProbePlan(run_id="table", target="scripted", label="table", fixture=FIXTURE, audio=AUDIO, config=config)
