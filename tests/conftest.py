"""Shared fixtures. `sim` starts real simulators on free loopback ports; `fixtures_dir` holds real audio.

    def test_something(sim):
        base_url = sim("stale-32", time_scale=0.1)   # "http://127.0.0.1:PORT"

Each call starts one more simulator (uvicorn in a thread); all stop at teardown.
Keyword arguments are those of `probes.sim.server.running_simulator`:
time_scale, require_auth, seed, port.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from probes.fixtures.generate import generate_fixtures
from probes.sim.server import running_simulator


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default speech fixture (m4a) and the negative ones, generated once per test session."""
    out = tmp_path_factory.mktemp("fixtures")
    generate_fixtures(out_dir=out, durations=[5.0], formats=["m4a"], lang="en", voice="espeak", source=None)
    return out


@pytest.fixture
def sim() -> Iterator[Callable[..., str]]:
    """Factory: ``sim(scenario="fast", **kwargs) -> base_url``; stops every simulator it started."""
    with ExitStack() as stack:

        def start(scenario: str = "fast", **kwargs: Any) -> str:
            return stack.enter_context(running_simulator(scenario, **kwargs))

        yield start
