"""Credentials never leave the process: redaction of URLs, headers and JSON from a backend. No I/O.

What is written to a run directory, a report or the terminal about a target
(its URL, its response headers, its /health body, an error message) passes
through here first. A value is replaced by REDACTED when

    1. it contains a secret we know (the bearer token, old tokens, a refresh
       token, a password, a client secret: whatever the caller passes as
       `secrets`, e.g. TokenSource.secrets()), anywhere inside a longer string;
    2. it sits under a key or header whose name says credential
       (`secret_name`: authorization, cookie, token, secret, password, key,
       session, signature, credential, ...);
    3. it looks like a credential (`redact_text`): a JWT, the credential after
       `Bearer`/`Basic`, a URL's user:password, a well-known key format (AWS,
       GitHub, Slack, Google, Stripe/OpenAI-style `sk-`, PEM private keys), or
       a long random-looking base64 string (the rule is spelled out at
       OPAQUE_MIN_LEN; hex ids, UUIDs, commit SHAs and versions are kept).

    redact_text(s, secrets)         1 and 3 for one string
    redact_known(s, secrets)        1 only: cheap enough for every poll sample
    redact_json(obj, secrets)       1, 2 and 3 through a decoded JSON value, iteratively, bounded
    redact_headers(headers, secrets)  1, 2 and 3 for response headers (names lowercased)
    strip_userinfo / refuse_userinfo / redact_url   user:password@ and signed query strings
    loads_bounded(body)             decode JSON or return Undecodable, never RecursionError

Walking JSON is iterative (no recursion) and bounded in depth and size, and
`loads_bounded` decodes a body without the RecursionError that the standard
library's `json` raises on `[[[[...` (orjson refuses depth > 1024 cleanly,
but its `dumps` refuses depth > 254, and run.json is written with `json`).
Every function accepts any input of its type and never raises. (A secret
that is itself part of the marker "[redacted]" cannot be hidden by it.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"

# Bounds for a /health body or any JSON a backend sends us to keep. A health
# answer is a few hundred bytes (thankly: {"status": "healthy", ...}); 64 KiB and
# 2000 values keep a verbose one whole and a hostile one small. Depth 32 is far
# above any real health document and far below the depths at which orjson.dumps
# (254) and json.dumps/json.loads (about 1000, the recursion limit) give up.
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
MAX_JSON_ITEMS = 2000
TRUNCATED_DEPTH = "[truncated: nested deeper than {depth}]"
TRUNCATED_ITEMS = "[truncated: more than {items} values]"

# --- names ------------------------------------------------------------------------------------

# A header or JSON key is secret when its lowercased name, with - _ . and spaces
# removed, contains one of these...
_SECRET_SUBSTRINGS = (
    "authorization", "cookie", "secret", "password", "passwd", "passphrase", "credential",
    "signature", "apikey", "accesskey", "privatekey", "sessionid", "session", "bearer", "jwt",
    "csrf", "xsrf", "dsn", "connectionstring",
)
# ...or when one of its words (split at - _ . spaces and camelCase) is one of these.
# Whole words only: "max_tokens" (an LLM's usage count) and "keyboard" are not secrets,
# "x-api-key", "authToken" and "x-amz-security-token" are.
_SECRET_WORDS = frozenset({"auth", "token", "key", "pwd", "sig", "otp", "sid"})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def secret_name(name: str) -> bool:
    """True when a header or key name says its value is a credential."""
    flat = re.sub(r"[^a-z0-9]", "", name.lower())
    if any(hint in flat for hint in _SECRET_SUBSTRINGS):
        return True
    words = {w.lower() for w in _WORD_SPLIT.split(name) if w}
    return not words.isdisjoint(_SECRET_WORDS) or flat.endswith("token")


# --- values -----------------------------------------------------------------------------------

# Known credential formats. Each keeps a harmless prefix where it helps a reader.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JWS/JWE: base64url of a JSON object ('{"' -> eyJ), with any further dot-separated parts;
    # also a bare JWT header or prefix of 10+ characters (a server logging token[:20]).
    (re.compile(r"eyJ[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_-]*){0,4}"), REDACTED),
    # user:password@ in any URL inside a longer string.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,20}://)[^\s/?#]*@"), r"\1" + REDACTED + "@"),
    # Vendor formats: AWS access key ids, GitHub, Slack, Google API keys, sk-/rk-/pk_live-style keys.
    (re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), REDACTED),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), REDACTED),
    (re.compile(r"\b(?:sk|rk|pk)[-_](?:live[-_]|test[-_]|proj[-_]|ant[-_])?[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), REDACTED),
)

# HTTP auth schemes (RFC 9110 token68 credentials): the scheme is kept, the credential goes
# when it has a digit, a symbol or a capital after its first character, so that
# "Bearer abc.def-123" is redacted and prose ("basic functionality") is not.
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic|negotiate)(\s+)([A-Za-z0-9._~+/-]{8,}=*)")
_CREDENTIAL_HINT = re.compile(r"[0-9._~+/=-]|(?<=.)[A-Z]")


def _auth_scheme(match: re.Match[str]) -> str:
    scheme, space, credential = match.groups()
    if _CREDENTIAL_HINT.search(credential):
        return f"{scheme}{space}{REDACTED}"
    return match.group()


# Long opaque strings. A run of base64/base64url characters is a credential when
#   - it is at least OPAQUE_MIN_LEN characters long (32: a 24-byte random value in base64),
#   - it is not hex-only (with or without dashes): UUIDs, request ids, git commit SHAs and
#     sha256 digests are identifiers a fingerprint needs, and are kept,
#   - it mixes upper case, lower case and digits (identifiers, paths and versions in one
#     case are kept; so is a lower-case-only random token: it is caught only by name or
#     as a known secret), and
#   - fewer than OPAQUE_MAX_WORDINESS of its characters sit in word-like runs (a capital
#     and 3+ lower-case letters, or 4+ capitals). Measured: random base64url of 24-64
#     bytes scores at most 0.4-0.8 and 98-100 % of them fall under 0.6; paths and
#     CamelCase names ("/Users/Diana/Projects/thankly/backend2",
#     "TranscriptionServiceUnavailable2024") score 0.62-0.90.
OPAQUE_MIN_LEN = 32
OPAQUE_MAX_WORDINESS = 0.6
_OPAQUE_RUN = re.compile(r"[A-Za-z0-9+/_-]{%d,}={0,2}" % OPAQUE_MIN_LEN)
_HEX_ID = re.compile(r"[0-9a-fA-F-]+")
_WORDLIKE = re.compile(r"[A-Z]?[a-z]{3,}|[A-Z]{4,}")


def looks_opaque_secret(run: str) -> bool:
    """The high-entropy rule above, for one run of base64-ish characters."""
    core = run.rstrip("=")
    if len(core) < OPAQUE_MIN_LEN or _HEX_ID.fullmatch(core):
        return False
    if not (any(c.isupper() for c in core) and any(c.islower() for c in core) and any(c.isdigit() for c in core)):
        return False
    wordlike = sum(len(m) for m in _WORDLIKE.findall(core))
    return wordlike < OPAQUE_MAX_WORDINESS * len(core)


def _opaque(match: re.Match[str]) -> str:
    return REDACTED if looks_opaque_secret(match.group()) else match.group()


def normalise_secrets(secrets: Iterable[str | None]) -> tuple[str, ...]:
    """The non-empty secrets, longest first (so a token is replaced before a part of it)."""
    return tuple(sorted({s for s in secrets if isinstance(s, str) and s}, key=len, reverse=True))


def redact_known(text: str, secrets: Iterable[str | None]) -> str:
    """Only the known secrets replaced: cheap enough for every sample of a probe.

    A secret that shares characters with the marker could re-form across it
    ("d]zz" in "d]zzzz"); after a few passes the whole string is given up instead.
    """
    known = normalise_secrets(secrets)
    for _ in range(3):
        if not any(secret in text for secret in known):
            return text
        for secret in known:
            text = text.replace(secret, REDACTED)
    return text if not any(secret in text for secret in known) else REDACTED


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every known secret and everything that looks like a credential replaced by REDACTED."""
    known = normalise_secrets(secrets)
    text = redact_known(text, known)
    text = _AUTH_SCHEME.sub(_auth_scheme, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = _OPAQUE_RUN.sub(_opaque, text)
    return redact_known(text, known)  # a marker placed above can complete a secret with its neighbours


def redact_value(value: Any, secrets: Iterable[str | None] = ()) -> Any:
    """A scalar from a backend, redacted: strings through `redact_text`, other scalars unchanged."""
    return redact_text(value, secrets) if isinstance(value, str) else value


def _scalar_under_secret_name(value: Any) -> Any:
    """What a value under a secret-looking name becomes: null and booleans carry no credential."""
    return value if value is None or isinstance(value, bool) else REDACTED


def redact_json(
    obj: Any,
    secrets: Iterable[str | None] = (),
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_items: int = MAX_JSON_ITEMS,
) -> Any:
    """A redacted, bounded copy of a decoded JSON value, built without recursion.

    Strings go through `redact_text`, keys too. A value under a secret-looking
    key becomes REDACTED whole (a container included). Containers nested deeper
    than `max_depth` become a TRUNCATED_DEPTH marker; after `max_items` values
    the rest is dropped and the container that overflowed ends with a
    TRUNCATED_ITEMS marker. Tuples become lists; anything that is not JSON
    becomes a short "[TYPE]" string.
    """
    known = normalise_secrets(secrets)
    budget = max(0, max_items)

    def leaf(value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(value, known)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return f"[{type(value).__name__}]"

    def shell(value: Any, depth: int) -> tuple[Any, bool]:
        """(copy or marker, whether its children still need filling)."""
        if isinstance(value, (dict, list, tuple)):
            if depth > max_depth:
                return TRUNCATED_DEPTH.format(depth=max_depth), False
            return ({} if isinstance(value, dict) else []), True
        return leaf(value), False

    root, pending = shell(obj, 1)
    if not pending:
        return root
    # Each stack entry: (source container, copy being filled, depth of its children).
    stack: list[tuple[Any, Any, int]] = [(obj, root, 2)]
    while stack:
        source, target, depth = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            if budget <= 0:
                marker = TRUNCATED_ITEMS.format(items=max_items)
                if isinstance(target, dict):
                    target["…"] = marker
                else:
                    target.append(marker)
                stack.clear()
                break
            budget -= 1
            if isinstance(target, dict):
                name = key if isinstance(key, str) else str(key)
                safe_key = redact_text(name, known)
                if secret_name(name):
                    copy, fill = _scalar_under_secret_name(value), False
                else:
                    copy, fill = shell(value, depth)
                target[safe_key] = copy
            else:
                copy, fill = shell(value, depth)
                target.append(copy)
            if fill:
                stack.append((value, copy, depth + 1))
    return root


def redact_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], secrets: Iterable[str | None] = ()
) -> dict[str, str]:
    """Response headers fit for a run directory: names lowercased, credentials redacted by name and by value.

    A secret-named header (set-cookie, authorization, x-api-key, ...) is kept
    with the value REDACTED, so a reader still sees that it was sent. Repeated
    headers are joined with ", ".
    """
    known = normalise_secrets(secrets)
    folded = normalise_secrets(secret.lower() for secret in known)  # names are lowercased: so are their secrets
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(str(name).lower(), []).append(str(value))
    out: dict[str, str] = {}
    for key, seen in values.items():
        name = redact_text(key, folded)  # a backend can echo the token as a header's name, too
        # joined before redaction, so a secret split across two repeats of a header is still found
        clean = REDACTED if secret_name(key) else redact_text(", ".join(seen), known)
        out[name] = f"{out[name]}, {clean}" if name in out else clean
    return out


