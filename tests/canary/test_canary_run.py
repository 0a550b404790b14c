"""`probes canary` end to end: real simulators, a real history (SQLite and PostgreSQL), a webhook receiver
on loopback, a real Pushgateway and a textfile.

The acceptance sequence of issue 10 (fast, fast, stale-32 x3, fast, fast) is judged by `probes run`'s SLO
evaluation (run.json `slo`). The same alert path is also driven by a target that goes down and comes back
(exit 3).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from probes.canary.command import exit_code, run_canary
from probes.canary.history import open_history
from probes.canary.summary import summarise_run
from tests.canary.conftest import probe_record, write_run
from tests.canary.services import PG_PASSWORD, free_port, scrape

ROOT = Path(__file__).resolve().parents[2]
# stale-32's ~62 s become ~3.1 s and fast's ~9 s ~0.5 s; polls one scenario second apart. At 0.03 a cold
# first upload (the simulator's first multipart parse) weighed 3 scenario seconds and broke a fast run's SLO.
SCALE = 0.05
INTERVAL = 0.05
SLO_TOML = "[targets.svc.slo]\ntotal_s = { p90 = 15 }\ndwell_32 = { p90 = 3 }\n"
REACHABLE_TOML = "[targets.svc.slo]\ncompleted = { rate = 1.0 }\n"  # what the down-and-back test is about


class Canary:
    """Runs canaries of target `svc` with the test's history, webhook and exports; the URL can change per run."""

    def __init__(self, tmp_path: Path, fixtures_dir: Path, history_url: str, **kwargs) -> None:
        self.tmp, self.fixtures, self.history, self.kwargs = tmp_path, fixtures_dir, history_url, kwargs
        self.targets = tmp_path / "targets.toml"
        self.out = tmp_path / "runs"

    extra = ""  # more keys of [targets.svc]

    def __call__(self, base_url: str, slo: bool = False, **kwargs):
        self.targets.write_text(f'[targets.svc]\nbase_url = "{base_url}"\n{self.extra}'
                                + (SLO_TOML if slo else REACHABLE_TOML))
        return run_canary(target="svc", n=3, concurrency=3, cadence="fine", interval=INTERVAL, history=self.history,
                          out=self.out, targets_file=self.targets, fixtures_dir=self.fixtures,
                          **{**self.kwargs, **kwargs})


def gauge(text: str, name: str, target: str = "svc", **labels: str) -> float:
    [value] = [s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and s.labels.get("target") == target
               and all(s.labels.get(k) == v for k, v in labels.items())]
    return value


def check_sequence(results, webhook, history_url: str, expect_codes: list[int]) -> None:
    """Exactly one alert, fired at the 2nd failing run and resolved at the 2nd passing one, all delivered."""
    assert [r.code for r in results] == expect_codes
    assert [r.event for r in results] == [None, None, None, "fired", None, None, "resolved"]
    assert webhook.events() == ["fired", "resolved"]
    fired, resolved = (r["json"] for r in webhook.received)
    assert fired["probes"]["run_id"] == results[3].row.run_id and fired["probes"]["failing"] == 2
    assert resolved["probes"]["run_id"] == results[6].row.run_id and resolved["probes"]["passing"] == 2
    assert fired["text"].startswith("probes canary FIRING: target `svc` failed 2 run(s) in a row")
    assert resolved["text"].startswith("probes canary RESOLVED: target `svc` passed 2 run(s) in a row")
    for message in webhook.received:
        assert PG_PASSWORD not in json.dumps(message)
    with open_history(history_url) as store:
        assert store.count_runs("svc") == 7
        assert [(e["event"], e["notified"]) for e in store.alert_events("svc")] == [("fired", 1), ("resolved", 1)]
        assert not store.alert_state("svc").firing


@pytest.mark.timeout(180)
def test_target_down_and_back_fires_once_and_resolves_once(history_url, sim, fixtures_dir, tmp_path, webhook) -> None:
    """The end-to-end alert path. Needs no Pushgateway (the textfile carries the metrics), so it runs wherever
    the suite runs; the Pushgateway has its own test below."""
    fast = sim("fast", time_scale=SCALE)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: every upload fails, exit 3
    textfile = tmp_path / "metrics" / "probes.prom"
    canary = Canary(tmp_path, fixtures_dir, history_url, webhook=webhook.url, textfile=textfile)
    results = []
    for url in (fast, fast, down, down, down, fast, fast):
        results.append(canary(url))
        if len(results) == 4:  # while firing, the textfile says so
            assert gauge(textfile.read_text(), "probes_alert_firing") == 1
            assert gauge(textfile.read_text(), "probes_run_ok") == 0
    check_sequence(results, webhook, history_url, [0, 0, 3, 3, 3, 0, 0])
    assert results[3].row.outcomes == {"upload_error": 3} and results[3].row.run_dir is not None
    assert "target not reached" in webhook.received[0]["json"]["text"]
    families = {f.name: f for f in text_string_to_metric_families(textfile.read_text())}
    assert families["probes_run_ok"].samples[0].value == 1.0
    assert families["probes_alert_firing"].samples[0].value == 0.0
    assert {s.labels["quantile"] for s in families["probes_total_seconds"].samples} == {"0.5", "0.9", "1"}
    assert gauge(textfile.read_text(), "probes_alert_undelivered", state="pending") == 0


