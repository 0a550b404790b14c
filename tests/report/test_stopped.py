"""`probes report` stopped halfway: by SIGTERM (exit 130) or by a full disk (exit 4), through a real interpreter.

Either way the report directory holds no report.html, report.md or diagnosis.json (not even an old
one: a reader must not take a half-rebuilt directory for a whole report), no temporary file, and
stderr is one line without a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from PIL import Image

from tests.conftest import fill

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("report.html", "report.md", "diagnosis.json")


def leftovers(out: Path) -> list[str]:
    """What an unfinished build must not leave: the documents a reader opens, temporary files, half a file."""
    found = []
    for path in sorted(out.iterdir()) if out.exists() else []:
        if path.name in DOCUMENTS or ".tmp" in path.name:
            found.append(path.name)
        elif not whole(path):
            found.append(f"{path.name} (not whole)")
    return found


def whole(path: Path) -> bool:
    """Whether a table, figure or Parquet file reads back to its end."""
    try:
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".parquet":
            pq.read_table(path)
    except Exception:  # noqa: BLE001 - any failure to read it back means it is not whole
        return False
    return True


def test_sigterm_while_writing_a_big_report_is_130_and_leaves_no_report(make_run, tmp_path):
    run = make_run(tmp_path / "runs", profile="stale-32", probes=600, seed=5)  # ~3 s of report on this machine
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("an older, complete report")  # must not survive a rebuild that stopped
    proc = subprocess.Popen([sys.executable, "-m", "probes", "report", str(run), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while not (out / "summary.csv").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the report ended before it could be interrupted: make the run bigger"
    proc.send_signal(signal.SIGTERM)  # the tables are written, the figures and documents are not
    out_text, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip() == "probes: interrupted: the report was not written" and out_text == ""
    assert leftovers(out) == [] and (out / "summary.csv").exists()


def test_a_full_disk_is_exit_4_in_one_line_and_leaves_no_report(make_run, small_disk, tmp_path):
    run = make_run(tmp_path / "runs", probes=40, seed=6)  # its Parquet and figures need more than 64 KB
    out = small_disk / "report"
    proc = subprocess.run([sys.executable, "-m", "probes", "report", str(run), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          check=False)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert proc.stderr.strip() == f"probes: error: could not record the report in {out}: No space left on device"
    assert proc.stdout == ""
    assert leftovers(out) == [] and any(out.iterdir())  # some files were whole before the disk filled


def test_a_full_disk_under_compare_out_is_exit_4(make_run, small_disk, tmp_path):
    base, cand = make_run(tmp_path / "runs", probes=5, seed=7), make_run(tmp_path / "runs", probes=5, seed=8)
    fill(small_disk)
    out = small_disk / "cmp"
    proc = subprocess.run([sys.executable, "-m", "probes", "compare", str(base), str(cand), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"probes: error: could not record the comparison in {out}: No space left on device")
    assert "Traceback" not in proc.stderr and sorted(p.name for p in out.iterdir()) == []
