"""After the probes: alerts delivered at least once (the outbox), within a total deadline, and a canary that
stops on SIGTERM in every phase, releases its lock and keeps what it has.

The target is a port nothing listens on (every probe `upload_error`, exit 3, no simulator needed) with
--alert-after 1, so each run is a failing run and the first one fires.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probes.canary.alerts import idempotency_key
from probes.canary.command import run_canary
from probes.canary.history import open_history
from probes.canary.location import parse_history_url
from probes.canary.lock import canary_lock
from tests.canary.services import free_port, hostile_receiver

ROOT = Path(__file__).resolve().parents[2]


class DownTarget:
    """Canary runs of target `svc`, which nothing answers, with one history."""

    def __init__(self, tmp_path: Path, fixtures_dir: Path, history: str) -> None:
        self.tmp, self.fixtures, self.history = tmp_path, fixtures_dir, history
        self.targets = tmp_path / "targets.toml"
        self.targets.write_text(f'[targets.svc]\nbase_url = "http://127.0.0.1:{free_port()}"\n'
                                "[targets.svc.slo]\ncompleted = { rate = 1.0 }\n")
        self.out = tmp_path / "runs"

    def __call__(self, webhook: str, **kwargs):
        return run_canary(target="svc", n=1, history=self.history, out=self.out, targets_file=self.targets,
                          fixtures_dir=self.fixtures, webhook=webhook, alert_after=1, **kwargs)

    def spawn(self, webhook: str, *args: str) -> subprocess.Popen:
        """`probes canary` as cron or systemd starts it, the webhook URL in the environment."""
        return subprocess.Popen(
            [sys.executable, "-m", "probes", "canary", "--target", "svc", "-n", "1", "--alert-after", "1",
             "--history", self.history, "--targets", str(self.targets), "--out", str(self.out),
             "--fixtures", str(self.fixtures), *args],
            cwd=self.tmp, env={**os.environ, "PROBES_WEBHOOK_URL": webhook}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(60)
def test_a_webhook_answering_500_then_200_gets_the_alert_exactly_once(history_url, fixtures_dir, tmp_path,
                                                                     webhook) -> None:
    canary = DownTarget(tmp_path, fixtures_dir, history_url)
    webhook.status = 500
    first = canary(webhook.url, notify_deadline_s=1.5)  # two tries (1 s apart), both 500
    assert first.code == 3 and first.event == "fired" and first.notified is False
    assert first.deliveries == [(first.row.run_id, "fired", "pending")] and webhook.received == []
    webhook.status = 200
    second = canary(webhook.url, notify_deadline_s=1.5)  # still failing: no new event, the old one is due
    assert second.code == 3 and second.event is None
    assert second.deliveries == [(first.row.run_id, "fired", "sent")]
    third = canary(webhook.url, notify_deadline_s=1.5)
    assert third.deliveries == []  # sent once: never again
    assert webhook.events() == ["fired"] and webhook.received[0]["json"]["probes"]["run_id"] == first.row.run_id
    key = idempotency_key("svc", first.row.run_id, "fired")
    assert {p["idempotency_key"] for p in webhook.posted} == {key}  # every try the same event, the same key
    assert len({p["json"]["text"] for p in webhook.posted}) == 1
    with open_history(history_url) as store:
        [event] = store.alert_events("svc")
        assert (event["delivery"], event["attempts"], event["notified"]) == ("sent", 2, 1)


@pytest.mark.timeout(60)
def test_sigkill_between_commit_and_send_delivers_on_the_next_run(fixtures_dir, tmp_path, webhook) -> None:
    history = str(tmp_path / "history.sqlite")
    canary = DownTarget(tmp_path, fixtures_dir, history)
    with hostile_receiver("hang") as hang:
        proc = canary.spawn(hang.url)
        try:
            assert hang.got_request.wait(30), proc.stderr.read() if proc.poll() is not None else "no request"
        finally:
            proc.kill()  # committed, sending, not answered: the worst moment to die
            proc.communicate(timeout=10)
    with open_history(history) as store:
        [event] = store.alert_events("svc")
        assert event["delivery"] == "pending" and event["attempts"] == 0
    result = canary(webhook.url, notify_deadline_s=5)
    assert result.deliveries == [(event["run_id"], "fired", "sent")]
    assert webhook.events() == ["fired"]
    assert webhook.received[0]["idempotency_key"] == idempotency_key("svc", event["run_id"], "fired")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_alerting_exits_130_releases_the_lock_and_keeps_the_alert(signum, fixtures_dir, tmp_path,
                                                                                webhook) -> None:
    """After the probes the canary ignored SIGTERM (uvloop's handler stayed): timeout and systemd could not
    stop it. Now it stops at once, says what it kept, and the next run sends the alert."""
    history = str(tmp_path / "history.sqlite")
    canary = DownTarget(tmp_path, fixtures_dir, history)
    with hostile_receiver("hang") as hang:
        proc = canary.spawn(hang.url)
        try:
            assert hang.got_request.wait(30)
            proc.send_signal(signum)
            signalled = time.monotonic()
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        took = time.monotonic() - signalled
    assert proc.returncode == 130, err
    assert took < 3, took
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"canary svc: interrupted by {signum.name} while alerting: run ")
    assert last.endswith("recorded; alert fired kept in the outbox for the next run; lock released")
    assert "Traceback" not in err and "secret-token" not in err + out
    with canary_lock(parse_history_url(history), "svc"):  # released
        pass
    result = canary(webhook.url, notify_deadline_s=5)
    assert [(event, state) for _, event, state in result.deliveries] == [("fired", "sent")]


@pytest.mark.timeout(60)
def test_sigterm_during_the_jitter_exits_130_at_once(fixtures_dir, tmp_path) -> None:
    canary = DownTarget(tmp_path, fixtures_dir, str(tmp_path / "history.sqlite"))
    proc = canary.spawn(f"http://127.0.0.1:{free_port()}/hook", "--jitter", "900")
    try:
        line = proc.stderr.readline()
        assert "jitter: starting in" in line
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert err.strip() == "canary svc: interrupted by SIGTERM while waiting (jitter): nothing recorded; lock released"
    assert not canary.out.exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["trickle", "endless"])
def test_a_trickling_or_endless_webhook_ends_the_canary_within_its_deadline(mode, fixtures_dir, tmp_path) -> None:
    import tracemalloc

    canary = DownTarget(tmp_path, fixtures_dir, str(tmp_path / "history.sqlite"))
    with hostile_receiver(mode) as hostile:
        tracemalloc.start()
        try:
            started = time.monotonic()
            result = canary(hostile.url, notify_deadline_s=2.0)
            took = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert result.code == 3 and took < 2.0 + 5, took
    assert peak < 50_000_000, peak  # Python allocations of the whole run: the endless body is not kept
    # a trickle never answers: still pending; an endless 200 answered: sent
    expected = "pending" if mode == "trickle" else "sent"
    assert [state for _, _, state in result.deliveries] == [expected]
