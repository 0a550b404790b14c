"""The deploy gate (issue 9): SLOs that can fail, a verdict at 3 probes a side, the baseline found by
label, tokens refreshed on a 401, cleanup that leaves nothing behind, requests that say who they are."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from probes import __version__
from probes.probe.run import run_probes
from probes.probe.options import RunOptions
from probes.sim.server import simulator_process
from tests.servers import SCRIPTS, scripted_server

ROOT = Path(__file__).resolve().parents[2]


MULTIPART = 'upload = "multipart"'  # the scripted servers' flow (tests/servers)


def write_targets(path: Path, url: str, extra: str = "") -> Path:
    path.write_text(f'[targets.t]\nbase_url = "{url}"\n{extra}\n', encoding="utf-8")
    return path


def test_slos_fail_the_run_and_land_in_run_json(tmp_path, fixtures_dir, capsys):
    with simulator_process("stale-32", time_scale=0.1) as url:
        targets = write_targets(tmp_path / "targets.toml", url)
        result = run_probes(RunOptions(target="t", n=3, concurrency=3, cadence="fine", interval=0.05, targets_file=targets,
                            fixtures_dir=fixtures_dir, out=tmp_path / "runs", quiet=True))
    err = capsys.readouterr().err
    assert result.code == 1
    slo = json.loads((result.run_dir / "run.json").read_text())["slo"]
    assert slo["ok"] is False and slo["source"] == "defaults"
    by = {r["metric"]: r for r in slo["results"]}
    assert set(by) == {"total_s", "shown_held_32_s", "transcription_s", "completed"}  # the bar, not dwell_32
    assert all(set(r) >= {"metric", "stat", "threshold", "value", "n", "ok"} for r in slo["results"])
    assert by["total_s"]["value"] > 50 and not by["total_s"]["ok"]  # in scenario seconds (time scale 0.1)
    assert by["completed"]["ok"] and by["total_s"]["note"] == "p90 of 3 probes is the max"
    assert "SLOs (defaults): BROKEN" in err and "p90 of 3 probes is the max" in err


def test_slo_file_override_and_no_slo(tmp_path, fixtures_dir, capsys):
    loose = tmp_path / "loose.toml"
    loose.write_text("[slo]\ntotal_s = { p90 = 100 }\ncompleted = { rate = 1.0 }\n")
    with simulator_process("stale-32", time_scale=0.05) as url:
        common = dict(target=None, url=url, n=3, concurrency=3, cadence="fine", interval=0.05,
                      fixtures_dir=fixtures_dir, out=tmp_path / "runs", quiet=True)
        assert run_probes(RunOptions(**common, slo_file=loose)).code == 0
        skipped = run_probes(RunOptions(**common, no_slo=True))
    assert skipped.code == 0 and "slo" not in json.loads((skipped.run_dir / "run.json").read_text())


@pytest.mark.parametrize("table, message", [
    ("total_s = { p95 = 15 }", "targets.t.slo: total_s.p95: unknown statistic"),
    ("totl_s = { p90 = 15 }", "targets.t.slo: totl_s: unknown metric"),
    ("total_s = { p90 = -1 }", "targets.t.slo: total_s.p90: the threshold must be > 0"),
    ("completed = { rate = 2 }", "targets.t.slo: completed.rate: a rate is a share between 0 and 1"),
])
def test_a_bad_slo_is_exit_2_naming_the_file_and_key(tmp_path, table, message):
    targets = write_targets(tmp_path / "targets.toml", "http://127.0.0.1:9", f"[targets.t.slo]\n{table}")
    proc = subprocess.run([sys.executable, "-m", "probes", "run", "--target", "t", "--targets", str(targets)],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and f"{targets}: {message}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_three_probes_a_side_catch_the_incident_and_not_noise(tmp_path, fixtures_dir, capsys):
    """Acceptance 3: fast vs stale-32 at 3 probes a side is a regression (exit 1); fast vs fast is not."""
    out = tmp_path / "runs"
    # fast at half speed: at 0.1 a busy machine's 50 ms between two runs would be the 0.5 s threshold itself
    with simulator_process("fast", time_scale=0.5) as fast, simulator_process("stale-32", time_scale=0.1) as stale:
        targets = tmp_path / "targets.toml"
        common = dict(target="t", n=3, concurrency=3, cadence="fine", targets_file=targets,
                      fixtures_dir=fixtures_dir, out=out, quiet=True, no_slo=True)
        write_targets(targets, fast)
        before = run_probes(RunOptions(**common, interval=0.15, label="before-deploy"))
        again = run_probes(RunOptions(**common, interval=0.15, label="after-deploy", baseline="latest:before-deploy"))
        write_targets(targets, stale)
        after = run_probes(RunOptions(**common, interval=0.03, label="after-deploy", baseline="latest:before-deploy"))
    err = capsys.readouterr().err
    assert before.code == 0 and again.code == 0, err[-3000:]
    assert after.code == 1, err[-3000:]
    assert f"baseline: {before.run_dir}" in err  # latest:before-deploy found the right run
    comparison = json.loads((after.run_dir / "comparison.json").read_text())
    assert comparison["verdict"] == "regression" and comparison["baseline"] == before.run_dir.name
    total = next(m for m in comparison["metrics"] if m["metric"] == "total_s")
    assert total["method"] == "separation" and total["verdict"] == "regression"
    # the same build again is "no change": neither a false alarm nor a chance "improvement"
    same = json.loads((again.run_dir / "comparison.json").read_text())
    assert same["verdict"] == "no change", same["reason"]
    assert next(m for m in same["metrics"] if m["metric"] == "total_s")["method"] == "separation"


def test_no_baseline_yet_is_a_note_not_a_failure(tmp_path, fixtures_dir, capsys):
    with simulator_process("fast", time_scale=0.1) as url:
        result = run_probes(RunOptions(target=None, url=url, n=1, cadence="fine", interval=0.05, fixtures_dir=fixtures_dir,
                            out=tmp_path / "runs", quiet=True, baseline="latest:before-deploy"))
    assert result.code == 0
    assert "no baseline run (latest:before-deploy) of this target yet" in capsys.readouterr().err


@pytest.mark.parametrize("cleanup", [True, False])
def test_cleanup_leaves_the_probe_user_no_diaries(tmp_path, fixtures_dir, capsys, cleanup):
    with simulator_process("fast", time_scale=0.1, require_auth=True) as url:
        targets = write_targets(tmp_path / "targets.toml", url,
                                f'token_env = "PROBES_T"\ncleanup = {str(cleanup).lower()}')
        os.environ["PROBES_T"] = "probe-user-1"
        try:
            result = run_probes(RunOptions(target="t", n=3, concurrency=3, cadence="fine", interval=0.05, targets_file=targets,
                                fixtures_dir=fixtures_dir, out=tmp_path / "runs", quiet=True, no_slo=True))
        finally:
            del os.environ["PROBES_T"]
        left = httpx.get(f"{url}/diary/list", headers={"Authorization": "Bearer probe-user-1"}).json()
    err = capsys.readouterr().err
    assert result.code == 0
    if cleanup:
        assert left == [] and all(r["cleanup"] == "deleted" for r in result.records)
        assert "cleanup: 3 deleted, 0 left" in err
    else:
        assert len(left) == 3 and all(r["cleanup"] is None for r in result.records)
        assert {d["diary_id"] for d in left} == {r["diary_id"] for r in result.records}


def test_a_401_mid_run_refreshes_the_token_once_and_repeats_the_request(tmp_path, fixtures_dir):
    """The app refreshes on a 401 and repeats; so does the probe (token_command gives a new token each time)."""
    counter = tmp_path / "count"
    helper = tmp_path / "token.sh"
    helper.write_text(f'#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > {counter}\n'
                      f'echo "token-$n"\n')
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    with scripted_server(SCRIPTS["auth-expiry"]) as base:
        targets = write_targets(tmp_path / "targets.toml", base, f'token_command = "{helper}"\n{MULTIPART}')
        result = run_probes(RunOptions(target="t", n=1, cadence="fine", interval=0.05, targets_file=targets,
                            fixtures_dir=fixtures_dir, out=tmp_path / "runs", quiet=True, no_slo=True))
        tokens = [r.token for r in base.of("poll")]
        agents = {(r.header("user-agent"), r.header("x-user-name")) for r in base.requests}
    (record,) = result.records
    assert record["outcome"] == "completed" and record["refreshes"] == 1
    assert tokens[:3] == ["token-1"] * 3 and tokens[3] == "token-1" and set(tokens[4:]) == {"token-2"}
    assert agents == {(f"probes/{__version__}", "Probe")}  # backend logs can tell synthetic traffic apart
    for path in result.run_dir.rglob("*"):
        if path.is_file():
            assert "token-1" not in path.read_text(errors="replace") and "token-2" not in path.read_text(
                errors="replace")


def test_a_second_401_is_an_auth_error_exit_3(tmp_path, fixtures_dir):
    """The same token after a refresh (the variable did not change): the probe gives up as the app would."""
    with scripted_server(SCRIPTS["auth-expiry"]) as base:
        targets = write_targets(tmp_path / "targets.toml", base, f'token_env = "PROBES_T"\n{MULTIPART}')
        os.environ["PROBES_T"] = "stale-token"
        try:
            result = run_probes(RunOptions(target="t", n=1, cadence="fine", interval=0.05, targets_file=targets,
                                fixtures_dir=fixtures_dir, out=tmp_path / "runs", quiet=True, no_slo=True))
        finally:
            del os.environ["PROBES_T"]
    (record,) = result.records
    assert record["outcome"] == "auth_error" and record["error"] == "HTTP 401 on progress"
    assert record["refreshes"] == 1 and result.code == 3


def test_version_flag():
    proc = subprocess.run([sys.executable, "-m", "probes", "--version"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and proc.stdout.strip() == f"probes {__version__}"
