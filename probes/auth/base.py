"""The token source every driver asks: fetched on first use, refreshed at most once per refused token.

    TokenSource    current() -> token | None, fetched on first use; peek() without I/O;
                   refresh(stale) -> token, at most once per stale token; secrets() for redaction
    NoToken        nothing configured: no Authorization header
    EnvToken       token_env: the variable is read again on refresh

(probes.auth.command and probes.auth.cognito hold the other two sources.)
"""

from __future__ import annotations

import os
import threading
from typing import Mapping

from probes.errors import UnreachableError, UsageError

# A bearer token travels in one header line; 8 KiB is nginx's and many proxies' default
# limit for a header line. Cognito's access and ID tokens are 1-2 KiB.
MAX_TOKEN_CHARS = 8 * 1024
# Old tokens kept for redaction: a backend may echo a token after it was refreshed.
REMEMBERED_TOKENS = 8
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class AuthConfigError(UsageError, ValueError):
    """Exit 2: the auth configuration is wrong or incomplete. Also a ValueError, so a pydantic
    validator that raises it reports it as that field's error."""


class AuthError(UnreachableError):
    """Exit 3: a token could not be obtained, or the target refused it after a refresh."""


class TokenSource:
    """A bearer token, fetched on first use and refreshed at most once per token that was refused.

    Subclasses implement `_fetch()` (the first token) and `_renew(stale)` (a new
    one after a 401); this class provides the locking, the once-only refresh and
    the memory of failures, so N callers never cause N fetches.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None
        self._fetched = False
        self._failure: tuple[bool, str | None, str] | None = None  # (during fetch?, stale token, message)
        # Replaced, never mutated: secrets() may read it while another thread refreshes.
        self._history: tuple[str, ...] = ()

    def describe(self) -> str:
        """Where the token comes from, for messages: never the token."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def current(self) -> str | None:
        """The token to send now (None: send no Authorization header). The first call fetches it."""
        with self._lock:
            self._ensure_fetched()
            return self._token

    def peek(self) -> str | None:
        """The token held now, without fetching (no I/O, no waiting on a refresh in progress)."""
        return self._token

    def refresh(self, stale: str | None) -> str:
        """A new token after `stale` was refused (HTTP 401).

        If another caller already replaced `stale`, its token is returned at
        once; if refreshing `stale` already failed, that failure is raised again
        without a second attempt.
        """
        with self._lock:
            self._ensure_fetched()
            if self._token is not None and self._token != stale:
                return self._token
            if self._failure is not None and not self._failure[0] and self._failure[1] == stale:
                raise AuthError(self._failure[2])
            try:
                token = self._renew(stale)
            except AuthError as exc:
                self._failure = (False, stale, str(exc))
                raise
            self._set(token)
            return token

    def _ensure_fetched(self) -> None:
        """The first fetch, once (the lock is held); a failure is remembered and raised again."""
        if self._fetched:
            return
        if self._failure is not None and self._failure[0]:
            raise AuthError(self._failure[2])
        try:
            token = self._fetch()
        except AuthError as exc:
            self._failure = (True, None, str(exc))
            raise
        self._set(token)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value this source has held (tokens, passwords, ...), for probes.redact.

        Never blocks, even while a refresh is in progress.
        """
        return self._history

    def _set(self, token: str | None) -> None:
        self._token = token
        self._fetched = True
        if token:
            self._history = (*self._history, token)[-REMEMBERED_TOKENS:]

    def _fetch(self) -> str | None:
        raise NotImplementedError

    def _renew(self, stale: str | None) -> str:
        raise NotImplementedError


class NoToken(TokenSource):
    """No credentials configured: requests carry no Authorization header."""

    def describe(self) -> str:
        return "no credentials"

    def _fetch(self) -> None:
        return None

    def _renew(self, stale: str | None) -> str:
        raise AuthError(
            "the target asked for credentials (HTTP 401) and none are configured: "
            "set token_env, token_command or [targets.NAME.cognito]"
        )


def check_token(value: str, origin: str, error: type[Exception] = AuthError) -> str:
    """`value` stripped, if it can travel as `Authorization: Bearer <value>`; otherwise `error` (never the value).

    Printable ASCII without spaces: a newline would split the header, a space
    means the output was not the token alone (e.g. it began with 'Bearer ').
    """
    token = value.strip()
    if not token:
        raise error(f"{origin} is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise error(f"{origin} is {len(token)} characters long; a token is at most {MAX_TOKEN_CHARS}")
    if any(c.isspace() for c in token):
        raise error(f"{origin} holds more than one word: give the token alone, without 'Bearer ' or other text")
    if not all("!" <= c <= "~" for c in token):
        raise error(f"{origin} holds characters that cannot travel in an HTTP header (non-ASCII or control)")
    return token


class EnvToken(TokenSource):
    """`token_env = "VAR"`: the token is the variable's value; a refresh reads the variable again."""

    def __init__(self, name: str, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.name = name
        self._environ = os.environ if environ is None else environ
        self._read()  # a missing variable is a configuration error, found before any request

    def describe(self) -> str:
        return f"environment variable {self.name}"

    def _read(self) -> str:
        value = self._environ.get(self.name, "")
        if not value.strip():
            raise AuthConfigError(f"token_env: set the environment variable {self.name}")
        return check_token(value, f"the environment variable {self.name}", AuthConfigError)

    def _fetch(self) -> str:
        return self._read()

    def _renew(self, stale: str | None) -> str:
        return self._read()
