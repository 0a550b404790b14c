"""Each hostile behaviour, proven over loopback with a raw socket or httpx."""

from __future__ import annotations

import json
import socket
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from tests.servers import SCRIPTS, Step, flow, hostile, scripted_server
from tests.servers.scripted import ENDLESS_CHUNK

A = {"Authorization": "Bearer s3cret-token"}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5.0)
    return sock


def send_get(sock: socket.socket, path: str) -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())


def read_head(sock: socket.socket) -> tuple[dict[str, str], bytes, bytes]:
    """(headers lower-cased, status line, the bytes already read past the head)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the head ended"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return headers, lines[0].encode(), rest


def one_poll(step: Step) -> Any:
    """A server whose every poll answers ``step``."""
    return scripted_server(flow([step]))


def test_gzip_bomb_is_small_on_the_wire_and_huge_decoded() -> None:
    with one_poll(hostile.gzip_bomb_step()) as base:
        sock = connect(base)
        send_get(sock, "/diary/voice/progress/t")
        headers, status, body = read_head(sock)
        assert status == b"HTTP/1.1 200 OK" and headers["content-encoding"] == "gzip"
        wire = int(headers["content-length"])
        while len(body) < wire:
            body += sock.recv(1 << 20)
        sock.close()
    assert 400_000 < wire < 600_000 and len(body) == wire
    inflate = zlib.decompressobj(31)  # gzip; bounded output per call so the test itself stays small
    decoded, pending, head = 0, body, b""
    while pending and not inflate.eof:
        out = inflate.decompress(pending, 1 << 24)
        head = head or out[:64]
        decoded += len(out)
        pending = inflate.unconsumed_tail
    assert inflate.eof and decoded == hostile.GZIP_BOMB_DECODED_BYTES == 500 * 1024 * 1024
    assert head.startswith(b'{"task_id": "bomb", "pad": "000')


def test_gzip_bomb_is_built_once() -> None:
    t = time.monotonic()
    first = hostile.gzip_bomb()
    assert hostile.gzip_bomb() is first and time.monotonic() - t < 5.0
    small = hostile.gzip_bomb(3 * 1024 * 1024 + 17)  # not a whole number of blocks
    assert len(zlib.decompress(small, 31)) == 3 * 1024 * 1024 + 17


def test_endless_body_keeps_sending(client: httpx.Client) -> None:
    with one_poll(hostile.endless_step()) as base:
        sock = connect(base)
        send_get(sock, "/diary/voice/progress/t")
        headers, _, got = read_head(sock)
        assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
        received = len(got)
        while received < 32 * 1024 * 1024:  # far beyond any sane progress answer, and still coming
            chunk = sock.recv(1 << 20)
            assert chunk, "the endless body ended"
            received += len(chunk)
        sock.close()
        time.sleep(0.1)
        assert client.get(f"{base}/health").status_code == 200  # the server shrugged off the hang-up
    assert ENDLESS_CHUNK  # filler, so the stream is valid chunked encoding that never ends


def test_trickle_sends_at_the_given_rate(client: httpx.Client) -> None:
    rate = 500  # 50 bytes every 0.1 s: a ~300-byte answer in ~0.6 s
    with one_poll(hostile.trickle_step(rate_bps=rate)) as base:
        sock = connect(base)
        t = time.monotonic()
        send_get(sock, "/diary/voice/progress/t")
        arrivals = []
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            arrivals.append(time.monotonic() - t)
            if b"\r\n\r\n" in data:
                head, body = data.split(b"\r\n\r\n", 1)
                length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
                             .split(b":")[1])
                if len(body) >= length:
                    break
        sock.close()
        assert json.loads(body)["progress"] == 33
        expected = (len(data) - rate // 10) / rate  # the first tenth-second's bytes go at once
        assert expected * 0.9 < arrivals[-1] < expected * 3 + 0.5
        assert len(arrivals) >= 5  # in pieces, not at once
        assert client.get(f"{base}/diary/voice/progress/t", timeout=5.0).json()["progress"] == 33  # httpx waits it out


def test_huge_body_is_50_mb_of_valid_json(client: httpx.Client) -> None:
    with one_poll(hostile.huge_body_step()) as base:
        r = client.get(f"{base}/diary/voice/progress/t")
    assert len(r.content) == hostile.HUGE_BODY_BYTES == 50 * 1024 * 1024
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.json()["progress"] == 40


def test_close_mid_answer(client: httpx.Client) -> None:
    with one_poll(hostile.close_mid_step()) as base:
        sock = connect(base)
        send_get(sock, "/diary/voice/progress/t")
        headers, _, body = read_head(sock)
        while chunk := sock.recv(65536):
            body += chunk
        sock.close()
        assert 0 < len(body) < int(headers["content-length"])
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(f"{base}/diary/voice/progress/t")


def test_hang_never_answers(client: httpx.Client) -> None:
    with one_poll(hostile.hang_step()) as base:
        t = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"{base}/diary/voice/progress/t", timeout=httpx.Timeout(5.0, read=0.3))
        assert 0.3 <= time.monotonic() - t < 2.0
        assert [r.route for r in base.requests] == ["poll"]  # it was received, just not answered


@pytest.mark.parametrize("kind", sorted(hostile.MALFORMED))
def test_malformed_answers_are_protocol_errors(client: httpx.Client, kind: str) -> None:
    with one_poll(hostile.malformed_step(kind)) as base:
        with pytest.raises(httpx.HTTPError) as exc:
            client.get(f"{base}/diary/voice/progress/t")
        assert isinstance(exc.value, (httpx.RemoteProtocolError, httpx.ReadError, httpx.DecodingError))


def test_deeply_nested_json(client: httpx.Client) -> None:
    with scripted_server(SCRIPTS["nested-json"]) as base:
        answers = [client.get(f"{base}/diary/voice/progress/t") for _ in range(4)]
    body = answers[2].content
    assert len(body) == 200_000 and body.startswith(b"[[[[") and body.endswith(b"]]]]")
    with pytest.raises(RecursionError):
        json.loads(body)
    assert answers[3].json()["progress"] == 24  # the flow goes on after it


def test_huge_string_field(client: httpx.Client) -> None:
    with scripted_server(SCRIPTS["huge-string"]) as base:
        answers = [client.get(f"{base}/diary/voice/progress/t") for _ in range(3)]
    assert len(answers[2].json()["step_name"]) == 1024 * 1024


@pytest.mark.parametrize("kind", sorted(hostile.WEIRD_IDS))
def test_weird_ids_come_back_exactly(client: httpx.Client, kind: str) -> None:
    weird = hostile.WEIRD_IDS[kind]
    with scripted_server(SCRIPTS[f"task-id-{kind}"]) as base:
        r = client.post(f"{base}/diary/voice/async", data={"duration": "5"},
                        files={"audio": ("a.m4a", b"\x00" * 2000, "audio/m4a")})
        assert r.json()["task_id"] == weird
    with scripted_server(SCRIPTS[f"diary-id-{kind}"]) as base:
        answers = [client.get(f"{base}/diary/voice/progress/t") for _ in range(12)]
        assert answers[-1].json()["status"] == "completed" and answers[-1].json()["diary"]["diary_id"] == weird


def test_recorder_shows_an_id_used_in_a_path() -> None:
    """What a test of the probe asserts on: the raw target, and the id as the route saw it."""
    with scripted_server(SCRIPTS["healthy"]) as base:
        sock = connect(base)
        send_get(sock, "/diary/voice/progress/..%2F..%2Fadmin%3Fx%3D1?y=2")
        read_head(sock)
        sock.close()
        (seen,) = base.requests
    assert seen.target == "/diary/voice/progress/..%2F..%2Fadmin%3Fx%3D1?y=2"
    assert seen.route == "poll" and seen.key == hostile.WEIRD_IDS["traversal"]


def test_echo_token(client: httpx.Client) -> None:
    with scripted_server(SCRIPTS["echo-token"]) as base:
        health = client.get(f"{base}/health", headers=A)
        answer = client.get(f"{base}/diary/voice/progress/t", headers=A)
    assert health.json()["token"] == "s3cret-token" and health.json()["authorization"] == "Bearer s3cret-token"
    assert health.headers["x-echo-authorization"] == "Bearer s3cret-token"
    assert health.headers["x-debug-token"] == "s3cret-token"
    assert answer.headers["x-debug-token"] == "s3cret-token" and answer.json()["progress"] == 22


@pytest.mark.parametrize(("name", "value"), [("retry-after-huge", "1000000000"), ("retry-after-1e9", "1e9")])
def test_retry_after_absurd_values(client: httpx.Client, name: str, value: str) -> None:
    with scripted_server(SCRIPTS[name]) as base:
        answers = [client.get(f"{base}/diary/voice/progress/t") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 429, 200]
    assert answers[2].headers["retry-after"] == value


def test_retry_after_http_date_an_hour_ahead(client: httpx.Client) -> None:
    with scripted_server(SCRIPTS["retry-after-date"]) as base:
        answers = [client.get(f"{base}/diary/voice/progress/t") for _ in range(3)]
    when = parsedate_to_datetime(answers[2].headers["retry-after"])
    ahead = (when - datetime.now(UTC)).total_seconds()
    assert answers[2].status_code == 429 and 3590 < ahead <= 3600


@pytest.mark.parametrize(("name", "expected"), [("progress-float", 99.5), ("progress-string", "50"),
                                                ("progress-missing", None)])
def test_odd_progress_in_the_final_answer(client: httpx.Client, name: str, expected: Any) -> None:
    with scripted_server(SCRIPTS[name]) as base:
        final = [client.get(f"{base}/diary/voice/progress/t") for _ in range(12)][-1].json()
    assert final["status"] == "completed" and final.get("progress") == expected
    assert ("progress" in final) == (expected is not None)
