"""The report's five figures, written as PNG files (matplotlib, Agg backend).

Each function takes the tables plus a colour per group and writes one file; the
numbers come from tables.py and curves.py, so this module only draws. Colours
are assigned in sorted group order so a group keeps its colour in every figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from probes.report.curves import median_curves, probe_keys, time_grid  # noqa: E402
from probes.report.files import atomic_path  # noqa: E402
from probes.report.tables import OUTCOMES, milestone_columns, phase_bands  # noqa: E402
from probes.textsafe import for_plot_label  # noqa: E402

THIN_PER_GROUP = 200
MEDIAN_STYLES = ["-", "--", "-.", ":"]
FIGSIZE = (10, 5.6)
DPI = 110
OUTCOME_COLOURS = {"completed": "#2ca02c", "failed": "#d62728", "timeout": "#ff7f0e", "rejected": "#9467bd",
                   "upload_error": "#8c564b", "poll_error": "#e377c2", "auth_error": "#7f7f7f",
                   "aborted": "#bcbd22"}


def group_colours(groups: list[str]) -> dict[str, str]:
    """A stable colour per target/label: sorted order into the tab10 palette."""
    palette = plt.get_cmap("tab10").colors
    return {g: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, g in enumerate(sorted(groups))}


def _save(fig: plt.Figure, path: Path) -> Path:
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:  # a whole PNG or none, whatever stops the write
            fig.savefig(tmp, dpi=DPI, pil_kwargs={"compress_level": 1})  # zlib level 6 cost ~0.1 s a figure
    finally:
        plt.close(fig)
    return path


def _unit(scaled: bool) -> str:
    return "scenario seconds" if scaled else "s"


def plot_progress(probes: pd.DataFrame, samples: pd.DataFrame, colours: dict[str, str], path: Path,
                  *, scaled: bool = False, seed: int = 0) -> Path:
    """Every probe as a thin step line (at most 200 per group), the exact median bold."""
    row, group_of_row, groups = probe_keys(samples, probes)
    grid = time_grid(probes)
    t = samples["t_s"].to_numpy(dtype=float)
    prog = samples["progress"].to_numpy(dtype=float, na_value=-1)
    med = median_curves(t, prog, row, group_of_row, len(groups), grid)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    rng = np.random.default_rng(seed)
    valid = (row >= 0) & (prog >= 0)
    for gi, g in enumerate(groups):
        rows_in_group = np.flatnonzero(group_of_row == gi)
        pick = rows_in_group if rows_in_group.size <= THIN_PER_GROUP else np.sort(
            rng.choice(rows_in_group, THIN_PER_GROUP, replace=False))
        chosen = np.zeros(len(probes), dtype=bool)
        chosen[pick] = True
        mask = valid & chosen[np.maximum(row, 0)]
        ax.add_collection(LineCollection(_step_lines(t[mask], prog[mask], row[mask]), colors=colours[g],
                                         linewidths=0.6, alpha=0.18))
        n = rows_in_group.size
        ax.plot(grid, med[gi], drawstyle="steps-post", color=colours[g], linewidth=2.6,
                linestyle=MEDIAN_STYLES[gi % len(MEDIAN_STYLES)],  # overlapping medians stay visible
                label=f"{g} median (n={n}{', thin: 200 sampled' if n > THIN_PER_GROUP else ''})")
    for gi, g in enumerate(groups):
        _label_plateau(ax, probes[probes["group"] == g], grid, med[gi], colours[g])
    ax.axhline(32, color="grey", linestyle=":", linewidth=1)
    ax.annotate("32 %", xy=(grid[-1], 32), xytext=(-4, 3), textcoords="offset points", ha="right",
                color="grey", fontsize=9)
    ax.set_xlim(0, grid[-1])
    ax.set_ylim(0, 102)
    ax.set_xlabel(f"time since upload started ({_unit(scaled)})")
    ax.set_ylabel("progress (%)")
    ax.set_title("Progress vs time: every probe (thin) and the median per target/label (bold)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return _save(fig, path)


PLATEAU_MIN_S = 2.0  # a plateau shorter than this is the timer's ordinary pace, not a story to tell


def plateau_of(group: pd.DataFrame) -> tuple[float, float] | None:
    """(progress, median seconds held) of a group's typical longest stall, when it is worth a label."""
    if "stall_progress" not in group.columns or "stall_s" not in group.columns:
        return None
    at = group["stall_progress"].dropna()
    if at.empty:
        return None
    progress = float(at.mode().iloc[0])
    held = group.loc[group["stall_progress"] == progress, "stall_s"].dropna()
    if held.empty or float(held.median()) < PLATEAU_MIN_S:
        return None
    return progress, float(held.median())


