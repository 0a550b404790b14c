"""Real services for the canary tests, started on loopback: PostgreSQL, a Pushgateway, a webhook receiver.

PostgreSQL refuses to run as root, and CI runs as root: when root, initdb and
pg_ctl run as the `postgres` user in a temporary directory that user owns.
A service whose binary is missing is skipped only outside CI (env var CI
unset), loudly: a pytest warning and a line at the end of the terminal summary;
in CI, and whenever a binary is there but does not start, the test fails.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

PG_PASSWORD = "canary-pw-7f3a"  # distinctive, so a test can prove it never leaks
PG_USER = "probes"
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Why service tests were skipped in this session: tests/canary/conftest.py prints them at the end of the
# terminal summary, so a missing PostgreSQL or Pushgateway is seen, not buried in the skip list.
LOUD_SKIPS: list[str] = []


def loud_skip(reason: str) -> None:
    """Skip, and say so loudly: a pytest warning now and a line at the end of the run."""
    if reason not in LOUD_SKIPS:
        LOUD_SKIPS.append(reason)
        warnings.warn(pytest.PytestWarning(f"canary service tests skipped: {reason}"), stacklevel=2)
    pytest.skip(reason)


def missing(what: str) -> None:
    """Skip (loudly) outside CI; fail in CI, where .ci/install-services must have installed it."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed (CI is set: run .ci/install-services)")
    loud_skip(f"{what} is not installed (install it with .ci/install-services)")


# --- PostgreSQL ---------------------------------------------------------------------------------------------


def pg_bindir() -> Path | None:
    if os.environ.get("PROBES_PG_BINDIR"):
        return Path(os.environ["PROBES_PG_BINDIR"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]), reverse=True)
    if versions:
        return versions[0].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class Postgres:
    url: str  # postgresql://probes:PASSWORD@127.0.0.1:PORT/postgres
    port: int
    root: Path

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + name


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    bindir = pg_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        missing("PostgreSQL (Debian package postgresql)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="probes-pg-"))
    if os.geteuid() == 0:
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root but there is no postgres user to run PostgreSQL as")
        os.chown(root, pg.pw_uid, pg.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_user:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
    options = (f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}",
                        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options,
                        "-w", "-t", str(START_TIMEOUT_S), "start"], check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = (root / "log").read_text(errors="replace")[-2000:] if (root / "log").exists() else ""
        stderr = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc}\n{stderr.decode(errors='replace')}\n{log}")
    try:
        yield Postgres(f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/postgres", port, root)
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: Postgres, name: str) -> str:
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.database_url(name)


def drop_database(server: Postgres, name: str) -> None:
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Pushgateway --------------------------------------------------------------------------------------------


@contextmanager
def pushgateway_server() -> Iterator[str]:
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        missing("the Prometheus Pushgateway (Debian package prometheus-pushgateway)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                pytest.fail(f"the Pushgateway did not start on {url}: {err}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        return response.read().decode("utf-8")


# --- webhook receiver ---------------------------------------------------------------------------------------


@dataclass
class Webhook:
    """A loopback HTTP server that records every POST; `statuses` are answered in turn, then `status`.

    `received` holds the POSTs answered 2xx (what a receiver acted on), `posted` every POST that arrived.
    """

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    posted: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    status: int = 200
    attempts: int = 0

    def events(self) -> list[str]:
        return [r["json"]["probes"]["event"] for r in self.received]


@contextmanager
def webhook_receiver(path: str = "/hooks/T000/B000/secret-token") -> Iterator[Webhook]:
    hook: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            hook.attempts += 1
            status = hook.statuses.pop(0) if hook.statuses else hook.status
            got = {"path": self.path, "content_type": self.headers.get("content-type"),
                   "idempotency_key": self.headers.get("idempotency-key"), "json": json.loads(body)}
            hook.posted.append(got)
            if 200 <= status < 300:
                hook.received.append(got)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}{path}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


# --- hostile receivers --------------------------------------------------------------------------------------


@dataclass
class Hostile:
    """A loopback server that misbehaves in one of the ways a webhook or Pushgateway can."""

    url: str
    requests: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    got_request: threading.Event = field(default_factory=threading.Event)


TRICKLE_S = 0.2  # a byte every 0.2 s: never a read timeout, and a call that never ends without a total deadline


@contextmanager
def hostile_receiver(mode: str, path: str = "/hooks/T000/B000/secret-token") -> Iterator[Hostile]:
    """mode: "trickle" (a status line and headers, one byte at a time, for ever), "endless" (200, then an
    endless chunked body as fast as the socket takes it) or "hang" (reads the request, never answers)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    hostile = Hostile(f"http://127.0.0.1:{listener.getsockname()[1]}{path}")

    def serve(conn: socket.socket) -> None:
        conn.settimeout(0.5)
        try:
            data = b""
            while b"\r\n\r\n" not in data and not hostile.stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                data += chunk
            hostile.requests += 1
            hostile.got_request.set()
            if mode == "trickle":
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000_000:
                    if hostile.stop.wait(TRICKLE_S):
                        return
                    conn.sendall(bytes([byte]))
            elif mode == "endless":
                conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
                while not hostile.stop.is_set():
                    conn.sendall(chunk)
            else:
                hostile.stop.wait()
        except OSError:
            return  # the client hung up: what it should do
        finally:
            conn.close()

    def accept() -> None:
        while not hostile.stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield hostile
    finally:
        hostile.stop.set()
        thread.join(timeout=5)
        listener.close()
