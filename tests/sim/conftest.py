"""Helpers shared by the simulator's HTTP tests: one client, one way to upload."""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

AUDIO = b"\x00\x01" * 1500  # 3000 bytes: content is never decoded


def upload(client: httpx.Client, base: str, *, duration: Any = 5, audio: bytes = AUDIO, ctype: str = "audio/m4a",
           headers: dict[str, str] | None = None, fields: dict[str, Any] | None = None) -> httpx.Response:
    data = {"duration": str(duration)} if duration is not None else {}
    data.update(fields or {})
    files = {"audio": ("recording.m4a", audio, ctype)} if audio is not None else None
    return client.post(f"{base}/diary/voice/async", data=data, files=files, headers=headers or {})


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c
