"""Issue 13's acceptance: every cause scenario of the simulator gets its cause as "evidence for", and only it.

Each scenario runs on its own simulator on loopback (time scale 0.1, fine cadence), probed by the
real `probes run`; its run.json carries the diagnosis. Scenarios that need a baseline to show
anything (another build's step names) are diagnosed against a `fast` run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from probes.sim.server import simulator_process

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.1
EXPECTED = {  # scenario: (the one cause with evidence for it, extra `probes run` flags)
    "fast": (None, []),
    "stale-32": ("slow_transcription", []),
    "slow-whisper": ("slow_transcription", []),
    "stuck": ("slow_transcription", ["--timeout", "3"]),
    "stale-deploy": ("stale_deploy", ["--baseline", "BASELINE"]),
    "renamed-steps": ("stale_deploy", ["--baseline", "BASELINE"]),
    "cold-start": ("cold_start", ["--idle-before", "3.5", "--concurrency", "1"]),
    "rate-limited": ("rate_limiting", []),
    "multi-instance": ("lost_state", ["--concurrency", "1"]),  # 3 in step with the round robin keep to one
    "throttled-db": ("lost_state", []),
    "flaky": ("backend_errors", []),
    "fail-transcription": ("backend_errors", []),
    "slow-visibility": ("frontend_polling", []),
}


def probe(scenario: str, out: Path, fixtures: Path, *extra: str) -> dict:
    with simulator_process(scenario, time_scale=SCALE) as url:
        cmd = [sys.executable, "-m", "probes", "run", "--url", url, "-n", "3", "--concurrency", "3", "--cadence",
               "fine", "--interval", "0.05", "--no-slo", "--label", scenario, "--fixtures", str(fixtures),
               "--out", str(out), "--quiet", *extra]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    return {"run_dir": run_dir, "meta": json.loads((run_dir / "run.json").read_text()), "stderr": proc.stderr}


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory, fixtures_dir) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("diagnosis")
    baseline = probe("fast", out / "baseline", fixtures_dir)["run_dir"]

    def one(scenario: str) -> tuple[str, dict]:
        flags = [str(baseline) if f == "BASELINE" else f for f in EXPECTED[scenario][1]]
        return scenario, probe(scenario, out / scenario, fixtures_dir, *flags)

    with ThreadPoolExecutor(3) as pool:  # three simulators and three runs at a time on two cores
        return dict(pool.map(one, EXPECTED))


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_each_cause_scenario_names_its_cause_and_only_it(diagnosed, scenario):
    run = diagnosed[scenario]
    findings = run["meta"]["diagnosis"]
    assert [f["cause"] for f in findings] == ["stale_deploy", "slow_transcription", "cold_start", "rate_limiting",
                                               "lost_state", "backend_errors", "frontend_polling"]
    assert all(set(f) == {"cause", "verdict", "evidence", "next"} for f in findings)
    named = [f["cause"] for f in findings if f["verdict"] == "for"]
    expected = EXPECTED[scenario][0]
    assert named == ([expected] if expected else []), json.dumps(findings, ensure_ascii=False, indent=1)
    if expected:
        assert "Diagnosis" in run["stderr"] and expected in run["stderr"]


def test_the_numbers_behind_the_verdicts(diagnosed):
    by = {s: {f["cause"]: f for f in d["meta"]["diagnosis"]} for s, d in diagnosed.items()}
    stale = by["stale-32"]["slow_transcription"]
    assert stale["evidence"]["p90_s"] > 40 and stale["evidence"]["longest_stall_at"] == 32
    assert stale["evidence"]["stall_in_transcription_band"] and stale["evidence"]["climbed_to"] == 32
    assert "froze at 32 %" in stale["next"]
    whisper = by["slow-whisper"]["slow_transcription"]  # the real backend's slow Whisper: a climb, then 55 %
    assert whisper["evidence"]["climbed_to"] == 55 and whisper["evidence"]["stall_in_transcription_band"]
    assert "climbed to 55 %" in whisper["next"] and "Whisper's latency" in whisper["next"]
    assert by["cold-start"]["cold_start"]["evidence"]["first_upload_s"] > 5  # the 6 s cold start
    assert by["multi-instance"]["lost_state"]["evidence"]["instances"] == 3
    assert by["throttled-db"]["lost_state"]["evidence"]["not_found_after_seen"] > 0
    assert by["rate-limited"]["rate_limiting"]["evidence"]["polls_429"] > 0
    assert by["slow-visibility"]["frontend_polling"]["evidence"]["app_would_give_up"] == 3
    assert by["stale-deploy"]["stale_deploy"]["evidence"]["baseline_version"] != \
        by["stale-deploy"]["stale_deploy"]["evidence"]["version"]
