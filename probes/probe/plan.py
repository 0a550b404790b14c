"""What every probe of a run shares: who it reports as, the fixture it uploads, the machine's rules.

Both drivers (probes.probe.driver over httpx, probes.load.user under Locust)
take a ProbePlan; neither owns it.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from probes.probe import wire
from probes.probe.machine import MachineConfig


@dataclass(frozen=True)
class ProbePlan:
    run_id: str
    target: str
    label: str
    fixture: Mapping[str, Any]
    audio: bytes = field(repr=False)
    config: MachineConfig = field(default_factory=MachineConfig)

    @functools.cached_property
    def forms(self) -> wire.PresignedForms:
        """The presigned flow's forms, built on first use and shared by every probe of the run (the base64
        of a 5 MB file is encoded once); the boundary is drawn per run."""
        return wire.presigned_forms(self.fixture, self.audio, base64_enabled=self.config.presigned_base64,
                                    boundary=f"probes-{secrets.token_hex(12)}")


@dataclass
class ProbeState:
    """What a probe has seen so far; the live progress bars read it."""

    probe_id: str
    progress: int | float | None = None
    step_name: str | None = None
    done: bool = False


def utc_now() -> str:
    """Wall-clock now in UTC ISO 8601, as run.json and records carry it."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
