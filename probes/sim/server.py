"""Running the simulator: in the foreground (`serve`), in a thread (`running_simulator`)
or in a child process (`simulator_process`).

Always uvicorn with uvloop and httptools and the access log off: the access
log alone halves throughput, and benchmarks compare against a bare endpoint
served the same way. The listening socket is bound here, before uvicorn starts,
so a busy port is a one-line UsageError and port 0 picks a free port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import uvicorn

from probes.errors import UnreachableError, UsageError
from probes.sim.app import create_app
from probes.sim.scenarios import load_scenario

STARTUP_TIMEOUT_S = 15.0


def uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    """The one uvicorn configuration every simulator (and the bench baseline) uses."""
    return uvicorn.Config(app, host=host, port=port, loop="uvloop", http="httptools", access_log=False,
                          log_level="warning", lifespan="off", server_header=True, date_header=True)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket, or UsageError naming the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _scale_text(time_scale: float) -> str:
    return f"{time_scale:g}"


def serve(scenario: str = "fast", host: str = "127.0.0.1", port: int = 8765, time_scale: float = 1.0,
          require_auth: bool = False, seed: int | None = None) -> None:
    """Run the simulator in the foreground until interrupted (what `probes sim` calls)."""
    if time_scale <= 0:
        raise UsageError("--time-scale must be > 0")
    spec = load_scenario(scenario)
    app = create_app(spec, time_scale=time_scale, require_auth=require_auth, seed=seed)
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    print(f"simulator {spec.name} listening on http://{shown_host}:{bound_port} (time scale {_scale_text(time_scale)})",
          flush=True)
    server = uvicorn.Server(uvicorn_config(app, host, bound_port))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def running_simulator(scenario: str = "fast", time_scale: float = 1.0, require_auth: bool = False,
                      seed: int | None = None, port: int = 0) -> Iterator[str]:
    """A simulator in a background thread on loopback; yields its base URL, stops it on exit."""
    if time_scale <= 0:
        raise UsageError("time_scale must be > 0")
    spec = load_scenario(scenario)
    app = create_app(spec, time_scale=time_scale, require_auth=require_auth, seed=seed)
    sock = bind_socket("127.0.0.1", port)
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", bound_port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"sim-{spec.name}-{bound_port}",
                              daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive():
                raise UnreachableError(f"simulator {spec.name} stopped while starting")
            if time.monotonic() > deadline:
                raise UnreachableError(f"simulator {spec.name} did not start within {STARTUP_TIMEOUT_S:g} s")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for a child process that binds it itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0) as client:
        while True:
            if proc.poll() is not None:
                return
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


@contextmanager
def simulator_process(scenario: str = "fast", port: int = 0, time_scale: float = 1.0, require_auth: bool = False,
                      seed: int | None = None, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """`python -m probes sim ...` as a child process; yields its base URL once /health answers, then terminates it."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "probes", "sim", "--scenario", scenario, "--port", str(port),
           "--time-scale", repr(float(time_scale))]
    if require_auth:
        cmd.append("--require-auth")
    if seed is not None:
        cmd += ["--seed", str(seed)]
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            _wait_healthy(url, proc, startup_timeout_s)
            if proc.poll() is not None:
                err.seek(0)
                lines = err.read().decode(errors="replace").strip().splitlines()
                reason = lines[-1] if lines else f"exit code {proc.returncode}"
                raise UsageError(f"simulator {scenario!r} on port {port} exited at startup: {reason}")
            if not _is_healthy(url):
                raise UnreachableError(f"simulator {scenario!r} did not answer {url}/health within {startup_timeout_s:g} s")
            yield url
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def _is_healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False
