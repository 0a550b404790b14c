"""Token sources against the real things: moto's Cognito server on loopback, real subprocesses, real threads."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from probes.errors import EXIT_UNREACHABLE, EXIT_USAGE, UnreachableError, UsageError
from probes.auth import (
    AuthConfigError, AuthError, CognitoConfig, CognitoToken, CommandToken, EnvToken, NoToken, check_token,
    parse_cognito, run_token_command, secret_hash, token_source,
)
from probes.auth.cognito import _unverified_claims, config_error_line
from probes.auth.command import MAX_STDERR_CHARS
from tests.auth.moto_cognito import Pool, cognito_pool

PY = sys.executable
TOKEN = "tok-9f3c1d7e5b2a-SECRET"


@pytest.fixture(scope="module")
def pool() -> Pool:
    with cognito_pool() as p:
        yield p


def _config(pool: Pool, **overrides) -> CognitoConfig:
    return parse_cognito(pool.cognito_table(**overrides))


def _assert_from_pool(token: str, pool: Pool, client_id: str, use: str) -> dict:
    """A JWT signed by the pool's key, for this client, of this kind."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    claims = jwt.decode(token, KeySet.import_key_set(pool.jwks())).claims
    assert claims["iss"] == pool.issuer
    assert claims["token_use"] == use
    assert claims["client_id" if use == "access" else "aud"] == client_id
    return claims


def _counter_command(tmp_path: Path, body: str = "") -> tuple[str, Path]:
    """A token_command that logs each run to a file and prints a fresh token (run N -> token-N)."""
    log = tmp_path / "runs.log"
    script = tmp_path / "helper.py"
    script.write_text(
        "import sys, time\n"
        f"log = open({str(log)!r}, 'a'); log.write('x'); log.close()\n"
        f"n = len(open({str(log)!r}).read())\n"
        "time.sleep(0.2)\n"  # long enough for every waiting thread to pile up on the lock
        f"{body}\n"
        "print(f'token-{n}-abcdefgh')\n"
    )
    return f"{PY} {script}", log


def _runs(log: Path) -> int:
    return len(log.read_text()) if log.exists() else 0


# --- configuration ----------------------------------------------------------------------------


def test_config_infers_the_flow_from_the_keys_given():
    base = {"region": "us-east-1", "client_id": "6e521vvi1g2a1efbf3l70o83k2"}
    assert CognitoConfig(**base, username_env="U", password_env="P").flows == ("password",)
    assert CognitoConfig(**base, refresh_token_env="R").flows == ("refresh",)
    assert CognitoConfig(**base, refresh_token_env="R", username_env="U").flows == ("refresh",)
    both = CognitoConfig(**base, username_env="U", password_env="P", refresh_token_env="R")
    assert both.flows == ("password", "refresh")
    assert both.resolved_flow({"R": "r"}) == "refresh"
    assert both.resolved_flow({"U": "u", "P": "p", "R": "r"}) == "password"
    assert CognitoConfig(**base, refresh_token_env="R").token == "access"  # what the app sends (see auth.py)


@pytest.mark.parametrize(("table", "line"), [
    ({"username_env": "U"}, "password_env: give username_env and password_env, or refresh_token_env"),
    ({"password_env": "P"}, "username_env: required for the password flow (USER_PASSWORD_AUTH)"),
    ({"flow": "refresh", "username_env": "U"}, "refresh_token_env: required for the refresh flow"),
    ({}, "username_env: give username_env and password_env, or refresh_token_env"),
    ({"refresh_token_env": "R", "extra": 1}, "extra: Extra inputs are not permitted"),
    ({"refresh_token_env": "R", "region": "Europe"}, "region: String should match pattern"),
    ({"refresh_token_env": "1BAD"}, "refresh_token_env: String should match pattern"),
    ({"refresh_token_env": "R", "token": "refresh"}, "token: Input should be 'access' or 'id'"),
    ({"refresh_token_env": "R", "endpoint_url": "ftp://x"}, "endpoint_url: must be an http(s) URL"),
    ({"refresh_token_env": "R", "endpoint_url": "https://u:hunter2@vpce.example"},
     "endpoint_url: endpoint_url must not"),
])
def test_config_errors_are_one_line_naming_the_key(table, line):
    raw = {"region": "us-east-1", "client_id": "abc", **table}
    with pytest.raises(AuthConfigError) as info:
        parse_cognito(raw)
    message = str(info.value)
    assert message.startswith(line) and "\n" not in message and "hunter2" not in message
    assert info.value.exit_code == EXIT_USAGE and isinstance(info.value, (UsageError, ValueError))


