"""The simulator's S3 stand-in: the presigned PUT URLs the backend hands out, checked and served.

The URLs carry S3's SigV4 query parameters (X-Amz-Algorithm, -Credential, -Date,
-Expires, -SignedHeaders, -Signature), but the signature is an HMAC-SHA256, with
a secret drawn per process, over the method, bucket, key, Content-Type,
X-Amz-Date and X-Amz-Expires: not SigV4's canonical request, yet enough that a
forged, expired, retargeted or retyped request is refused the way S3 refuses it
(status, error code, XML body). Objects live in memory, bounded; anyone may GET
an object under ``audio/`` (thankly's bucket serves its audio publicly: its
backend fetches ``final_url`` anonymously).

The ledger keeps, per presigned key, when the presign and the last PUT ran (the
simulator's monotonic clock): ground truth for ``/_sim/tasks/{id}/upload``.

    signature / presign_query / check_signed / error_xml   pure: no clock, no I/O
    ObjectStore                                            the bounded objects
    S3StandIn                                              the PUT and GET endpoints, the job's fetch
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import hmac
import random
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit
from xml.sax.saxutils import escape

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from probes.sim.scenarios import Presigned

BUCKET = "thankly-sim-audio"
PREFIX = "/_s3"  # object URLs are {origin}/_s3/{bucket}/{key}: path-style, on the simulator's own port
PUBLIC_PREFIX = "audio/"  # what anonymous GETs may read, as thankly's bucket policy allows
ALGORITHM = "AWS4-HMAC-SHA256"
ACCESS_KEY_ID = "SIMULATOR"  # not a credential: the stand-in checks the signature, and has one key
REGION = "us-east-1"
SIGNED_HEADERS = "content-type;host"  # what boto3 signs for put_object with a ContentType
AMZ_DATE = "%Y%m%dT%H%M%SZ"
MB = 1_000_000  # put_s_per_mb counts decimal megabytes, as a network's rate does

# A 600 s recording (the longest thankly accepts) is ~9.6 MB of AAC at 128 kbit/s; S3 itself
# takes 5 GB in one PUT, far more than a simulator should hold in memory. Above: EntityTooLarge.
MAX_OBJECT_BYTES = 16 * 1024 * 1024
# All objects together; the oldest go first. ~6,500 of the 41 KB five-second fixture.
STORE_BYTES = 256 * 1024 * 1024
MAX_KEY_BYTES = 1024  # S3's own limit on a key (UTF-8): KeyTooLongError; also bounds what the ledger keeps
MAX_LEDGER = 200_000  # presigned keys remembered for ground truth (as many as the simulator keeps tasks)
MAX_EXPIRES_S = 604_800  # S3 refuses a presigned URL that would live more than a week
# A URL dated further ahead of S3's clock is "not yet valid"; 15 min is the skew S3 tolerates
# in a request's date (RequestTimeTooSkewed).
FUTURE_TOLERANCE_S = 900
MAX_ECHO_CHARS = 256  # what an error body repeats of the request (a signature, a key): clipped
REQUIRED_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders",
                   "X-Amz-Expires")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # characters XML 1.0 cannot carry


@dataclass(frozen=True, slots=True)
class S3Error:
    """A refusal as S3 words it: HTTP status, error code, message, and the extra elements it adds."""

    status: int
    code: str
    message: str
    extra: tuple[tuple[str, str], ...] = ()


ACCESS_DENIED = S3Error(403, "AccessDenied", "Access Denied")
SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
                      "Check your key and signing method.")


def amz_date(wall: float) -> str:
    """X-Amz-Date text for a wall-clock time (whole seconds, UTC)."""
    return time.strftime(AMZ_DATE, time.gmtime(wall))


def parse_amz_date(text: str) -> float | None:
    """Seconds since the epoch of an X-Amz-Date, or None when it is not ``yyyyMMddTHHmmssZ``."""
    if not _AMZ_DATE.fullmatch(text):
        return None
    try:
        return float(calendar.timegm(time.strptime(text, AMZ_DATE)))
    except ValueError:
        return None


async def sleep_until(deadline: float) -> None:
    """Sleep to a monotonic deadline, never short of it: uvloop's timers run on a millisecond clock and can wake
    a little early, and a ground-truth time must be at least what the scenario says."""
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(left)


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def string_to_sign(method: str, bucket: str, key: str, content_type: str, date: str, expires: str) -> str:
    return "\n".join((ALGORITHM, method, f"/{bucket}/{key}", content_type, date, expires))


def signature(secret: bytes, method: str, bucket: str, key: str, content_type: str, date: str, expires: str) -> str:
    """Hex HMAC-SHA256 of what a presigned URL allows: this method on this key with this Content-Type, until then."""
    text = string_to_sign(method, bucket, key, content_type, date, expires)
    return hmac.new(secret, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def object_path(bucket: str, key: str) -> str:
    """The URL path of an object, its key quoted as boto3 quotes it ('/' and '~' kept)."""
    return f"{PREFIX}/{bucket}/{quote(key, safe='/~')}"


def presign_query(secret: bytes, bucket: str, key: str, content_type: str, wall: float, expires_s: int) -> str:
    """The query string of a presigned PUT, parameters in boto3's order."""
    date = amz_date(wall)
    expires = str(expires_s)
    return urlencode({
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{ACCESS_KEY_ID}/{date[:8]}/{REGION}/s3/aws4_request",
        "X-Amz-Date": date,
        "X-Amz-Expires": expires,
        "X-Amz-SignedHeaders": SIGNED_HEADERS,
        "X-Amz-Signature": signature(secret, "PUT", bucket, key, content_type, date, expires),
    }, quote_via=quote)


