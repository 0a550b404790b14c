"""The app's presigned upload flow against the simulator, over real HTTP on loopback (issue 17).

    ground truth   both variants (with base64, URL only) complete; presign_s, put_s and create_s are
                   within 25 ms of GET /_sim/tasks/{id}/upload (on a scenario whose presign and PUT take
                   tens of milliseconds, so a swapped or misplaced span cannot hide in the slack); t_s 0 is
                   the presign's start; the URL-only
                   variant shows the backend's extra first state, 15 % 音频已上传; one variant over the
                   fast transport (big runs), one over the httpx client
    slow-s3        3 probes on fast, 3 on slow-s3: `probes compare` names put_s a regression, not the rest
    forged/expired presign-broken (a stale signing secret) and a backend whose clock is two hours
                   behind (the URL expired when signed): upload_error naming the step and S3's code, exit 3,
                   and no signature on disk or on stdout/stderr
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from probes.analysis.timeline import shown_bar_fields
from probes.probe.run import run_probes
from probes.probe.options import RunOptions
from probes.sim.server import simulator_process

from .conftest import read_run

ROOT = Path(__file__).resolve().parents[2]
SLACK_S = 0.025
HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def targets(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(f'[targets.sim]\nbase_url = "{url}"\n{extra}\n')
    return path


def upload_truth(base_url: str, task_id: str) -> dict:
    return httpx.get(f"{base_url}/_sim/tasks/{task_id}/upload", trust_env=False).json()


def span(step: dict) -> float:
    return step["end_s"] - step["start_s"]


# fast's job, with an upload slow enough to measure: presign 40 ms, PUT 70 ms at time scale 0.1
SLOW_UPLOAD = """description = "fast, with a presign of 0.4 s and a PUT of 0.7 s"
[presigned]
presign = { s = 0.4 }
put = { s = 0.7 }
"""


@pytest.mark.parametrize("variant, extra, fast", [("base64", "", False),
                                                  ("url", "presigned_base64 = false", True)])
def test_presigned_phases_match_the_simulators_ground_truth(tmp_path, fixtures_dir, capsys, variant, extra, fast):
    (tmp_path / "slow-upload.toml").write_text(SLOW_UPLOAD)
    with simulator_process(str(tmp_path / "slow-upload.toml"), time_scale=0.1) as url:
        result = run_probes(RunOptions(target="sim", n=2, concurrency=2, cadence="fine", interval=0.05, no_slo=True, quiet=True,
                            targets_file=targets(tmp_path, url, extra), fixtures_dir=fixtures_dir,
                            out=tmp_path / "runs", fast=fast))
        truths = [upload_truth(url, r["task_id"]) for r in result.records]
        walls = [httpx.get(f"{url}/_sim/tasks/{r['task_id']}", trust_env=False).json()["t0_wall"]
                 for r in result.records]
    capsys.readouterr()
    meta, records = read_run(result.run_dir)
    assert result.code == 0 and meta["upload"] == {"flow": "presigned", "base64": variant == "base64"}
    for record, truth, wall in zip(records, truths, walls):
        assert (record["outcome"], record["upload"], record["failed_step"]) == ("completed", "presigned", None)
        assert truth["variant"] == variant and truth["put"]["status"] == 200 and truth["put"]["attempts"] == 1
        assert truth["put"]["bytes"] == meta["fixture"]["bytes"]
        assert span(truth["presign"]) >= 0.04 and span(truth["put"]) >= 0.07
        for key, step in (("presign_s", "presign"), ("put_s", "put"), ("create_s", "create")):
            # the probe's request, start to answer, holds the server's handling of it
            assert -1e-3 <= record[key] - span(truth[step]) <= SLACK_S, (key, record[key], truth[step])
        # the PUT ended when the server answered it: on the probe's clock, that many seconds before the create
        put_end = truth["put"]["end_s"] - truth["presign"]["start_s"]
        assert -1e-3 <= record["put_end_s"] - put_end <= SLACK_S, (record["put_end_s"], put_end)
        # t_s 0 is the presign's start: the create began (create.start_s = 0 on the simulator's clock) after
        # the presign, the PUT and the gaps between them, and the record's upload_s ends with the create
        create_start = record["upload_s"] - record["create_s"]
        steps = record["presign_s"] + record["put_s"] + record["create_s"]
        assert 0 <= record["upload_s"] - steps <= SLACK_S  # their sum, and the harness's gaps between them
        assert abs(create_start - (0.0 - truth["presign"]["start_s"])) <= SLACK_S, (create_start, truth)
        started = datetime.fromisoformat(record["started_at"].replace("Z", "+00:00")).timestamp()
        assert abs((wall - started) - create_start) <= SLACK_S  # the same, through the two wall clocks
        first = record["samples"][0]
        if variant == "url":  # the backend fetches the object first: its extra first state
            assert (first[2], first[4]) == (15, "音频已上传"), record["samples"][:3]
            assert truth["fetch"]["ok"] is True
        else:
            assert all(row[2] != 15 for row in record["samples"]), record["samples"][:3]
            assert truth["fetch"] is None
        assert record["shown_model"] and record["shown_done_s"] >= record["total_s"]
        # the bar was replayed from the record's own times, in scenario seconds (the run's time scale)
        replayed = shown_bar_fields(record["samples"], created_s=record["upload_s"], put_end_s=record["put_end_s"],
                                    time_scale=meta["time_scale"])
        assert {k: record[k] for k in replayed} == pytest.approx(replayed, abs=2e-6)


def test_slow_s3_makes_put_s_the_regression_in_compare(tmp_path, fixtures_dir, capsys):
    from probes.report.compare import run_compare

    runs = {}
    for scenario in ("fast", "slow-s3"):  # one seed: both jobs draw the same latencies, only the PUT differs
        with simulator_process(scenario, time_scale=0.1, seed=14) as url:
            runs[scenario] = run_probes(RunOptions(target="sim", n=3, concurrency=3, cadence="fine", interval=0.05, quiet=True,
                                        no_slo=True, targets_file=targets(tmp_path, url), fixtures_dir=fixtures_dir,
                                        out=tmp_path / "runs", label=scenario))
    assert all(r["outcome"] == "completed" for run in runs.values() for r in run.records)
    regression = run_compare(runs["fast"].run_dir, runs["slow-s3"].run_dir, out=tmp_path / "cmp")
    capsys.readouterr()
    verdicts = {m["metric"]: m["verdict"] for m in json.loads((tmp_path / "cmp" / "comparison.json").read_text())[
        "metrics"]}
    assert regression and verdicts["put_s"] == "regression", verdicts
    # the time went to the object PUT and nowhere else of the upload or the job
    assert {verdicts[m] for m in ("presign_s", "create_s", "transcription_s")} == {"no change"}, verdicts
    assert min(r["put_s"] for r in runs["slow-s3"].records) / 0.1 > 3.0  # ~3.3 scenario seconds for 41 KB


EXPIRED_SCENARIO = """# the backend's clock is two hours behind: every URL it signs expired an hour before it was made
description = "presigned URLs signed two hours in the past: every PUT 403 AccessDenied Request has expired"
[presigned]
clock_skew_s = -7200.0
"""


@pytest.mark.parametrize("scenario, error", [
    ("presign-broken", "object PUT: HTTP 403 SignatureDoesNotMatch"),
    ("expired", "object PUT: HTTP 403 AccessDenied (Request has expired)"),
])
def test_a_forged_or_expired_presigned_url_is_an_upload_error_exit_3(tmp_path, fixtures_dir, scenario, error):
    if scenario == "expired":
        (tmp_path / "expired.toml").write_text(EXPIRED_SCENARIO)
        scenario = str(tmp_path / "expired.toml")
    with simulator_process(scenario, time_scale=0.1) as url:
        proc = subprocess.run([sys.executable, "-m", "probes", "run", "--url", url, "--upload", "presigned", "-n", "2",
                               "--concurrency", "2", "--fixtures", str(fixtures_dir), "--out", str(tmp_path / "runs"),
                               "--cadence", "fine", "--interval", "0.05"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    meta, records = read_run(run_dir)
    assert [(r["outcome"], r["error"], r["failed_step"]) for r in records] == [("upload_error", error, "put")] * 2
    assert all(r["put_s"] is not None and r["create_s"] is None for r in records)
    # the presigned URL's query (its signature, its credential) is a secret: nowhere on disk or in the output
    for text in [proc.stdout, proc.stderr] + [p.read_text(errors="replace") for p in run_dir.rglob("*")
                                              if p.is_file()]:
        assert "X-Amz-" not in text and "SIMULATOR%2F" not in text and "SIMULATOR/" not in text
        assert set(HEX64.findall(text)) <= {meta["fixture"]["sha256"]}  # a signature is 64 hex characters
