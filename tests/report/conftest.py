"""Synthetic run directories for the report and compare tests (scripts/synth_runs.py)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _synth():
    spec = importlib.util.spec_from_file_location("synth_runs", ROOT / "scripts" / "synth_runs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["synth_runs"] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


synth = _synth()


def make_run(out: Path, *, profile: str = "fast", probes: int = 20, seed: int = 0, label: str | None = None,
             **extra: object) -> Path:
    """Write one synthetic run directory under out and return it."""
    args = ["--out", str(out), "--probes", str(probes), "--profile", profile, "--seed", str(seed),
            "--label", label or f"{profile}-{seed}"]
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return synth.write_run(synth.parse_args(args))


@pytest.fixture(scope="session", name="make_run")
def make_run_fixture():
    """The make_run helper, for tests that need their own synthetic run."""
    return make_run


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def fast_run(runs_root: Path) -> Path:
    return make_run(runs_root, profile="fast", seed=1, label="local")


@pytest.fixture(scope="session")
def fast_run_2(runs_root: Path) -> Path:
    return make_run(runs_root, profile="fast", seed=2, label="local-again")


@pytest.fixture(scope="session")
def stale_run(runs_root: Path) -> Path:
    return make_run(runs_root, profile="stale-32", seed=3, label="prod", fail_rate=0.1, target="prod")


@pytest.fixture()
def copy_run(tmp_path: Path):
    """A private copy of a run directory (for tests that change files)."""
    def _copy(run: Path) -> Path:
        dst = tmp_path / run.name
        shutil.copytree(run, dst, ignore=shutil.ignore_patterns("*.parquet"))
        return dst
    return _copy