def test_config_embeds_in_a_target_model_with_the_key_in_the_location():
    class Target(BaseModel):
        cognito: CognitoConfig | None = None

    with pytest.raises(ValidationError) as info:
        Target(cognito={"region": "us-east-1", "client_id": "abc", "username_env": "U"})
    assert info.value.errors()[0]["loc"] == ("cognito", "password_env")
    line = "cognito.password_env: give username_env and password_env, or refresh_token_env"
    assert config_error_line(info.value) == line


def test_config_is_frozen():
    config = CognitoConfig(region="us-east-1", client_id="abc", refresh_token_env="R")
    with pytest.raises(ValidationError):
        config.region = "eu-west-1"  # type: ignore[misc]


def test_missing_variables_are_configuration_errors():
    config = CognitoConfig(region="us-east-1", client_id="abc", username_env="U", password_env="P")
    with pytest.raises(AuthConfigError, match="set the environment variable.*U, P"):
        CognitoToken(config, environ={})
    with pytest.raises(AuthConfigError, match="token_env: set the environment variable PROBES_NOPE"):
        token_source(token_env="PROBES_NOPE", environ={})
    secret_refresh = CognitoConfig(region="us-east-1", client_id="abc", refresh_token_env="R", client_secret_env="S")
    with pytest.raises(AuthConfigError, match="username_env is needed with client_secret_env"):
        CognitoToken(secret_refresh, environ={"R": "r", "S": "s"})


def test_only_one_way_to_get_a_token():
    with pytest.raises(AuthConfigError, match="give only one of token_env, token_command and"):
        token_source(token_env="A", token_command="echo x", environ={"A": "x"})
    assert isinstance(token_source(), NoToken)
    assert isinstance(token_source(token_env="A", environ={"A": TOKEN}), EnvToken)
    assert isinstance(token_source(token_command="echo x"), CommandToken)


def test_boto3_is_imported_only_when_cognito_is_used():
    code = (
        "import sys\n"
        "import probes.auth as a\n"
        "src = a.token_source(cognito={'region': 'us-east-1', 'client_id': 'abc', 'refresh_token_env': 'R'},"
        " environ={'R': 'r'})\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules)\n"
    )
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- secrets stay out of reprs, strings and messages ------------------------------------------


def test_no_secret_in_repr_or_str(pool):
    environ = {"U": pool.username, "P": "hunter2-password", "R": "refresh-7b1c9e", "S": pool.client_secret}
    config = CognitoConfig(region=pool.region, client_id=pool.secret_client_id, endpoint_url=pool.endpoint,
                           username_env="U", password_env="P", refresh_token_env="R", client_secret_env="S")
    source = CognitoToken(config, environ=environ)
    secrets = ["hunter2-password", "refresh-7b1c9e", pool.client_secret]
    for text in (repr(config), str(config), repr(source), str(source), source.describe(), repr(vars(config))):
        for secret in secrets:
            assert secret not in text
    with pytest.raises(AuthError) as info:  # wrong password: Cognito refuses
        source.current()
    for text in (str(info.value), repr(info.value)):
        for secret in secrets:
            assert secret not in text
    assert set(secrets) <= set(source.secrets())


# --- Cognito ----------------------------------------------------------------------------------


def test_password_flow_gives_an_access_token_from_the_pool(pool):
    source = token_source(cognito=pool.cognito_table(), environ=pool.environ())
    token = source.current()
    claims = _assert_from_pool(token, pool, pool.client_id, "access")
    assert claims["username"] == pool.username
    assert source.current() == token  # fetched once, then held
    assert token in source.secrets() and pool.password in source.secrets()


def test_password_flow_can_send_the_id_token(pool):
    source = token_source(cognito=pool.cognito_table(token="id"), environ=pool.environ())
    claims = _assert_from_pool(source.current(), pool, pool.client_id, "id")
    assert claims["cognito:username"] == pool.username


