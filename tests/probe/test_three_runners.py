"""One table of scripted backends, three runners: the machine alone, the httpx driver, the Locust user.

Each script (tests/servers/scripts.py) answers by request index, so every runner
sees the same answers whatever its timing. The machine alone runs on a virtual
clock where every request takes LATENCY_S; the httpx driver and the Locust user
run over real loopback HTTP against a server playing the script. Their records
must agree field by field; times within TOLERANCE_S (one fine-cadence interval
plus scheduling noise on a busy 2-core machine). The `presigned` case plays the
healthy flow behind the app's presigned upload (presign, PUT to the server's
/_s3/..., create); each runner's PUT must carry no credential.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from probes.probe import wire
from probes.probe.driver import HttpSide, Probe
from probes.probe.machine import Answer, Done, ProbeMachine, Refreshed, RefreshToken, Send, TransportError
from tests.probe.table_plan import CountingTokens, plan
from tests.servers import SCRIPTS, Step, flow, scripted_server
from tests.servers.scripts import HEALTHY_POLLS
from tests.probe.table_plan import AUDIO
from tests.servers.scripted import (
    OBJECT_PATH, SIGNATURE, Recorded, Script, ScriptedServer, _encode, _fill, task_id_for,
)

ROOT = Path(__file__).resolve().parents[2]
LATENCY_S = 0.002
TOLERANCE_S = 0.12
CASES = {  # script: (cadence, interval, timeout_s, cleanup[, upload])
    "healthy": ("fine", 0.05, 10.0, True),
    "presigned": ("fine", 0.05, 10.0, True, "presigned"),
    "presigned-forged": ("fine", 0.05, 10.0, False, "presigned"),
    "404-then-ok": ("app", 0.0, 10.0, False),
    "429-retry-after": ("fine", 0.05, 10.0, False),
    "5xx-burst": ("fine", 0.05, 10.0, False),
    "stuck": ("fine", 0.05, 1.5, False),
    "failed": ("fine", 0.05, 10.0, False),
    "auth-expiry": ("fine", 0.05, 10.0, False),
    "cut-off": ("fine", 0.05, 10.0, False),
}
# S3 refuses the signature and repeats it in its error document, as S3 does (SignatureProvided)
FORGED = Step(403, "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does "
              f"not match</Message><SignatureProvided>{SIGNATURE}</SignatureProvided></Error>",
              headers={"Content-Type": "application/xml"})
SCRIPT_OF = {"presigned": SCRIPTS["healthy"], "presigned-forged": flow(HEALTHY_POLLS, put=[FORGED])}


def script_of(case: str) -> Script:
    return SCRIPT_OF.get(case) or SCRIPTS[case]
EXACT = ("outcome", "error", "task_id", "diary_id", "cleanup", "cleanup_error", "refreshes", "upload",
         "upload_status", "failed_step", "poll_count", "poll_errors", "regressions", "states", "instances",
         "shown_model")
TIMED = ("total_s", "end_s", "transcription_s", "upload_s", "presign_s", "put_s", "create_s", "shown_held_32_s",
         "shown_done_s")


def run_machine_alone(script: str, cadence: str, interval: float, timeout: float, cleanup: bool,
                      upload: str = "multipart") -> dict:
    """The machine on a virtual clock, answered by the script's own step logic (no sockets)."""
    server = ScriptedServer(script_of(script))
    tokens = CountingTokens()
    machine = ProbeMachine(plan(cadence, interval or 0.05, timeout, cleanup, upload).config)
    now, token, action = 0.0, tokens.current(), machine.start()
    while not isinstance(action, Done):
        if isinstance(action, RefreshToken):
            token = tokens.refresh(token)
            action = machine.receive(Refreshed(now, True))
            continue
        assert isinstance(action, Send)
        now = max(now, action.not_before_s)
        action = machine.receive(_virtual_answer(server, action, token, now))
        now += LATENCY_S
    return machine.record(run_id="table", probe_id="0001", target="scripted", label="table")


def _virtual_answer(server: ScriptedServer, send: Send, token: str, now: float) -> Answer | TransportError:
    headers = [] if send.kind == "put" else [("Authorization", f"Bearer {token}")]
    path = urlsplit(send.object_url).path if send.kind == "put" else send.path
    recorded = Recorded(0, send.method, path, path, headers, b"", 0, now)
    step = server._pick(recorded)
    assert step is not None, send
    subs = server._substitutions(recorded)
    end = now + LATENCY_S + step.delay_s
    if step.mode != "normal":
        return TransportError(now, end, f"scripted {step.mode}")
    raw = step.body(recorded) if callable(step.body) else step.body
    body = _encode(_fill(raw, subs) if isinstance(raw, (dict, list, str)) else raw)
    answer_headers = {k.lower(): str(_fill(v, subs)) for k, v in step.headers.items()}
    return Answer(now, end, step.status, answer_headers, body)


def run_httpx(base_url: str, cadence: str, interval: float, timeout: float, cleanup: bool,
              upload: str = "multipart") -> dict:
    async def go() -> dict:
        async with HttpSide(base_url, 1, wire.request_headers(), CountingTokens()) as http:
            return await Probe(http, plan(cadence, interval or 0.05, timeout, cleanup, upload), "0001").run()

    return asyncio.run(go())


