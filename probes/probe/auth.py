"""Bearer tokens for a target: from an environment variable, a command, or Amazon Cognito.

A target names at most one way to get its token (`token_env`, `token_command`
or a `[targets.NAME.cognito]` table). `token_source(...)` turns that into a
TokenSource, which the drivers share:

    TokenSource              current() -> token | None, fetched on first use
    │                        refresh(stale) -> token, at most once per stale token
    ├── NoToken              nothing configured: no Authorization header
    ├── EnvToken             token_env: the variable is read again on refresh
    ├── CommandToken         token_command: run (no shell, 30 s), its stdout is the token
    └── CognitoToken         USER_PASSWORD_AUTH or REFRESH_TOKEN_AUTH with boto3 (imported on first use)

Sources are synchronous and thread-safe: the async driver calls them through
`asyncio.to_thread`, the Locust user (gevent) directly. When N probes see a 401
together they all call `refresh(stale)` with the token they sent; the first one
refreshes, the others get its result without a second round trip.

What can go wrong, and the exit code (probes.errors):

    AuthConfigError (UsageError, ValueError)   exit 2: the configuration is wrong or incomplete
                                               (a missing variable, a bad key, an unparsable command)
    AuthError (UnreachableError)               exit 3: the token could not be obtained (the command
                                               failed or timed out, Cognito refused or was unreachable,
                                               the target still refuses after a refresh)

No message, repr or str of anything here contains a token, password,
refresh token or client secret; `secrets()` lists them for the redaction of
everything else (probes.redact).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shlex
import signal
import subprocess
import threading
from typing import Any, Literal, Mapping

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from probes.errors import UnreachableError, UsageError
from probes.redact import redact_text, refuse_userinfo
from probes.textsafe import clip, visible

# `token_command` runs at most this long (issue 9): a credential helper that needs longer is
# waiting for a human (a browser login, an MFA prompt), which a probe cannot answer.
TOKEN_COMMAND_TIMEOUT_S = 30.0
# After a timeout the command's process group is killed; reading what it left must not hang.
TOKEN_COMMAND_REAP_S = 5.0
# How much of a failing command's stderr is shown: enough for one error line, not a dump.
MAX_STDERR_CHARS = 300
# A bearer token travels in one header line; 8 KiB is nginx's and many proxies' default
# limit for a header line. Cognito's access and ID tokens are 1-2 KiB.
MAX_TOKEN_CHARS = 8 * 1024
# Old tokens kept for redaction: a backend may echo a token after it was refreshed.
REMEMBERED_TOKENS = 8
# Cognito (botocore): connect and read timeouts per attempt, attempts in all ("standard"
# retry mode backs off on throttling). The worst case stays under a minute.
COGNITO_CONNECT_TIMEOUT_S = 5.0
COGNITO_READ_TIMEOUT_S = 10.0
COGNITO_MAX_ATTEMPTS = 3

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class AuthConfigError(UsageError, ValueError):
    """Exit 2: the auth configuration is wrong or incomplete. Also a ValueError, so a pydantic
    validator that raises it reports it as that field's error."""


class AuthError(UnreachableError):
    """Exit 3: a token could not be obtained, or the target refused it after a refresh."""


# --- configuration ----------------------------------------------------------------------------


