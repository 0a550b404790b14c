"""One HTTP exchange under a total deadline, reading back at most a few kilobytes: the webhook and the Pushgateway.

    answer = exchange("POST", url, content=body, headers={...}, deadline_s=10)   # Answer(status, body)
    # ExchangeFailed("ConnectError") / ExchangeFailed("no answer within 10 s"): the reason is safe to print

httpx's timeouts bound each connect, read and write, not the call: a receiver
sending one byte every 5 s never trips a 10 s read timeout and held a canary
(and its lock) for 13 minutes; an endless chunked answer grew one to 2.8 GB.
Here the whole exchange (connect, send, status line, headers, body) runs under
one asyncio deadline, the body is read raw (no decompression) as it streams and
reading stops at MAX_ANSWER_BYTES. Headers are bounded by h11 (its 16 KiB limit
on an incomplete event) and redirects are not followed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

# A webhook answers "ok" (Slack) or a short JSON, the Pushgateway nothing or one error line: 16 KiB keeps any
# honest answer whole and bounds a hostile one (an endless body is cut here, not buffered).
MAX_ANSWER_BYTES = 16 * 1024


@dataclass(frozen=True)
class Answer:
    """The status and the first MAX_ANSWER_BYTES of the body, as sent (not decoded)."""

    status: int
    body: bytes
    truncated: bool = False


class ExchangeFailed(Exception):
    """No answer. `str()` is an exception class name or "no answer within N s": never a URL, never a body.

    `permanent`: trying again cannot help (a URL httpx will not send: a scheme it does not speak, a bad host).
    """

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


def exchange(method: str, url: str, *, deadline_s: float, content: bytes = b"", headers: dict[str, str] | None = None,
             auth: Any = None, max_bytes: int = MAX_ANSWER_BYTES) -> Answer:
    """Send one request and read its answer, all within `deadline_s` seconds of wall time."""
    if not deadline_s > 0:
        raise ExchangeFailed("no time left for it")
    return asyncio.run(_exchange(method, url, deadline_s, content, headers or {}, auth, max_bytes))


async def _exchange(method: str, url: str, deadline_s: float, content: bytes, headers: dict[str, str], auth: Any,
                    max_bytes: int) -> Answer:
    import httpx

    try:
        async with asyncio.timeout(deadline_s):
            async with httpx.AsyncClient(timeout=deadline_s, follow_redirects=False) as client:
                async with client.stream(method, url, content=content, headers=headers, auth=auth) as response:
                    body = bytearray()
                    truncated = False
                    async for chunk in response.aiter_raw():
                        body += chunk[: max_bytes - len(body)]
                        if len(body) >= max_bytes:
                            truncated = True
                            break  # leaving the block closes the connection: the rest is never read
                    return Answer(response.status_code, bytes(body), truncated)
    except (TimeoutError, httpx.TimeoutException):
        raise ExchangeFailed(f"no answer within {round(deadline_s, 1):g} s") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL, ValueError) as exc:  # a URL httpx will not send
        raise ExchangeFailed(type(exc).__name__, permanent=True) from None
    except (httpx.HTTPError, OSError) as exc:  # refused, reset, bad TLS, a broken answer
        raise ExchangeFailed(type(exc).__name__) from None
