"""The body cap alone (probes/probe/body.py): no answer is held beyond MAX_BODY_BYTES, wire or decoded.

Pure: chunks in, bytes or BodyTooLarge out. The memory test measures what the reader allocates with
tracemalloc, so a decoder that inflates a whole chunk before counting it fails here, not only in
the live gzip-bomb test (whose bound is the process's RSS).
"""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from probes.probe.body import MAX_BODY_BYTES, BodyError, BodyReader, BodyTooLarge, read_all

LIMIT = MAX_BODY_BYTES


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def deflate(data: bytes) -> bytes:
    return zlib.compress(data, 9)


@pytest.mark.parametrize("encoding, encode", [("gzip", gzip.compress), ("deflate", deflate),
                                              ("gzip, gzip", lambda d: gzip.compress(gzip.compress(d)))])
def test_exactly_the_limit_decodes_and_one_byte_more_is_refused(encoding, encode):
    """The decoded-size check: a body of LIMIT bytes is whole, LIMIT + 1 is an error, never a longer body."""
    assert read_all(chunks(encode(b"x" * LIMIT), 4096), encoding) == b"x" * LIMIT
    with pytest.raises(BodyTooLarge, match="decoded"):
        read_all(chunks(encode(b"x" * (LIMIT + 1)), 4096), encoding)


def test_the_wire_limit_holds_without_an_encoding():
    assert len(read_all(chunks(b"y" * LIMIT, 65536), None)) == LIMIT
    with pytest.raises(BodyTooLarge, match="on the wire"):
        read_all(chunks(b"y" * (LIMIT + 1), 65536), "identity")


def test_a_bomb_in_one_chunk_never_inflates_past_the_limit_in_memory():
    """32 MB of zeros is 32 KB of gzip, handed over as one chunk: the reader must stop near 1 MB.

    Without a `max_length` per decompress call the whole chunk inflates first (32 MB) and is only
    then counted; the peak allocation tells the two apart.
    """
    bomb = gzip.compress(b"0" * (32 * LIMIT), 9)
    assert len(bomb) < LIMIT // 16  # small on the wire: only the decoded size can catch it
    tracemalloc.start()
    try:
        reader = BodyReader("gzip")
        with pytest.raises(BodyTooLarge, match="decoded"):
            reader.feed(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * LIMIT, f"peak {peak / LIMIT:.1f} MB while decoding a bomb"


@pytest.mark.parametrize("encoding, message", [("br", "unsupported content-encoding"),
                                               ("gzip, gzip, gzip", "more than two content-encodings")])
def test_encodings_we_cannot_bound_are_refused(encoding, message):
    with pytest.raises(BodyError, match=message):
        BodyReader(encoding)


def test_a_corrupt_body_is_one_line():
    with pytest.raises(BodyError) as info:
        read_all([b"this is not gzip at all"], "gzip")
    assert str(info.value).startswith("bad compressed body") and "\n" not in str(info.value)
