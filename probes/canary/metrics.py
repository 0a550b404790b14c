"""A canary run as Prometheus metrics: an OpenMetrics textfile for node_exporter, and a Pushgateway push.

    probes_total_seconds{target,quantile="0.5"|"0.9"|"1"}   (and upload, time_to_32, dwell_32, ...)
    probes_slo_ok{target,slo="total_s:p90"}                 1 kept, 0 broken
    probes_run_ok{target}                                    1 healthy run, 0 SLO broken or unreachable
    probes_run_probes{target,outcome}                        probes of the last run per outcome
    probes_alert_firing{target}                              the canary's own alert state
    probes_alert_undelivered{target,state}                   alerts pending delivery, or failed for good
    probes_last_run_timestamp_seconds{target}                when the last run ended (alert on staleness)

Every metric is a gauge of the last run (in scenario seconds); a metric the
run did not observe is absent rather than 0. prometheus_client is imported
only here, and only when exporting. A push that fails is one warning line and
never fails the canary (the verdict is about the target, and the next run
pushes again); a textfile that cannot be written is exit 4 (NotRecorded), like
the history: it is on this machine's disk, and a full disk must be seen.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from probes.canary.alerts import AlertState, as_data
from probes.errors import NotRecorded, os_reason
from probes.canary.location import check_url_secrets, redact_url, scrub
from probes.canary.summary import RunSummary
from probes.errors import UsageError

JOB = "probes"
# The whole push, start to end: a gateway that trickles its answer must not hold the canary; the next run pushes again.
PUSH_DEADLINE_S = 10.0
MAX_GATEWAY_ERROR_CHARS = 200  # of a refusal's body, for the warning line: the gateway says why in one line
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


def build_registry(row: RunSummary, alert: AlertState | None = None, deliveries: dict[str, int] | None = None) -> Any:
    """A CollectorRegistry holding the run's gauges; `deliveries` counts undelivered alerts (pending, failed)."""
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
    if deliveries is not None:
        undelivered = Gauge("probes_alert_undelivered", "Alert events not delivered to the webhook: pending (retried "
                            "by later runs) or failed (given up)", ["target", "state"], registry=registry)
        for state in ("pending", "failed"):
            undelivered.labels(target, state).set(deliveries.get(state, 0))
    return registry


def exposition(registry: Any) -> bytes:
    """OpenMetrics text (gauges only, so node_exporter's Prometheus-format parser reads it too)."""
    from prometheus_client.openmetrics.exposition import generate_latest

    return generate_latest(registry)


def check_textfile(path: Path) -> None:
    """node_exporter's textfile collector reads only *.prom files: refuse another name up front."""
    if path.suffix != ".prom":
        raise UsageError(f"--textfile {path}: must end in .prom (node_exporter's textfile collector reads only *.prom)")


def write_textfile(path: Path, registry: Any) -> None:
    """Write atomically (temp file in the same directory + rename): the collector never reads half a file.

    A file that cannot be written (a full disk) is NotRecorded, exit 4: the temp file is removed, and the
    last complete textfile stays as it was; the staleness alert on probes_last_run_timestamp_seconds fires.
    """
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
        raise NotRecorded(f"cannot write metrics textfile {path}: {os_reason(exc)}") from None


def check_gateway_url(url: str) -> None:
    """Every part of a Pushgateway URL checked before the run: a typo costs one line (exit 2), not the push."""
    try:
        scheme_ok = urlsplit(url).scheme in ("http", "https")
    except ValueError:
        scheme_ok = False
    example = "http://127.0.0.1:9091"
    if not scheme_ok:
        raise UsageError(f"--pushgateway {redact_url(url)}: must be an http(s) URL like {example}")
    parts = check_url_secrets(url, "--pushgateway", example)
    if not parts.hostname:
        raise UsageError(f"--pushgateway {redact_url(url)}: name the host, e.g. {example}")
    if parts.query or parts.fragment:
        # prometheus_client appends /metrics/job/... to the URL: a query would land in the middle of the path
        raise UsageError(f"--pushgateway {redact_url(url)}: no ?query or #fragment (a credential goes in "
                         f"user:password@ for basic auth, or a path prefix for a proxy)")


def _bounded_handler(auth: Any, deadline_s: float) -> Callable[..., Callable[[], None]]:
    """A prometheus_client push handler that sends through probes.canary.bounded (one total deadline)."""
    from probes.canary.bounded import exchange

    def handler(url: str, method: str, timeout: float | None, headers: list, data: bytes) -> Callable[[], None]:
        def send() -> None:
            answer = exchange(method, url, content=data, headers=dict(headers), auth=auth, deadline_s=deadline_s)
            if answer.status >= 300:
                detail = " ".join(answer.body[:MAX_GATEWAY_ERROR_CHARS].decode("utf-8", "replace").split())
                raise PushRefused(f"HTTP {answer.status}" + (f": {as_data(detail)}" if detail else ""))

        return send

    return handler


class PushRefused(Exception):
    """The Pushgateway answered, and not with 2xx; the message is its status and first words, made inert."""


def push(url: str, registry: Any, target: str, deadline_s: float = PUSH_DEADLINE_S) -> bool:
    """PUT the registry to the Pushgateway as job `probes`, grouping key {target}: replaces the last run's.

    Never raises, never takes more than `deadline_s` in all; a failure is one warning line.
    """
    import httpx
    from prometheus_client import push_to_gateway

    from probes.canary.bounded import ExchangeFailed

    original = url
    parts = urlsplit(url)
    auth = None
    if parts.username is not None or parts.password is not None:
        auth = httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
        netloc = parts.netloc.rpartition("@")[2]
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    try:
        push_to_gateway(url, job=JOB, registry=registry, grouping_key={"target": target}, timeout=deadline_s,
                        handler=_bounded_handler(auth, deadline_s))
    except (ExchangeFailed, PushRefused) as exc:
        reason = scrub(str(exc), original)
    except Exception as exc:  # noqa: BLE001 - whatever it was, it means "not pushed", never a failed canary
        reason = type(exc).__name__
    else:
        return True
    print(f"probes: warning: push to the Pushgateway {redact_url(original)} failed: {reason}", file=sys.stderr)
    return False
