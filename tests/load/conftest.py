"""Load-mode test set-up: a fixture clip, a targets.toml per test, `python -m probes.load` as a child process.

Every run is headless, short (--duration 15s at most) and on loopback; the
simulators run in their own processes on free ports so that Locust's gevent
loop, the server and pytest never share a GIL.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from probes.fixtures.generate import generate_fixtures

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def load_fixtures(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("load-fixtures")
    generate_fixtures(out_dir=out, durations=[5.0], formats=["m4a"], lang="en", voice="espeak", source=None)
    return out


def write_targets(path: Path, name: str, base_url: str, **fields: Any) -> Path:
    lines = [f"[targets.{name}]", f'base_url = "{base_url}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class LoadRun:
    code: int
    stdout: str
    stderr: str
    run_dir: Path | None

    def records(self) -> list[dict]:
        assert self.run_dir is not None
        return [json.loads(line) for line in (self.run_dir / "probes.jsonl").read_text().splitlines()]

    def phases(self) -> dict[str, dict[str, str]]:
        """phases.csv: load mode's own table of flow phases, by phase name."""
        assert self.run_dir is not None
        with open(self.run_dir / "phases.csv", newline="") as f:
            return {row["name"]: row for row in csv.DictReader(f)}

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        assert self.run_dir is not None
        with open(self.run_dir / "locust_stats.csv", newline="") as f:
            return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def run_load(*args: str, cwd: Path, timeout: float = 60) -> LoadRun:
    """`python -m probes.load ARGS` to the end; the run directory is the last stdout line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "probes.load", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    lines = proc.stdout.strip().splitlines()
    run_dir = Path(cwd, lines[-1]) if lines and Path(cwd, lines[-1]).is_dir() else None
    return LoadRun(proc.returncode, proc.stdout, proc.stderr, run_dir)
