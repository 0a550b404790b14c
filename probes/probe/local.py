"""`make probe-local`: probe targets.local, starting its simulator when nothing answers there.

A real local backend that already listens is probed as it is; the embedded
simulator is started (and stopped after) only when the port is silent and
the target names a `simulator` scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from probes.config import resolve_target
from probes.errors import ProbesError, UsageError
from probes.probe.run import run_probes
from probes.probe.options import RunOptions


def answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=1.0, trust_env=False).status_code < 500
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make probe-local", description=__doc__)
    parser.add_argument("--target", default="local")
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--label", default="manual")
    parser.add_argument("--targets", type=Path, default=Path("targets.toml"))
    args = parser.parse_args(argv)
    try:
        target = resolve_target(args.targets, args.target, None, None)
        if not target.is_loopback:
            raise UsageError(f"target {target.name!r} is not on loopback; use `probes run --target {target.name}`")
        with contextlib.ExitStack() as stack:
            if not answers(target.base_url):
                if not target.simulator:
                    raise UsageError(f"nothing answers at {target.base_url} and targets.{target.name} names no simulator")
                from probes.sim.server import simulator_process

                port = urlsplit(target.base_url).port or 80
                print(f"nothing answers at {target.base_url}: starting simulator {target.simulator!r}", file=sys.stderr)
                stack.enter_context(simulator_process(target.simulator, port=port))
            return run_probes(RunOptions(target=target.name, n=args.n, label=args.label, targets_file=args.targets)).code
    except ProbesError as exc:
        print(f"probes: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