def is_signed(query: Mapping[str, str]) -> bool:
    """Whether a request tries query-string authentication at all (else it is anonymous)."""
    return any(name in query for name in REQUIRED_PARAMS)


def check_signed(query: Mapping[str, str], method: str, bucket: str, key: str, content_type: str, secret: bytes,
                 now_wall: float) -> S3Error | None:
    """None when the presigned request is valid now; else S3's refusal, checked in S3's order.

    Malformed parameters first (400), then the key id, then the signature (a changed
    method, key, Content-Type, date or expiry all end here), then the time window.
    """
    missing = [name for name in REQUIRED_PARAMS if not query.get(name)]
    if missing:
        return S3Error(400, "AuthorizationQueryParametersError",
                       "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                       "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
    if query["X-Amz-Algorithm"] != ALGORITHM:
        return S3Error(400, "AuthorizationQueryParametersError", f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    date = query["X-Amz-Date"]
    signed_at = parse_amz_date(date)
    if signed_at is None:
        return S3Error(400, "AuthorizationQueryParametersError",
                       "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    expires = query["X-Amz-Expires"]
    if not expires.isascii() or not expires.isdigit():
        return S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Expires should be a number")
    if int(expires) > MAX_EXPIRES_S:
        return S3Error(400, "AuthorizationQueryParametersError",
                       f"X-Amz-Expires must be less than a week (in seconds) that is; {MAX_EXPIRES_S}")
    if query["X-Amz-Credential"].split("/", 1)[0] != ACCESS_KEY_ID:
        return S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
                       (("AWSAccessKeyId", query["X-Amz-Credential"].split("/", 1)[0]),))
    provided = query["X-Amz-Signature"]
    expected = signature(secret, method, bucket, key, content_type, date, expires)
    if not hmac.compare_digest(expected.encode(), provided.encode("utf-8", "surrogatepass")):
        return S3Error(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH, (
            ("AWSAccessKeyId", ACCESS_KEY_ID),
            ("StringToSign", string_to_sign(method, bucket, key, content_type, date, expires)),
            ("SignatureProvided", provided),
        ))
    window = (("X-Amz-Expires", expires), ("Expires", _iso(signed_at + int(expires))), ("ServerTime", _iso(now_wall)))
    if now_wall > signed_at + int(expires):
        return S3Error(403, "AccessDenied", "Request has expired", window)
    if signed_at > now_wall + FUTURE_TOLERANCE_S:
        return S3Error(403, "AccessDenied", "Request is not yet valid", window)
    return None


def _xml_text(value: str) -> str:
    clipped = value if len(value) <= MAX_ECHO_CHARS else value[:MAX_ECHO_CHARS] + "..."
    return escape(_NOT_XML.sub("\ufffd", clipped))


def error_xml(error: S3Error, request_id: str) -> bytes:
    """S3's error document; whatever it repeats of the request is clipped and escaped."""
    parts = [f"<Code>{error.code}</Code>", f"<Message>{_xml_text(error.message)}</Message>"]
    parts += [f"<{name}>{_xml_text(value)}</{name}>" for name, value in error.extra]
    parts.append(f"<RequestId>{request_id}</RequestId><HostId>thankly-sim</HostId>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>").encode()


def status_error_text(status: int, url: str) -> str:
    """What thankly records when its httpx GET of the object fails: ``str(HTTPStatusError)``."""
    kind = "Client error" if status < 500 else "Server error"
    return (f"{kind} '{status} {HTTPStatus(status).phrase}' for url '{url}'\n"
            f"For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/{status}")


# httpx's ConnectError text: the simulator never fetches from another host, it answers as if none answered
CONNECT_ERROR_TEXT = "All connection attempts failed"


@dataclass(frozen=True, slots=True)
class StoredObject:
    body: bytes
    content_type: str
    etag: str


class ObjectStore:
    """Objects by key, at most ``capacity`` bytes in all; the oldest are dropped to make room."""

    def __init__(self, capacity: int = STORE_BYTES) -> None:
        self.capacity = capacity
        self.objects: dict[str, StoredObject] = {}
        self.size = 0

    def put(self, key: str, obj: StoredObject) -> None:
        old = self.objects.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        while self.objects and self.size + len(obj.body) > self.capacity:
            self.size -= len(self.objects.pop(next(iter(self.objects))).body)
        self.objects[key] = obj
        self.size += len(obj.body)

    def get(self, key: str) -> StoredObject | None:
        return self.objects.get(key)


@dataclass(slots=True)
class UploadRecord:
    """Ground truth for one presigned key, on the simulator's monotonic clock."""

    presign: tuple[float, float] | None = None  # request received, answered
    put: tuple[float, float] | None = None  # the last PUT: request received, answered
    put_status: int | None = None
    put_bytes: int | None = None
    put_attempts: int = 0


class S3StandIn:
    """The object store's endpoints, the backend's signer and the job's fetch, sharing one secret."""

    def __init__(self, spec: Presigned, time_scale: float, seed: int) -> None:
        self.spec = spec
        self.scale = time_scale
        self.secret = secrets.token_bytes(32)  # per process: a URL from another simulator never passes
        # what a deploy whose AWS_SECRET_ACCESS_KEY no longer matches its key id signs with
        self.stale_secret = secrets.token_bytes(32)
        self.store = ObjectStore()
        self.ledger: dict[str, UploadRecord] = {}
        self.rng = random.Random(f"{seed}:s3")

    # -- the backend's side -------------------------------------------------------------------------

    def presign(self, origin: str, key: str, content_type: str) -> tuple[str, str]:
        """(presigned_url, final_url) for a PUT of ``key``, signed as the scenario's backend signs."""
        secret = self.stale_secret if self.spec.signing_secret == "stale" else self.secret
        query = presign_query(secret, BUCKET, key, content_type, time.time() + self.spec.clock_skew_s,
                              self.spec.expires_s)
        final_url = origin + object_path(BUCKET, key)
        return f"{final_url}?{query}", final_url

    def note_presign(self, key: str, start: float, end: float) -> None:
        if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            return  # S3 will refuse its PUT; nothing unbounded is remembered
        if len(self.ledger) >= MAX_LEDGER:
            del self.ledger[next(iter(self.ledger))]
        self.ledger[key] = UploadRecord(presign=(start, end))

    def key_of(self, origin: str, url: str) -> tuple[str, str, dict[str, str]] | None:
        """(bucket, key, query) when ``url`` names an object of this stand-in, else None."""
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != origin or not parts.path.startswith(PREFIX + "/"):
            return None
        bucket, _, key = unquote(parts.path[len(PREFIX) + 1:]).partition("/")
        return bucket, key, dict(parse_qsl(parts.query))

    def fetch(self, origin: str, url: str) -> tuple[StoredObject | None, str | None]:
        """The job's GET of ``url``: the object, or the error text thankly's job fails with."""
        target = self.key_of(origin, url)
        if target is None:
            return None, CONNECT_ERROR_TEXT
        error, obj = self.read(*target, content_type="", now_wall=time.time())
        if error is not None:
            return None, status_error_text(error.status, url)
        return obj, None

    # -- S3's side ----------------------------------------------------------------------------------

    def read(self, bucket: str, key: str, query: Mapping[str, str], content_type: str,
             now_wall: float) -> tuple[S3Error | None, StoredObject | None]:
        """A GET: anonymous for ``audio/`` keys; a missing one is AccessDenied, as for anyone without ListBucket."""
        if bucket != BUCKET:
            return S3Error(404, "NoSuchBucket", "The specified bucket does not exist", (("BucketName", bucket),)), None
        if is_signed(query):
            error = check_signed(query, "GET", bucket, key, content_type, self.secret, now_wall)
            if error is not None:
                return error, None
        elif not key.startswith(PUBLIC_PREFIX):
            return ACCESS_DENIED, None
        obj = self.store.get(key)
        return (ACCESS_DENIED, None) if obj is None else (None, obj)

    def error(self, error: S3Error) -> Response:
        request_id = secrets.token_hex(8).upper()
        return Response(error_xml(error, request_id), status_code=error.status, media_type="application/xml",
                        headers={"x-amz-request-id": request_id})

    async def get_object(self, request: Request) -> Response:
        error, obj = self.read(request.path_params["bucket"], request.path_params["key"], request.query_params,
                               request.headers.get("content-type", ""), time.time())
        if error is not None:
            return self.error(error)
        assert obj is not None
        return Response(obj.body, media_type=obj.content_type, headers={"etag": f'"{obj.etag}"'})

    async def put_object(self, request: Request) -> Response:
        """A presigned PUT: the signature and window first, then the length, then the body, answered after the
        scenario's PUT time (a fixed part plus a part per MB) counted from the request's arrival."""
        start = time.monotonic()
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        record = self.ledger.get(key)
        if record is not None:
            record.put_attempts += 1
        answer = await self._put(request, bucket, key, start)
        if record is not None:
            record.put = (start, time.monotonic())
            record.put_status = answer.status_code
        return answer

    async def _put(self, request: Request, bucket: str, key: str, start: float) -> Response:
        if bucket != BUCKET:
            return self.error(S3Error(404, "NoSuchBucket", "The specified bucket does not exist",
                                      (("BucketName", bucket),)))
        size = len(key.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_BYTES:
            return self.error(S3Error(400, "KeyTooLongError", "Your key is too long",
                                      (("MaxSizeAllowed", str(MAX_KEY_BYTES)), ("Size", str(size)))))
        query = request.query_params
        if not is_signed(query):
            return self.error(ACCESS_DENIED)  # the bucket takes no anonymous writes
        content_type = request.headers.get("content-type", "").strip()
        error = check_signed(query, "PUT", bucket, key, content_type, self.secret, time.time())
        if error is not None:
            return self.error(error)
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit():
            return self.error(S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header."))
        if int(declared) > MAX_OBJECT_BYTES:
            return self.error(self._too_large(int(declared)))
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_OBJECT_BYTES:  # a length the framing did not hold to
                    return self.error(self._too_large(len(body)))
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        spec = self.spec
        delay = (spec.put.draw(self.rng) + len(body) / MB * spec.put_s_per_mb) * self.scale
        await sleep_until(start + delay)
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        self.store.put(key, StoredObject(bytes(body), content_type, etag))
        if key in self.ledger:
            self.ledger[key].put_bytes = len(body)
        return Response(status_code=200, headers={"etag": f'"{etag}"', "x-amz-request-id": secrets.token_hex(8).upper()})

    @staticmethod
    def _too_large(size: int) -> S3Error:
        return S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                       (("ProposedSize", str(size)), ("MaxSizeAllowed", str(MAX_OBJECT_BYTES))))
