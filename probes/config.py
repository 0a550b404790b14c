"""targets.toml: named targets, validated once at the edge.

Errors name the file, the key and the fix. A token is never stored here; a
target names the environment variable that holds it (`token_env`), and the
value is read only when a probe needs it.
"""

from __future__ import annotations

import ipaddress
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from probes.analysis.slo import DEFAULT_SLOS, Slo, parse_slo_table
from probes.errors import UsageError
from probes.auth import AuthConfigError, TokenSource, parse_cognito, parse_token_command, token_source



def is_loopback_host(host: str) -> bool:
    """True when every address `host` resolves to is loopback (127.0.0.0/8, ::1).

    Decided on addresses, not on the name: `127.attacker.invalid` is not loopback because of how
    it starts, and a name that does not resolve is not loopback.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


class Target(BaseModel):
    """One backend to probe.

    >>> Target(name="local", base_url="http://127.0.0.1:8765", simulator="fast").is_loopback
    True
    """

    # hide_input_in_errors: a rejected base_url may hold a password; no error may repeat it.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str
    base_url: str
    token_env: str | None = Field(default=None, description="environment variable holding the bearer token")
    token_command: str | None = Field(default=None, description="command whose stdout is the bearer token")
    cognito: dict[str, Any] | None = Field(default=None, description="[targets.NAME.cognito]: sign in with Cognito")
    user_name: str | None = Field(default=None, description="sent as X-User-Name (default: Probe)")
    health_auth: bool = Field(default=False, description="send the bearer token with GET /health too")
    version_header: str | None = Field(default=None, description="response header naming the deployed version")
    version_field: str | None = Field(default=None, description="/health field naming the deployed version")
    slo: dict[str, Any] | None = Field(default=None, description="[targets.NAME.slo]: the run's objectives")
    simulator: str | None = Field(default=None, description="scenario make probe-local starts here")
    allow_load: bool = False
    cleanup: bool = False
    max_users: int | None = Field(default=None, gt=0)
    max_rate: float | None = Field(default=None, gt=0)
    upload: Literal["presigned", "multipart"] = Field(
        default="presigned", description="presigned: the app's flow (presign, PUT to S3, create); multipart: one POST")
    presigned_base64: StrictBool = Field(
        default=True, description="presigned: the create form also carries the audio as base64 (files <= 5 MB)")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number in 0..65535
        except ValueError:
            raise ValueError("must be an http(s) URL with a numeric port, like http://127.0.0.1:8765") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL like http://127.0.0.1:8765")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry a user or password (credentials go in token_env, token_command "
                             "or [cognito], never in a URL)")
        if parts.query or parts.fragment or any(ord(c) < 33 or ord(c) == 127 for c in value):
            raise ValueError("must be a plain base URL: no query, fragment, spaces or control characters")
        return value.rstrip("/")

    @field_validator("token_command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        if value is not None:
            parse_token_command(value)
        return value

    @field_validator("cognito")
    @classmethod
    def _cognito(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                parse_cognito(value)
            except AuthConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_token_source(self) -> "Target":
        given = [k for k in ("token_env", "token_command", "cognito") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of token_env, token_command and [cognito] (got {', '.join(given)})")
        return self

    def token_source(self) -> TokenSource:
        """Where this target's bearer token comes from; AuthConfigError (exit 2) when it is misconfigured."""
        return token_source(token_env=self.token_env, token_command=self.token_command, cognito=self.cognito)

    @field_validator("slo")
    @classmethod
    def _slo_table(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            parse_slo_table(value)
        return value

    @property
    def slos(self) -> tuple[Slo, ...]:
        """The target's objectives, or the thankly incident's defaults."""
        return parse_slo_table(self.slo) if self.slo is not None else DEFAULT_SLOS

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(urlsplit(self.base_url).hostname or "")

    @property
    def plain_http_hosts(self) -> frozenset[str]:
        """Hosts a presigned URL may name over plain http: none, unless the target itself is on loopback
        (a local backend with its object store beside it); then its own host and the loopback names.
        https may go anywhere (probes.probe.wire.object_url_problem)."""
        if not self.is_loopback:
            return frozenset()
        return frozenset({urlsplit(self.base_url).hostname or "", "127.0.0.1", "::1", "localhost"})



def _msg(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def read_toml(path: Path, missing: str = "") -> dict[str, Any]:
    """A TOML file as a dict; a one-line UsageError naming the file when it is missing or unreadable."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} not found{missing}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def load_targets(path: Path) -> dict[str, Target]:
    raw = read_toml(path, ": create it or pass --url")
    table = raw.get("targets")
    if not isinstance(table, dict) or not table:
        raise UsageError(f"{path}: no [targets.NAME] tables found")
    targets: dict[str, Target] = {}
    for name, fields in table.items():
        if not isinstance(fields, dict):
            raise UsageError(f"{path}: targets.{name} must be a table")
        try:
            targets[name] = Target(name=name, **fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise UsageError(f"{path}: targets.{name}{'.' + key if key else ''}: {_msg(err)}") from None
    return targets


ADHOC_UPLOAD = "multipart"  # `--url` without `--upload`: any upload-then-poll backend takes the one-request form


def resolve_target(
    targets_file: Path, name: str | None, url: str | None, token_env: str | None, upload: str | None = None
) -> Target:
    """The target for `probes run`: a name from targets.toml or an ad-hoc --url; `upload` overrides its flow."""
    if (name is None) == (url is None):
        raise UsageError("give exactly one of --target NAME or --url URL")
    if url is not None:
        try:
            return Target(name="adhoc", base_url=url, token_env=token_env, upload=upload or ADHOC_UPLOAD)
        except ValidationError as exc:
            raise UsageError(f"--url {_msg(exc.errors()[0])}") from None
    targets = load_targets(targets_file)
    if name not in targets:
        raise UsageError(f"unknown target {name!r} in {targets_file}; known: {', '.join(sorted(targets))}")
    target = targets[name]
    if token_env:
        target = target.model_copy(update={"token_env": token_env, "token_command": None, "cognito": None})
    if upload is not None:
        target = target.model_copy(update={"upload": upload})
    return target


def load_slo_file(path: Path) -> tuple[Slo, ...]:
    """`--slo FILE`: a TOML file whose [slo] table has the targets.NAME.slo format."""
    raw = read_toml(path)
    if "slo" not in raw:
        raise UsageError(f"{path}: no [slo] table (it has the format of [targets.NAME.slo])")
    try:
        return parse_slo_table(raw["slo"])
    except ValueError as exc:
        raise UsageError(f"{path}: slo.{exc}") from None
