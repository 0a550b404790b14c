"""Where a history store lives, parsed from `--history URL`, and how a URL's secrets are kept out of output. Pure.

    parse_history_url(None)                                -> SQLite at reports/history.sqlite
    parse_history_url("sqlite:///var/lib/probes/h.sqlite") -> SQLite at var/lib/probes/h.sqlite
    parse_history_url("postgresql://probes:pw@db:5432/probes") -> PostgreSQL, shown as probes:[redacted]@db...

Redaction parses the URL (urllib.parse), it does not pattern-match it:

    user:password@   ->  user:[redacted]@     the user name says which account; the password never shows
    token@           ->  [redacted]@          a user name alone is often a token (https://TOKEN@host)
    ?k=v&flag        ->  ?k=[redacted]&[redacted]   every query value: ?token=, ?access_token=, ?password=
    #fragment        ->  #[redacted]

A URL that cannot be read one way only is shown as `scheme://[redacted]`: a
password with an unencoded `/`, `?` or `#` ends the authority early and leaves
an `@` after it (libpq and urllib then disagree on the host), and a port that
is not a number may be a piece of the password. `check_url_secrets` refuses
such a URL where it is configured, so no driver ever sees it. `scrub` also
applies probes.redact's shape rules (JWTs, keys) to any other text, such as a
driver's error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, quote, unquote, unquote_plus, urlsplit

from probes.errors import UsageError
from probes.redact import REDACTED, redact_text

DEFAULT_PATH = Path("reports/history.sqlite")
URL_HELP = "a path, sqlite:///PATH or postgresql://user:pass@host:port/db"
# Query values shorter than this are not scrubbed out of free text as substrings: `sslmode=require` or `?v=1`
# would otherwise blank every "1" and "require" in a driver's message. They are still redacted in the URL itself.
MIN_SCRUB_CHARS = 4
# libpq's other connection-string form: `host=db user=probes password=...`. Never a file name we should create.
_KEYWORD_DSN = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def _split(url: str) -> SplitResult | None:
    """The URL's parts when they can be read one way only; None when not (see the module docstring)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [ in the host
        return None
    try:
        parts.port  # noqa: B018 - a ValueError for a port that is not a number, or not in 0..65535
    except ValueError:
        if not parts.netloc.rpartition("@")[2].rpartition(":")[2].isdigit():
            return None  # letters where the port goes: maybe the start of a password cut short at a /
    if "@" in parts.path or "@" in parts.query or "@" in parts.fragment:
        return None  # an unencoded / ? # in the userinfo cut the authority short; or an @ nobody can place
    return parts


def _scheme_of(url: str) -> str | None:
    head, sep, _ = url.partition("://")
    return head if sep and _SCHEME.fullmatch(head) else None


def _redacted_query(query: str) -> str:
    pieces = []
    for piece in query.split("&"):
        key, eq, _ = piece.partition("=")
        pieces.append(f"{key}={REDACTED}" if eq else REDACTED if piece else "")
    return "&".join(pieces)


def redact_url(url: str) -> str:
    """The URL with its password, a lone user name, every query value and the fragment replaced; safe to print.

    >>> redact_url("postgresql://probes:s3cr%40t@db:5432/h?sslmode=require&password=x")
    'postgresql://probes:[redacted]@db:5432/h?sslmode=[redacted]&password=[redacted]'
    >>> redact_url("postgresql://u:pa/ss@db/h")
    'postgresql://[redacted]'
    """
    url = str(url)
    if "://" not in url:
        return url  # a path: no authority, no secrets
    parts = _split(url)
    if parts is None:
        scheme = _scheme_of(url)
        return f"{scheme}://{REDACTED}" if scheme else REDACTED
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        shown = f"{user}:{REDACTED}@" if colon else f"{REDACTED}@"
    else:
        shown = ""
    text = f"{parts.scheme}://{shown}{hostport}{parts.path}"
    if parts.query:
        text += "?" + _redacted_query(parts.query)
    if parts.fragment:
        text += "#" + REDACTED
    return text


