"""Load mode (Locust) — not built yet; see the load-mode issue.

Kept as a stub so the layout of DESIGN.md holds. Running it says so plainly.
"""

raise SystemExit("probes: load mode is not implemented yet (locustfile.py is a stub)")