# --- URLs -------------------------------------------------------------------------------------

_SCHEME_AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?//([^/?#]*)")


def strip_userinfo(url: str) -> tuple[str, bool]:
    """(url without `user:password@`, whether there was one). Never raises, whatever the string.

    The authority ends at the first `/`, `?` or `#`; everything up to its last
    `@` is userinfo, as urllib and browsers read it.
    """
    match = _SCHEME_AUTHORITY.match(url)
    if not match or "@" not in match.group(2):
        return url, False
    host = match.group(2).rpartition("@")[2]
    scheme = match.group(1) or ""
    return f"{scheme}//{host}{url[match.end():]}", True


def refuse_userinfo(url: str, what: str = "the URL") -> str:
    """`url` unchanged, or ValueError naming `what` when it carries a user name or password.

    The message shows the URL with the userinfo removed, never the password.
    """
    clean, had = strip_userinfo(url)
    if had:
        raise ValueError(
            f"{what} must not carry a user name or password ({clean} with user:password@ removed): "
            "give credentials through token_env, token_command or [targets.NAME.cognito]"
        )
    return url


def redact_url(url: str, secrets: Iterable[str | None] = ()) -> str:
    """A URL fit for storage: no userinfo, secret-named query values (X-Amz-Signature, token=...) redacted.

    Useful for presigned upload URLs and anything a backend hands back.
    """
    clean, _ = strip_userinfo(url)
    try:
        parts = urlsplit(clean)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return redact_text(clean, secrets)
    if query and any(secret_name(k) for k, _ in query):
        safe = [(k, REDACTED if secret_name(k) else v) for k, v in query]
        clean = urlunsplit(parts._replace(query=urlencode(safe, safe="[]")))
    return redact_text(clean, secrets)


# --- bounded JSON decoding --------------------------------------------------------------------


@dataclass(frozen=True)
class Undecodable:
    """What `loads_bounded` returns instead of a value: why the body was not decoded."""

    reason: str

    def as_json(self) -> dict[str, str]:
        return {"undecodable": self.reason}


# A JSON string literal, so brackets inside strings do not count as nesting. The closing
# quote is optional so that an unterminated string ends the scan instead of making the
# regex retry from every later quote (quadratic on `"\"\"\"...`).
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.S)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte except the four brackets


def json_depth(data: bytes) -> int:
    """The deepest bracket nesting in a JSON text, by a linear scan (no parser, no recursion)."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads_bounded(
    data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES
) -> Any:
    """The decoded JSON value, or an Undecodable when it is too large, too deep or not JSON. Never raises.

    Size is checked first, then depth with a linear scan, and only then does
    orjson decode it, so neither orjson's depth limit nor json's RecursionError
    is ever reached.
    """
    import orjson

    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        return Undecodable(f"larger than {max_bytes} bytes ({len(raw)})")
    if json_depth(raw) > max_depth:
        return Undecodable(f"nested deeper than {max_depth}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # also invalid UTF-8
        return Undecodable(f"not JSON: {str(exc)[:120]}")
