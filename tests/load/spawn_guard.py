"""A child process (Locust patches with gevent): spawn more users than the context allows, count the flows.

    python -m tests.load.spawn_guard URL USERS MAX_USERS SECONDS   -> prints {"active": N}, the users counted
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import gevent
from locust.env import Environment

from probes.load.rundir import RecordFile
from probes.load.user import LoadContext, ProbeUser
from probes.probe import wire
from tests.probe.table_plan import CountingTokens, plan


def main() -> int:
    url, users, max_users, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    environment = Environment(user_classes=[ProbeUser], host=url)
    with tempfile.TemporaryDirectory() as tmp:
        environment.probes_load = LoadContext(
            plan=plan("fine", 0.05, 10.0, False), headers=wire.request_headers(), model="closed", think_time_s=0.0,
            records=RecordFile(Path(tmp) / "probes.jsonl"), base_url=url, tokens=CountingTokens(),
            max_users=max_users)
        runner = environment.create_local_runner()
        runner.start(users, spawn_rate=100)  # what the web UI's swarm form does
        gevent.sleep(seconds)
        active = environment.probes_load.active
        runner.quit()
    print(json.dumps({"active": active}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
