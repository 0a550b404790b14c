"""A scripted server in a child process, for clients that must not share the test process.

Locust monkey-patches the process it runs in (gevent); a server thread in that
process would be patched with it. Here the server runs alone:

    with scripted_process("cut-off", record=tmp_path / "requests.jsonl") as base:
        ...                                   # e.g. run Locust in-process against base
    rows = read_records(tmp_path / "requests.jsonl")   # one dict per request, in order

or by hand: ``python -m tests.servers.process healthy --port 8766``.
``received_at`` is `time.monotonic()` in the child: the same clock as the
parent's on Linux (CLOCK_MONOTONIC is system-wide).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tests.servers.scripted import Recorded, ScriptedServer

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 15.0


def record_row(r: Recorded) -> dict[str, Any]:
    return {"index": r.index, "method": r.method, "target": r.target, "path": r.path, "headers": r.headers,
            "body_size": r.body_size, "received_at": r.received_at, "route": r.route, "key": r.key,
            "step_index": r.step_index}


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    from tests.servers.scripts import SCRIPTS

    parser = argparse.ArgumentParser(prog="python -m tests.servers.process", description=__doc__.splitlines()[0])
    parser.add_argument("script", choices=sorted(SCRIPTS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", type=Path, help="append one JSON line per request received")
    args = parser.parse_args(argv)
    sink: IO[str] | None = args.record.open("a", encoding="utf-8") if args.record else None

    def write(r: Recorded) -> None:
        if sink is not None:
            sink.write(json.dumps(record_row(r)) + "\n")
            sink.flush()

    server = ScriptedServer(SCRIPTS[args.script], port=args.port, on_request=write)
    url = server.start()
    print(f"scripted server {args.script} listening on {url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()
    if sink is not None:
        sink.close()
    return 0


@contextmanager
def scripted_process(script: str, record: Path | None = None, port: int = 0) -> Iterator[str]:
    """``python -m tests.servers.process SCRIPT`` as a child; yields its base URL, terminates it on exit."""
    cmd = [sys.executable, "-m", "tests.servers.process", script, "--port", str(port)]
    if record is not None:
        cmd += ["--record", str(record)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(proc)
        if " listening on " not in line:
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"scripted server {script!r} did not start: {line or err.strip()[-300:]}")
        yield line.rsplit(" ", 1)[1]
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _first_line(proc: subprocess.Popen[str]) -> str:
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT_S)
    return out[0].strip() if out else ""


if __name__ == "__main__":
    sys.exit(main())