def run_locust(base_url: str, cadence: str, interval: float, timeout: float, cleanup: bool,
               upload: str = "multipart") -> dict:
    cmd = [sys.executable, "-m", "tests.probe.locust_flow", base_url, "--cadence", cadence, "--interval",
           str(interval or 0.05), "--timeout", str(timeout), "--upload", upload] + (["--cleanup"] if cleanup else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    # what Locust's statistics got of each request: its name and failure text (its CSV and HTML show them)
    for name, failure in record.pop("locust_requests"):
        assert SIGNATURE not in f"{name} {failure}" and "_s3" not in name and "X-Amz" not in f"{name} {failure}"
    return record


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """The fields that must agree exactly, with the samples' answer columns (not their times)."""
    out = {k: record[k] for k in EXACT}
    out["answers"] = [row[1:6] for row in record["samples"]]
    out["milestones"] = sorted(record["milestones"])
    out["dwell"] = sorted(record["dwell"])
    out["stall_at"] = (record["longest_stall"] or {}).get("progress")
    return out


def assert_times_agree(a: dict[str, Any], b: dict[str, Any], who: str) -> None:
    for key in TIMED:
        if key in ("shown_held_32_s", "shown_done_s") and a[key] is not None and b[key] is not None:
            # the bar's replay moves in 0.8 s timer ticks: a few ms of latency can move a change by one tick
            assert abs(a[key] - b[key]) <= TOLERANCE_S + 0.8, (who, key, a[key], b[key])
            continue
        if a[key] is None or b[key] is None:
            assert a[key] is b[key] is None, (who, key, a[key], b[key])
        else:
            assert abs(a[key] - b[key]) <= TOLERANCE_S, (who, key, a[key], b[key])
    for m, ms in a["milestones"].items():
        assert abs(ms["t_s"] - b["milestones"][m]["t_s"]) <= TOLERANCE_S, (who, m, ms, b["milestones"][m])
    for m, d in a["dwell"].items():
        assert abs(d - b["dwell"][m]) <= TOLERANCE_S, (who, "dwell", m, d, b["dwell"][m])
    for x, y in zip(a["samples"], b["samples"]):
        assert abs(x[0] - y[0]) <= TOLERANCE_S, (who, "sample time", x, y)


@pytest.mark.parametrize("script", list(CASES))
def test_three_runners_agree(script: str) -> None:
    case = CASES[script]
    played = script_of(script)
    alone = run_machine_alone(script, *case)
    with scripted_server(played) as base:
        over_httpx = run_httpx(base, *case)
        httpx_tokens = [r.token for r in base.of("poll")]
        httpx_puts, httpx_creates = base.of("put"), base.of("create")
    with scripted_server(played) as base:
        under_locust = run_locust(base, *case)
        locust_tokens = [r.token for r in base.of("poll")]
        locust_puts, locust_creates = base.of("put"), base.of("create")
    expected = comparable(alone)
    assert comparable(over_httpx) == expected
    assert comparable(under_locust) == expected
    assert httpx_tokens == locust_tokens
    assert_times_agree(alone, over_httpx, "httpx")
    assert_times_agree(alone, under_locust, "locust")
    presigned = case[4:] == ("presigned",)
    assert len(httpx_puts) == len(locust_puts) == int(presigned)
    if script == "presigned-forged":
        assert (alone["outcome"], alone["error"], alone["failed_step"]) == (
            "upload_error", "object PUT: HTTP 403 SignatureDoesNotMatch", "put")
    for put in httpx_puts + locust_puts:  # the object PUT carries the audio and only what S3 needs
        names = {k.lower() for k, _ in put.headers}
        assert put.header("content-type") == "audio/m4a" and put.body_size == 2000, put.headers
        assert not names & {"authorization", "cookie", "x-user-name"}, put.headers
        assert "?X-Amz-Algorithm=" in put.target and put.target.endswith(SIGNATURE)
    for create in httpx_creates + locust_creates:  # the app's form: the object's final URL, the duration, base64
        fields = form_fields(create)
        origin = f"http://{create.header('host')}"  # the server's own, as its presign named it
        assert fields["audio_url"] == origin + OBJECT_PATH.replace("$TASK_ID", task_id_for(1)), fields
        assert fields["duration"] == "5" and fields["audio_filename"] == "recording.m4a"
        assert fields["audio_content_type"] == "audio/m4a" and base64.b64decode(fields["audio_content_base64"]) == AUDIO


def form_fields(request: Recorded) -> dict[str, str]:
    """The text fields of a multipart/form-data request the server recorded."""
    boundary = request.header("content-type").split("boundary=", 1)[1]
    fields = {}
    for part in request.body.decode().split(f"--{boundary}")[1:-1]:
        head, _, value = part.partition("\r\n\r\n")
        fields[head.split('name="', 1)[1].split('"', 1)[0]] = value.removesuffix("\r\n")
    return fields


def test_the_table_covers_what_each_script_is_for() -> None:
    """The scripts end where they should: the table would pass vacuously if every runner failed alike."""
    outcomes = {s: run_machine_alone(s, *CASES[s])["outcome"] for s in CASES}
    assert outcomes == {"healthy": "completed", "presigned": "completed", "presigned-forged": "upload_error",
                        "404-then-ok": "completed",
                        "429-retry-after": "completed",
                        "5xx-burst": "completed", "stuck": "timeout", "failed": "failed",
                        "auth-expiry": "completed", "cut-off": "completed"}
    healthy = run_machine_alone("healthy", *CASES["healthy"])
    assert healthy["cleanup"] == "deleted"
    presigned = run_machine_alone("presigned", *CASES["presigned"])
    assert presigned["upload"] == "presigned" and presigned["failed_step"] is None
    assert all(presigned[k] is not None for k in ("presign_s", "put_s", "create_s", "shown_held_32_s"))
    assert run_machine_alone("auth-expiry", *CASES["auth-expiry"])["refreshes"] == 1
