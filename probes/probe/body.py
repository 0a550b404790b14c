"""Answer bodies with a bound: read raw bytes, decode the content-encoding, stop at MAX_BODY_BYTES.

Why our own decoder: httpx and geventhttpclient decompress a whole body (or a
whole chunk) in one call, so 0.5 MB of gzip on the wire becomes 500 MB in
memory before anyone can count it. Here every step of the decoder is given
the room that is left (`max_length`), so neither the wire bytes nor the
decoded bytes of one answer ever exceed the cap. Pure: chunks in, bytes out.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

# A thankly progress answer is ~0.4 KB, the final one with the diary ~3 KB, /health < 1 KB.
# 1 MB is a thousand times that: room for any honest backend, a bound for a hostile one.
MAX_BODY_BYTES = 1 << 20
# What we ask for: only what we can decode with a bound (no br/zstd: their decoders here take no limit).
ACCEPT_ENCODING = "gzip, deflate"


class BodyError(Exception):
    """The body could not be read within the rules; the message is one line, fit for a record."""


class BodyTooLarge(BodyError):
    pass


def _decoder(encoding: str) -> "zlib._Decompress | None":
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":  # zlib-wrapped per RFC 9110; raw deflate is detected on the first byte
        return zlib.decompressobj(zlib.MAX_WBITS | 32)
    raise BodyError(f"unsupported content-encoding {encoding[:40]!r}")


class BodyReader:
    """Feed raw chunks as they arrive; `finish()` returns the decoded body. Raises BodyError."""

    def __init__(self, content_encoding: str | None, limit: int = MAX_BODY_BYTES) -> None:
        names = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
        if len(names) > 2:
            raise BodyError("more than two content-encodings")
        # Applied in order by the server, so undone in reverse.
        self._decoders = [d for d in (_decoder(e) for e in reversed(names)) if d is not None]
        self.limit = limit
        self.wire = 0
        self._out: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        self.wire += len(chunk)
        if self.wire > self.limit:
            raise BodyTooLarge(f"answer over {self.limit // 1024} KB on the wire")
        self._push(chunk, 0)

    def _push(self, data: bytes, level: int) -> None:
        if level == len(self._decoders):
            self._size += len(data)
            if self._size > self.limit:
                raise BodyTooLarge(f"answer over {self.limit // 1024} KB decoded")
            self._out.append(data)
            return
        decoder = self._decoders[level]
        try:
            while data:
                room = self.limit - self._size + 1
                out = decoder.decompress(data, room)
                self._push(out, level + 1)
                data = decoder.unconsumed_tail
                if decoder.eof:
                    break
        except zlib.error as exc:
            raise BodyError(f"bad compressed body: {exc}") from None

    def finish(self) -> bytes:
        for level, decoder in enumerate(self._decoders):
            try:
                tail = decoder.flush()
            except zlib.error as exc:
                raise BodyError(f"bad compressed body: {exc}") from None
            if tail:
                self._push(tail, level + 1)
        return b"".join(self._out)


def read_all(chunks: Iterable[bytes], content_encoding: str | None, limit: int = MAX_BODY_BYTES) -> bytes:
    """Decode a body from its raw chunks within the limit (the synchronous drivers' helper)."""
    reader = BodyReader(content_encoding, limit)
    for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()
