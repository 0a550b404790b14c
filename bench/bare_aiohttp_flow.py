"""The baseline for the probe engine benchmark: the same flow with nothing but aiohttp.

POST the fixture, then GET progress on a fixed 300 ms schedule planned from the
start (no parsing, no records), for --seconds. Prints JSON: polls, lateness
percentiles, CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

import aiohttp
import uvloop


async def flow(
    session: aiohttp.ClientSession, url: str, audio: bytes, seconds: float, lateness: list[float], delay: float
) -> None:
    await asyncio.sleep(delay)  # starts spread over --stagger seconds, as `probes run` spreads them
    form = aiohttp.FormData()
    form.add_field("audio", audio, filename="speech-en-5s.m4a", content_type="audio/m4a")
    form.add_field("duration", "5")
    async with session.post(f"{url}/diary/voice/async", data=form) as response:
        task_id = (await response.json())["task_id"]
    start = time.monotonic()
    due = start
    while due - start < seconds:
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        lateness.append(time.monotonic() - due)
        async with session.get(f"{url}/diary/voice/progress/{task_id}") as response:
            await response.read()
        due += 0.3


async def main_async(url: str, flows: int, seconds: float, audio: bytes, stagger: float) -> dict:
    lateness: list[float] = []
    connector = aiohttp.TCPConnector(limit=flows * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(flow(session, url, audio, seconds, lateness, i * stagger / flows) for i in range(flows)))
    lateness.sort()
    pick = lambda q: lateness[min(len(lateness) - 1, int(q * len(lateness)))]  # noqa: E731
    return {"polls": len(lateness), "lateness_p50": pick(0.5), "lateness_p99": pick(0.99)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--flows", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fixture", required=True)
    parser.add_argument("--stagger", type=float, default=0.3, help="seconds over which the flows start")
    args = parser.parse_args()
    audio = open(args.fixture, "rb").read()
    result = uvloop.run(main_async(args.url, args.flows, args.seconds, audio, args.stagger))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(result))
