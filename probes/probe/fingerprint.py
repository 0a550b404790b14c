"""What the target says about itself: /health and response headers, bounded and made safe to store.

/health is requested without the bearer token unless the target asks for it
(`health_auth = true`), within HEALTH_TIMEOUT_S, its body capped like every
answer. What a backend sends is data: a body nested past MAX_HEALTH_DEPTH or
wider than MAX_HEALTH_ITEMS is kept as clipped text, never as a structure
that a JSON encoder or a renderer would have to recurse through.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

MAX_HEALTH_DEPTH = 16     # real /health bodies are 1-3 levels deep
MAX_HEALTH_ITEMS = 500    # values in all
MAX_HEALTH_TEXT = 500     # characters of a body kept as text
# A simulator's time scale is believed only within these bounds and only on loopback: a /health that
# claims 1e-300 must not rescale every result.
TIME_SCALE_RANGE = (0.001, 1000.0)


def health_value(body: bytes) -> Any:
    """The /health body as JSON when small and shallow, else as clipped text."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:  # also orjson's own depth limit
        return body[: MAX_HEALTH_TEXT * 4].decode("utf-8", "replace")[:MAX_HEALTH_TEXT]
    if _bounded(value):
        return value
    return body[: MAX_HEALTH_TEXT * 4].decode("utf-8", "replace")[:MAX_HEALTH_TEXT]


def _bounded(value: Any) -> bool:
    """True when the value is at most MAX_HEALTH_DEPTH deep with at most MAX_HEALTH_ITEMS values (iterative)."""
    stack = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if depth > MAX_HEALTH_DEPTH or seen > MAX_HEALTH_ITEMS:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def simulator_info(health: Any, loopback: bool) -> tuple[str | None, float | None]:
    """(scenario, time_scale) when the target is the embedded simulator on loopback."""
    sim = health.get("simulator") if isinstance(health, dict) else None
    if not loopback or not isinstance(sim, dict):
        return None, None
    scenario = sim.get("scenario")
    scenario = scenario[:80] if isinstance(scenario, str) else None
    scale = sim.get("time_scale")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        return scenario, None
    low, high = TIME_SCALE_RANGE
    return scenario, float(scale) if low <= scale <= high else None