def _label_plateau(ax: plt.Axes, group: pd.DataFrame, grid: np.ndarray, median: np.ndarray, colour: str) -> None:
    """'held 51.6 s at 32 %' where the group's median curve reaches its typical plateau."""
    found = plateau_of(group)
    if found is None:
        return
    progress, held = found
    reached = np.flatnonzero(np.nan_to_num(median, nan=-1) >= progress)
    if reached.size == 0:
        return
    x = float(grid[reached[0]])
    ax.annotate(f"held {held:.1f} s at {progress:g} %", xy=(x, progress), xytext=(12, 10),
                textcoords="offset points", color=colour, fontsize=10, fontweight="bold",
                arrowprops={"arrowstyle": "-", "color": colour, "alpha": 0.6})


def _step_lines(t: np.ndarray, prog: np.ndarray, row: np.ndarray) -> list[np.ndarray]:
    """Vertices of a steps-post line per probe, split without a per-poll Python loop."""
    if t.size == 0:
        return []
    order = np.lexsort((t, row))
    t, prog, row = t[order], prog[order], row[order]
    # steps-post: (t0,p0) (t1,p0) (t1,p1) (t2,p1) ...
    xs = np.repeat(t, 2)[1:]
    ys = np.repeat(prog, 2)[:-1]
    cut = np.flatnonzero(row[1:] != row[:-1]) + 1
    pts = np.column_stack([xs, ys])
    # drop the bridge between one probe's last poll and the next probe's first
    pieces = np.split(pts, cut * 2 - 1)
    return [pieces[0]] + [p[1:] for p in pieces[1:]]