class CognitoConfig(BaseModel):
    """`[targets.NAME.cognito]`: how to sign the probe user in. Holds variable names, never values.

    >>> CognitoConfig(region="us-east-1", client_id="6e521vvi1g2a1efbf3l70o83k2",
    ...               username_env="PROBES_USER", password_env="PROBES_PASSWORD").flows
    ('password',)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$", description="e.g. us-east-1")
    # AWS allows [\w+]{1,128}; ASCII here: a Unicode \w made this model cost 40 ms more to import.
    client_id: str = Field(pattern=r"^[A-Za-z0-9_+]{1,128}$", description="the app client id (the app ships it)")
    flow: Literal["password", "refresh"] | None = Field(
        default=None, description="USER_PASSWORD_AUTH or REFRESH_TOKEN_AUTH; default: from the *_env keys given"
    )
    username_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    password_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    refresh_token_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    client_secret_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    # Which token goes into `Authorization: Bearer`. thankly's backend accepts both
    # (backend/app/utils/cognito_auth.py, CognitoJWTVerifier.verify_token: token_use "id" or
    # "access", the audience checked only for "id"), and the app sends the access token:
    # mobile/src/services/authService.ts getAccessToken() ("用于API认证") prefers accessToken,
    # used by apiService.ts and diaryService.ts for /diary/voice/async (deng-diana/thankly).
    token: Literal["access", "id"] = "access"
    endpoint_url: str | None = Field(default=None, description="a VPC endpoint, or a local Cognito in tests")

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return refuse_userinfo(value, "endpoint_url")

    @model_validator(mode="after")
    def _complete(self) -> CognitoConfig:
        # username_env alone may serve the refresh flow (SECRET_HASH); password_env means the password flow.
        password = self.flow == "password" or (self.flow is None and self.password_env is not None)
        if password:
            for key in ("username_env", "password_env"):
                if getattr(self, key) is None:
                    raise _field_error(key, "required for the password flow (USER_PASSWORD_AUTH)")
        if self.flow == "refresh" and self.refresh_token_env is None:
            raise _field_error("refresh_token_env", "required for the refresh flow (REFRESH_TOKEN_AUTH)")
        if not self.flows:
            key = "password_env" if self.username_env else "username_env"
            raise _field_error(key, "give username_env and password_env, or refresh_token_env")
        return self

    @property
    def flows(self) -> tuple[str, ...]:
        """The flows this configuration allows, preferred first."""
        if self.flow is not None:
            return (self.flow,)
        found = []
        if self.username_env and self.password_env:
            found.append("password")  # preferred: it can always sign in again
        if self.refresh_token_env:
            found.append("refresh")
        return tuple(found)

    def resolved_flow(self, environ: Mapping[str, str]) -> str:
        """The flow to use given which variables are set; AuthConfigError naming the unset ones."""
        for flow in self.flows:
            if not _unset(self._flow_vars(flow), environ):
                return flow
        missing = _unset(self._flow_vars(self.flows[0]), environ)
        raise AuthConfigError(f"cognito: set the environment variable(s) {', '.join(missing)}")

    def _flow_vars(self, flow: str) -> list[str]:
        names = [self.username_env, self.password_env] if flow == "password" else [self.refresh_token_env]
        if self.client_secret_env:
            names.append(self.client_secret_env)
        return [n for n in names if n]


def _unset(names: list[str], environ: Mapping[str, str]) -> list[str]:
    return [n for n in names if not environ.get(n, "").strip()]


def _field_error(key: str, message: str) -> ValidationError:
    """A validation error located at `key`, so the message names the key that needs fixing."""
    detail = InitErrorDetails(type=PydanticCustomError("value_error", message), loc=(key,), input=None)
    return ValidationError.from_exception_data("CognitoConfig", [detail])


def config_error_line(exc: ValidationError) -> str:
    """`KEY: reason` for the first error (the integrator prefixes `targets.NAME.cognito.`)."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "?"
    return f"{key}: {str(err['msg']).removeprefix('Value error, ')}"


def parse_cognito(raw: Mapping[str, Any]) -> CognitoConfig:
    """A `[targets.NAME.cognito]` table validated once; AuthConfigError("KEY: reason") otherwise."""
    try:
        return CognitoConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise AuthConfigError(config_error_line(exc)) from None


def parse_token_command(command: str) -> tuple[str, ...]:
    """`token_command` split like a POSIX shell would (no shell runs it); AuthConfigError if unusable."""
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:  # unbalanced quotes, a trailing backslash
        raise AuthConfigError(f"token_command: cannot split it into words: {exc}") from None
    if not argv:
        raise AuthConfigError("token_command: empty command")
    return argv


# --- sources ----------------------------------------------------------------------------------


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


class CommandToken(TokenSource):
    """`token_command = "..."`: the command's stdout is the token; it runs again on refresh."""

    def __init__(self, command: str, *, timeout_s: float = TOKEN_COMMAND_TIMEOUT_S) -> None:
        super().__init__()
        self.argv = parse_token_command(command)
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return f"token_command {shlex.quote(self.argv[0])}"  # the program only: arguments may hold secrets

    def _fetch(self) -> str:
        return run_token_command(self.argv, self.timeout_s)

    def _renew(self, stale: str | None) -> str:
        return self._fetch()


