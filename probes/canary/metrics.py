"""A canary run as Prometheus metrics: an OpenMetrics textfile for node_exporter, and a Pushgateway push.

    probes_total_seconds{target,quantile="0.5"|"0.9"|"1"}   (and upload, time_to_32, dwell_32, ...)
    probes_slo_ok{target,slo="total_s:p90"}                 1 kept, 0 broken
    probes_run_ok{target}                                    1 healthy run, 0 SLO broken or unreachable
    probes_run_probes{target,outcome}                        probes of the last run per outcome
    probes_alert_firing{target}                              the canary's own alert state
    probes_last_run_timestamp_seconds{target}                when the last run ended (alert on staleness)

Every metric is a gauge of the last run (in scenario seconds); a metric the
run did not observe is absent rather than 0. prometheus_client is imported
only here, and only when exporting. An export that fails is one warning line
and never fails the canary: the canary's verdict is about the target.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from probes.canary.alerts import AlertState
from probes.canary.location import redact_url, scrub
from probes.canary.summary import RunSummary
from probes.errors import UsageError

JOB = "probes"
PUSH_TIMEOUT_S = 10.0  # like the webhook: a gateway slower than this is down; the next run pushes again
# metric name in the history -> (Prometheus name, help)
SERIES = {
    "upload_s": ("probes_upload_seconds", "Upload request time of the last canary run"),
    "t_32": ("probes_time_to_32_seconds", "Time from upload to the first poll at >= 32 % progress"),
    "dwell_32": ("probes_dwell_32_seconds", "Time progress was seen exactly at 32 %"),
    "stall_s": ("probes_longest_stall_seconds", "Longest time progress stood still"),
    "transcription_s": ("probes_transcription_seconds", "First poll at >= 20 % to the first poll past 55 %"),
    "total_s": ("probes_total_seconds", "Upload to completed (completed probes)"),
}
QUANTILES = {"p50": "0.5", "p90": "0.9", "max": "1"}


def build_registry(row: RunSummary, alert: AlertState | None = None) -> Any:
    """A CollectorRegistry holding the run's gauges."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    target = row.target
    for metric, (name, help_text) in SERIES.items():
        stats = row.metrics.get(metric) or {}
        gauge = Gauge(name, f"{help_text} (seconds, nearest-rank quantile; 1 = max)", ["target", "quantile"],
                      registry=registry)
        for stat, quantile in QUANTILES.items():
            value = stats.get(stat)
            if value is not None:
                gauge.labels(target, quantile).set(round(float(value), 6))  # microseconds: past the clock's truth
    observed = Gauge("probes_observed_probes", "Probes of the last run that observed each metric",
                     ["target", "metric"], registry=registry)
    for metric in SERIES:
        observed.labels(target, metric).set(int((row.metrics.get(metric) or {}).get("n") or 0))
    outcomes = Gauge("probes_run_probes", "Probes of the last canary run by outcome", ["target", "outcome"],
                     registry=registry)
    for outcome, count in sorted(row.outcomes.items()):
        outcomes.labels(target, outcome).set(count)
    slo_ok = Gauge("probes_slo_ok", "1 when the SLO held in the last run, 0 when it broke", ["target", "slo"],
                   registry=registry)
    slo_value = Gauge("probes_slo_value", "The statistic an SLO judged (seconds, or a share for completed)",
                      ["target", "slo"], registry=registry)
    slo_threshold = Gauge("probes_slo_threshold", "The SLO's threshold", ["target", "slo"], registry=registry)
    for result in row.slo_results:
        slo = f"{result.get('metric')}:{result.get('stat')}"
        slo_ok.labels(target, slo).set(1 if result.get("ok") else 0)
        if isinstance(result.get("value"), (int, float)):
            slo_value.labels(target, slo).set(float(result["value"]))
        if isinstance(result.get("threshold"), (int, float)):
            slo_threshold.labels(target, slo).set(float(result["threshold"]))
    Gauge("probes_run_ok", "1 when the last canary run was healthy", ["target"],
          registry=registry).labels(target).set(1 if row.ok else 0)
    Gauge("probes_last_run_timestamp_seconds", "When the last canary run ended (Unix time)", ["target"],
          registry=registry).labels(target).set(row.ended_ts or row.started_ts)
    if row.ended_ts is not None:
        Gauge("probes_last_run_duration_seconds", "Wall time of the last canary run", ["target"],
              registry=registry).labels(target).set(max(0.0, row.ended_ts - row.started_ts))
    if alert is not None:
        Gauge("probes_alert_firing", "1 while the canary's alert for the target is firing", ["target"],
              registry=registry).labels(target).set(1 if alert.firing else 0)
    return registry


def exposition(registry: Any) -> bytes:
    """OpenMetrics text (gauges only, so node_exporter's Prometheus-format parser reads it too)."""
    from prometheus_client.openmetrics.exposition import generate_latest

    return generate_latest(registry)


def check_textfile(path: Path) -> None:
    """node_exporter's textfile collector reads only *.prom files: refuse another name up front."""
    if path.suffix != ".prom":
        raise UsageError(f"--textfile {path}: must end in .prom (node_exporter's textfile collector reads only *.prom)")


def write_textfile(path: Path, registry: Any) -> bool:
    """Write atomically (temp file in the same directory + rename): the collector never reads half a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(exposition(registry))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # node_exporter usually runs as another user
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        print(f"probes: warning: cannot write metrics textfile {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def check_gateway_url(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--pushgateway {redact_url(url)}: must be an http(s) URL like http://127.0.0.1:9091")


def push(url: str, registry: Any, target: str, timeout_s: float = PUSH_TIMEOUT_S) -> bool:
    """PUT the registry to the Pushgateway as job `probes`, grouping key {target}: replaces the last run's."""
    from prometheus_client import push_to_gateway
    from prometheus_client.exposition import basic_auth_handler, default_handler

    original = url
    parts = urlsplit(url)
    handler = default_handler
    if parts.username is not None or parts.password is not None:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")

        def handler(url: str, method: str, timeout: float | None, headers: list, data: bytes):  # type: ignore[misc]
            return basic_auth_handler(url, method, timeout, headers, data, user, password)

        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    try:
        push_to_gateway(url, job=JOB, registry=registry, grouping_key={"target": target}, timeout=timeout_s,
                        handler=handler)
    except Exception as exc:  # noqa: BLE001 - URLError, HTTPError, socket errors: all mean "not pushed"
        reason = scrub(str(exc), original) if str(exc) else type(exc).__name__
        print(f"probes: warning: push to the Pushgateway {redact_url(original)} failed: {reason}", file=sys.stderr)
        return False
    return True
