"""Load mode: the probe flow as a Locust user, under a closed, open or ramped workload.

    guard      may this target take this load? (pure)
    workload   arrival schedules, ramp stages, durations (pure)
    phases     a probe record to Locust PHASE rows (pure)
    rundir     the load run directory: run.json, per-process probes files, the merge at the end
    user       the Locust user (FastHttpUser + gevent): the only I/O loop of load mode
    hooks      Locust's events: custom arguments, guard, run directory, finer buckets
    cli        `python -m probes.load` (`make load`, `make load-distributed`)

Nothing here re-implements the flow: what an answer means, when to poll and
what a record holds come from probes.probe.wire, probes.probe.cadence and probes.probe.flow.
"""
