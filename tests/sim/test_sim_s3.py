"""The S3 stand-in's pure parts: what a presigned URL allows, how S3 refuses the rest, the bounded store."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from probes.sim.s3 import (
    BUCKET, MAX_ECHO_CHARS, MAX_EXPIRES_S, ObjectStore, S3Error, StoredObject, check_signed, error_xml,
    presign_query,
)

SECRET = b"k" * 32
KEY = "audio/0123abcd-recording.m4a"
NOW = 1_800_000_000.0  # a wall-clock second, 2027-01-15


def query(secret: bytes = SECRET, key: str = KEY, ctype: str = "audio/m4a", wall: float = NOW,
          expires: int = 3600) -> dict[str, str]:
    return dict(parse_qsl(presign_query(secret, BUCKET, key, ctype, wall, expires)))


def check(q: dict[str, str], method: str = "PUT", key: str = KEY, ctype: str = "audio/m4a",
          now: float = NOW + 1) -> S3Error | None:
    return check_signed(q, method, BUCKET, key, ctype, SECRET, now)


def test_the_signed_request_passes_within_its_window() -> None:
    q = query()
    assert set(q) == {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                      "X-Amz-Signature"}
    assert q["X-Amz-Expires"] == "3600" and q["X-Amz-SignedHeaders"] == "content-type;host"
    assert check(q, now=NOW) is None and check(q, now=NOW + 3600) is None


@pytest.mark.parametrize("change", [
    {"key": "audio/0123abcd-other.m4a"},   # retargeted
    {"ctype": "audio/mp4"},                # retyped: boto3 signs content-type for put_object
    {"ctype": ""},
    {"method": "GET"},                     # a PUT URL does not read
    {"sig": "0" * 64},                     # forged
    {"sig": "é" * 64},                     # not even hex
    {"expires": str(MAX_EXPIRES_S)},       # stretched
    {"date": "20270115T000000Z"},          # re-dated
])
def test_any_change_is_signature_does_not_match(change: dict[str, str]) -> None:
    q = query()
    if "sig" in change:
        q["X-Amz-Signature"] = change["sig"]
    if "expires" in change:
        q["X-Amz-Expires"] = change["expires"]
    if "date" in change:
        q["X-Amz-Date"] = change["date"]
    err = check(q, method=change.get("method", "PUT"), key=change.get("key", KEY), ctype=change.get("ctype", "audio/m4a"))
    assert err is not None and (err.status, err.code) == (403, "SignatureDoesNotMatch")
    assert dict(err.extra)["SignatureProvided"] == q["X-Amz-Signature"]


def test_another_secret_is_signature_does_not_match() -> None:
    err = check(query(secret=b"s" * 32))
    assert err is not None and err.code == "SignatureDoesNotMatch"


def test_expired_and_not_yet_valid() -> None:
    err = check(query(wall=NOW - 3601), now=NOW)
    assert err is not None and (err.status, err.code, err.message) == (403, "AccessDenied", "Request has expired")
    assert dict(err.extra)["X-Amz-Expires"] == "3600" and dict(err.extra)["ServerTime"] == "2027-01-15T08:00:00Z"
    assert check(query(wall=NOW + 900), now=NOW) is None  # S3's tolerated skew
    err = check(query(wall=NOW + 901), now=NOW)
    assert err is not None and (err.status, err.message) == (403, "Request is not yet valid")


@pytest.mark.parametrize(("edit", "status", "code"), [
    ({"X-Amz-Signature": None}, 400, "AuthorizationQueryParametersError"),
    ({"X-Amz-Date": "2027-01-15"}, 400, "AuthorizationQueryParametersError"),
    ({"X-Amz-Expires": "-1"}, 400, "AuthorizationQueryParametersError"),
    ({"X-Amz-Expires": str(MAX_EXPIRES_S + 1)}, 400, "AuthorizationQueryParametersError"),
    ({"X-Amz-Algorithm": "AWS4-HMAC-SHA1"}, 400, "AuthorizationQueryParametersError"),
    ({"X-Amz-Credential": "SOMEONE/20270115/us-east-1/s3/aws4_request"}, 403, "InvalidAccessKeyId"),
])
def test_malformed_parameters(edit: dict[str, str | None], status: int, code: str) -> None:
    q = query()
    for name, value in edit.items():
        if value is None:
            del q[name]
        else:
            q[name] = value
    err = check(q)
    assert err is not None and (err.status, err.code) == (status, code)


def test_error_xml_escapes_and_clips_what_it_repeats() -> None:
    hostile = "<b>&" + "\x00\x1b" + "x" * 1000
    body = error_xml(S3Error(403, "SignatureDoesNotMatch", "m", (("SignatureProvided", hostile),)), "RID").decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>')
    assert "<SignatureProvided>&lt;b&gt;&amp;\ufffd\ufffd" in body and "<b>" not in body
    provided = body.split("<SignatureProvided>")[1].split("</SignatureProvided>")[0]
    assert len(provided) <= MAX_ECHO_CHARS + 20 and provided.endswith("...")
    assert body.endswith("<RequestId>RID</RequestId><HostId>thankly-sim</HostId></Error>")


def test_store_drops_the_oldest_to_stay_within_capacity() -> None:
    store = ObjectStore(capacity=10)
    for key, size in (("a", 4), ("b", 4), ("a", 3), ("c", 4)):
        store.put(key, StoredObject(b"x" * size, "audio/m4a", "e"))
        assert store.size <= 10
    assert list(store.objects) == ["a", "c"] and store.size == 7  # b was oldest once a was replaced
    store.put("d", StoredObject(b"x" * 10, "audio/m4a", "e"))
    assert list(store.objects) == ["d"] and store.get("a") is None
