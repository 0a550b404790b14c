"""One LocustFlow against a URL, its record printed as JSON: the Locust runner of the scripted table.

A child process (`python -m tests.probe.locust_flow URL ...`): importing Locust patches the
process with gevent, which must not happen to pytest's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

from probes.load.rundir import RecordFile
from probes.load.user import LoadContext, LocustFlow, ProbeUser
from probes.probe import wire
from tests.probe.table_plan import CountingTokens, plan

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--cadence", default="fine")
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--cleanup", action="store_true")
    p.add_argument("--upload", default="multipart")
    args = p.parse_args(argv)
    environment = Environment(user_classes=[ProbeUser], host=args.url)
    client = FastHttpSession(base_url=args.url, request_event=environment.events.request, user=None,
                             network_timeout=60.0, connection_timeout=15.0)
    seen: list[list[str]] = []  # (name, failure) of every request, as Locust's statistics get them
    environment.events.request.add_listener(
        lambda name, exception=None, **_kw: seen.append([str(name), "" if exception is None else str(exception)]))
    with tempfile.TemporaryDirectory() as tmp:
        context = LoadContext(plan=plan(args.cadence, args.interval, args.timeout, args.cleanup, args.upload),
                              headers=wire.request_headers(), model="closed", think_time_s=0.0,
                              records=RecordFile(Path(tmp) / "probes.jsonl"), tokens=CountingTokens())
        record = LocustFlow(client, context, "0001").run()
        context.records.close()
    print(json.dumps({**record, "locust_requests": seen}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
