"""The trend's figures: one PNG per metric, p50/p90 per canary run over time (matplotlib, Agg).

Each figure draws, per target: the p50 and p90 lines, the SLO thresholds as
horizontal lines, failed runs as red crosses (and a red tick along the top,
so a run with no value — unreachable, nothing completed — is still marked),
and deploys as dashed vertical lines. Text from the history (target names)
is drawn with maths parsing off: a `$` in a name stays a dollar sign.

Figures are made with matplotlib.figure.Figure and the Agg canvas directly,
without pyplot's global state, and with fixed margins instead of
tight_layout, which would draw every figure twice (a year of runs: 105,120
points a line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

FIGSIZE = (12, 4.4)
DPI = 100
MARGINS = {"left": 0.06, "right": 0.74, "top": 0.92, "bottom": 0.14}  # the legend sits right of the axes
SECONDS_PER_DAY = 86400.0  # matplotlib's date numbers are days since 1970-01-01
MARKERS_BELOW = 300  # fewer runs than this: draw a dot per run; more would be a solid smear
FAILED_COLOUR = "#d62728"
LEGEND_NAME_CHARS = 40  # long target names would squeeze the legend out of the figure
# Above this many runs a line is drawn from per-column extremes (see `envelope`): the axes are ~800 px wide,
# so 4 points per pixel column is already more than the picture can show.
ENVELOPE_BINS = 1600
ENVELOPE_ABOVE = 4 * ENVELOPE_BINS


def _short(text: str) -> str:
    return text if len(text) <= LEGEND_NAME_CHARS else text[: LEGEND_NAME_CHARS - 1] + "…"


def envelope(x: np.ndarray, y: np.ndarray, bins: int = ENVELOPE_BINS) -> tuple[np.ndarray, np.ndarray]:
    """The line through (x, y) reduced to first, min, max, last per x bin: the same picture, far fewer points.

    A year of 5-minute runs is 105,120 points in ~800 pixel columns; drawing them all makes the same
    zig-zag as drawing each column's extremes (the M4 method of Jugel et al., VLDB 2014), at 1/15 of
    the cost. NaN values (not observed) are dropped first; x must be sorted.

    >>> envelope(np.arange(10.0), np.array([1.0, 5, 2, 0, 3, 3, 9, 4, 8, 2]), bins=2)
    (array([0., 1., 3., 4., 5., 6., 9., 9.]), array([1., 5., 0., 3., 3., 9., 2., 2.]))
    """
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    if x.size <= 4 * bins:
        return x, y
    edges = np.linspace(x[0], x[-1], bins + 1)
    bin_of = np.searchsorted(edges[1:-1], x, side="right")  # x is sorted, so each bin is one contiguous slice
    counts = np.bincount(bin_of, minlength=bins)
    counts = counts[counts > 0]
    last = np.cumsum(counts) - 1
    first = last - counts + 1
    by_value = np.lexsort((y, bin_of))  # within each bin, ascending y: its min first, its max last
    lo, hi = by_value[first], by_value[last]
    idx = np.stack([first, np.minimum(lo, hi), np.maximum(lo, hi), last], axis=1).ravel()
    return x[idx], y[idx]


def target_colours(targets: list[str]) -> dict[str, str]:
    """A stable colour per target: sorted order into the tab10 palette."""
    palette = colormaps["tab10"].colors
    return {t: to_hex(palette[i % len(palette)]) for i, t in enumerate(sorted(targets))}


def plot_metric(runs: Any, deploys: list[Any], slo: dict[str, list[tuple[str, float]]], metric: str, title: str,
                colours: dict[str, str], path: Path) -> Path:
    """One metric's p50/p90 over time for every target of `runs` (a trend.TrendRuns), written to path."""
    with matplotlib.rc_context({"text.parse_math": False}):
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        fig.subplots_adjust(**MARGINS)
        for target in runs.targets():
            mine = runs.target == target
            colour, name = colours[target], _short(str(target))
            x = runs.started_ts[mine] / SECONDS_PER_DAY
            marker = "." if x.size < MARKERS_BELOW else None
            for stat, style, width in (("p50", "-", 1.0), ("p90", "--", 1.6)):
                y = runs.values[f"{metric}_{stat}"][mine]
                lx, ly = envelope(x, y) if x.size > ENVELOPE_ABOVE else (x, y)
                ax.plot(lx, ly, linestyle=style, linewidth=width, marker=marker, markersize=4, color=colour,
                        label=f"{name} {stat}")
            for stat, threshold in slo.get(target, []):
                ax.axhline(threshold, color=colour, linestyle=":", linewidth=1.4,
                           label=f"{name} SLO {metric} {stat} <= {threshold:g}")
            failed = ~runs.ok[mine]
            if failed.any():
                ax.plot(x[failed], runs.values[f"{metric}_p90"][mine][failed], linestyle="none", marker="x",
                        markersize=6, color=FAILED_COLOUR, label=f"{name} failed run ({int(failed.sum())})")
                # a tick along the top for every failed run, also those without a value (markers, not
                # vlines: a LineCollection of 10,000 segments costs ~0.3 s a figure)
                ax.plot(x[failed], np.full(int(failed.sum()), 0.985), transform=ax.get_xaxis_transform(),
                        linestyle="none", marker="|", markersize=7, color=FAILED_COLOUR)
            marks = [d.started_ts / SECONDS_PER_DAY for d in deploys if d.target == target]
            if marks:
                ax.vlines(marks, 0, 1, transform=ax.get_xaxis_transform(), colors=colour, linestyles="--",
                          linewidth=0.8, alpha=0.7, label=f"{name} deploy / new fingerprint ({len(marks)})")
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_ylim(bottom=0)
        ax.set_ylabel("seconds")
        ax.set_xlabel("run start (UTC)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
        fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1})  # zlib level 6 costs ~0.1 s a figure
    return path