def test_the_pushgateway_follows_the_alert(fixtures_dir, tmp_path, pushgateway) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    canary = Canary(tmp_path, fixtures_dir, str(tmp_path / "history.sqlite"), pushgateway=pushgateway,
                    alert_after=1, webhook=f"http://127.0.0.1:{free_port()}/hook", notify_deadline_s=1.0)
    result = canary(down)
    assert result.code == 3 and result.event == "fired"
    assert gauge(scrape(pushgateway), "probes_alert_firing") == 1
    assert gauge(scrape(pushgateway), "probes_run_ok") == 0
    assert gauge(scrape(pushgateway), "probes_alert_undelivered", state="pending") == 1  # nothing listens


@pytest.mark.timeout(180)
def test_issue_acceptance_sequence_fast_stale_fast(history_url, sim, fixtures_dir, tmp_path, webhook) -> None:
    fast, stale = sim("fast", time_scale=SCALE), sim("stale-32", time_scale=SCALE)
    canary = Canary(tmp_path, fixtures_dir, history_url, webhook=webhook.url)
    results = [canary(url, slo=True) for url in (fast, fast, stale, stale, stale, fast, fast)]
    check_sequence(results, webhook, history_url, [0, 0, 1, 1, 1, 0, 0])
    stale_row = results[2].row
    assert [r.row.slo_ok for r in results] == [True, True, False, False, False, True, True]  # run.json's slo
    assert stale_row.metrics["total_s"]["p90"] > 15
    assert "SLO total_s p90" in webhook.received[0]["json"]["text"]
    assert results[0].row.fingerprint_hash != stale_row.fingerprint_hash  # another scenario: another build


def test_jitter_keep_and_a_broken_webhook(sim, fixtures_dir, tmp_path, webhook, capsys) -> None:
    """Jitter is bounded and printed; --keep prunes only old recorded runs; a 404 webhook changes nothing."""
    history = str(tmp_path / "history.sqlite")
    canary = Canary(tmp_path, fixtures_dir, history)
    old = write_run(canary.out, "20250101T000000Z-svc-canary-0001", target="svc", started_at="2025-01-01T00:00:00Z")
    foreign = write_run(canary.out, "20250101T000000Z-svc-manual-0002", target="svc",
                        started_at="2025-01-01T00:00:00Z")  # never recorded: not ours to delete
    elsewhere = write_run(tmp_path / "elsewhere", "20250101T000000Z-svc-canary-0003", target="svc",
                          started_at="2025-01-01T00:00:00Z")
    vanished = write_run(canary.out, "20250101T000000Z-svc-canary-0004", target="svc",
                         started_at="2025-01-01T00:00:00Z")
    with open_history(history) as store:
        store.import_runs([old, elsewhere, vanished])
    shutil.rmtree(vanished)  # an ephemeral runner's directory: gone before anyone pruned it
    slept: list[float] = []
    webhook.statuses = [404]
    result = canary(f"http://127.0.0.1:{free_port()}", jitter_s=10.0, sleep=slept.append, rand=lambda: 0.25,
                    keep_s=30 * 86400.0, webhook=webhook.url, alert_after=1)
    assert result.code == 3 and result.event == "fired" and result.notified is False
    assert slept == [2.5]
    err = capsys.readouterr().err
    assert "canary svc: jitter: starting in 2.5 s" in err and "alert notification to http://127.0.0.1 failed" in err
    assert "secret-token" not in err
    assert result.pruned == [old.name] and not old.exists()
    assert foreign.exists() and elsewhere.exists() and result.row.run_dir and Path(result.row.run_dir).exists()
    with open_history(history) as store:
        assert store.run(old.name)["pruned_at"] is not None and store.run(old.name)["total_s_p50"] == 10.0
        assert store.run(elsewhere.name)["pruned_at"] is None  # not under this canary's runs directory
        assert store.run(vanished.name)["pruned_at"] is not None  # not asked about again


def test_exit_codes_from_the_run() -> None:
    meta = {"run_id": "r", "target": "svc", "started_at": "2026-11-26T09:00:00Z"}
    ok = summarise_run(meta, [probe_record("r", "1")], exit_code=0)
    broken = summarise_run({**meta, "slo": {"ok": False, "results": []}}, [probe_record("r", "1")], exit_code=0)
    assert exit_code(0, ok) == 0
    assert exit_code(0, broken) == 1  # run.json says an SLO broke
    assert exit_code(1, summarise_run(meta, [probe_record("r", "1")], exit_code=1)) == 1  # probes run said so
    assert exit_code(3, summarise_run(meta, [], exit_code=3)) == 3


