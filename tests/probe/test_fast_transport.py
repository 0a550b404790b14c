"""The poll transport over real sockets: the simulator, and small servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import Awaitable, Callable

import httpx
import pytest
import trustme

from probes.probe.fast_transport import FastTransport
from probes.sim.server import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def answer(body: bytes = b'{"ok":true}', *, extra: bytes = b"", length: bool = True) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra
    if length:
        head += b"content-length: %d\r\n" % len(body)
    return head + b"\r\n" + body


async def serve(handler: Handler, body: Callable[[str], Awaitable[None]], tls: ssl.SSLContext | None = None) -> int:
    """Run `body(url)` against a server on a free loopback port that answers with `handler`; connections made."""
    connections = []

    async def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(track, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await body(f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}")
    return len(connections)


async def get(transport: FastTransport, url: str, timeout: float = 5.0) -> httpx.Response:
    request = httpx.Request("GET", url + "/diary/voice/progress/t1", headers={"Authorization": "Bearer x"},
                            extensions={"timeout": httpx.Timeout(timeout).as_dict()})
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


def test_polls_the_simulator_over_one_kept_alive_connection(sim):
    url = sim("fast")

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            task_id = (await client.post("/diary/voice/async", files={"audio": ("a.m4a", b"x" * 2000, "audio/m4a")},
                                         data={"duration": "5"})).json()["task_id"]
            async with FastTransport() as transport:
                request = client.build_request("GET", f"/diary/voice/progress/{task_id}")
                answers = [await transport.handle_async_request(request) for _ in range(5)]
                for r in answers:
                    await r.aread()
                assert len(transport._all) == 1  # every poll reused the first connection
        assert {r.status_code for r in answers} == {200}
        assert all(r.json()["task_id"] == task_id for r in answers)
        assert answers[0].headers["content-type"].startswith("application/json")

    asyncio.run(main())


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error():
    async def once_then_close(reader, writer):
        await read_request(reader)
        writer.write(answer())
        await writer.drain()

    async def body(url):
        async with FastTransport() as transport:
            first = await get(transport, url)
            await asyncio.sleep(0.1)  # the server has closed the kept-alive connection by now
            second = await get(transport, url)
        assert first.status_code == second.status_code == 200

    assert asyncio.run(serve(once_then_close, body)) == 2


@pytest.mark.parametrize("wire, expect", [
    (answer(b"until-close", length=False), b"until-close"),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
    (answer(gzip.compress(b'{"progress":32}'), extra=b"content-encoding: gzip\r\n"), b'{"progress":32}'),
], ids=["read-until-close", "chunked", "gzip"])
def test_answers_framed_every_way_http_allows(wire, expect):
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(wire)
        await writer.drain()
        if b"content-length" not in wire and b"chunked" not in wire:
            writer.close()
        await asyncio.sleep(0.2)

    async def body(url):
        async with FastTransport() as transport:
            response = await get(transport, url)
        assert response.content == expect

    asyncio.run(serve(handler, body))


@pytest.mark.parametrize("behaviour, error", [
    ("silent", httpx.ReadTimeout),
    ("garbage", httpx.RemoteProtocolError),
    ("cut", httpx.RemoteProtocolError),
    ("close", httpx.RemoteProtocolError),
])
def test_bad_servers_give_httpx_errors(behaviour, error):
    async def handler(reader, writer):
        await read_request(reader)
        if behaviour == "garbage":
            writer.write(b"SPDY/9 what\r\n\r\n")
        elif behaviour == "cut":
            writer.write(answer(b"x" * 100)[:-50])
        elif behaviour == "close":
            return
        await writer.drain()
        await asyncio.sleep(0.05 if behaviour == "cut" else 1.0)  # cut: the server goes away mid-answer

    async def body(url):
        async with FastTransport() as transport:
            with pytest.raises(error):
                await get(transport, url, timeout=0.3)
            assert transport._all == set()  # a failed connection is never reused

    asyncio.run(serve(handler, body))


def test_nothing_listening_is_a_connect_error():
    async def main():
        async with FastTransport() as transport:
            with pytest.raises(httpx.ConnectError):
                await get(transport, f"http://127.0.0.1:{free_port()}")

    asyncio.run(main())


def test_a_cancelled_poll_does_not_leave_its_connection_for_the_next():
    connections = 0

    async def slow(reader, writer):
        nonlocal connections
        connections += 1
        me = connections
        for request in (1, 2):
            await read_request(reader)
            await asyncio.sleep(0.3)
            writer.write(answer(f"connection {me} request {request}".encode()))
            await writer.drain()

    async def body(url):
        async with FastTransport() as transport:
            task = asyncio.create_task(get(transport, url))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            response = await get(transport, url)
        # a reused connection would hand back the cancelled request's late answer ("connection 1 request 1")
        assert response.content == b"connection 2 request 1"

    asyncio.run(serve(slow, body))


def test_https_with_a_verified_certificate():
    authority = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    authority.configure_trust(client_ctx)

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(answer(b"secure"))
        await writer.drain()
        await asyncio.sleep(0.2)

    async def body(url):
        async with FastTransport(ssl_context=client_ctx) as transport:
            assert (await get(transport, url)).content == b"secure"
        async with FastTransport() as untrusting:  # the system's roots do not know this authority
            with pytest.raises(httpx.ConnectError):
                await get(untrusting, url)

    asyncio.run(serve(handler, body, tls=server_ctx))


def test_an_upload_goes_whole_on_a_fresh_connection_and_is_never_sent_twice():
    seen: list[bytes] = []

    async def handler(reader, writer):
        head = await read_request(reader)
        length = int(next((line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(
            b"content-length")), 0))
        seen.append(head.split(b"\r\n")[0] + b" " + await reader.readexactly(length))
        writer.write(answer(b'{"task_id":"t1"}'))
        await writer.drain()
        await asyncio.sleep(0.2)

    async def body(url):
        async with FastTransport() as transport:
            await get(transport, url)  # leaves an idle keep-alive connection behind
            for _ in range(2):
                request = httpx.Request("POST", url + "/diary/voice/async", files={"audio": ("a.m4a", b"x" * 2000)},
                                        data={"duration": "5"}, extensions={"timeout": httpx.Timeout(5).as_dict()})
                response = await transport.handle_async_request(request)
                assert response.status_code == 200 and await response.aread() == b'{"task_id":"t1"}'
            with pytest.raises(ValueError):  # a GET has no body
                await transport.handle_async_request(httpx.Request("GET", url + "/x", content=b"a"))

    connections = asyncio.run(serve(handler, body))
    posts = [s for s in seen if s.startswith(b"POST")]
    assert len(posts) == 2 and all(b'name="duration"' in s and b"x" * 2000 in s for s in posts)
    assert connections == 3  # the GET's, then one fresh connection per POST (never an idle one)
