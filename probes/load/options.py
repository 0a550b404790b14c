"""Load mode's own Locust arguments (--probes-*), validated once into a LoadOptions.

They are Locust custom arguments, so the master forwards them to its workers
with every spawn message; the run directory chosen by the master travels the
same way (--probes-run-dir).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probes import defaults
from probes.probe.cadence import Cadence
from probes.probe.options import check_cadence, check_milestones, check_timeout, check_upload
from probes.errors import UsageError
from probes.load.workload import MODELS, Stage, default_stages, parse_duration, parse_stages

DEFAULT_OUT = Path("reports/load")


def add_arguments(parser: Any) -> None:
    """Register the --probes-* options on Locust's parser (events.init_command_line_parser)."""
    group = parser.add_argument_group("probes", "the probe flow under load (probes.load)")
    group.add_argument("--probes-target", default="local", help="target name from targets.toml")
    group.add_argument("--probes-targets-file", default=str(defaults.TARGETS_FILE), help="targets.toml to read")
    group.add_argument("--probes-fixture", default=defaults.FIXTURE, help="fixture name from fixtures/manifest.json")
    group.add_argument("--probes-fixtures-dir", default=str(defaults.FIXTURES_DIR), help="directory of manifest.json")
    group.add_argument("--probes-cadence", default="app", help="app (the app's polling) or fine")
    group.add_argument("--probes-interval", type=float, default=defaults.FINE_INTERVAL_S, help="poll interval of fine")
    group.add_argument("--probes-milestones", default=",".join(map(str, defaults.MILESTONES)),
                       help="comma-separated progress milestones to time")
    group.add_argument("--probes-model", default="closed", help="closed | open | ramp")
    group.add_argument("--probes-rate", type=float, default=0.0,
                       help="open: new flows per second (all workers together); closed: a cap (0 = the target's max_rate)")
    group.add_argument("--probes-think-time", type=float, default=0.0, help="closed: seconds between a user's flows")
    group.add_argument("--probes-stages", default="", help="ramp: DURATION:USERS,... e.g. 30s:10,60s:50,30s:0")
    group.add_argument("--probes-timeout", type=float, default=defaults.PROBE_TIMEOUT_S, help="give up on a flow after s")
    group.add_argument("--probes-label", default="load", help="label of the run")
    group.add_argument("--probes-out", default=str(DEFAULT_OUT), help="parent of the run directory")
    group.add_argument("--probes-run-dir", default="", help="the run directory (default: <out>/<run_id>)")
    group.add_argument("--probes-upload", default="", help="presigned | multipart (default: the target's upload)")


@dataclass(frozen=True)
class LoadOptions:
    target: str
    targets_file: Path
    fixture: str
    fixtures_dir: Path
    cadence: Cadence
    milestones: tuple[int, ...]
    model: str
    rate: float | None
    think_time_s: float
    stages_text: str
    timeout_s: float
    label: str
    out: Path
    run_dir: Path | None
    upload: str | None = None  # overrides the target's `upload`

    def stages(self, users: int, run_time_s: float | None) -> list[Stage]:
        """The ramp's stages: as given, or up-hold-down over the run time."""
        if self.stages_text:
            return parse_stages(self.stages_text)
        if not run_time_s:
            raise UsageError("the ramp model needs --probes-stages or --run-time")
        return default_stages(users, run_time_s)


def _milestones(text: str) -> tuple[int, ...]:
    try:
        marks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--probes-milestones: expected comma-separated integers, got {text!r}") from None
    return check_milestones(marks, "--probes-milestones")


def from_namespace(opts: argparse.Namespace | Any) -> LoadOptions:
    """Validate the parsed --probes-* options; a UsageError names the bad one."""
    if opts.probes_model not in MODELS:
        raise UsageError(f"--probes-model must be one of {', '.join(MODELS)}, got {opts.probes_model!r}")
    cadence = check_cadence(opts.probes_cadence, opts.probes_interval, "--probes-cadence")
    rate = float(opts.probes_rate or 0.0)
    if rate < 0:
        raise UsageError("--probes-rate must be >= 0")
    if opts.probes_model == "open" and rate <= 0:
        raise UsageError("the open model needs --probes-rate > 0 (new flows per second)")
    if opts.probes_think_time < 0:
        raise UsageError("--probes-think-time must be >= 0")
    check_timeout(opts.probes_timeout, "--probes-timeout")
    upload = check_upload(getattr(opts, "probes_upload", "") or None, "--probes-upload")
    return LoadOptions(
        target=opts.probes_target, targets_file=Path(opts.probes_targets_file), fixture=opts.probes_fixture,
        fixtures_dir=Path(opts.probes_fixtures_dir), cadence=cadence, milestones=_milestones(opts.probes_milestones),
        model=opts.probes_model, rate=rate or None, think_time_s=float(opts.probes_think_time),
        stages_text=opts.probes_stages or "", timeout_s=float(opts.probes_timeout), label=opts.probes_label,
        out=Path(opts.probes_out), run_dir=Path(opts.probes_run_dir) if opts.probes_run_dir else None,
        upload=upload,
    )


def run_time_s(opts: Any) -> float | None:
    """Locust's --run-time in seconds (Locust has already parsed it to an int), or None."""
    value = getattr(opts, "run_time", None)
    if value in (None, 0, ""):
        return None
    return float(value) if isinstance(value, (int, float)) else parse_duration(str(value))
