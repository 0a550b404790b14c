"""Ready-made scripts: complete thankly-looking flows, each with one thing wrong (or none).

``SCRIPTS[name]`` is a script for `scripted_server`. The healthy flow is the
real backend's observed states (shared/reference/thankly-observed.md): 22 %
"处理中", the transcription climb under "转录中", 58 % "语音识别完成", the
AI polish from 60 %, saving at 88/96 %, completed at 100 % with a diary.

    healthy            12 polls from 22 % to completed
    404-then-ok        the first 3 polls answer 404, then healthy
    429-retry-after    polls 3, 5 and 6 answer 429 with Retry-After: 0.2
    5xx-burst          polls 4-6 answer 503, then the flow goes on
    stuck              progress climbs to 32 % and stays there forever
    failed             HTTP 200 status failed at 24 %, TRANSCRIPTION_CONTENT_TOO_SHORT, forever
    auth-expiry        poll 4 answers 401; again while the Authorization is the same
    cut-off            poll 3's connection closes mid-answer

and hostile ones, the flow with the third poll (index ``HOSTILE_AT``)
replaced: gzip-bomb, endless-body, trickle, huge-body, hang, malformed,
nested-json, huge-string, retry-after-huge, retry-after-1e9,
retry-after-date, echo-token (health and every poll echo the credentials),
progress-float / progress-string / progress-missing (the final answer's
progress is 99.5 / "50" / absent), task-id-<kind> and diary-id-<kind> for
each of hostile.WEIRD_IDS (crlf, tab, nul, traversal, long).

Build your own with `flow` and `with_poll`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.servers import hostile
from tests.servers.scripted import Script, Step

HOSTILE_AT = 2  # the third poll: after the flow has been seen working

DIARY: dict[str, Any] = {
    "diary_id": "$DIARY_ID",
    "user_id": "local-probe-user-0001",
    "created_at": "2026-11-26T07:55:25.683672+00:00",
    "date": "2026-11-26",
    "language": "zh",
    "title": "A Grateful Walk in the Park",
    "original_content": "Today I am grateful for a long walk in the park with my sister.",
    "polished_content": "Today I am grateful for a long walk in the park with my sister.",
    "ai_feedback": "What a lovely way to spend the day.",
    "audio_url": "https://thankly-local-audio.s3.amazonaws.com/audio/$DIARY_ID.m4a",
    "audio_duration": 5,
    "image_urls": [],
    "emotion_data": {"emotion": "Grateful", "confidence": 0.9, "rationale": "Thankful for family.",
                     "source": "text_only"},
}

TRANSCRIBING = ("转录中", "正在努力识别你的声音...")
# (progress, step, step_name, message) of each poll of the healthy flow
HEALTHY_STATES: list[tuple[int, int, str, str]] = [
    (22, 1, "处理中", "准备正式开始处理..."),
    (22, 1, *TRANSCRIBING),
    (23, 1, *TRANSCRIBING),
    (24, 1, *TRANSCRIBING),
    (25, 1, *TRANSCRIBING),
    (58, 1, "处理中", "语音识别完成"),
    (60, 2, "AI润色", "正在美化文字..."),
    (61, 2, "AI润色", "正在美化文字..."),
    (62, 2, "AI润色", "正在美化文字..."),
    (88, 3, "保存中", "准备保存日记..."),
    (96, 3, "保存中", "数据保存成功..."),
]
NOT_FOUND = Step(404, {"detail": "任务不存在或已过期"})
TOKEN_EXPIRED = Step(401, {"detail": "Token已过期,请重新登录"}, until_token_changes=True)


def processing(progress: int, step: int, step_name: str, message: str) -> Step:
    return Step(200, hostile.progress_answer(progress, "processing", step, step_name, message))


COMPLETED = Step(200, hostile.progress_answer(100, "completed", 4, "完成", "日记创建成功", diary=DIARY))
HEALTHY_POLLS: list[Step] = [processing(*s) for s in HEALTHY_STATES] + [COMPLETED]


def flow(polls: Sequence[Step], **routes: Sequence[Step]) -> Script:
    """A script: these polls, the default answers for every other route unless given."""
    return {"poll": list(polls), **{k: list(v) for k, v in routes.items()}}


def with_poll(step: Step, at: int = HOSTILE_AT, polls: Sequence[Step] = HEALTHY_POLLS, replace: bool = True) -> list[Step]:
    """``polls`` with poll ``at`` replaced by (or, ``replace=False``, preceded by) ``step``."""
    polls = list(polls)
    polls[at:at + 1 if replace else at] = [step]
    return polls


def _stuck_polls() -> list[Step]:
    climb = [processing(22, 1, "处理中", "准备正式开始处理...")]
    climb += [processing(p, 1, *TRANSCRIBING) for p in range(22, 33)]
    return climb  # the last (32 %) repeats forever


def _failed_polls() -> list[Step]:
    polls = [processing(*s) for s in HEALTHY_STATES[:4]]
    polls.append(Step(200, hostile.progress_answer(24, "failed", 1, *TRANSCRIBING,
                                                    error="TRANSCRIPTION_CONTENT_TOO_SHORT")))
    return polls


def _weird_scripts() -> dict[str, Script]:
    out: dict[str, Script] = {}
    for kind, weird in hostile.WEIRD_IDS.items():
        upload = Step(200, {"task_id": weird, "status": "processing", "message": "任务已创建，请使用task_id查询进度"})
        out[f"task-id-{kind}"] = flow(HEALTHY_POLLS, upload=[upload])
        diary = dict(DIARY, diary_id=weird)
        done = Step(200, hostile.progress_answer(100, "completed", 4, "完成", "日记创建成功", diary=diary))
        out[f"diary-id-{kind}"] = flow(HEALTHY_POLLS[:-1] + [done])
    return out


SCRIPTS: dict[str, Script] = {
    "healthy": flow(HEALTHY_POLLS),
    "404-then-ok": flow([NOT_FOUND] * 3 + HEALTHY_POLLS),
    "429-retry-after": flow(
        HEALTHY_POLLS[:2] + [hostile.retry_after_step("0.2")] + HEALTHY_POLLS[2:3]
        + [hostile.retry_after_step("0.2")] * 2 + HEALTHY_POLLS[3:]),
    "5xx-burst": flow(HEALTHY_POLLS[:3] + [Step(503, {"detail": "Service Unavailable"})] * 3 + HEALTHY_POLLS[3:]),
    "stuck": flow(_stuck_polls()),
    "failed": flow(_failed_polls()),
    "auth-expiry": flow(with_poll(TOKEN_EXPIRED, at=3, replace=False)),
    "cut-off": flow(with_poll(hostile.close_mid_step())),
    # hostile transports and bodies at the third poll
    "gzip-bomb": flow(with_poll(hostile.gzip_bomb_step())),
    "endless-body": flow(with_poll(hostile.endless_step())),
    "trickle": flow(with_poll(hostile.trickle_step(rate_bps=100))),
    "huge-body": flow(with_poll(hostile.huge_body_step())),
    "hang": flow(with_poll(hostile.hang_step())),
    "malformed": flow(with_poll(hostile.malformed_step("garbage"))),
    "nested-json": flow(with_poll(hostile.nested_json_step())),
    "huge-string": flow(with_poll(Step(200, hostile.huge_string_progress()))),
    "retry-after-huge": flow(with_poll(hostile.retry_after_step("1000000000"), replace=False)),
    "retry-after-1e9": flow(with_poll(hostile.retry_after_step("1e9"), replace=False)),
    "retry-after-date": flow(with_poll(hostile.retry_after_date_step(3600), replace=False)),
    "echo-token": {
        "health": [hostile.echo_token_step()],
        # in a header, an instance id and the step name: only the last reaches a record's strings
        "poll": [Step(s.status, {**s.body, "step_name": f"{s.body['step_name']} $TOKEN"}
                      if s.body.get("status") == "processing" else s.body,
                      headers={"X-Debug-Token": "$TOKEN", "X-Instance": "$TOKEN"}) for s in HEALTHY_POLLS],
    },
    "progress-float": flow(HEALTHY_POLLS[:-1] + [Step(200, hostile.odd_final_progress("float"))]),
    "progress-string": flow(HEALTHY_POLLS[:-1] + [Step(200, hostile.odd_final_progress("string"))]),
    "progress-missing": flow(HEALTHY_POLLS[:-1] + [Step(200, hostile.odd_final_progress("missing"))]),
    **_weird_scripts(),
}
