"""Canary runs: a few probes on a schedule, judged against SLOs, kept in a history, alerted and exported.

    options     parse AGE (90s, 30m, 12h, 30d) and the bounded numbers the CLI takes      pure
    summary     run.json + probes.jsonl records -> one history row (RunSummary)          pure
    location    --history URL -> SQLite path or PostgreSQL conninfo; password redaction  pure
    migrations  the history schema, as ordered migrations                               data
    rundir      read a run directory, tolerating a killed run
    errors      exit 4 (NotRecorded: a write the canary needs failed) and 130 (interrupted)
    history     the history store: SQLite (WAL) or PostgreSQL (psycopg 3); the alert outbox
    alerts      the alert state machine (pure) and the webhook notification
    bounded     one HTTP exchange under a total deadline, its answer capped (webhook, Pushgateway)
    metrics     Prometheus gauges of a run: OpenMetrics textfile and Pushgateway push
    lock        one canary per target at a time (flock / PostgreSQL advisory lock)
    signals     SIGTERM/SIGINT honoured in every phase; history writes held against the first signal
    command     `probes canary`: the orchestration of all of the above

    open_history(url) -> HistoryStore        record_run(run_dir) / import_runs(dirs) / trend_table(...)
    run_canary(target=..., ...) -> CanaryResult

The trend page is probes.report.trend. Nothing is imported here, so
`probes canary` pays only for the modules it uses before the first upload.
"""
