"""`[targets.NAME.cognito]`: tokens from a Cognito user pool app client, as the app gets them (boto3 on first use)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any, Literal, Mapping

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from probes.auth.base import ENV_NAME_PATTERN, REMEMBERED_TOKENS, AuthConfigError, AuthError, TokenSource, check_token
from probes.auth.command import MAX_STDERR_CHARS
from probes.redact import redact_text, refuse_userinfo
from probes.textsafe import clip, visible

# Cognito (botocore): connect and read timeouts per attempt, attempts in all ("standard"
# retry mode backs off on throttling). The worst case stays under a minute.
COGNITO_CONNECT_TIMEOUT_S = 5.0
COGNITO_READ_TIMEOUT_S = 10.0
COGNITO_MAX_ATTEMPTS = 3


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
