"""Prometheus metrics of a canary run: the textfile both parsers read, and a real Pushgateway scraped back."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from probes.canary import metrics
from probes.canary.alerts import AlertState
from probes.canary.summary import summarise_run
from probes.errors import UsageError
from tests.canary.conftest import probe_record
from tests.canary.services import free_port, hostile_receiver, scrape

SECRET = "tok" + "Zq9" * 4

SLO = {"ok": False, "results": [
    {"metric": "total_s", "stat": "p90", "threshold": 15, "value": 62.0, "n": 3, "ok": False},
    {"metric": "completed", "stat": "rate", "threshold": 1.0, "value": 1.0, "n": 3, "ok": True}]}


def row(target: str = "prod", **meta_extra):
    meta = {"run_id": "r1", "target": target, "label": "canary", "started_at": "2026-11-26T09:00:00Z",
            "ended_at": "2026-11-26T09:01:05Z", "slo": SLO, "fingerprint": {"health": {}, "signature": []},
            **meta_extra}
    records = [probe_record("r1", f"{i:04d}", total=t) for i, t in enumerate((9.0, 10.0, 62.0), 1)]
    records.append(probe_record("r1", "0004", outcome="timeout", total=None))
    return summarise_run(meta, records, exit_code=1)


def samples(text: str, parser=parse_prometheus) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in parser(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_registry_holds_the_issue_series() -> None:
    text = metrics.exposition(metrics.build_registry(row(), AlertState(firing=True, failing=2))).decode()
    got = samples(text, parse_openmetrics)
    t = ("target", "prod")
    assert got[("probes_total_seconds", (("quantile", "0.5"), t))] == 10.0
    assert got[("probes_total_seconds", (("quantile", "0.9"), t))] == 62.0
    assert got[("probes_total_seconds", (("quantile", "1"), t))] == 62.0
    assert got[("probes_dwell_32_seconds", (("quantile", "0.5"), t))] == 0.5
    assert got[("probes_slo_ok", (("slo", "total_s:p90"), t))] == 0
    assert got[("probes_slo_ok", (("slo", "completed:rate"), t))] == 1
    assert got[("probes_slo_threshold", (("slo", "total_s:p90"), t))] == 15
    assert got[("probes_run_ok", (t,))] == 0
    assert got[("probes_alert_firing", (t,))] == 1
    assert got[("probes_run_probes", (("outcome", "timeout"), t))] == 1
    assert got[("probes_run_probes", (("outcome", "completed"), t))] == 3
    assert got[("probes_last_run_timestamp_seconds", (t,))] == 1795683665.0
    assert got[("probes_last_run_duration_seconds", (t,))] == 65.0
    # transcription_s was observed by every probe; a metric nobody observed has no sample at all
    assert ("probes_transcription_seconds", (("quantile", "0.5"), t)) in got
    assert text.endswith("# EOF\n")


def test_textfile_is_written_atomically_and_both_parsers_read_it(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "probes.prom"
    metrics.write_textfile(path, metrics.build_registry(row()))
    text = path.read_text()
    assert samples(text) == samples(text, parse_openmetrics)  # node_exporter's format and OpenMetrics agree
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(path.parent) == ["probes.prom"]  # no temp file left behind
    with pytest.raises(UsageError, match="must end in .prom"):
        metrics.check_textfile(tmp_path / "probes.txt")


def test_unwritable_textfile_is_exit_4_and_keeps_the_last_one(tmp_path: Path) -> None:
    from probes.errors import NotRecorded

    (tmp_path / "blocked").write_text("a file where a directory should be")
    with pytest.raises(NotRecorded, match="cannot write metrics textfile") as err:
        metrics.write_textfile(tmp_path / "blocked" / "probes.prom", metrics.build_registry(row()))
    assert err.value.exit_code == 4 and "\n" not in str(err.value)


def test_undelivered_alerts_are_a_metric() -> None:
    text = metrics.exposition(metrics.build_registry(row(), AlertState(), {"pending": 2, "failed": 1})).decode()
    got = samples(text, parse_openmetrics)
    assert got[("probes_alert_undelivered", (("state", "pending"), ("target", "prod")))] == 2
    assert got[("probes_alert_undelivered", (("state", "failed"), ("target", "prod")))] == 1


def test_push_to_a_real_pushgateway_and_scrape_back(pushgateway: str) -> None:
    target = 'prod "eu"/1'  # quotes and a slash in a target name: label values and the grouping key cope
    assert metrics.push(pushgateway, metrics.build_registry(row(target), AlertState()), target)
    got = samples(scrape(pushgateway))
    key = (("instance", ""), ("job", "probes"), ("quantile", "0.9"), ("target", target))
    assert got[("probes_total_seconds", key)] == 62.0
    assert got[("probes_slo_ok", (("instance", ""), ("job", "probes"), ("slo", "total_s:p90"),
                                  ("target", target)))] == 0
    # the next run replaces the group: a PUT, not an add
    healthy = row(target, slo={"ok": True, "results": [{**SLO["results"][0], "value": 10.0, "ok": True}]})
    assert metrics.push(pushgateway, metrics.build_registry(healthy), target)
    got = samples(scrape(pushgateway))
    assert got[("probes_slo_ok", (("instance", ""), ("job", "probes"), ("slo", "total_s:p90"),
                                  ("target", target)))] == 1
    assert ("probes_slo_ok", (("instance", ""), ("job", "probes"), ("slo", "completed:rate"),
                              ("target", target))) not in got


def test_failed_push_is_a_warning_without_the_password(capsys) -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}"
    assert metrics.push(url, metrics.build_registry(row()), "prod", deadline_s=2) is False
    err = capsys.readouterr().err
    assert "push to the Pushgateway http://user:[redacted]@127.0.0.1" in err and "hunter2" not in err
    assert err.count("\n") == 1


@pytest.mark.timeout(30)
def test_a_trickling_pushgateway_is_cut_at_the_deadline(capsys) -> None:
    with hostile_receiver("trickle", path="") as hostile:
        started = time.monotonic()
        assert metrics.push(hostile.url, metrics.build_registry(row()), "prod", deadline_s=1.0) is False
        took = time.monotonic() - started
    assert took < 1.5, took
    assert "no answer within 1 s" in capsys.readouterr().err


@pytest.mark.parametrize("url, message", [
    ("127.0.0.1:9091", "must be an http(s) URL"),
    ("http://127.0.0.1:99999", "port must be a number in 1..65535"),
    ("http://127.0.0.1:0", "port must be a number in 1..65535"),
    ("http://127.0.0.1:port", "cannot be read one way only"),
    (f"http://u:{SECRET}/x@127.0.0.1:9091", "cannot be read one way only"),
    (f"http://127.0.0.1:9091/?token={SECRET}", "no ?query or #fragment"),
    ("http://:9091", "name the host"),
])
def test_the_gateway_url_is_checked_before_the_run(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as err:
        metrics.check_gateway_url(url)
    assert SECRET not in str(err.value) and "\n" not in str(err.value)
