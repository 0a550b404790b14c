"""The trend's figures: one PNG per metric, p50/p90 per canary run over time (matplotlib, Agg).

Each figure draws, per target: the p50 and p90 lines, the SLO thresholds as
horizontal lines, failed runs as red crosses (and a red tick along the top,
so a run with no value — unreachable, nothing completed — is still marked),
and deploys as dashed vertical lines. Text from the history (target names)
is drawn with maths parsing off: a `$` in a name stays a dollar sign.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display, no GUI toolkit
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

FIGSIZE = (12, 4.4)
DPI = 100
SECONDS_PER_DAY = 86400.0  # matplotlib's date numbers are days since 1970-01-01
MARKERS_BELOW = 300  # fewer runs than this: draw a dot per run; more would be a solid smear
FAILED_COLOUR = "#d62728"
FIGURES = {
    "total_s": "Total time per canary run (completed probes)",
    "dwell_32": "Time held at 32 % per canary run",
    "transcription_s": "Transcription phase per canary run (first poll >= 20 % to first poll past 55 %)",
}


def _short(text: str, limit: int = 40) -> str:
    """A target name for a legend: long names would squeeze the plot."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def target_colours(targets: list[str]) -> dict[str, str]:
    palette = plt.get_cmap("tab10").colors
    return {t: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, t in enumerate(sorted(targets))}


def plot_metric(runs: pd.DataFrame, deploys: pd.DataFrame, slo: dict[str, list[tuple[str, float]]],
                metric: str, colours: dict[str, str], path: Path) -> Path:
    """One metric's p50/p90 over time for every target in `runs`, written to path."""
    with plt.rc_context({"text.parse_math": False}):
        fig, ax = plt.subplots(figsize=FIGSIZE)
        for target, group in runs.groupby("target", sort=True):
            colour, name = colours[target], _short(str(target))
            x = group["started_ts"].to_numpy(dtype=float) / SECONDS_PER_DAY
            marker = "." if len(group) < MARKERS_BELOW else None
            for stat, style, width in (("p50", "-", 1.0), ("p90", "--", 1.6)):
                y = group[f"{metric}_{stat}"].to_numpy(dtype=float, na_value=np.nan)
                ax.plot(x, y, linestyle=style, linewidth=width, marker=marker, markersize=4, color=colour,
                        label=f"{name} {stat}")
            for stat, threshold in slo.get(target, []):
                ax.axhline(threshold, color=colour, linestyle=":", linewidth=1.4,
                           label=f"{name} SLO {metric} {stat} <= {threshold:g}")
            failed = ~group["ok"].astype(bool).to_numpy()
            if failed.any():
                y = group[f"{metric}_p90"].to_numpy(dtype=float, na_value=np.nan)[failed]
                ax.plot(x[failed], y, linestyle="none", marker="x", markersize=6, color=FAILED_COLOUR,
                        label=f"{name} failed run ({int(failed.sum())})")
                ax.vlines(x[failed], 0.97, 1.0, transform=ax.get_xaxis_transform(), colors=FAILED_COLOUR,
                          linewidth=1.0)
            marks = deploys[deploys["target"] == target]
            if not marks.empty:
                ax.vlines(marks["started_ts"].to_numpy(dtype=float) / SECONDS_PER_DAY, 0, 1,
                          transform=ax.get_xaxis_transform(), colors=colour, linestyles="--", linewidth=0.8,
                          alpha=0.7, label=f"{name} deploy / new fingerprint ({len(marks)})")
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_ylim(bottom=0)
        ax.set_ylabel("seconds")
        ax.set_xlabel("run start (UTC)")
        ax.set_title(FIGURES.get(metric, metric))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)  # beside: never over a run
        fig.tight_layout()
        fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1})
        plt.close(fig)
    return path
