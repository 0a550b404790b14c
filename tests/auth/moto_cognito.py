"""A Cognito user pool on loopback: moto's server in a thread, a pool, two app clients, one user.

    with cognito_pool() as pool:
        config = {"region": pool.region, "client_id": pool.client_id, "endpoint_url": pool.endpoint,
                  "username_env": "U", "password_env": "P"}
        environ = {"U": pool.username, "P": pool.password}

Reusable by any test that needs real Cognito tokens (the no-token-on-disk test
of `probes run` included): `pool.environ()` gives the variables a
`[targets.NAME.cognito]` table would name.
"""

from __future__ import annotations

import json
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

REGION = "eu-west-1"
USERNAME = "probe@example.com"
PASSWORD = "Pr0be-Passw0rd!long"


@dataclass(frozen=True)
class Pool:
    endpoint: str
    region: str
    pool_id: str
    client_id: str  # no client secret
    secret_client_id: str  # with a client secret (SECRET_HASH required)
    client_secret: str = field(repr=False)
    username: str = USERNAME
    password: str = field(default=PASSWORD, repr=False)
    admin: Any = field(default=None, repr=False, compare=False)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    def jwks(self) -> dict:
        with urllib.request.urlopen(f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json", timeout=5) as answer:
            return json.load(answer)

    def refresh_token(self, client_id: str | None = None) -> str:
        """A refresh token for the user, as a person would paste it into an environment variable."""
        client_id = client_id or self.client_id
        params = {"USERNAME": self.username, "PASSWORD": self.password}
        if client_id == self.secret_client_id:
            from probes.auth import secret_hash

            params["SECRET_HASH"] = secret_hash(self.client_secret, self.username, client_id)
        answer = self.admin.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params)
        return answer["AuthenticationResult"]["RefreshToken"]

    def cognito_table(self, **overrides: Any) -> dict[str, Any]:
        """A `[targets.NAME.cognito]` table for the password flow, without a client secret."""
        table = {"region": self.region, "client_id": self.client_id, "endpoint_url": self.endpoint,
                 "username_env": "PROBES_TEST_COGNITO_USER", "password_env": "PROBES_TEST_COGNITO_PASSWORD"}
        return {**table, **overrides}

    def environ(self) -> dict[str, str]:
        return {"PROBES_TEST_COGNITO_USER": self.username, "PROBES_TEST_COGNITO_PASSWORD": self.password}


@contextmanager
def cognito_pool() -> Iterator[Pool]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        admin = boto3.session.Session().client(
            "cognito-idp", region_name=REGION, endpoint_url=endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        pool_id = admin.create_user_pool(PoolName="probes")["UserPool"]["Id"]
        flows = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
        plain = admin.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=flows)
        secret = admin.create_user_pool_client(
            UserPoolId=pool_id, ClientName="app-with-secret", GenerateSecret=True, ExplicitAuthFlows=flows
        )
        admin.admin_create_user(UserPoolId=pool_id, Username=USERNAME, MessageAction="SUPPRESS")
        admin.admin_set_user_password(UserPoolId=pool_id, Username=USERNAME, Password=PASSWORD, Permanent=True)
        yield Pool(
            endpoint=endpoint, region=REGION, pool_id=pool_id, client_id=plain["UserPoolClient"]["ClientId"],
            secret_client_id=secret["UserPoolClient"]["ClientId"],
            client_secret=secret["UserPoolClient"]["ClientSecret"], admin=admin,
        )
    finally:
        server.stop()
