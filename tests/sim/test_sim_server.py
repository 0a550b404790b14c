"""Starting the simulator: in a child process via `python -m probes sim`, and its errors."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from probes.errors import UsageError
from probes.sim.server import bind_socket, free_port, running_simulator, simulator_process


def test_simulator_process_serves_and_stops() -> None:
    with simulator_process("stale-32", time_scale=0.5, seed=3) as base:
        health = httpx.get(f"{base}/health", timeout=5).json()
        assert health["simulator"] == {"scenario": "stale-32", "time_scale": 0.5, "instances": 1, "seed": 3}
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/health", timeout=1)


def test_simulator_process_bad_scenario_is_one_line_error() -> None:
    with pytest.raises(UsageError, match="exited at startup: probes: error: unknown scenario 'nope'"):
        with simulator_process("nope", startup_timeout_s=15):
            pass


def test_cli_prints_listening_line() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "probes", "sim", "--scenario", "fast", "--port", str(port),
                             "--time-scale", "0.25"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == f"simulator fast listening on http://127.0.0.1:{port} (time scale 0.25)"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_busy_port_is_usage_error() -> None:
    sock = bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(UsageError, match="cannot listen on 127.0.0.1"):
            bind_socket("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


def test_running_simulator_stops_promptly() -> None:
    with running_simulator("fast", time_scale=0.1) as base:
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        t = time.monotonic()
    assert time.monotonic() - t < 2.0
