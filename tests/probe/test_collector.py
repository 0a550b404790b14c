"""The probe path leaves no reference cycles: with the collector off while probes run, nothing piles up.

probes.probe.collector turns the cyclic collector off for the probe phase
(its passes were the P2 regression); that is only sound while reference
counting frees everything a probe allocates. These runs go over real loopback
HTTP through the fast transport, then count what a full pass finds.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from probes.probe import wire
from probes.probe.collector import collect_if_due, collector_off
from probes.probe.driver import HttpSide
from probes.probe.run import _loop_factory, run_workers
from probes.probe.store import RunWriter
from tests.probe.table_plan import plan

PROBES = 64
# A handful of objects may be cyclic for reasons outside the probe path (asyncio's own bookkeeping when
# the loop shuts down); one cycle per probe or per connection would be hundreds.
MAX_CYCLIC = 40


def _cyclic_garbage_of_a_run(base_url: str, out: Path) -> int:
    async def main() -> None:
        writer = RunWriter(out, {"run_id": "gc"})
        async with HttpSide(base_url, PROBES, wire.request_headers(), fast=True) as http:
            with collector_off():
                await run_workers(http, plan("fine", 0.05, 30.0, True), PROBES, PROBES, writer)
        writer.finish({})
        assert [r["outcome"] for r in writer.records] == ["completed"] * PROBES

    gc.collect()
    gc.disable()  # collector_off re-enables only what was enabled: keep it off until we count
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:  # uvloop, as `probes run` has it
            runner.run(main())
        return gc.collect()
    finally:
        gc.enable()


def test_a_run_through_the_fast_transport_leaves_no_cycles(sim, tmp_path):
    base_url = sim("fast", time_scale=0.05)
    found = _cyclic_garbage_of_a_run(base_url, tmp_path)
    assert found <= MAX_CYCLIC, f"{found} objects in reference cycles after {PROBES} probes"


def test_collection_is_off_in_the_block_and_back_after():
    assert gc.isenabled()
    with collector_off():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_full_pass_runs_only_once_enough_has_piled_up():
    with collector_off():
        gc.collect()
        assert not collect_if_due(limit=10_000)
        keep = [[i] for i in range(20_000)]  # 20,000 container objects since the last pass
        assert collect_if_due(limit=10_000)
        assert gc.get_count()[0] < 10_000
        del keep
