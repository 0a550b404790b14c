"""Defaults shared by the CLI, the Makefile helpers and the demo (a light module: no heavy imports)."""

from pathlib import Path

FIXTURE = "speech-en-5s.m4a"
MILESTONES = (20, 32, 42, 55, 58, 60, 88, 100)
PROBE_TIMEOUT_S = 300.0  # the app gives up after 5 minutes (DESIGN.md)
FINE_INTERVAL_S = 0.05
RUNS_DIR = Path("reports/runs")
FIXTURES_DIR = Path("fixtures")
TARGETS_FILE = Path("targets.toml")
