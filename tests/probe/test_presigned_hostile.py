"""A presigned upload against scripted backends whose signature the test knows (tests/servers: SIGNATURE).

Whatever the backend or its object store does with the PUT (refuse it and echo the signature,
answer 5xx, never answer, not listen) is an `upload_error` naming the step, exit 3; a backend that
echoes the signature everywhere on a healthy flow gets it nowhere: the presigned URL's query is a
secret like the token, on disk, in stdout and stderr. All on 127.0.0.1: a URL to any other host is
refused before contact (tests/probe/test_presigned_machine.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.probe.run import run_probes

from probes.probe.options import RunOptions
from tests.servers import Step, flow, hostile, scripted_server
from tests.servers.scripted import CREDENTIAL, OBJECT_PATH, PRESIGNED_QUERY, SIGNATURE
from tests.servers.scripts import HEALTHY_POLLS

from .conftest import free_port, read_run

KEY_ID = CREDENTIAL.split("/")[0]


def run(tmp_path: Path, fixtures_dir: Path, script, capsys, **kwargs):
    """One presigned probe against the script; (result, record, every text it left on disk and printed)."""
    with scripted_server(script) as base:
        targets = tmp_path / "targets.toml"
        targets.write_text(f'[targets.s]\nbase_url = "{base}"\nupload = "presigned"\n')
        options = dict(n=1, cadence="fine", interval=0.05, no_slo=True, quiet=True) | kwargs
        result = run_probes(RunOptions(target="s", targets_file=targets, fixtures_dir=fixtures_dir, out=tmp_path / "runs",
                            **options))
        puts = base.of("put")
    printed = capsys.readouterr()
    _meta, (record,) = read_run(result.run_dir)
    texts = [printed.out, printed.err] + [p.read_text(errors="replace") for p in result.run_dir.rglob("*")
                                          if p.is_file()]
    return result, record, texts, puts


def assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        assert SIGNATURE not in text and KEY_ID not in text and "X-Amz-Signature" not in text


S3_ECHO = Step(403, f"<Error><Code>{SIGNATURE}</Code><Message>{SIGNATURE}</Message></Error>",
               headers={"Content-Type": "application/xml", "X-Echo": SIGNATURE})


@pytest.mark.parametrize("put, error, fast", [
    (S3_ECHO, "object PUT: HTTP 403 [redacted]", False),
    (S3_ECHO, "object PUT: HTTP 403 [redacted]", True),
    (Step(503, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"),
     "object PUT: HTTP 503 SlowDown", False),
])
def test_a_refused_put_is_an_upload_error_exit_3_and_the_signature_stays_secret(tmp_path, fixtures_dir, capsys,
                                                                                put, error, fast):
    result, record, texts, puts = run(tmp_path, fixtures_dir, flow(HEALTHY_POLLS, put=[put]), capsys, fast=fast)
    assert result.code == 3 and len(puts) == 1
    assert (record["outcome"], record["error"], record["failed_step"]) == ("upload_error", error, "put")
    assert record["upload_status"] == put.status and record["create_s"] is None
    assert puts[0].target.endswith(SIGNATURE) and puts[0].authorization is None  # sent it, never kept it
    assert_no_secret(texts)


def test_a_put_that_never_answers_ends_within_the_timeout(tmp_path, fixtures_dir, capsys):
    script = flow(HEALTHY_POLLS, put=[hostile.hang_step()])
    result, record, texts, _ = run(tmp_path, fixtures_dir, script, capsys, timeout_s=1.5)
    assert result.code == 3 and record["outcome"] == "upload_error" and record["failed_step"] == "put"
    assert record["error"].startswith("object PUT: Timeout: no whole answer in 1.4") and record["end_s"] < 1.7
    assert_no_secret(texts)


def test_a_presigned_url_where_nothing_listens_is_an_upload_error(tmp_path, fixtures_dir, capsys):
    closed = f"http://127.0.0.1:{free_port()}{OBJECT_PATH}"
    presign = Step(200, {"presigned_url": f"{closed}?{PRESIGNED_QUERY}", "final_url": closed})
    result, record, texts, _ = run(tmp_path, fixtures_dir, flow(HEALTHY_POLLS, presign=[presign]), capsys)
    assert result.code == 3 and (record["outcome"], record["failed_step"]) == ("upload_error", "put")
    assert record["error"].startswith("object PUT: ConnectError") and record["put_s"] is None
    assert_no_secret(texts)


def test_a_backend_echoing_the_signature_everywhere_never_gets_it_written(tmp_path, fixtures_dir, capsys):
    """A healthy flow over the fast transport whose create answer and every poll repeat the signature and
    the credential (headers, step names, messages): on disk and in the output they are redacted."""
    echo = f"{SIGNATURE} {CREDENTIAL}"
    polls = [Step(s.status, {**s.body, "step_name": f"{s.body['step_name']} {echo}", "message": echo},
                  headers={"X-Debug-Url": f"{OBJECT_PATH}?{PRESIGNED_QUERY}"}) for s in HEALTHY_POLLS]
    create = Step(200, {"task_id": "$TASK_ID", "status": "processing", "message": echo},
                  headers={"X-Echo": PRESIGNED_QUERY})
    script = flow(polls, create=[create], health=[Step(200, {"status": "healthy", "echo": echo})])
    result, record, texts, puts = run(tmp_path, fixtures_dir, script, capsys, fast=True, quiet=False)
    assert result.code == 0 and record["outcome"] == "completed" and record["put_s"] is not None
    assert "[redacted]" in record["samples"][0][4]
    headers = {k.lower() for k, _ in puts[0].headers}  # over the fast transport too: only what S3 needs
    assert headers == {"host", "content-type", "content-length"}, puts[0].headers
    assert_no_secret(texts)