@pytest.mark.parametrize("args, message", [
    (["--alert-after", "0"], "--alert-after must be a whole number in 1..1000"),
    (["--keep", "30x"], "--keep must be a number and a unit"),
    (["--jitter", "1000"], "--jitter must be seconds in 0..900"),
    (["-n", "many"], "-n must be a whole number in 1..100"),
    (["--webhook", "ftp://hooks.example/T0/secret-token"], "--webhook must be an http(s) URL"),
    (["--textfile", "probes.txt"], "must end in .prom"),
    (["--history", "mysql://u:hunter2@db/h"], "unknown scheme 'mysql'"),
    (["--history", "host=db user=probes password=hunter2 dbname=h"], "libpq keyword string"),
    (["--history", "postgresql://probes:hunter2/x@db:5432/h"], "cannot be read one way only"),
    (["--pushgateway", "http://u:hunter2@127.0.0.1:99999"], "port must be a number in 1..65535"),
    (["--pushgateway", "http://127.0.0.1:9091/?token=hunter2"], "no ?query or #fragment"),
    (["--webhook", "https://hooks.example:0/T0/secret-token"], "--webhook must be an http(s) URL with a host"),
])
def test_bad_values_exit_2_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "probes", "canary", "--target", "svc", *args,
                           "--out", str(tmp_path / "runs")], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert "hunter2" not in proc.stderr and "secret-token" not in proc.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no SQLite file named after a connection string


def test_a_target_refusing_before_any_probe_is_a_failing_run(tmp_path, fixtures_dir, webhook, capsys) -> None:
    """A token command that fails (AuthError, exit 3) ends the run before any probe: still a history row, still
    a failing run for the alert. The alert says the token command failed and its exit status, never its stderr
    (a helper may print a credential there); the canary's own log keeps the detail."""
    helper = tmp_path / "get-token"
    leak = "stderr-" + "Zq9" * 4
    helper.write_text(f"#!/bin/sh\necho 'helper: refresh failed, secret={leak}' >&2\nexit 7\n")
    helper.chmod(0o755)
    history = str(tmp_path / "history.sqlite")
    canary = Canary(tmp_path, fixtures_dir, history, webhook=webhook.url, alert_after=1)
    canary.extra = f'token_command = "{helper}"\n'
    result = canary("http://127.0.0.1:9")
    assert result.code == 3 and result.event == "fired" and result.notified is True
    assert result.row.n == 0 and not result.row.ok and result.row.run_dir is None
    text = webhook.received[0]["json"]["text"]
    assert "the token command failed (exited with status 7)" in text
    assert leak not in json.dumps(webhook.received) and "refresh failed" not in text
    out = capsys.readouterr()
    assert leak not in out.out  # the verdict line is the alert's words too
    with open_history(history) as store:
        assert store.run(result.row.run_id)["exit_code"] == 3 and store.alert_state("svc").firing
        assert leak not in json.dumps(store.alert_events("svc"))


def test_slo_file_breaks_a_healthy_run(sim, fixtures_dir, tmp_path) -> None:
    """--slo FILE is judged instead of the target's table: an impossible objective makes a fast run exit 1."""
    slo = tmp_path / "strict.toml"
    slo.write_text("[slo]\ntotal_s = { p50 = 0.5 }\n")
    canary = Canary(tmp_path, fixtures_dir, str(tmp_path / "history.sqlite"), slo_file=slo)
    result = canary(sim("fast", time_scale=SCALE))
    assert result.code == 1 and result.row.slo_ok is False
    assert result.row.slo_results[0]["metric"] == "total_s" and result.row.slo_results[0]["threshold"] == 0.5


def test_reasons_name_the_broken_slos() -> None:
    from probes.canary.command import reasons

    slo = {"ok": False, "results": [
        {"metric": "total_s", "stat": "p90", "threshold": 15.0, "value": 62.1, "n": 3, "ok": False},
        {"metric": "transcription_s", "stat": "p90", "threshold": 8.0, "value": None, "n": 0, "ok": False},
        {"metric": "completed", "stat": "rate", "threshold": 1.0, "value": 0.6666667, "n": 3, "ok": False},
        {"metric": "dwell_32", "stat": "p90", "threshold": 3.0, "value": 0.5, "n": 3, "ok": True}]}
    meta = {"run_id": "r", "target": "svc", "started_at": "2026-11-26T09:00:00Z", "slo": slo}
    assert reasons(summarise_run(meta, [probe_record("r", "1")], exit_code=1)) == [
        "SLO total_s p90 62.10 s > 15.00 s (n=3)",
        "SLO transcription_s p90: not measured (no probe observed it)",
        "SLO completed rate 0.67 < 1.00 (n=3)",
    ]
