"""Both request paths of the httpx driver: the regular client below FAST_FROM, the fast transport above.

They must give identical records, and both keep the cookies a poll answer sets (a load
balancer's sticky-session cookie), as the app's HTTP stack would.
"""

from __future__ import annotations

import asyncio

import pytest

from probes.probe import wire
from probes.probe.driver import FAST_FROM, HttpSide, Probe
from tests.probe.table_plan import CountingTokens, plan
from tests.probe.test_three_runners import assert_times_agree, comparable
from tests.servers import SCRIPTS, Step, flow, scripted_server
from tests.servers.scripts import HEALTHY_POLLS

STICKY = Step(200, HEALTHY_POLLS[1].body, headers={"Set-Cookie": "AWSALB=instance-7; Path=/"})
SCRIPT = flow(HEALTHY_POLLS[:1] + [STICKY] + HEALTHY_POLLS[2:])


def probe(base_url: str, fast: bool) -> dict:
    async def go() -> dict:
        async with HttpSide(base_url, 1, wire.request_headers(), CountingTokens(), fast=fast) as http:
            assert (http.fast is not None) == fast
            return await Probe(http, plan("fine", 0.05, 10.0, False), "0001").run()

    return asyncio.run(go())


@pytest.mark.parametrize("fast", [False, True])
def test_each_path_keeps_the_cookies_poll_answers_set(fast: bool) -> None:
    with scripted_server(SCRIPT) as base:
        record = probe(base, fast)
        cookies = [r.header("cookie") for r in base.of("poll")]
    assert record["outcome"] == "completed"
    assert cookies[:2] == [None, None] and all(c == "AWSALB=instance-7" for c in cookies[2:]), cookies


def test_both_paths_give_identical_records() -> None:
    with scripted_server(SCRIPTS["healthy"]) as base:
        slow = probe(base, fast=False)
    with scripted_server(SCRIPTS["healthy"]) as base:
        fast = probe(base, fast=True)
    assert comparable(slow) == comparable(fast)
    assert_times_agree(slow, fast, "fast transport")


def test_the_run_picks_the_fast_path_only_for_big_runs() -> None:
    assert HttpSide("http://127.0.0.1:1", FAST_FROM - 1, {}).fast is None
    assert HttpSide("http://127.0.0.1:1", FAST_FROM, {}).fast is not None