def plot_milestones(probes: pd.DataFrame, colours: dict[str, str], path: Path, *, scaled: bool = False) -> Path:
    """Time to each milestone, a box per group (whiskers 5-95 %)."""
    cols = milestone_columns(probes)
    groups = sorted(colours)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    width = 0.8 / max(len(groups), 1)
    for gi, g in enumerate(groups):
        sub = probes[probes["group"] == g]
        data = [sub[c].dropna().to_numpy() for c in cols]
        pos = np.arange(len(cols)) + (gi - (len(groups) - 1) / 2) * width
        keep = [i for i, d in enumerate(data) if d.size]
        if not keep:
            continue
        bp = ax.boxplot([data[i] for i in keep], positions=pos[keep], widths=width * 0.85, whis=(5, 95),
                        showfliers=False, patch_artist=True, manage_ticks=False)
        for box in bp["boxes"]:
            box.set(facecolor=colours[g], alpha=0.55, edgecolor=colours[g])
        for part in ("medians",):
            for line in bp[part]:
                line.set(color="black", linewidth=1.5)
        ax.plot([], [], color=colours[g], linewidth=8, alpha=0.55, label=g)
    ax.set_xticks(np.arange(len(cols)), [f"{c[2:]} %" for c in cols])
    ax.set_xlabel("milestone (first poll at or above)")
    ax.set_ylabel(f"time since upload started ({_unit(scaled)})")
    ax.set_title("Time to each progress milestone (box: quartiles, whiskers: 5-95 %)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=9)
    return _save(fig, path)


def plot_phases(probes: pd.DataFrame, colours: dict[str, str], path: Path, *, scaled: bool = False) -> Path:
    """Where the time goes: stacked median seconds per progress band, one bar per group."""
    bands = phase_bands(probes).drop(columns="n")
    fig, ax = plt.subplots(figsize=FIGSIZE)
    cmap = plt.get_cmap("viridis")
    left = np.zeros(len(bands))
    y = np.arange(len(bands))
    widest = float(np.nanmax(bands.sum(axis=1).to_numpy())) if len(bands) else 1.0
    for i, band in enumerate(bands.columns):
        vals = bands[band].fillna(0).to_numpy()
        colour = cmap(i / max(len(bands.columns) - 1, 1))
        ax.barh(y, vals, left=left, color=colour, edgecolor="white", label=band)
        for yi, (l, v) in enumerate(zip(left, vals)):
            if v > 0.05 * widest:
                ax.text(l + v / 2, yi, f"{v:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if i < len(bands.columns) / 2 else "black")
        left += vals
    ax.set_yticks(y, bands.index)
    for tick in ax.get_yticklabels():
        tick.set_color(colours.get(tick.get_text(), "black"))
    ax.invert_yaxis()
    ax.set_xlabel(f"median time in band ({_unit(scaled)}), completed probes")
    ax.set_ylabel("target/label")
    ax.set_title("Where the time goes: median time per progress band")
    ax.legend(title="band", fontsize=8, ncols=min(len(bands.columns), 6), loc="upper center",
              bbox_to_anchor=(0.5, -0.15))
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_totals(probes: pd.DataFrame, colours: dict[str, str], path: Path, *, scaled: bool = False) -> Path:
    """Distribution of total_s per group as an ECDF (completed probes)."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    done = probes[probes["outcome"] == "completed"]
    for g in sorted(colours):
        vals = np.sort(done.loc[done["group"] == g, "total_s"].dropna().to_numpy())
        if not vals.size:
            continue
        if vals.size > 2000:  # same curve, fewer vertices
            q = np.linspace(0, 1, 2000)
            xs, ys = np.quantile(vals, q), q
        else:
            xs, ys = vals, np.arange(1, vals.size + 1) / vals.size
        ax.step(xs, ys, where="post", color=colours[g], linewidth=2,
                label=f"{g} (n={vals.size}, p50 {np.median(vals):.1f})")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"total time to completed ({_unit(scaled)})")
    ax.set_ylabel("share of completed probes")
    ax.set_title("Distribution of total time (ECDF)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return _save(fig, path)


def plot_outcomes(probes: pd.DataFrame, colours: dict[str, str], path: Path) -> Path:
    """Outcome counts per group, stacked horizontal bars."""
    counts = pd.crosstab(probes["group"], probes["outcome"].fillna("unknown"))
    order = [o for o in OUTCOMES if o in counts.columns] + sorted(c for c in counts.columns if c not in OUTCOMES)
    counts = counts[order].reindex(sorted(colours)).fillna(0)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    left = np.zeros(len(counts))
    y = np.arange(len(counts))
    for outcome in order:
        vals = counts[outcome].to_numpy(dtype=float)
        ax.barh(y, vals, left=left, color=OUTCOME_COLOURS.get(outcome, "#17becf"), edgecolor="white",
                label=outcome)
        for yi, (l, v) in enumerate(zip(left, vals)):
            if v > 0:
                share = v / counts.iloc[yi].sum()
                if share > 0.04:
                    ax.text(l + v / 2, yi, f"{int(v)} ({share:.0%})", ha="center", va="center", fontsize=8,
                            color="white")
        left += vals
    ax.set_yticks(y, counts.index)
    for tick in ax.get_yticklabels():
        tick.set_color(colours.get(tick.get_text(), "black"))
    ax.invert_yaxis()
    ax.set_xlabel("probes (count)")
    ax.set_ylabel("target/label")
    ax.set_title("Outcomes per target/label")
    ax.legend(fontsize=8, ncols=min(len(order), 8), loc="upper center", bbox_to_anchor=(0.5, -0.15))
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def write_plots(probes: pd.DataFrame, samples: pd.DataFrame, out: Path, *, scaled: bool) -> dict[str, Path]:
    """All five figures into out/; returns {name: path} in report order.

    Group names (target/label) are data: made plain text first (textsafe.for_plot_label: `$` cannot
    start mathtext, control characters are visible), so a label like "a$\\undefined$b" draws as itself.
    """
    names = probes["group"].astype(str)
    probes = probes.assign(group=names.map({g: for_plot_label(g) for g in names.unique()}))
    colours = group_colours(list(probes["group"].unique()))
    return {
        "progress": plot_progress(probes, samples, colours, out / "progress.png", scaled=scaled),
        "milestones": plot_milestones(probes, colours, out / "milestones.png", scaled=scaled),
        "phases": plot_phases(probes, colours, out / "phases.png", scaled=scaled),
        "totals": plot_totals(probes, colours, out / "totals.png", scaled=scaled),
        "outcomes": plot_outcomes(probes, colours, out / "outcomes.png"),
    }
