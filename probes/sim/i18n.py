"""The simulator's fixed API texts in Chinese and English, and which one a request wants.

thankly answers in Chinese unless the client's Accept-Language prefers English;
the simulator does the same so a probe sees the same texts.
"""

from __future__ import annotations

from functools import lru_cache

MESSAGES: dict[str, dict[str, str]] = {
    "zh": {
        "accepted": "任务已创建，正在后台处理",
        "too_short": "录音时长太短，至少需要5秒",
        "too_long": "录音时长不能超过600秒",
        "too_small": "音频文件太小或为空",
        "bad_type": "不支持的文件类型，请上传音频文件",
        "unauthorized": "未登录或登录已过期",
        "forbidden": "无权访问该任务",
        "task_not_found": "任务不存在或已过期",
        "diary_not_found": "日记不存在",
        "diary_forbidden": "无权删除该日记",
        "deleted": "日记已删除",
        "unavailable": "服务暂时不可用，请稍后重试",
        "rate_limited": "请求过于频繁，请稍后重试",
        "bad_audio_url": "无效的音频URL",
    },
    "en": {
        "accepted": "Task created, processing in the background",
        "too_short": "Recording is too short: at least 5 seconds are required",
        "too_long": "Recording is too long: at most 600 seconds are allowed",
        "too_small": "Audio file is too small or empty",
        "bad_type": "Unsupported file type: please upload an audio file",
        "unauthorized": "Not authenticated or the session has expired",
        "forbidden": "Not allowed to access this task",
        "task_not_found": "Task not found or expired",
        "diary_not_found": "Diary not found",
        "diary_forbidden": "Not allowed to delete this diary",
        "deleted": "Diary deleted",
        "unavailable": "Service temporarily unavailable, please retry later",
        "rate_limited": "Too many requests, please retry later",
        "bad_audio_url": "Invalid audio URL",
    },
}


@lru_cache(maxsize=256)
def language_of(accept_language: str | None) -> str:
    """``"en"`` when the highest-weighted language in Accept-Language is English, else ``"zh"``."""
    if not accept_language:
        return "zh"
    best_lang, best_q = "zh", -1.0
    for item in accept_language.split(","):
        parts = item.strip().split(";")
        tag = parts[0].strip().lower()
        if not tag:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:  # first wins on a tie: the client's own order
            best_lang, best_q = tag.split("-")[0], q
    return "en" if best_lang == "en" else "zh"
