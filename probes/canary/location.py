"""Where a history store lives, parsed from `--history URL`, and how its password is kept out of output. Pure.

    parse_history_url(None)                              -> SQLite at reports/history.sqlite
    parse_history_url("sqlite:///var/lib/probes/h.sqlite") -> SQLite at var/lib/probes/h.sqlite
    parse_history_url("postgresql://probes:pw@db:5432/probes") -> PostgreSQL, shown as ...probes:[redacted]@db...

Redaction keeps the user name (which account a failing canary used is worth
seeing) and uses probes.redact's marker and, for any other text such as a
driver's error message, its shape rules (JWTs, keys, URL userinfo) as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from probes.errors import UsageError
from probes.redact import REDACTED, redact_text

DEFAULT_PATH = Path("reports/history.sqlite")
URL_HELP = "a path, sqlite:///PATH or postgresql://user:pass@host:port/db"


def redact_url(url: str) -> str:
    """The URL with any password replaced by [redacted]; safe to print.

    >>> redact_url("postgresql://probes:s3cr%40t@db:5432/h?sslmode=require&password=x")
    'postgresql://probes:[redacted]@db:5432/h?sslmode=require&password=[redacted]'
    """
    # greedy: an unencoded @ in a password is hidden too
    text = re.sub(r"(://[^/@:]*:)[^/]*@", lambda m: f"{m.group(1)}{REDACTED}@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", lambda m: f"{m.group(1)}{REDACTED}", text)


def _secrets_of(url: str) -> list[str]:
    """The password of a URL, raw and percent-decoded, so it can be scrubbed from any message."""
    found = re.findall(r"://[^/@:]*:([^/]*)@", url) + re.findall(r"(?i)password=([^&\s]*)", url)
    out = []
    for secret in found:
        out += [s for s in {secret, unquote(secret)} if s]
    return sorted(out, key=len, reverse=True)


def scrub(message: str, url: str) -> str:
    """The first line of a driver's error message, without the URL's password."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    text = lines[0] if lines else "unknown error"
    return redact_text(redact_url(text), _secrets_of(url))


@dataclass(frozen=True)
class HistoryLocation:
    """Where a history lives. `display` is safe to print; `conninfo` holds the password and is not."""

    kind: str  # "sqlite" | "postgresql"
    display: str
    path: Path | None = None
    conninfo: str | None = field(default=None, repr=False)


def parse_history_url(url: str | None) -> HistoryLocation:
    """A path, sqlite:///PATH or postgresql://user:pass@host:port/db (None: reports/history.sqlite)."""
    if url is None or not url.strip():
        return HistoryLocation("sqlite", str(DEFAULT_PATH), path=DEFAULT_PATH)
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme is None:
        return HistoryLocation("sqlite", url, path=Path(url))
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise UsageError(f"--history {redact_url(url)}: a SQLite URL is sqlite:///PATH (three slashes)")
        path = Path(url[len("sqlite:///"):])
        return HistoryLocation("sqlite", str(path), path=path)
    if scheme in ("postgresql", "postgres"):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise UsageError(f"--history {redact_url(url)}: {scrub(str(exc), url)}") from None
        if not parts.path.strip("/") and "dbname=" not in parts.query:
            raise UsageError(f"--history {redact_url(url)}: name the database, e.g. postgresql://user:pass@host:5432/db")
        return HistoryLocation("postgresql", redact_url(url), conninfo=url)
    raise UsageError(f"--history {redact_url(url)}: unknown scheme {scheme!r}; use {URL_HELP}")
