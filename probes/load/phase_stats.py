"""Load mode's live phase table: how long each phase of the flow took, apart from Locust's HTTP stats.

Why apart: a flow's phases (time to 32 %, dwell at 32 %, total ...) last
seconds to minutes, its HTTP requests milliseconds. Fired as pseudo-requests
they went into Locust's "Aggregated" row and its response-time chart (a p95 of
~8 s from phase timings while real HTTP p95 was ~2 ms). Here they get their own
RequestStats (Locust's percentile machinery, our buckets), travel from the
workers to the master beside Locust's own stats, and show as a "Flow phases"
tab in the web UI while the run goes on. The final table (phases.csv and the
console summary) is computed from the merged records (probes.load.phases).
"""

from __future__ import annotations

import json
from typing import Any

from locust.stats import RequestStats, StatsEntry

from probes.load.phases import REQUEST_TYPE, SUMMARY_COLUMNS as COLUMNS, failure_row, phase_order, phase_rows

REPORT_KEY = "probes_phases"
TAB_KEY = "probes-phases"
PERCENTILES = (0.5, 0.9, 0.99)


class PhaseTable:
    """Phases of the finished flows of this process (a worker sends deltas; the master merges)."""

    def __init__(self) -> None:
        self.stats = RequestStats(use_response_times_cache=False)

    def add(self, record: dict[str, Any]) -> None:
        for name, ms in phase_rows(record):
            self.stats.log_request(REQUEST_TYPE, name, round(ms), 0)
        failed = failure_row(record)
        if failed is not None:
            name, ms, text = failed
            self.stats.log_request(REQUEST_TYPE, name, round(ms), 0)
            self.stats.log_error(REQUEST_TYPE, name, text)

    def serialize(self) -> list[dict[str, Any]]:
        """What a worker sends with its stats report; the entries it sends start over."""
        return self.stats.serialize_stats()

    def merge(self, data: list[dict[str, Any]]) -> None:
        for item in data or []:
            entry = StatsEntry.unserialize(item, self.stats)
            key = (entry.name, entry.method)
            if key not in self.stats.entries:
                self.stats.entries[key] = StatsEntry(self.stats, entry.name, entry.method,
                                                     use_response_times_cache=False)
            self.stats.entries[key].extend(entry)

    def rows(self) -> list[dict[str, Any]]:
        """One row per phase, seconds (Locust's buckets: 3 significant figures)."""
        out = []
        for (name, _method), e in sorted(self.stats.entries.items(), key=lambda kv: phase_order(kv[0][0])):
            if e.num_requests == 0:
                continue
            p50, p90, p99 = (e.get_response_time_percentile(p) / 1000 for p in PERCENTILES)
            out.append({"name": name, "flows": e.num_requests, "failures": e.num_failures, "p50_s": p50,
                        "p90_s": p90, "p99_s": p99, "max_s": (e.max_response_time or 0) / 1000})
        return out


def attach(environment: Any, table: PhaseTable, is_master_or_local: bool, is_worker: bool) -> None:
    """Wire the table into Locust: worker reports, the master's merge, and the web UI tab."""
    events = environment.events
    if is_worker:
        @events.report_to_master.add_listener
        def _report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
            data[REPORT_KEY] = table.serialize()
    if is_master_or_local:
        @events.worker_report.add_listener
        def _merge(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
            table.merge(data.get(REPORT_KEY) or [])

        @events.reset_stats.add_listener
        def _reset(**_kw: Any) -> None:
            table.stats.reset_all()
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None or not is_master_or_local:
        return
    web_ui.template_args["extended_tabs"] = [{"title": "Flow phases", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": TAB_KEY, "structure": [
        {"key": c, "title": c} for c in COLUMNS]}]

    from flask import request  # Locust's web UI is Flask

    @web_ui.app.after_request
    def _extend(response: Any) -> Any:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        payload = response.get_json()
        payload["extended_stats"] = [{"key": TAB_KEY, "data": table.rows()}]
        response.set_data(json.dumps(payload))
        return response
