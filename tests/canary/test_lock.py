"""Two canaries of one target never overlap: a file lock beside SQLite, an advisory lock in PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from probes.canary.location import parse_history_url
from probes.canary.lock import canary_lock, lock_file
from probes.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]


def test_second_canary_of_a_target_is_refused(history_url: str) -> None:
    location = parse_history_url(history_url)
    with canary_lock(location, "prod"):
        with pytest.raises(UsageError) as err:
            with canary_lock(location, "prod"):
                pass
        assert str(err.value).startswith("another canary of target 'prod' is running")
        assert "\n" not in str(err.value) and "canary-pw" not in str(err.value)
        with canary_lock(location, "staging"):  # another target runs alongside
            pass
    with canary_lock(location, "prod"):  # released at the end of the block
        pass


def test_lock_is_released_when_the_block_raises(history_url: str) -> None:
    location = parse_history_url(history_url)
    with pytest.raises(RuntimeError):
        with canary_lock(location, "prod"):
            raise RuntimeError("probe crashed")
    with canary_lock(location, "prod"):
        pass


def test_lock_files_are_distinct_per_target(tmp_path: Path) -> None:
    history = tmp_path / "h.sqlite"
    assert lock_file(history, "a/b") != lock_file(history, "a-b")  # slugs collide, hashes do not
    assert lock_file(history, "../../etc/x").parent == tmp_path
    assert lock_file(history, "prod").name.startswith(".canary-prod-")


def test_the_cli_exits_2_with_one_line_while_another_canary_runs(history_url: str, tmp_path: Path) -> None:
    """A real second process, as cron would start it: exit 2, the message, and no probe sent."""
    targets = tmp_path / "targets.toml"
    targets.write_text('[targets.prod]\nbase_url = "http://127.0.0.1:9"\n')
    with canary_lock(parse_history_url(history_url), "prod"):
        proc = subprocess.run(
            [sys.executable, "-m", "probes", "canary", "--target", "prod", "--history", history_url,
             "--targets", str(targets), "--out", str(tmp_path / "runs")],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("probes: error: another canary of target 'prod' is running")
    assert proc.stderr.count("\n") == 1 and "canary-pw" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_symlink_in_place_of_the_lock_is_not_followed(tmp_path: Path) -> None:
    """Whoever can write the history's directory must not make the canary truncate a file elsewhere."""
    from probes.errors import NotRecorded

    history = tmp_path / "h.sqlite"
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    lock_file(history, "prod").symlink_to(victim)
    with pytest.raises(NotRecorded, match="is a symbolic link: not followed") as err:
        with canary_lock(parse_history_url(str(history)), "prod"):
            pass
    assert err.value.exit_code == 4 and "\n" not in str(err.value)
    assert victim.read_text() == "keep me\n"


def test_a_new_lock_file_is_private(tmp_path: Path) -> None:
    history = tmp_path / "h.sqlite"
    with canary_lock(parse_history_url(str(history)), "prod"):
        assert lock_file(history, "prod").stat().st_mode & 0o777 == 0o600
