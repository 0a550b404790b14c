"""The scripted server over real loopback HTTP: flows, per-task step counting, the recorder, lifecycle."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import SCRIPTS, Step, flow, scripted_process, scripted_server
from tests.servers.process import read_records
from tests.servers.scripted import ScriptedServer, diary_id_for, task_id_for

AUDIO = {"audio": ("recording.m4a", b"\x00\x01" * 1500, "audio/m4a")}
A = {"Authorization": "Bearer token-a"}


def upload(client: httpx.Client, base: str, headers: dict[str, str] = A) -> httpx.Response:
    return client.post(f"{base}/diary/voice/async", data={"duration": "5"}, files=AUDIO, headers=headers)


def poll(client: httpx.Client, base: str, task_id: str, headers: dict[str, str] = A) -> httpx.Response:
    return client.get(f"{base}/diary/voice/progress/{task_id}", headers=headers)


def drive(client: httpx.Client, base: str, polls: int) -> list[httpx.Response]:
    task_id = upload(client, base).json()["task_id"]
    return [poll(client, base, task_id) for _ in range(polls)]


@pytest.fixture
def client() -> Any:
    with httpx.Client(timeout=5.0) as c:
        yield c


def test_healthy_flow_and_what_the_recorder_keeps(client: httpx.Client) -> None:
    with scripted_server(SCRIPTS["healthy"]) as base:
        before = time.monotonic()
        up = upload(client, base, headers={**A, "X-User-Name": "Probe"})
        assert up.status_code == 200 and up.json()["status"] == "processing"
        task_id = up.json()["task_id"]
        assert task_id == task_id_for(1)
        answers = [poll(client, base, task_id).json() for _ in range(13)]
        progress = [a["progress"] for a in answers]
        assert progress[:2] == [22, 22] and progress[11] == 100 and progress[12] == 100  # the last step repeats
        assert progress == sorted(progress) and answers[11]["status"] == "completed"
        assert answers[0]["step_name"] == "处理中" and answers[1]["step_name"] == "转录中"
        diary_id = answers[-1]["diary"]["diary_id"]
        assert diary_id == diary_id_for(task_id) and answers[-1]["task_id"] == task_id
        assert client.delete(f"{base}/diary/{diary_id}", headers=A).json()["diary_id"] == diary_id
        assert client.get(f"{base}/diary/list", headers=A).json() == []
        assert client.get(f"{base}/health").json()["status"] == "healthy"

        first = base.requests[0]
        assert (first.method, first.path, first.route) == ("POST", "/diary/voice/async", "upload")
        assert first.authorization == "Bearer token-a" and first.token == "token-a"
        assert first.header("x-user-name") == "Probe" and first.header("X-USER-NAME") == "Probe"
        assert b'name="duration"' in first.body and first.body_size > 3000
        polls = base.of("poll")
        assert len(polls) == 13 and {p.key for p in polls} == {task_id}
        assert [p.step_index for p in polls] == list(range(12)) + [11]
        times = [r.received_at for r in base.requests]
        assert before <= times[0] and times == sorted(times) and times[-1] <= time.monotonic()
        assert [r.route for r in base.requests[-3:]] == ["delete", "list", "health"]
        assert base.requests[-3].key == diary_id


def test_steps_are_counted_per_task_whatever_the_interleaving(client: httpx.Client) -> None:
    with scripted_server(SCRIPTS["5xx-burst"]) as base:
        t1 = upload(client, base).json()["task_id"]
        t2 = upload(client, base).json()["task_id"]
        assert t1 != t2
        seen: dict[str, list[tuple[int, Any]]] = {t1: [], t2: []}
        order = [t1, t1, t2, t1, t2, t2, t2, t1] + [t1, t2] * 6  # two clients, polling out of step
        for task_id in order:
            r = poll(client, base, task_id)
            seen[task_id].append((r.status_code, r.json().get("progress")))
        n = min(len(seen[t1]), len(seen[t2]))
        assert seen[t1][:n] == seen[t2][:n]
        assert [s for s, _ in seen[t1][:7]] == [200, 200, 200, 503, 503, 503, 200]


@pytest.mark.parametrize(("name", "statuses", "final"), [
    ("healthy", [200] * 12, ("completed", 100)),
    ("404-then-ok", [404] * 3 + [200] * 12, ("completed", 100)),
    ("429-retry-after", [200, 200, 429, 200, 429, 429] + [200] * 9, ("completed", 100)),
    ("5xx-burst", [200] * 3 + [503] * 3 + [200] * 9, ("completed", 100)),
    ("stuck", [200] * 15, ("processing", 32)),
    ("failed", [200] * 5, ("failed", 24)),
])
def test_ready_made_flows(client: httpx.Client, name: str, statuses: list[int], final: tuple[str, int]) -> None:
    with scripted_server(SCRIPTS[name]) as base:
        answers = drive(client, base, len(statuses) + 3)
        assert [r.status_code for r in answers[:len(statuses)]] == statuses
        last = answers[-1].json()
        assert (last["status"], last["progress"]) == final
        assert all(r.json() == answers[-1].json() for r in answers[len(statuses):])  # the last step repeats
        limited = [r for r in answers if r.status_code == 429]
        assert all(r.headers["retry-after"] == "0.2" for r in limited)
    if name == "failed":
        assert last["error"] == "TRANSCRIPTION_CONTENT_TOO_SHORT" and last["diary"] is None
    if name == "stuck":
        assert [r.json()["progress"] for r in answers[1:12]] == list(range(22, 33))


def test_auth_expiry_passes_only_with_another_token(client: httpx.Client) -> None:
    b = {"Authorization": "Bearer token-b"}
    with scripted_server(SCRIPTS["auth-expiry"]) as base:
        task_id = upload(client, base).json()["task_id"]
        assert [poll(client, base, task_id).status_code for _ in range(3)] == [200, 200, 200]
        refused = [poll(client, base, task_id) for _ in range(3)]
        assert [r.status_code for r in refused] == [401, 401, 401]
        assert refused[0].json() == {"detail": "Token已过期,请重新登录"}
        assert poll(client, base, task_id, headers={}).status_code == 200  # no header is "another" header too
        r = poll(client, base, task_id, headers=b)
        assert r.status_code == 200 and r.json()["progress"] == 25
        assert [p.token for p in base.of("poll")] == ["token-a"] * 6 + [None, "token-b"]


def test_auth_expiry_next_step_with_the_refreshed_token(client: httpx.Client) -> None:
    with scripted_server(SCRIPTS["auth-expiry"]) as base:
        task_id = upload(client, base).json()["task_id"]
        answers = [poll(client, base, task_id) for _ in range(4)]
        assert answers[-1].status_code == 401
        r = poll(client, base, task_id, headers={"Authorization": "Bearer token-b"})
        assert r.status_code == 200 and r.json()["progress"] == 24  # the step after the 401: nothing skipped


def test_cut_off_closes_mid_answer_then_goes_on(client: httpx.Client) -> None:
    with scripted_server(SCRIPTS["cut-off"]) as base:
        task_id = upload(client, base).json()["task_id"]
        assert [poll(client, base, task_id).status_code for _ in range(2)] == [200, 200]
        with pytest.raises(httpx.RemoteProtocolError):
            poll(client, base, task_id)
        r = poll(client, base, task_id)  # a new connection; the flow goes on
        assert r.status_code == 200 and r.json()["progress"] == 24


def test_unknown_paths_404_and_diaries_alias(client: httpx.Client) -> None:
    with scripted_server(SCRIPTS["healthy"]) as base:
        assert client.get(f"{base}/nope").status_code == 404
        assert client.get(f"{base}/diary/voice/progress/").status_code == 404
        r = client.post(f"{base}/diaries/voice/async", data={"duration": "5"}, files=AUDIO)
        assert r.status_code == 200 and base.requests[-1].route == "upload"
        assert client.get(f"{base}/diaries/list").json() == []
        assert [r.route for r in base.requests] == [None, None, "upload", "list"]


def test_custom_script_callables_and_delay(client: httpx.Client) -> None:
    script = flow(
        [Step(200, lambda req: {"seen": req.method, "n": req.step_index}, delay_s=0.2,
              headers={"X-Task": "$TASK_ID", "X-Method": lambda req: req.method})],
        health=[Step(503, "down for maintenance")],
    )
    with scripted_server(script) as base:
        t = time.monotonic()
        r = poll(client, base, "abc")
        assert time.monotonic() - t >= 0.2
        assert r.json() == {"seen": "GET", "n": 0} and r.headers["x-task"] == "abc" and r.headers["x-method"] == "GET"
        h = client.get(f"{base}/health")
        assert h.status_code == 503 and h.text == "down for maintenance" and h.headers["content-type"].startswith("text/plain")


def test_bad_script_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown routes"):
        ScriptedServer({"progress": [Step()]})
    with pytest.raises(ValueError, match="at least one step"):
        ScriptedServer({"poll": []})


def test_stops_promptly_with_a_client_still_waiting() -> None:
    sock = socket.socket()
    with scripted_server(SCRIPTS["hang"]) as base:
        host, port = base.removeprefix("http://").split(":")
        sock.connect((host, int(port)))
        sock.sendall(b"GET /diary/voice/progress/x HTTP/1.1\r\nHost: x\r\n\r\n" * 3)  # poll 3 hangs
        deadline = time.monotonic() + 5
        while len(base.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(base.requests) == 3
        t = time.monotonic()
    assert time.monotonic() - t < 2.0
    sock.settimeout(2.0)
    rest = b""
    while chunk := sock.recv(65536):  # the server closed the hung connection
        rest += chunk
    assert rest.count(b"HTTP/1.1 200 OK") == 2
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1.0).close()


def test_child_process_records_to_a_file(client: httpx.Client, tmp_path: Path) -> None:
    record = tmp_path / "requests.jsonl"
    with scripted_process("404-then-ok", record=record) as base:
        task_id = upload(client, base).json()["task_id"]
        assert [poll(client, base, task_id).status_code for _ in range(4)] == [404, 404, 404, 200]
    rows = read_records(record)
    assert [r["route"] for r in rows] == ["upload"] + ["poll"] * 4
    assert ["Authorization", "Bearer token-a"] in rows[0]["headers"]
    assert rows[1]["key"] == task_id and rows[-1]["step_index"] == 3
    assert rows[0]["received_at"] <= rows[-1]["received_at"] <= time.monotonic()  # one clock across processes