def test_password_flow_with_client_secret_refreshes_with_secret_hash(pool):
    table = pool.cognito_table(client_id=pool.secret_client_id, client_secret_env="PROBES_TEST_COGNITO_SECRET")
    source = token_source(cognito=table, environ={**pool.environ(), "PROBES_TEST_COGNITO_SECRET": pool.client_secret})
    first = source.current()
    _assert_from_pool(first, pool, pool.secret_client_id, "access")
    refreshed = source.refresh(first)  # REFRESH_TOKEN_AUTH: moto checks this SECRET_HASH
    assert refreshed != first
    _assert_from_pool(refreshed, pool, pool.secret_client_id, "access")


def test_refresh_flow_with_a_refresh_token_from_the_environment(pool):
    environ = {"R": pool.refresh_token()}
    source = token_source(cognito={"region": pool.region, "client_id": pool.client_id, "endpoint_url": pool.endpoint,
                                   "refresh_token_env": "R"}, environ=environ)
    assert source.flow == "refresh"
    first = source.current()
    _assert_from_pool(first, pool, pool.client_id, "access")
    second = source.refresh(first)
    assert second != first
    _assert_from_pool(second, pool, pool.client_id, "access")


def test_refresh_flow_with_client_secret_uses_the_username(pool):
    environ = {"R": pool.refresh_token(pool.secret_client_id), "U": pool.username, "S": pool.client_secret}
    table = {"region": pool.region, "client_id": pool.secret_client_id, "endpoint_url": pool.endpoint,
             "refresh_token_env": "R", "username_env": "U", "client_secret_env": "S"}
    source = token_source(cognito=table, environ=environ)
    _assert_from_pool(source.current(), pool, pool.secret_client_id, "access")


def test_refresh_with_a_wrong_secret_is_refused_without_echoing_it(pool):
    wrong = "not-the-client-secret-0123"
    refresh_token = pool.refresh_token(pool.secret_client_id)
    environ = {"R": refresh_token, "U": pool.username, "S": wrong}
    table = {"region": pool.region, "client_id": pool.secret_client_id, "endpoint_url": pool.endpoint,
             "refresh_token_env": "R", "username_env": "U", "client_secret_env": "S"}
    source = token_source(cognito=table, environ=environ)
    with pytest.raises(AuthError) as info:
        source.current()
    message = str(info.value)
    assert "NotAuthorizedException" in message and info.value.exit_code == EXIT_UNREACHABLE
    # moto puts the SECRET_HASH it was sent into its error message: it must not reach ours
    for secret in (wrong, refresh_token, secret_hash(wrong, pool.username, pool.secret_client_id)):
        assert secret not in message


def test_a_revoked_refresh_token_is_an_auth_error(pool):
    source = token_source(cognito={"region": pool.region, "client_id": pool.client_id, "endpoint_url": pool.endpoint,
                                   "refresh_token_env": "R"}, environ={"R": "revoked-refresh-token-123"})
    with pytest.raises(AuthError, match="Cognito refused REFRESH_TOKEN_AUTH") as info:
        source.current()
    assert "revoked-refresh-token-123" not in str(info.value)
    with pytest.raises(AuthError):  # remembered: no second round trip
        source.current()


def test_wrong_password_is_an_auth_error_without_the_password(pool):
    source = token_source(cognito=pool.cognito_table(), environ={**pool.environ(),
                                                                  "PROBES_TEST_COGNITO_PASSWORD": "Wr0ng-password"})
    with pytest.raises(AuthError, match="NotAuthorizedException") as info:
        source.current()
    assert "Wr0ng-password" not in str(info.value) and isinstance(info.value, UnreachableError)


def test_password_flow_signs_in_again_when_the_refresh_token_is_refused(pool):
    source = token_source(cognito=pool.cognito_table(), environ=pool.environ())
    first = source.current()
    pool.admin.admin_user_global_sign_out(UserPoolId=pool.pool_id, Username=pool.username)  # revokes refresh tokens
    second = source.refresh(first)
    _assert_from_pool(second, pool, pool.client_id, "access")
    assert second != first


def test_unreachable_cognito_is_an_auth_error():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = token_source(cognito={"region": "eu-west-1", "client_id": "abc", "refresh_token_env": "R",
                                   "endpoint_url": f"http://127.0.0.1:{port}"}, environ={"R": "r-123456"})
    with pytest.raises(AuthError, match=f"cannot reach Cognito at http://127.0.0.1:{port}: EndpointConnectionError"):
        source.current()


