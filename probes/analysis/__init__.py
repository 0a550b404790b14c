"""Pure analysis: probe records and samples in, numbers and verdicts out. No I/O, no clock.

May import only the standard library, numpy/pandas/scipy and each other:

    timeline   one probe's samples -> milestones, dwell, stalls, the transcription phase
    shown_bar  one probe's upload times and samples -> the bar the app draws (thankly 3ad9b47), shown_* metrics
    metrics    metrics by name from a record; nearest-rank statistics
    slo        objectives and their pass/fail
    stats      two samples of a metric -> change, interval, p-value, verdict
    compare    two runs -> per-metric verdicts, the overall verdict, the progress-state check
    diagnosis  a run (and a baseline) -> one finding per suspected cause
"""
