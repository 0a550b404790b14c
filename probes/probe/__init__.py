"""The probe: one upload-then-poll flow, and `probes run` (many flows against one target).

    wire            the thankly API on the wire: build requests, parse answers (pure)
    cadence         when the next poll is due (pure)
    flow            what one flow saw and what the app would do next (pure)
    driver          one probe over httpx: the I/O loop
    poll_transport  keep-alive HTTP/1.1 transport for polls at high concurrency
    runner          many probes from one process: client, fingerprint, workers
    run             `probes run`: target, fixture, run directory, exit code
    store           the run directory (run.json, probes.jsonl)
    live, summary   the live progress bars and the end-of-run table
    local           `make probe-local`
"""
