"""The guard: which targets may take load, and how much. Pure checks first, then the real entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from probes.config import Target
from probes.errors import UsageError
from probes.load.guard import check_load

from .conftest import ROOT, run_load, write_targets

LOCAL = dict(name="local", base_url="http://127.0.0.1:8765", allow_load=True)
REMOTE = dict(name="staging", base_url="https://staging.example.invalid", allow_load=True)


@pytest.mark.parametrize("fields, users, rate, host", [
    (LOCAL, 500, 100.0, None),                                    # loopback: no bounds needed
    ({**LOCAL, "max_users": 3}, 3, None, "http://127.0.0.1:8765/"),  # exactly at its own bound, same origin
    ({**REMOTE, "max_users": 10, "max_rate": 2.0}, 10, 2.0, None),  # exactly at both bounds
    ({**REMOTE, "max_users": 10, "max_rate": 2.0}, 1, None, "https://STAGING.example.invalid:443"),
])
def test_allowed_loads_pass_up_to_their_bounds(fields, users, rate, host) -> None:
    """Each row is one step from a refusal below (one user or 0.5 flow/s more, another host)."""
    assert check_load(Target(**fields), users=users, rate=rate, host=host) is None


@pytest.mark.parametrize("fields, users, rate, reason", [
    ({**LOCAL, "allow_load": False}, 1, None, "refuses load: set allow_load = true in [targets.local]"),
    (REMOTE, 1, None, "is not on loopback: set max_users and max_rate"),
    ({**REMOTE, "max_users": 10}, 1, None, "is not on loopback: set max_users and max_rate"),
    ({**REMOTE, "max_users": 10, "max_rate": 2.0}, 11, None, "11 users exceed targets.staging.max_users = 10"),
    ({**REMOTE, "max_users": 10, "max_rate": 2.0}, 10, 2.5, "2.5 flows/s exceed targets.staging.max_rate = 2"),
    ({**LOCAL, "max_users": 3}, 4, None, "4 users exceed targets.local.max_users = 3"),
])
def test_refusals_name_the_key_to_change(fields, users, rate, reason) -> None:
    with pytest.raises(UsageError, match=reason.replace("[", r"\[").replace(".", r"\.")):
        check_load(Target(**fields), users=users, rate=rate)


def test_make_load_refuses_a_target_without_allow_load(tmp_path, load_fixtures) -> None:
    targets = write_targets(tmp_path / "targets.toml", "prod", "https://api.example.invalid", allow_load=False)
    run = run_load("--target", "prod", "--targets", str(targets), "--fixtures", str(load_fixtures),
                   "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert run.code == 2
    assert run.stderr.strip().splitlines() == [
        "probes: error: target 'prod' refuses load: set allow_load = true in [targets.prod] to allow it"]
    assert not (tmp_path / "out").exists(), "nothing was started or written"


def test_make_load_refuses_a_non_loopback_target_without_bounds(tmp_path, load_fixtures) -> None:
    targets = write_targets(tmp_path / "targets.toml", "staging", "https://staging.example.invalid", allow_load=True)
    run = run_load("--target", "staging", "--users", "5", "--targets", str(targets), "--fixtures",
                   str(load_fixtures), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert run.code == 2
    assert run.stderr.strip().splitlines() == [
        "probes: error: target 'staging' is not on loopback: set max_users and max_rate in [targets.staging]"]


def test_make_load_refuses_more_than_max_rate(tmp_path, load_fixtures) -> None:
    targets = write_targets(tmp_path / "targets.toml", "staging", "https://staging.example.invalid",
                            allow_load=True, max_users=5, max_rate=1.0)
    run = run_load("--target", "staging", "--users", "5", "--model", "open", "--rate", "3", "--targets",
                   str(targets), "--fixtures", str(load_fixtures), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert run.code == 2
    assert "3 flows/s exceed targets.staging.max_rate = 1" in run.stderr
    assert "Traceback" not in run.stderr


def test_plain_locust_refuses_too(tmp_path, load_fixtures) -> None:
    """The guard also holds for `locust -f locustfile.py` typed by hand: exit 2 before any request."""
    targets = write_targets(tmp_path / "targets.toml", "prod", "https://api.example.invalid", allow_load=False)
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "-u", "1", "-t", "2s",
         "--probes-target", "prod", "--probes-targets-file", str(targets), "--probes-fixtures-dir",
         str(load_fixtures), "--probes-out", str(tmp_path / "out")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "probes: error: target 'prod' refuses load" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True),
                                             ("localhost", True), ("127.attacker.invalid", False),
                                             ("10.0.0.1", False), ("api.thankly.app", False)])
def test_loopback_is_decided_on_the_resolved_address(host, loopback) -> None:
    from probes.config import is_loopback_host

    assert is_loopback_host(host) is loopback


def test_the_host_in_use_must_be_the_targets() -> None:
    target = Target(**LOCAL)
    check_load(target, users=1, rate=None, host="http://127.0.0.1:8765/")
    with pytest.raises(UsageError, match="is not targets.local.base_url"):
        check_load(target, users=1, rate=None, host="https://api.thankly.app")


def test_plain_locust_with_another_host_is_refused(tmp_path, load_fixtures) -> None:
    """`--probes-target local --host https://api.thankly.app` used to pass the guard and send load to prod."""
    targets = write_targets(tmp_path / "targets.toml", "local", "http://127.0.0.1:8765", allow_load=True)
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "-u", "1", "-t", "2s",
         "--host", "https://api.thankly.app", "--probes-target", "local", "--probes-targets-file", str(targets),
         "--probes-fixtures-dir", str(load_fixtures), "--probes-out", str(tmp_path / "out")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "is not targets.local.base_url" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_max_users_holds_at_spawn_time_whoever_spawns(tmp_path) -> None:
    """The bound is checked when each user starts, not only before the run: the web UI cannot exceed it."""
    from tests.servers import scripted_process

    record = tmp_path / "requests.jsonl"
    with scripted_process("stuck", record=record) as url:
        proc = subprocess.run([sys.executable, "-m", "tests.load.spawn_guard", url, "5", "2", "1.5"], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                              timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"active": 2}
    uploads = [line for line in record.read_text().splitlines() if '"upload"' in line]
    assert len(uploads) == 2, uploads
