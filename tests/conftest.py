"""Shared fixtures. `sim` starts real simulators on free loopback ports.

    def test_something(sim):
        base_url = sim("stale-32", time_scale=0.1)   # "http://127.0.0.1:PORT"

Each call starts one more simulator (uvicorn in a thread); all stop at teardown.
Keyword arguments are those of `probes.sim.server.running_simulator`:
time_scale, require_auth, seed, port.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Iterator

import pytest

from probes.sim.server import running_simulator


@pytest.fixture
def sim() -> Iterator[Callable[..., str]]:
    """Factory: ``sim(scenario="fast", **kwargs) -> base_url``; stops every simulator it started."""
    with ExitStack() as stack:

        def start(scenario: str = "fast", **kwargs: Any) -> str:
            return stack.enter_context(running_simulator(scenario, **kwargs))

        yield start
