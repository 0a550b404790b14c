"""`probes load` stopped: by Ctrl-C or SIGTERM in each phase (exit 130), by a full disk (exit 4, one line).

Real child processes and real signals; the backends are scripted servers or simulators on
loopback, the full disk a 64 KB tmpfs (tests/conftest.py `small_disk`, skipped with the reason
when it cannot be mounted).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from probes.sim.server import free_port
from tests.conftest import fill
from tests.servers import scripted_process

from .conftest import ROOT, write_targets

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def start_load(tmp_path: Path, fixtures: Path, url: str, *extra: str, out: Path | None = None,
               entry: tuple[str, ...] = ("probes", "load"), **fields: object) -> subprocess.Popen:
    """`probes load` (or `python -m probes.load`, entry=("probes.load",)) as a foreground job would run."""
    targets = write_targets(tmp_path / "targets.toml", "t", url, allow_load=True, **fields)
    cmd = [sys.executable, "-m", *entry, "--target", "t", "--targets", str(targets), "--fixtures",
           str(fixtures), "--out", str(out or tmp_path / "load"), "--quiet", "--cadence", "fine", *extra]
    # its own session and SIGINT at its default, as a foreground job in a terminal: Ctrl-C goes to the group
    return subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def uploads(record: Path) -> int:
    """Tasks created so far: by a multipart upload or a presigned flow's create (targets default to presigned)."""
    if not record.exists():
        return 0
    text = record.read_text()
    return text.count('"route": "upload"') + text.count('"route": "create"')


@pytest.mark.parametrize("signum, to_group", [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["ctrl-c-to-the-terminal-group", "sigterm-to-probes-load"])
def test_a_signal_while_locust_runs_aborts_the_flows_and_finishes_the_run(signum, to_group, tmp_path,
                                                                          load_fixtures):
    record = tmp_path / "requests.jsonl"
    with scripted_process("stuck", record=record) as url:  # progress never moves: every flow is in flight
        proc = start_load(tmp_path, load_fixtures, url, "--users", "2", "--duration", "60s")
        wait_for(lambda: uploads(record) >= 2 or proc.poll() is not None)
        time.sleep(0.5)  # both flows poll
        os.killpg(proc.pid, signum) if to_group else proc.send_signal(signum)
        started = time.monotonic()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert time.monotonic() - started < 15, "a signal stops the run now, not after --stop-timeout (30 s)"
    assert "Traceback" not in err and "probes: interrupted: 2 flow record(s) in the run directory" in err
    # Locust got one SIGTERM from probes load, not the terminal's SIGINT as well: one orderly shutdown
    assert "KeyboardInterrupt" not in err and err.count("Shutting down") == 1, err[-3000:]
    run_dir = tmp_path / out.strip().splitlines()[-1]
    records = [json.loads(line) for line in (run_dir / "probes.jsonl").read_text().splitlines()]
    assert [(r["outcome"], r["error"]) for r in records] == [("aborted", "interrupted")] * 2
    assert all(r["samples"] for r in records)  # what each flow measured is kept
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["ended_at"] and meta["n"] == 2 and meta["outcomes"] == {"aborted": 2}
    assert not (run_dir / "report").exists()  # interrupted: no report rendered


def test_sigterm_while_the_simulator_starts_is_130_and_stops_it(tmp_path, load_fixtures):
    port = free_port()
    proc = start_load(tmp_path, load_fixtures, f"http://127.0.0.1:{port}", "--users", "1", "--duration", "30s",
                      entry=("probes.load",), simulator="fast")  # the other entry point: no probes.cli around it
    line = proc.stderr.readline()  # "nothing answers at ...: starting simulator 'fast'"
    assert "starting simulator" in line, line
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip() == "probes: interrupted" and out == ""
    with pytest.raises(httpx.TransportError):  # the simulator it started is gone with it
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    assert not (tmp_path / "load").exists() or not any((tmp_path / "load").rglob("run.json"))


def test_a_full_disk_before_the_run_is_exit_4_in_one_line(tmp_path, load_fixtures, small_disk):
    fill(small_disk)
    with scripted_process("healthy") as url:
        proc = start_load(tmp_path, load_fixtures, url, "--users", "1", "--duration", "5s", out=small_disk / "load")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err[-3000:]
    (line,) = [x for x in err.splitlines() if x.startswith("probes:")]
    assert line.startswith("probes: error: could not record ") and line.endswith(": No space left on device")
    assert "Traceback" not in err and out == ""
    assert not list((small_disk / "load").rglob("run.json"))  # no run that looks started, or complete


def test_a_disk_that_fills_during_the_run_stops_it_with_exit_4_and_whole_records(tmp_path, load_fixtures,
                                                                                  small_disk):
    fill(small_disk, leave=24 * 1024)  # run.json and a record or two fit, a flow every ~0.6 s does not
    with scripted_process("healthy") as url:
        proc = start_load(tmp_path, load_fixtures, url, "--users", "4", "--duration", "30s", out=small_disk / "load")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err[-3000:]
    (line,) = [x for x in err.splitlines() if x.startswith("probes:")]
    assert line.startswith("probes: error: could not record ") and "No space left on device; the load run stopped" in line
    assert "Traceback" not in err and out == ""
    (run_dir,) = (small_disk / "load").iterdir()
    lines = (run_dir / "probes.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) >= 2  # whole lines only (a refused one is cut back), at least one
    assert all(json.loads(x)["outcome"] == "completed" for x in lines[:-1])
    assert json.loads((run_dir / "run.json").read_text())["ended_at"] is None  # reads as unfinished
