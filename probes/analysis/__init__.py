"""Pure analysis: probe records and samples in, numbers and verdicts out. No I/O, no clock.

    timeline   one probe's samples -> milestones, dwell, stalls
    stats      two samples of a metric -> change, interval, p-value, verdict
"""
