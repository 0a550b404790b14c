"""Load mode: the probe machine as a Locust user, under a closed, open or ramped workload.

Imports probes.probe (the machine, the wire format, the plan) and never the other way round;
only `user`, `hooks`, `phase_stats`, `shape` and `locustfile` import Locust (which patches the
process with gevent), so `probes load` itself does not.

    guard        may this target take this load, on this host? (pure, apart from DNS)
    workload     arrival schedules, ramp stages, durations (pure)
    phases       a probe record to phase rows; the final phase table (pure)
    phase_stats  the live phase table: Locust's percentile machinery, the web UI tab
    rundir       the load run directory: run.json, per-process probes files, the merge at the end
    user         the Locust user (FastHttpUser + gevent): executes the probe machine's actions
    hooks        Locust's events: custom arguments, guard, run directory, finer buckets
    locustfile   what `locust -f` loads (inside the package, so an installed probes finds it)
    cli          `probes load` (alias `python -m probes.load`; `make load`, `make load-distributed`)
"""