def url_secrets(url: str) -> list[str]:
    """What a URL holds that must not be printed, raw and percent-decoded, longest first."""
    url = str(url)
    if "://" not in url:
        return []
    parts = _split(url)
    found: list[str] = []
    if parts is None:
        rest = url.partition("://")[2]
        userinfo = rest.rpartition("@")[0]
        # nothing after the scheme can be placed: all of it is secret, and so are the likeliest userinfo and password
        found += [rest, userinfo, userinfo.partition(":")[2]]
        found += [piece for piece in re.split(r"[:/?#@]", userinfo) if len(piece) >= MIN_SCRUB_CHARS]
    else:
        userinfo, at, _ = parts.netloc.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            found += [password] if colon else [user]
        for piece in parts.query.split("&") if parts.query else ():
            value = piece.partition("=")[2] if "=" in piece else piece
            if len(value) >= MIN_SCRUB_CHARS:
                found.append(value)
        if parts.fragment:
            found.append(parts.fragment)
    out = set()
    for secret in found:
        out |= {s for s in (secret, unquote(secret), unquote_plus(secret), quote(secret, safe="")) if s}
    return sorted(out, key=len, reverse=True)


def scrub(message: str, url: str) -> str:
    """The first line of a driver's error message, without anything secret the URL holds."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    text = lines[0] if lines else "unknown error"
    return redact_text(text, url_secrets(url))


def check_url_secrets(url: str, option: str, example: str) -> SplitResult:
    """The URL's parts, or a one-line UsageError (never showing its secrets) when it is ambiguous or its
    port is not in 1..65535."""
    parts = _split(url)
    if parts is None or parts.netloc.count("@") > 1:  # urllib takes the last @, libpq the first
        raise UsageError(f"{option} {redact_url(url)}: cannot be read one way only: percent-encode / ? # @ : "
                         f"in the user name or password (%2F %3F %23 %40 %3A) and give a numeric port, "
                         f"e.g. {example}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise UsageError(f"{option} {redact_url(url)}: the port must be a number in 1..65535, e.g. {example}")
    return parts


@dataclass(frozen=True)
class HistoryLocation:
    """Where a history lives. `display` is safe to print; `conninfo` holds the password and is not."""

    kind: str  # "sqlite" | "postgresql"
    display: str
    path: Path | None = None
    conninfo: str | None = field(default=None, repr=False)


def parse_history_url(url: str | None) -> HistoryLocation:
    """A path, sqlite:///PATH or postgresql://user:pass@host:port/db (None: reports/history.sqlite).

    A libpq keyword string (`host=db password=...`) is refused rather than parsed: the URL form says the
    same (any libpq keyword can be a query parameter), and one grammar is one redaction rule to get right.
    """
    if url is None or not url.strip():
        return HistoryLocation("sqlite", str(DEFAULT_PATH), path=DEFAULT_PATH)
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme is None:
        if _KEYWORD_DSN.match(url):
            # never echoed: it may hold password=...; and never a SQLite file named after it
            raise UsageError("--history looks like a libpq keyword string (key=value ...), which is not "
                             f"supported: use {URL_HELP} (the value is not shown)")
        return HistoryLocation("sqlite", url, path=Path(url))
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise UsageError(f"--history {redact_url(url)}: a SQLite URL is sqlite:///PATH (three slashes)")
        path = Path(url[len("sqlite:///"):])
        return HistoryLocation("sqlite", str(path), path=path)
    if scheme in ("postgresql", "postgres"):
        parts = check_url_secrets(url, "--history", "postgresql://user:pass@host:5432/db")
        if not parts.path.strip("/") and "dbname=" not in parts.query:
            raise UsageError(f"--history {redact_url(url)}: name the database, e.g. postgresql://user:pass@host:5432/db")
        return HistoryLocation("postgresql", redact_url(url), conninfo=url)
    raise UsageError(f"--history {redact_url(url)}: unknown scheme {scheme!r}; use {URL_HELP}")
