"""The cyclic garbage collector while probes run: off, with a bound.

Why: a poll's objects (futures, timer handles, coroutines) live one poll
interval, far longer than the collector's young-generation threshold (700
allocations, a few ms at thousands of polls a second). Each young pass so met
thousands of live objects, promoted them, and every few seconds a full pass
walked every probe's samples: at 3,000 flows the collector took ~5 s of CPU in
a 30 s run, in pauses of up to 200 ms, and the polls behind each pause started
late (BENCHMARKS.md, "P2 regression"). The probe path makes no reference cycles
(tests/probe/test_collector.py checks it against the simulator), so reference
counting frees what it allocates; what cycles remain (a failed request's
traceback) are bounded by collecting once MAX_YOUNG container objects have
accumulated since the last pass.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

# Net container allocations (gc.get_count()[0]) before a pass: ~100-200 MB of small objects. A probe
# keeps ~1 per poll (its samples), so 3,000 flows reach it after minutes, and a hostile backend whose
# every answer leaves a cycle behind cannot grow memory without bound.
MAX_YOUNG = 2_000_000


@contextmanager
def collector_off() -> Iterator[None]:
    """Automatic collection off for the block (what existed before it frozen out of every pass)."""
    was_enabled = gc.isenabled()
    gc.freeze()  # start-up objects (modules, the fixture, the plan) live all run: no pass walks them
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def collect_if_due(limit: int = MAX_YOUNG) -> bool:
    """A full pass when enough has piled up since the last; call it where a pause costs least."""
    if gc.isenabled() or gc.get_count()[0] < limit:
        return False
    gc.collect()
    return True
