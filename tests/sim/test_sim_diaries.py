"""Diaries over real HTTP: /diary/list per user, GET and DELETE of one diary, the /diaries aliases."""

from __future__ import annotations

import time
from typing import Any

import httpx

from .conftest import upload

ALICE = {"Authorization": "Bearer alice"}
BOB = {"Authorization": "Bearer bob"}


def finish(client: httpx.Client, base: str, task_id: str, headers: dict[str, str], prefix: str = "/diary") -> dict[str, Any]:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        r = client.get(f"{base}{prefix}/voice/progress/{task_id}", headers=headers)
        if r.status_code == 200 and r.json()["status"] != "processing":
            return r.json()
        time.sleep(0.01)
    raise AssertionError("task did not finish in time")


def diary_ids(client: httpx.Client, base: str, headers: dict[str, str], prefix: str = "/diary") -> list[str]:
    r = client.get(f"{base}{prefix}/list", headers=headers)
    assert r.status_code == 200 and isinstance(r.json(), list)
    return [d["diary_id"] for d in r.json()]


def test_list_holds_completed_diaries_newest_first_until_deleted(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.05)
    assert diary_ids(client, base, ALICE) == []
    first = upload(client, base, headers=ALICE).json()["task_id"]
    assert diary_ids(client, base, ALICE) == []  # no diary before the job completes
    one = finish(client, base, first, ALICE)["diary"]
    two = finish(client, base, upload(client, base, headers=ALICE).json()["task_id"], ALICE)["diary"]
    listed = client.get(f"{base}/diary/list", headers=ALICE).json()
    assert [d["diary_id"] for d in listed] == [two["diary_id"], one["diary_id"]]
    assert listed[0] == two  # the same object the progress answer carried
    assert diary_ids(client, base, BOB) == []  # only the caller's
    assert client.delete(f"{base}/diary/{one['diary_id']}", headers=ALICE).status_code == 200
    assert diary_ids(client, base, ALICE) == [two["diary_id"]]
    assert client.delete(f"{base}/diary/{two['diary_id']}", headers=ALICE).status_code == 200
    assert diary_ids(client, base, ALICE) == []


def test_failed_job_leaves_no_diary(sim: Any, client: httpx.Client) -> None:
    base = sim("fail-transcription", time_scale=0.05)
    assert finish(client, base, upload(client, base, headers=ALICE).json()["task_id"], ALICE)["status"] == "failed"
    assert diary_ids(client, base, ALICE) == []


def test_get_one_diary_and_other_user_is_404(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.05)
    diary = finish(client, base, upload(client, base, headers=ALICE).json()["task_id"], ALICE)["diary"]
    r = client.get(f"{base}/diary/{diary['diary_id']}", headers=ALICE)
    assert r.status_code == 200 and r.json() == diary
    assert client.get(f"{base}/diary/{diary['diary_id']}", headers=BOB).status_code == 404
    assert client.get(f"{base}/diary/nope", headers=ALICE).status_code == 404


def test_list_requires_auth_when_required(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.1, require_auth=True)
    assert client.get(f"{base}/diary/list").status_code == 401
    assert client.get(f"{base}/diaries/list").status_code == 401
    assert client.get(f"{base}/diary/list", headers=ALICE).json() == []


def test_diaries_prefix_is_an_alias_of_every_diary_route(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.05)
    r = client.post(f"{base}/diaries/voice/async", data={"duration": "5"},
                    files={"audio": ("recording.m4a", b"\x00" * 2000, "audio/m4a")}, headers=ALICE)
    assert r.status_code == 200
    task_id = r.json()["task_id"]
    final = finish(client, base, task_id, ALICE, prefix="/diaries")
    diary_id = final["diary"]["diary_id"]
    # one store behind both prefixes
    assert diary_ids(client, base, ALICE, prefix="/diaries") == diary_ids(client, base, ALICE) == [diary_id]
    assert client.get(f"{base}/diaries/{diary_id}", headers=ALICE).status_code == 200
    assert client.delete(f"{base}/diaries/{diary_id}", headers=ALICE).status_code == 200
    assert client.delete(f"{base}/diary/{diary_id}", headers=ALICE).status_code == 404
    assert diary_ids(client, base, ALICE) == []
