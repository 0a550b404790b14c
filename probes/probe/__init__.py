"""The probe: one upload-then-poll flow, and `probes run` (many flows against one target).

Stages, each importing only those above it:

    wire            the thankly API on the wire: build requests, parse answers (pure)
    body            answer bodies within MAX_BODY_BYTES, decompression included (pure)
    cadence         when the next poll is due (pure)
    machine         the whole flow as a sans-I/O state machine: events in, actions out (pure)
    plan            what the probes of a run share (pure)
    fingerprint     bounding what /health says about the target (pure)
    fast_transport  keep-alive HTTP/1.1 transport for big runs (I/O)
    driver          one probe over httpx: executes the machine's actions (I/O)
    store           the run directory: run.json, probes.jsonl (I/O)
    live, summary   the live progress bars and the end-of-run table (terminal)
    run             `probes run`: target, fixture, workers, run directory, exit code
    local           `make probe-local`

The Locust user (probes.load.user) executes the same machine with Locust's client.
"""