def test_concurrent_401s_refresh_cognito_once(pool):
    source = token_source(cognito=pool.cognito_table(), environ=pool.environ())
    stale = source.current()
    calls = []
    source._boto_client().meta.events.register(
        "before-parameter-build.cognito-identity-provider.InitiateAuth",
        lambda **kw: calls.append(kw["params"]["AuthFlow"]),
    )
    results = _together(16, lambda: source.refresh(stale))
    assert calls == ["REFRESH_TOKEN_AUTH"]
    assert len(set(results)) == 1 and results[0] != stale


# --- refresh once, under concurrency (real threads, real subprocesses) --------------------------


def _together(n: int, call) -> list:
    """Run `call` in n threads released at the same moment; results (or exceptions) in thread order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_n_probes_hitting_401_together_cause_one_refresh(tmp_path):
    command, log = _counter_command(tmp_path)
    source = CommandToken(command)
    stale = source.current()
    assert stale == "token-1-abcdefgh" and _runs(log) == 1
    results = _together(16, lambda: source.refresh(stale))
    assert results == ["token-2-abcdefgh"] * 16
    assert _runs(log) == 2
    assert source.refresh("token-1-abcdefgh") == "token-2-abcdefgh"  # a late 401 with the old token: no new run
    assert _runs(log) == 2
    assert source.refresh("token-2-abcdefgh") == "token-3-abcdefgh"  # the new token refused in turn: one more run


def test_first_use_fetches_once_for_all_threads(tmp_path):
    command, log = _counter_command(tmp_path)
    source = CommandToken(command)
    assert _together(12, source.current) == ["token-1-abcdefgh"] * 12
    assert _runs(log) == 1


def test_a_failed_refresh_is_not_retried_by_every_probe(tmp_path):
    command, log = _counter_command(tmp_path, "import sys\nif n > 1: sys.exit('helper: session expired')")
    source = CommandToken(command)
    stale = source.current()
    results = _together(8, lambda: source.refresh(stale))
    assert all(isinstance(r, AuthError) and "session expired" in str(r) for r in results)
    assert _runs(log) == 2


def test_a_failed_first_fetch_is_remembered(tmp_path):
    command, log = _counter_command(tmp_path, "import sys; sys.exit('helper: not logged in')")
    source = CommandToken(command)
    for _ in range(3):
        with pytest.raises(AuthError, match="not logged in"):
            source.current()
    assert _runs(log) == 1


# --- token_command ----------------------------------------------------------------------------


def test_token_command_stdout_is_the_token():
    source = CommandToken(f"{PY} -c \"print('  {TOKEN}  ')\"")
    assert source.current() == TOKEN
    assert source.describe() == f"token_command {PY}"
    assert TOKEN in source.secrets()


def test_token_command_runs_without_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(AuthError, match="more than one word"):  # echo printed the words ...
        CommandToken(f"echo tok-abc12345 ';' touch {marker}").current()
    assert not marker.exists()  # ... where a shell would have run touch
    assert CommandToken("echo tok-$HOME-$(id)").current() == "tok-$HOME-$(id)"  # no expansion either


def test_token_command_failure_shows_stderr_never_the_token():
    code = (f"import sys; print('{TOKEN}'); print('half-issued {TOKEN} then', file=sys.stderr);"
            " print('helper: \\x1b[31mMFA required\\x1b[0m', file=sys.stderr); sys.exit(3)")
    with pytest.raises(AuthError) as info:
        run_token_command([PY, "-c", code])
    message = str(info.value)
    assert TOKEN not in message
    assert f"token_command {PY} exited with status 3: half-issued [redacted] then" in message
    assert "helper: \\x1b[31mMFA required\\x1b[0m" in message  # escape sequences shown, not obeyed
    assert "\x1b" not in message and "\n" not in message and info.value.exit_code == EXIT_UNREACHABLE


def test_token_command_long_stderr_keeps_its_end():
    code = "import sys; sys.stderr.write('x' * 5000 + ' the real reason'); sys.exit(1)"
    with pytest.raises(AuthError) as info:
        run_token_command([PY, "-c", code])
    note = str(info.value).split(": ", 1)[1]
    assert len(note) == MAX_STDERR_CHARS and note.endswith("the real reason")


def test_token_command_timeout_kills_the_command_and_its_children(tmp_path):
    child_pid = tmp_path / "child.pid"
    code = ("import subprocess, sys, time;"
            " p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            f" open({str(child_pid)!r}, 'w').write(str(p.pid)); print('{TOKEN}', flush=True);"
            " print('waiting for browser login', file=sys.stderr, flush=True); time.sleep(60)")
    start = time.monotonic()
    with pytest.raises(AuthError) as info:
        run_token_command([PY, "-c", code], timeout_s=1.5)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "timed out after 1.5 s: waiting for browser login" in message and TOKEN not in message
    pid = int(child_pid.read_text())
    for _ in range(50):  # the grandchild went with the process group
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the command's child survived the timeout")


def test_token_command_missing_program():
    with pytest.raises(AuthError, match="token_command: program no-such-helper-xyz not found"):
        CommandToken("no-such-helper-xyz --profile prod").current()


def test_token_command_not_executable(tmp_path):
    script = tmp_path / "helper"
    script.write_text("#!/bin/sh\necho tok\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(AuthError, match="is not executable"):
        run_token_command([str(script)])


@pytest.mark.parametrize(("code", "match"), [
    ("pass", "printed no token on stdout \\(no stderr\\)"),
    (f"print('Bearer {TOKEN}')", "more than one word"),
    (f"print('{TOKEN}'); print('second line')", "more than one word"),
    (f"print('{TOKEN}\\x07')", "cannot travel in an HTTP header"),
    ("print('x' * 9000)", "is 9000 characters long"),
])
def test_token_command_output_must_be_one_header_safe_token(code, match):
    with pytest.raises(AuthError, match=match) as info:
        run_token_command([PY, "-c", code])
    assert TOKEN not in str(info.value) and "x" * 50 not in str(info.value)


@pytest.mark.parametrize("command", ["", "   ", "get-token 'unbalanced"])
def test_token_command_that_cannot_be_split_is_a_config_error(command):
    with pytest.raises(AuthConfigError, match="token_command: "):
        token_source(token_command=command)


def test_describe_names_the_program_only():
    source = CommandToken("vault read -field=token secret/probes --password=hunter2")
    assert "hunter2" not in repr(source) and source.describe() == "token_command vault"


# --- environment variable and nothing ---------------------------------------------------------


def test_env_token_is_read_and_reread_on_refresh():
    environ = {"PROBES_T": f" {TOKEN}\n"}
    source = token_source(token_env="PROBES_T", environ=environ)
    assert source.current() == TOKEN
    environ["PROBES_T"] = "tok-rotated-123456"
    assert source.refresh(TOKEN) == "tok-rotated-123456"
    assert source.refresh(TOKEN) == "tok-rotated-123456"  # already refreshed: no second read needed
    assert set(source.secrets()) == {TOKEN, "tok-rotated-123456"}


def test_env_token_that_cannot_travel_is_a_config_error_without_the_value():
    with pytest.raises(AuthConfigError) as info:
        token_source(token_env="PROBES_T", environ={"PROBES_T": f"Bearer {TOKEN}"})
    assert TOKEN not in str(info.value) and info.value.exit_code == EXIT_USAGE


def test_no_token_sends_nothing_and_cannot_refresh():
    source = NoToken()
    assert source.current() is None and source.peek() is None
    with pytest.raises(AuthError, match="asked for credentials \\(HTTP 401\\) and none are configured"):
        source.refresh(None)


# --- small helpers ----------------------------------------------------------------------------


def test_secret_hash_matches_the_aws_recipe():
    # base64(HMAC-SHA256(key=secret, msg=username + client_id)), as in AWS's "Computing secret hash values"
    assert secret_hash("secret", "user", "client") == "wvW87lzZoI+qQCVGmWVBJLlucdJ65huAVP1z+0MgA6E="


def test_unverified_claims_never_raise():
    assert _unverified_claims("not-a-jwt") == {}
    assert _unverified_claims("a.!!!.c") == {}
    assert _unverified_claims("a.WzFd.c") == {}  # a list, not claims


def test_check_token_error_class_is_chosen_by_the_caller():
    with pytest.raises(AuthConfigError):
        check_token("", "x", AuthConfigError)
    assert check_token(f"\t{TOKEN}\r\n", "x") == TOKEN


def test_refresh_flow_reports_a_revoked_refresh_token_once(pool):
    source = token_source(cognito={"region": pool.region, "client_id": pool.client_id, "endpoint_url": pool.endpoint,
                                   "refresh_token_env": "R"}, environ={"R": pool.refresh_token()})
    first = source.current()
    pool.admin.admin_user_global_sign_out(UserPoolId=pool.pool_id, Username=pool.username)
    with pytest.raises(AuthError, match="NotAuthorizedException"):
        source.refresh(first)
    with pytest.raises(AuthError, match="NotAuthorizedException"):  # the same answer, without asking again
        source.refresh(first)


def test_secrets_never_wait_for_a_refresh(tmp_path):
    command, _log = _counter_command(tmp_path, "time.sleep(2 if n > 1 else 0)")
    source = CommandToken(command)
    stale = source.current()
    worker = threading.Thread(target=source.refresh, args=(stale,))
    worker.start()
    time.sleep(0.3)
    start = time.monotonic()
    assert source.secrets() == (stale,) and source.peek() == stale
    assert time.monotonic() - start < 0.1
    worker.join(30)
    assert source.secrets() == (stale, "token-2-abcdefgh")


# --- end to end: `probes run` with each source (pending integration) ------------------------------

REPO = Path(__file__).resolve().parents[2]


def _probes_run(targets_toml: str, tmp_path: Path, fixtures_dir: Path, env: dict[str, str]):
    targets = tmp_path / "targets.toml"
    targets.write_text(targets_toml)
    cmd = [PY, "-m", "probes", "run", "--targets", str(targets), "--target", "t", "-n", "1", "--fixtures",
           str(fixtures_dir), "--out", str(tmp_path / "runs"), "--cadence", "fine", "-q"]
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=90, cwd=REPO)


def _assert_nowhere(secrets: list[str], done: subprocess.CompletedProcess, tmp_path: Path) -> None:
    for secret in secrets:
        assert secret not in done.stdout + done.stderr
        for path in (tmp_path / "runs").rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_run_with_token_command_keeps_the_token_off_disk(sim, tmp_path, fixtures_dir):
    url = sim("fast", time_scale=0.1, require_auth=True)
    toml = f"[targets.t]\nbase_url = '{url}'\ntoken_command = '''{PY} -c \"print('{TOKEN}')\"'''\n"
    done = _probes_run(toml, tmp_path, fixtures_dir, {})
    assert done.returncode == 0, done.stderr
    _assert_nowhere([TOKEN], done, tmp_path)


def test_run_with_a_failing_token_command_is_exit_3_with_its_stderr(sim, tmp_path, fixtures_dir):
    url = sim("fast", time_scale=0.1, require_auth=True)
    code = f"import sys; print('{TOKEN}'); print('helper: session expired', file=sys.stderr); sys.exit(1)"
    toml = f"[targets.t]\nbase_url = '{url}'\ntoken_command = '''{PY} -c \"{code}\"'''\n"
    done = _probes_run(toml, tmp_path, fixtures_dir, {})
    assert done.returncode == 3 and "helper: session expired" in done.stderr
    _assert_nowhere([TOKEN], done, tmp_path)


def test_run_with_cognito_keeps_every_secret_off_disk(sim, pool, tmp_path, fixtures_dir):
    url = sim("fast", time_scale=0.1, require_auth=True)
    table = "\n".join(f"{k} = '{v}'" for k, v in pool.cognito_table().items())
    done = _probes_run(f"[targets.t]\nbase_url = '{url}'\n\n[targets.t.cognito]\n{table}\n", tmp_path, fixtures_dir,
                       pool.environ())
    assert done.returncode == 0, done.stderr
    source = token_source(cognito=pool.cognito_table(), environ=pool.environ())
    issued = source.current()  # a token of the same kind: its header and claims part must not be on disk either
    _assert_nowhere([pool.password, issued.split(".")[0] + "." + issued.split(".")[1][:40]], done, tmp_path)


def test_a_refresh_before_any_fetch_fetches(tmp_path):
    command, log = _counter_command(tmp_path)
    assert CommandToken(command).refresh(None) == "token-1-abcdefgh" and _runs(log) == 1
    with pytest.raises(AuthError, match="none are configured"):
        NoToken().refresh(None)


def test_refresh_once_under_gevent_as_in_the_locust_user(tmp_path):
    command, log = _counter_command(tmp_path)
    code = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import gevent, sys\n"
        "from probes.auth import CommandToken\n"
        f"source = CommandToken({command!r})\n"
        "stale = source.current()\n"
        "jobs = [gevent.spawn(source.refresh, stale) for _ in range(20)]\n"
        "gevent.joinall(jobs, timeout=30)\n"
        "print(sorted({j.value for j in jobs}))\n"
    )
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['token-2-abcdefgh']" and _runs(log) == 2
