"""Shared fixtures. `sim` starts real simulators on free loopback ports; `fixtures_dir` holds real audio.

    def test_something(sim):
        base_url = sim("stale-32", time_scale=0.1)   # "http://127.0.0.1:PORT"

Each call starts one more simulator (uvicorn in a thread); all stop at teardown.
Keyword arguments are those of `probes.sim.server.running_simulator`:
time_scale, require_auth, seed, port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from probes.fixtures.generate import generate_fixtures
from probes.sim.server import running_simulator


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default speech fixture (m4a) and the negative ones, generated once per test session."""
    out = tmp_path_factory.mktemp("fixtures")
    generate_fixtures(out_dir=out, durations=[5.0], formats=["m4a"], lang="en", voice="espeak", source=None)
    return out


@pytest.fixture
def sim() -> Iterator[Callable[..., str]]:
    """Factory: ``sim(scenario="fast", **kwargs) -> base_url``; stops every simulator it started."""
    with ExitStack() as stack:

        def start(scenario: str = "fast", **kwargs: Any) -> str:
            return stack.enter_context(running_simulator(scenario, **kwargs))

        yield start


SMALL_DISK = "64k"  # a few KB of records or report files fill it


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system of 64 KB (tmpfs) to run out of space on, unmounted at teardown.

    Mounting needs root (or CAP_SYS_ADMIN): elsewhere the test is skipped with the reason, which
    `-ra` prints in the summary.
    """
    if os.geteuid() != 0:
        pytest.skip("a full disk is a 64 KB tmpfs mount, which needs root; this user is not root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK},mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a full disk: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill `disk` until fewer than `leave` bytes are free (a tmpfs counts whole 4 KB pages)."""
    with open(disk / "filler", "wb", buffering=0) as f:
        while shutil.disk_usage(disk).free > leave:
            try:
                f.write(b"\0" * 4096)
            except OSError:
                break
