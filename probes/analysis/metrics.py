"""Which metrics a probes table holds, by name. Pure."""

from __future__ import annotations

import pandas as pd


def milestone_columns(probes: pd.DataFrame) -> list[str]:
    """t_<m> columns in numeric order."""
    cols = [c for c in probes.columns if c.startswith("t_") and c[2:].replace(".", "", 1).isdigit()]
    return sorted(cols, key=lambda c: float(c[2:]))
