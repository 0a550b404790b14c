"""How `probes run` ends when the world interferes: SIGTERM after the probes, a disk that fills up.

Both in a real subprocess against the real simulator: a signal or a full file
system is a property of the process and its mounts, not of a function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from probes.sim.server import free_port, simulator_process

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_after_the_probes_still_ends_the_process(tmp_path, fixtures_dir):
    """The event loop's SIGTERM handler must not outlive the loop (it did, and swallowed SIGTERM)."""
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        from pathlib import Path
        from probes.interrupts import sigterm_interrupts
        from probes.probe.run import run_probes
        from probes.probe.options import RunOptions
        sigterm_interrupts()  # as `probes` installs it
        run_probes(RunOptions(target=None, url=sys.argv[1], n=1, cadence="fine", quiet=True, no_slo=True,
                   out=Path({str(tmp_path)!r}), fixtures_dir=Path({str(fixtures_dir)!r})))
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt:
            print("terminated")
            sys.exit(130)
        print("SIGTERM was ignored")
    """)
    with simulator_process("fast", port=free_port(), time_scale=0.05) as url:
        done = subprocess.run([sys.executable, "-c", script, url], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 130 and "terminated" in done.stdout, (done.stdout, done.stderr[-500:])


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KB tmpfs: room for run.json and a few records, then ENOSPC. Mounting needs root (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: mounting a tmpfs to fill needs root; CI runs this test as root")
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_one_line_and_exit_4_not_slo_broken(full_disk, fixtures_dir):
    with simulator_process("fast", port=free_port(), time_scale=0.02) as url:
        done = subprocess.run(
            [sys.executable, "-m", "probes", "run", "--url", url, "-n", "40", "--concurrency", "4", "-q",
             "--cadence", "fine", "--fixtures", str(fixtures_dir), "--out", str(full_disk)],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 4, done.stderr[-800:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and "No space left on device" in lines[-1], lines
    (run_dir,) = [p for p in full_disk.iterdir() if p.is_dir()]
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["ended_at"] is None  # not presented as a finished run
    assert not (run_dir / "run.json.tmp").exists()
