"""Canary runs: a few probes on a schedule, judged against SLOs, kept in a history, alerted and exported.

    options   parse AGE (90s, 30m, 12h, 30d) and the bounded numbers the CLI takes
    summary   run.json + probes.jsonl -> one history row (pure)
    history   the history store: SQLite or PostgreSQL, versioned migrations
    alerts    the alert state machine (pure) and the webhook notification
    metrics   Prometheus metrics from a history row: textfile and Pushgateway
    lock      one canary per target at a time
    command   `probes canary`: the orchestration of all of the above

Nothing is imported here, so `probes canary` pays only for the modules it uses
before the first upload.
"""