def run_token_command(argv: tuple[str, ...] | list[str], timeout_s: float = TOKEN_COMMAND_TIMEOUT_S) -> str:
    """Run a credential helper without a shell; its stripped stdout is the token.

    Every failure is an AuthError whose message carries the program name and
    the tail of its stderr (control characters made visible, anything from
    stdout or shaped like a credential removed) and never stdout itself.
    """
    program = shlex.quote(argv[0])
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
    except FileNotFoundError:
        raise AuthError(f"token_command: program {program} not found") from None
    except PermissionError:
        raise AuthError(f"token_command: {program} is not executable") from None
    except OSError as exc:
        raise AuthError(f"token_command: cannot start {program}: {exc.strerror or type(exc).__name__}") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            out, err = proc.communicate(timeout=TOKEN_COMMAND_REAP_S)
        except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipes
            proc.kill()
            out, err = b"", b""
        raise AuthError(f"token_command {program} timed out after {timeout_s:g} s{_stderr_note(err, out)}") from None
    if proc.returncode != 0:
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with status {proc.returncode}")
        raise AuthError(f"token_command {program} {how}{_stderr_note(err, out)}")
    text = out.decode("utf-8", "replace")
    if not text.strip():
        raise AuthError(f"token_command {program} printed no token on stdout{_stderr_note(err, out)}")
    return check_token(text, f"the output of token_command {program}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group the command leads (we started it with start_new_session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


# What of a failing command's output is looked at for the message (the end of stderr; stdout
# only to remove it from stderr): bounded so that a helper dumping megabytes costs nothing.
_STDERR_SCAN_BYTES = 16 * 1024
_STDOUT_SCAN_BYTES = 64 * 1024


def _stderr_note(err: bytes, out: bytes) -> str:
    """': <stderr tail>' for a message, with nothing that came out on stdout or looks like a credential."""
    text = err[-_STDERR_SCAN_BYTES:].decode("utf-8", "replace")
    stdout = out[:_STDOUT_SCAN_BYTES].decode("utf-8", "replace")
    known = [stdout, stdout.strip(), *(line.strip() for line in stdout.splitlines()),
             *[word for word in stdout.split() if len(word) >= 8][:200]]
    text = " ".join(redact_text(text, known).split())
    if not text:
        return " (no stderr)"
    text = visible(text)
    if len(text) > MAX_STDERR_CHARS:
        text = "…" + text[-(MAX_STDERR_CHARS - 1):]  # the end of stderr usually says what failed
    return f": {text}"


class CognitoToken(TokenSource):
    """Tokens from a Cognito user pool app client, as the app gets them.

    password flow: USER_PASSWORD_AUTH with USERNAME and PASSWORD (and
    SECRET_HASH when the client has a secret). A refresh after a 401 uses the
    refresh token that sign-in returned (REFRESH_TOKEN_AUTH, as the app's
    /auth/refresh does) and signs in again if Cognito refuses it.

    refresh flow: REFRESH_TOKEN_AUTH with a long-lived refresh token from the
    environment, every time.

    SECRET_HASH = base64(HMAC-SHA256(client secret, user name + client id)).
    For REFRESH_TOKEN_AUTH the user name must be the pool's user name, which
    for pools that sign in by e-mail is not the e-mail: it is taken from the
    `username` claim of the last access token, else from username_env.
    """

    def __init__(self, config: CognitoConfig, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        environ = os.environ if environ is None else environ
        self.config = config
        self.flow = config.resolved_flow(environ)
        get = lambda name: (environ.get(name) or "").strip() if name else ""  # noqa: E731
        self._username = get(config.username_env) or None
        self._password = SecretStr(get(config.password_env))
        self._refresh_token = SecretStr(get(config.refresh_token_env))
        self._client_secret = SecretStr(get(config.client_secret_env))
        self._pool_username: str | None = None
        self._client: Any = None
        self._spent: tuple[str, ...] = ()  # refresh tokens replaced or revoked, kept for redaction
        if self._client_secret.get_secret_value() and self.flow == "refresh" and not self._username:
            raise AuthConfigError(
                "cognito: username_env is needed with client_secret_env for the refresh flow "
                "(Cognito computes SECRET_HASH from the pool's user name)"
            )

    def describe(self) -> str:
        c = self.config
        return f"cognito {c.region} client {c.client_id} ({self.flow} flow, {c.token} token)"

    def secrets(self) -> tuple[str, ...]:
        held = [s.get_secret_value() for s in (self._password, self._refresh_token, self._client_secret)]
        return tuple(s for s in (*super().secrets(), *held, *self._spent) if s)

    def _fetch(self) -> str:
        return self._password_auth() if self.flow == "password" else self._refresh_auth()

    def _renew(self, stale: str | None) -> str:
        if self._refresh_token.get_secret_value():
            try:
                return self._refresh_auth()
            except AuthError:
                if self.flow != "password":
                    raise
        if self.flow != "password":
            raise AuthError(
                f"Cognito refused the refresh token earlier: put a new one in {self.config.refresh_token_env}"
            )
        return self._password_auth()

    def _password_auth(self) -> str:
        params = {"USERNAME": self._username or "", "PASSWORD": self._password.get_secret_value()}
        self._add_secret_hash(params, self._username or "")
        return self._initiate("USER_PASSWORD_AUTH", params)

    def _refresh_auth(self) -> str:
        params = {"REFRESH_TOKEN": self._refresh_token.get_secret_value()}
        self._add_secret_hash(params, self._pool_username or self._username or "")
        return self._initiate("REFRESH_TOKEN_AUTH", params)

    def _add_secret_hash(self, params: dict[str, str], username: str) -> None:
        secret = self._client_secret.get_secret_value()
        if secret:
            params["SECRET_HASH"] = secret_hash(secret, username, self.config.client_id)

    def _initiate(self, auth_flow: str, params: dict[str, str]) -> str:
        client = self._boto_client()
        from botocore.exceptions import BotoCoreError, ClientError

        hidden = [*self.secrets(), *params.values()]
        try:
            answer = client.initiate_auth(ClientId=self.config.client_id, AuthFlow=auth_flow, AuthParameters=params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "?")), str(error.get("Message", ""))
            if auth_flow == "REFRESH_TOKEN_AUTH" and code == "NotAuthorizedException":
                self._spend_refresh_token()
            detail = clip(visible(" ".join(redact_text(message, hidden).split())), MAX_STDERR_CHARS)
            raise AuthError(f"Cognito refused {auth_flow} ({self.describe()}): {code}: {detail}") from None
        except BotoCoreError as exc:  # cannot connect, timed out, bad answer
            where = self.config.endpoint_url or f"cognito-idp.{self.config.region}"
            raise AuthError(f"cannot reach Cognito at {where}: {type(exc).__name__}") from None
        if "ChallengeName" in answer:
            raise AuthError(
                f"Cognito answered {auth_flow} with the {answer['ChallengeName']} challenge: the probe user "
                "needs a confirmed, permanent password and no MFA (admin-set-user-password --permanent)"
            )
        result = answer.get("AuthenticationResult") or {}
        new_refresh = result.get("RefreshToken")
        if new_refresh:
            self._spend_refresh_token()
            self._refresh_token = SecretStr(new_refresh)
        access = result.get("AccessToken")
        username = _unverified_claims(access).get("username") if isinstance(access, str) else None
        if isinstance(username, str) and username:
            self._pool_username = username
        chosen = result.get("AccessToken" if self.config.token == "access" else "IdToken")
        if not isinstance(chosen, str):
            raise AuthError(f"Cognito answered {auth_flow} without an {self.config.token} token")
        return check_token(chosen, f"the {self.config.token} token from Cognito")

    def _spend_refresh_token(self) -> None:
        old = self._refresh_token.get_secret_value()
        if old:
            self._spent = (*self._spent, old)[-REMEMBERED_TOKENS:]
        self._refresh_token = SecretStr("")

    def _boto_client(self) -> Any:
        """boto3's cognito-idp client, created on first use (importing boto3 costs ~0.3 s).

        Unsigned: InitiateAuth is a public API, so no AWS credentials are looked up or sent.
        Its own session: boto3's default session is not safe to share between threads.
        """
        if self._client is None:
            try:
                import boto3
                from botocore import UNSIGNED
                from botocore.config import Config
            except ImportError as exc:  # pragma: no cover - boto3 is a dependency
                raise AuthConfigError(f"cognito needs boto3: {exc}") from None
            config = Config(
                signature_version=UNSIGNED, connect_timeout=COGNITO_CONNECT_TIMEOUT_S,
                read_timeout=COGNITO_READ_TIMEOUT_S, retries={"max_attempts": COGNITO_MAX_ATTEMPTS, "mode": "standard"},
            )
            try:
                session = boto3.session.Session()
                self._client = session.client(
                    "cognito-idp", region_name=self.config.region, endpoint_url=self.config.endpoint_url, config=config
                )
            except Exception as exc:  # botocore raises many types here (a bad AWS_PROFILE, a bad endpoint)
                raise AuthConfigError(f"cognito: cannot create the client: {type(exc).__name__}") from None
        return self._client


def secret_hash(client_secret: str, username: str, client_id: str) -> str:
    """Cognito's SECRET_HASH: base64(HMAC-SHA256(key=client secret, message=user name + client id))."""
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, not verified (only to read the user name back); {} if it is not one."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_source(
    *,
    token_env: str | None = None,
    token_command: str | None = None,
    cognito: CognitoConfig | Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    command_timeout_s: float = TOKEN_COMMAND_TIMEOUT_S,
) -> TokenSource:
    """The TokenSource a target's keys describe; AuthConfigError if they conflict or are incomplete.

    Checks the configuration and the environment (no network, no command runs):
    call `current()` once before probing so that a failure stops the run with
    exit 3 before any upload.
    """
    given = [key for key, value in (("token_env", token_env), ("token_command", token_command),
                                    ("cognito", cognito)) if value is not None]
    if len(given) > 1:
        raise AuthConfigError(
            f"{given[0]}: give only one of token_env, token_command and [cognito] (got {', '.join(given)})"
        )
    if token_env is not None:
        return EnvToken(token_env, environ)
    if token_command is not None:
        return CommandToken(token_command, timeout_s=command_timeout_s)
    if cognito is not None:
        config = cognito if isinstance(cognito, CognitoConfig) else parse_cognito(cognito)
        return CognitoToken(config, environ)
    return NoToken()
