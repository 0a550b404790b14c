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

from typing import Any, Mapping

from probes.auth.base import AuthConfigError, AuthError, EnvToken, NoToken, TokenSource, check_token
from probes.auth.command import TOKEN_COMMAND_TIMEOUT_S, CommandToken, parse_token_command, run_token_command
from probes.auth.cognito import CognitoConfig, CognitoToken, parse_cognito, secret_hash

__all__ = [
    "AuthConfigError", "AuthError", "CognitoConfig", "CognitoToken", "CommandToken", "EnvToken", "NoToken",
    "TokenSource", "check_token", "parse_cognito", "parse_token_command", "run_token_command", "secret_hash",
    "token_source",
]


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
