"""The CLI, once, through a real interpreter: exit codes and the printed path."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def probes(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "probes", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_report_prints_the_html_path_last(fast_run, stale_run, tmp_path):
    r = probes("report", fast_run, stale_run, "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(tmp_path / "rep" / "report.html")


def test_compare_exit_codes(fast_run, fast_run_2, stale_run):
    assert probes("compare", fast_run, fast_run_2).returncode == 0
    assert probes("compare", fast_run, stale_run).returncode == 1


def test_user_errors_are_one_line(tmp_path):
    r = probes("report", tmp_path / "missing")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert "run directory not found" in r.stderr
