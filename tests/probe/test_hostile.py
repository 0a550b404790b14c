"""A hostile or broken backend never crashes a run, loses a probe, runs unbounded or leaks a secret.

Every test runs the real `probes run` (a child process, so its peak memory and exit code are its
own) against a scripted server on loopback (tests/servers). Acceptance of issue 11: peak memory
of `probes run -n 2` against a gzip bomb and an endless body stays under 300 MB; an upload
answered at 1 byte/s ends within --timeout + 5 s. The bound here is tighter than that acceptance:
measured peaks are 52-59 MB (README: ~60 MB), and a decoder that inflates a whole chunk before
counting it reaches ~180 MB, which 300 MB would let through.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import SCRIPTS, Step, flow, hostile, scripted_server
from tests.servers.scripts import HEALTHY_POLLS

ROOT = Path(__file__).resolve().parents[2]
PEAK_MB = 120  # twice the measured peak: room for another interpreter, none for an unbounded decode
TOKEN = "tok-9f3c1d7e5b2a-SECRET"


def probes_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "probes", *args]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "probes.jsonl").read_text().splitlines()]


# A small wrapper process starts the command and reports its children's peak RSS: measured from
# pytest itself, the fork before exec would count pytest's own memory as the child's.
PEAK_WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                "print(f'PEAK_KB {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', file=sys.stderr); "
                "sys.exit(r.returncode)")


def measured(cmd: list[str], timeout: float = 90) -> tuple[int, str, str, float]:
    """(exit code, stdout, stderr, peak RSS in MB) of `cmd`, bounded by `timeout`."""
    proc = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *cmd], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    err, _, peak = proc.stderr.rpartition("PEAK_KB ")
    return proc.returncode, proc.stdout, err, int(peak.strip() or 0) / 1024


def probe_args(url: str, tmp_path: Path, fixtures: Path, *extra: str) -> list[str]:
    return probes_cmd("run", "--url", url, "--fixtures", str(fixtures), "--out", str(tmp_path / "runs"), "--quiet",
                      "--no-slo", *extra)


def run_dir_of(out: str) -> Path:
    return Path(out.strip().splitlines()[-1])


@pytest.mark.parametrize("script", ["gzip-bomb", "endless-body", "huge-body"])
def test_huge_answers_stay_within_memory_and_every_probe_is_on_disk(script, tmp_path, fixtures_dir):
    with scripted_server(SCRIPTS[script]) as base:
        code, out, err, peak = measured(probe_args(base, tmp_path, fixtures_dir, "-n", "2", "--cadence", "fine",
                                                   "--interval", "0.05", "--timeout", "20"))
    assert code == 0, err[-2000:]
    assert "Traceback" not in err
    print(f"{script}: peak RSS {peak:.0f} MB")
    assert peak < PEAK_MB, f"peak RSS {peak:.0f} MB"
    recs = records(run_dir_of(out))
    assert len(recs) == 2 and {r["outcome"] for r in recs} == {"completed"}
    # the hostile answer is one classified poll error in each probe, not a crash
    assert all(sum(1 for s in r["samples"] if s[1] is None) >= 1 for r in recs)


def test_an_upload_answered_at_one_byte_a_second_ends_within_the_timeout(tmp_path, fixtures_dir):
    script = flow(HEALTHY_POLLS, upload=[hostile.trickle_step(rate_bps=1, body={"task_id": "t" * 40})])
    with scripted_server(script) as base:
        started = time.monotonic()
        code, out, err, _ = measured(probe_args(base, tmp_path, fixtures_dir, "-n", "1", "--timeout", "3"))
        took = time.monotonic() - started
    assert took < 3 + 5, took
    (rec,) = records(run_dir_of(out))
    assert rec["outcome"] == "upload_error" and rec["error"].startswith("Timeout")
    assert code == 3  # no probe got past the upload


def test_a_hanging_health_is_bounded_and_sigterm_there_is_130_with_the_run_directory(tmp_path, fixtures_dir):
    script = flow(HEALTHY_POLLS, health=[hostile.hang_step()])
    with scripted_server(script) as base:
        proc = subprocess.Popen(probe_args(base, tmp_path, fixtures_dir, "-n", "1"), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 20
        while not any((tmp_path / "runs").glob("*/run.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # inside the /health request
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    run_dir = run_dir_of(out)
    assert json.loads((run_dir / "run.json").read_text())["ended_at"]
    # without a signal the same run is bounded: /health gives up after 5 s and the probes go on
    with scripted_server(script) as base:
        started = time.monotonic()
        code, out, err, _ = measured(probe_args(base, tmp_path, fixtures_dir, "-n", "1", "--cadence", "fine",
                                                "--interval", "0.05"))
    assert code == 0 and time.monotonic() - started < 20, err[-2000:]
    meta = json.loads((run_dir_of(out) / "run.json").read_text())
    assert meta["fingerprint"]["health_status"] is None and "Timeout" in meta["fingerprint"]["health_error"]


def test_nested_health_and_odd_ids_are_data_and_reports_still_work(tmp_path, fixtures_dir):
    script = flow(HEALTHY_POLLS, health=[hostile.nested_json_step()])
    with scripted_server(script) as base:
        code, out, err, _ = measured(probe_args(base, tmp_path, fixtures_dir, "-n", "1", "--cadence", "fine",
                                                "--interval", "0.05"))
    assert code == 0, err[-2000:]
    run_dir = run_dir_of(out)
    health = json.loads((run_dir / "run.json").read_text())["fingerprint"]["health"]
    assert isinstance(health, str) and health.startswith("[[[[") and len(health) <= 1000  # clipped text
    results = {}
    for command in (["report", str(run_dir), "--out", str(tmp_path / "report")],
                    ["compare", str(run_dir), str(run_dir)]):
        proc = subprocess.run(probes_cmd(*command), cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        # exit 0: a usage error (2) here would mean the run directory it wrote cannot be read back
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        results[command[0]] = proc.stdout
    assert Path(results["report"].strip()) == tmp_path / "report" / "report.html"
    assert "[[[[" in (tmp_path / "report" / "report.html").read_text()  # the clipped health, shown as text
    assert "no verdict: too few probes" in results["compare"]  # one probe a side: compared, no verdict


@pytest.mark.parametrize("kind", sorted(hostile.WEIRD_IDS))
def test_unsafe_ids_never_reach_a_url(kind, tmp_path, fixtures_dir):
    targets = tmp_path / "targets.toml"
    for which in ("task", "diary"):
        with scripted_server(SCRIPTS[f"{which}-id-{kind}"]) as base:
            targets.write_text(f'[targets.t]\nbase_url = "{base}"\ncleanup = true\nupload = "multipart"\n')
            code, out, err, _ = measured(probes_cmd(
                "run", "--target", "t", "--targets", str(targets), "--fixtures", str(fixtures_dir), "--out",
                str(tmp_path / "runs"), "--quiet", "--no-slo", "-n", "1", "--cadence", "fine", "--interval", "0.05"))
            paths = [r.target for r in base.requests]
        assert "Traceback" not in err, err[-2000:]
        (rec,) = records(run_dir_of(out))
        weird = hostile.WEIRD_IDS[kind]
        assert not any(weird in p or "admin" in p or "account" in p for p in paths), paths
        if which == "task":
            assert rec["outcome"] == "upload_error" and "not a safe id" in rec["error"]
        else:
            assert rec["outcome"] == "completed" and rec["cleanup"] == "failed"
            assert not any(p.startswith("/diary/") and "voice" not in p for p in paths)


def test_a_backend_echoing_the_token_never_gets_it_on_disk(tmp_path, fixtures_dir):
    """/health (asked for with the token) and every poll echo the token back: none of it is written."""
    targets = tmp_path / "targets.toml"
    with scripted_server(SCRIPTS["echo-token"]) as base:
        targets.write_text(f'[targets.t]\nbase_url = "{base}"\ntoken_env = "PROBES_T"\nhealth_auth = true\n'
                           'upload = "multipart"\n')
        os.environ["PROBES_T"] = TOKEN
        try:
            code, out, err, _ = measured(probes_cmd(
                "run", "--target", "t", "--targets", str(targets), "--fixtures", str(fixtures_dir), "--out",
                str(tmp_path / "runs"), "--no-slo", "-n", "1", "--cadence", "fine", "--interval", "0.05"))
        finally:
            del os.environ["PROBES_T"]
        health_tokens = [r.token for r in base.of("health")]
    assert code == 0, err[-2000:]
    assert health_tokens == [TOKEN]  # asked for, so sent: and still never written
    run_dir = run_dir_of(out)
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path
    assert TOKEN not in out + err
    # and by default /health goes without the token
    with scripted_server(SCRIPTS["echo-token"]) as base:
        targets.write_text(f'[targets.t]\nbase_url = "{base}"\ntoken_env = "PROBES_T"\nupload = "multipart"\n')
        measured(probes_cmd("run", "--target", "t", "--targets", str(targets), "--fixtures", str(fixtures_dir),
                            "--out", str(tmp_path / "runs"), "--no-slo", "-n", "1", "--cadence", "fine"))
        assert [r.token for r in base.of("health")] in ([], [None])


def test_markup_in_step_names_and_labels_on_a_terminal(tmp_path, fixtures_dir):
    """A rich MarkupError used to crash an interactive run with 0 probes written."""
    polls = [Step(s.status, {**s.body, "step_name": "[/bold] unbalanced [red \x1b[31m"})
             if isinstance(s.body, dict) and s.body.get("status") == "processing" else s for s in HEALTHY_POLLS]
    with scripted_server(flow(polls)) as base:
        cmd = probes_cmd("run", "--url", base, "--fixtures", str(fixtures_dir), "--out", str(tmp_path / "runs"),
                         "--no-slo", "-n", "2", "--label", "[/]", "--cadence", "fine", "--interval", "0.05")
        leader, follower = pty.openpty()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=follower, stdout=follower, stderr=follower,
                                env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "120"})
        os.close(follower)
        screen = b""
        while True:
            try:
                ready, _, _ = select.select([leader], [], [], 30)
                if not ready:
                    break
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        proc.wait(timeout=30)
        os.close(leader)
    text = screen.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text and "MarkupError" not in text
    assert "[/]" in text  # the label printed as itself
    run_dir = Path([line for line in text.splitlines() if "/runs/" in line][-1].strip())
    assert len(records(run_dir)) == 2


@pytest.mark.parametrize("args, message", [
    (["--milestones", "nan"], "whole numbers"),
    (["--milestones", "32.5"], "whole numbers"),
    (["--url", "http://127.0.0.1:abc"], "numeric port"),
    (["--url", "http://user:hunter2@127.0.0.1:9"], "must not carry a user or password"),
    (["--url", "http://127.0.0.1:9/x?token=1"], "plain base URL"),
])
def test_bad_flags_are_one_line_errors(args, message, tmp_path, fixtures_dir):
    cmd = ["run", "--fixtures", str(fixtures_dir), "--out", str(tmp_path / "runs"), "-n", "1"]
    if "--url" not in args:
        cmd += ["--url", "http://127.0.0.1:9"]
    proc = subprocess.run(probes_cmd(*cmd, *args), cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "hunter2" not in proc.stderr + proc.stdout
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_health_claiming_an_absurd_time_scale_rescales_nothing(tmp_path, fixtures_dir):
    health = Step(200, {"status": "healthy", "simulator": {"scenario": "x", "time_scale": 1e-300}})
    with scripted_server(flow(HEALTHY_POLLS, health=[health])) as base:
        code, out, err, _ = measured(probe_args(base, tmp_path, fixtures_dir, "-n", "1", "--cadence", "fine",
                                                "--interval", "0.05"))
    meta = json.loads((run_dir_of(out) / "run.json").read_text())
    assert code == 0 and meta["time_scale"] is None, err[-2000:]
