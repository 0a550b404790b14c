"""Acceptance 1 of the probe engine: what a probe reports against the simulator's ground truth.

The simulator runs in its own process (as a real backend would), so the
probe's event loop and the server's do not share a GIL. Times are compared
on the probe's clock: the server's t=0 (its upload handler starting) is
placed on it through the two wall clocks of this machine — the record's
started_at and the simulator's t0_wall — to within microseconds.
"""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from probes.sim.server import simulator_process

from .conftest import free_port

SLACK_S = 0.025
CI_JITTER_S = 0.010  # scheduling noise of a shared 2-core CI machine; bench_accuracy measures without it


def ground_truth(base_url: str, task_id: str) -> list[list]:
    return httpx.get(f"{base_url}/_sim/tasks/{task_id}/events", trust_env=False).json()


def true_crossing(events: list[list], p: int) -> float | None:
    return next((t for t, progress, _status in events if progress >= p), None)


def true_dwell(events: list[list], p: int) -> float:
    start = next((t for t, progress, _ in events if progress == p), None)
    if start is None:
        return 0.0
    return next(t for t, progress, _ in events if progress > p) - start


def clock_offset(base_url: str, record: dict) -> float:
    """Seconds from the probe's t=0 to the simulator's, from the two wall clocks."""
    task = httpx.get(f"{base_url}/_sim/tasks/{record['task_id']}", trust_env=False).json()
    offset = task["t0_wall"] - datetime.fromisoformat(record["started_at"]).timestamp()
    assert 0 <= offset + 1e-3 and offset <= record["upload_s"], offset  # the handler ran during the upload
    return offset


def check_probe(base_url: str, record: dict, interval: float, tolerance: float) -> None:
    assert record["outcome"] == "completed", record["error"]
    events = ground_truth(base_url, record["task_id"])
    offset = clock_offset(base_url, record)
    for key, m in record["milestones"].items():
        truth = true_crossing(events, int(key))
        assert truth is not None
        truth += offset
        assert m["lo_s"] - 1e-3 <= truth <= m["hi_s"] + 1e-3, (key, m, truth)  # the bracket holds the truth
        assert abs(m["t_s"] - truth) <= tolerance + CI_JITTER_S, (key, m["t_s"], truth)
    truth_dwell = true_dwell(events, 32)
    assert abs(record["dwell"]["32"] - truth_dwell) <= interval + SLACK_S, (record["dwell"]["32"], truth_dwell)


@pytest.mark.parametrize(("scenario", "scale", "n"), [("fast", 0.25, 4), ("stale-32", 0.1, 4)])
def test_app_cadence_matches_ground_truth(probe_run, scenario, scale, n):
    port = free_port()
    with simulator_process(scenario, port=port, time_scale=scale) as base_url:
        code, meta, records = probe_run(base_url, n=n, concurrency=n, cadence="app", no_slo=True)
        assert code == 0 and len(records) == n
        assert meta["scenario"] == scenario and meta["time_scale"] == scale
        for record in records:
            check_probe(base_url, record, interval=0.5, tolerance=0.5 + SLACK_S)


@pytest.mark.parametrize(("scenario", "scale"), [("fast", 0.25), ("stale-32", 0.1)])
def test_fine_cadence_is_within_25ms(probe_run, scenario, scale):
    port = free_port()
    with simulator_process(scenario, port=port, time_scale=scale) as base_url:
        code, meta, records = probe_run(base_url, n=3, concurrency=3, cadence="fine", interval=0.05, no_slo=True)
        assert code == 0
        for record in records:
            check_probe(base_url, record, interval=0.05, tolerance=SLACK_S)
    bands = {band for band, _name, _msg in meta["fingerprint"]["signature"]}
    if scenario == "stale-32":  # the incident: the longest stall is the plateau at 32 %, and it shows in the signature
        assert all(r["longest_stall"]["progress"] == 32 and r["dwell"]["32"] > 4.0 for r in records)
        assert "30-39" in bands
    else:
        assert all(r["dwell"]["32"] < 1.0 for r in records)
