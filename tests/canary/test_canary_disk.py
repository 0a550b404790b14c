"""A full disk is "could not record" (exit 4, one line), never "SLO broken" or a traceback, and leaves nothing
half-written. The disk is a real tmpfs of 1 MiB filled to the last byte: mounting one needs root, so as
another user these tests are skipped loudly (a warning and a line at the end of the run).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from probes.canary.command import run_canary
from probes.errors import NotRecorded
from probes.canary.location import parse_history_url
from probes.canary.lock import canary_lock
from tests.canary.conftest import write_run
from tests.canary.services import free_port, loud_skip

TMPFS_SIZE = "1m"  # holds a fresh history (about 60 KB with its WAL) with room to spare until it is filled


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0:
        loud_skip("a full disk needs a tmpfs, and mounting one needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        loud_skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(mount: Path) -> Path:
    """Fill the file system to the last byte (a real ENOSPC for whoever writes next)."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def canary_cli(tmp_path: Path, fixtures_dir: Path, *args: str) -> subprocess.CompletedProcess:
    targets = tmp_path / "targets.toml"
    targets.write_text(f'[targets.svc]\nbase_url = "http://127.0.0.1:{free_port()}"\n')
    return subprocess.run([sys.executable, "-m", "probes", "canary", "--target", "svc", "-n", "1",
                           "--targets", str(targets), "--fixtures", str(fixtures_dir), *args],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


def rows(history: Path) -> tuple[int, str]:
    with sqlite3.connect(history) as conn:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0], conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_a_full_disk_under_the_history_is_exit_4_in_one_line(tmpfs, tmp_path, fixtures_dir) -> None:
    history = tmpfs / "history.sqlite"
    first = canary_cli(tmp_path, fixtures_dir, "--history", str(history), "--out", str(tmp_path / "runs"))
    assert first.returncode == 3, first.stderr  # recorded: the target is down
    filler = fill(tmpfs)
    full = canary_cli(tmp_path, fixtures_dir, "--history", str(history), "--out", str(tmp_path / "runs"))
    assert full.returncode == 4, full.stderr
    assert full.stderr.strip().splitlines()[-1].startswith(f"probes: error: could not record in history {history}: ")
    assert "Traceback" not in full.stderr
    filler.unlink()
    assert rows(history) == (1, "ok")  # the first run whole, nothing of the second


def test_the_disk_filling_up_during_the_probes(tmpfs, tmp_path, fixtures_dir) -> None:
    """The store opened and the lock taken on a disk with room; by the time the run is recorded it is full."""
    history = tmpfs / "history.sqlite"
    filled: list[Path] = []

    class Result:
        code = 0
        run_dir = write_run(tmp_path / "runs", "20261126T090000Z-svc-canary-0001", target="svc")

    def probes_that_fill_the_disk(options):
        filled.append(fill(tmpfs))
        return Result()

    with pytest.raises(NotRecorded) as err:
        run_canary(target="svc", history=str(history), out=tmp_path / "runs", probe_runner=probes_that_fill_the_disk,
                   textfile=tmp_path / "m.prom")
    assert err.value.exit_code == 4 and "\n" not in str(err.value)
    assert str(err.value).startswith(f"could not record in history {history}: ")
    assert not (tmp_path / "m.prom").exists()  # nothing after the history was attempted as if it had worked
    filled[0].unlink()
    assert rows(history) == (0, "ok")
    with canary_lock(parse_history_url(str(history)), "svc"):  # released
        pass


@pytest.mark.parametrize("where", ["--out", "--textfile"])
def test_a_full_disk_under_the_run_directory_or_the_textfile(where, tmpfs, tmp_path, fixtures_dir) -> None:
    history = tmp_path / "history.sqlite"
    out = tmpfs / "runs" if where == "--out" else tmp_path / "runs"
    args = ["--history", str(history), "--out", str(out)]
    if where == "--textfile":
        args += ["--textfile", str(tmpfs / "probes.prom")]
    fill(tmpfs)
    proc = canary_cli(tmp_path, fixtures_dir, *args)
    assert proc.returncode == 4, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    if where == "--out":
        assert last.startswith(f"probes: error: could not record {out}") and last.endswith(": No space left on device")
        assert rows(history)[0] == 0
    else:
        assert last == f"probes: error: cannot write metrics textfile {tmpfs / 'probes.prom'}: No space left on device"
        assert rows(history)[0] == 1  # the run is in the history; only the textfile is missing
        assert [p.name for p in tmpfs.iterdir()] == ["filler"]  # no temp file left behind
