"""The lesson's plots. Each function draws what one :mod:`fedasync_lib.lesson`
function returns and gives back the figure.

All of them use one style (``fedasync.mplstyle``, loaded by :func:`use_style`)
and one colour per algorithm or weighting, so a curve keeps its colour from
notebook to notebook. Accuracy curves of a run that diverged stop at its last
finite point, and a dotted vertical line in the run's colour, labelled "stopped: diverged",
marks where the run was stopped: a diverged model has no accuracy to plot, so no marker is
put on the accuracy scale for it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..core.history import History
from .lesson import StalenessProfile, Timelines

STYLE = Path(__file__).with_name("fedasync.mplstyle")

COLORS = {
    "sequential": "#7f7f7f",
    "constant": "#0072B2",
    "polynomial": "#E69F00",
    "hinge": "#009E73",
    "exponential": "#D55E00",
    "sample_damping": "#CC79A7",
    "fedasync": "#0072B2",
}


def use_style() -> None:
    """Load the lesson's matplotlib style."""
    plt.style.use(STYLE)


def cycle_color(i: int) -> str:
    """The i-th colour of the style's cycle, wrapping around (any i is fine)."""
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return colors[i % len(colors)]


def _by_label(table: Mapping[str, str], label: str) -> str | None:
    """The entry of ``table`` whose key starts ``label`` ("hinge (a=10)" -> table["hinge"])."""
    return next((value for key, value in table.items() if label.startswith(key)), None)


def color_for(label: str, default_index: int = 0) -> str:
    return _by_label(COLORS, label) or cycle_color(default_index)


# One marker per curve as well as one colour, so curves can be told apart without colour.
MARKERS = {"sequential": "s", "constant": "o", "polynomial": "^", "hinge": "D",
           "exponential": "v", "sample_damping": "P", "fedasync": "o"}
MARKER_CYCLE = ["o", "s", "^", "D", "v", "P", "X", "*"]


def marker_for(label: str, default_index: int = 0) -> str:
    return _by_label(MARKERS, label) or MARKER_CYCLE[default_index % len(MARKER_CYCLE)]


# --- accuracy curves ------------------------------------------------------------
def log_time_floor(runs: Mapping[str, History]) -> float:
    """Left edge of a log-scale time axis: half the earliest evaluation after the start.

    ``t = 0`` has no place on a log axis. The curves start at this edge with the
    accuracy measured at ``t = 0``, which is what the server knows until its next
    evaluation (see :func:`_curve`).
    """
    times = [e["time"] for h in runs.values() for e in h.evals if e["time"] > 0]
    return 0.5 * min(times) if times else 1.0


def _curve(ax: Axes, history: History, x_key: str, label: str, color: str,
           linestyle: str = "-", marker: str = "o", log_floor: float | None = None) -> None:
    """One accuracy curve; markers sit on the evaluations.

    With ``log_floor`` (a log-scale time axis) the curve is drawn as steps: the
    accuracy of the last evaluation holds until the next one, and the evaluation at
    ``t = 0`` is drawn from the axis' left edge. A straight line from a clipped
    ``t = 0`` would instead show a flat line at the *next* evaluation's accuracy, long
    before that accuracy was reached.
    """
    x = history.column(x_key, "evals").astype(float)
    acc = history.column("accuracy", "evals")
    finite = np.isfinite(acc)
    xs, ys = x[finite], acc[finite]
    if history.diverged and not label.startswith("_"):
        label = f"{label} (diverged: stopped)"
    if log_floor is not None:
        on_axis = xs > 0
        xs = np.where(on_axis, xs, log_floor)
        ax.plot(xs, ys, label=label, color=color, linestyle=linestyle, drawstyle="steps-post",
                marker=marker, markersize=4, markevery=list(on_axis))
    else:
        ax.plot(xs, ys, label=label, color=color, linestyle=linestyle, marker=marker, markersize=4)
    if history.diverged:
        _mark_stop(ax, x[-1] if len(x) else (log_floor or 0.0), color, log_floor)


def _mark_stop(ax: Axes, x_stop: float, color: str, log_floor: float | None = None) -> None:
    """Where a diverged run was stopped: a dotted vertical line across the whole axis at its
    last evaluation (the one that caught the divergence), in the run's colour, and a label
    inside the axes. Nothing is drawn on the accuracy scale there: the model that was stopped
    has no accuracy worth plotting, so the mark must not look like a measurement."""
    if log_floor is not None and x_stop <= 0:
        x_stop = log_floor
    ax.axvline(x_stop, color=color, linestyle=(0, (1.5, 1.5)), linewidth=2.2, zorder=1.5,
               label="_stopped")
    ax.annotate("stopped: diverged (caught)", (x_stop, 0.97), xycoords=("data", "axes fraction"),
                textcoords="offset points", xytext=(4, 0), rotation=90, ha="left", va="top",
                fontsize=9, color="red", annotation_clip=False)


def _log_time_axis(ax: Axes, floor: float) -> None:
    """Log-scale time axis from ``floor`` (see :func:`log_time_floor`), its decades labelled
    as plain numbers (0.1, 1, 10, 100, 1,000) and no minor ticks: the decades' grid lines are
    enough to read it, and the forty-odd minor ticks were a third of the time a slider's
    plot took to draw in the browser (docs/lite.md)."""
    from matplotlib.ticker import FuncFormatter, NullLocator
    ax.set_xscale("log")
    ax.set_xlim(left=floor)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("virtual time (s, log scale; steps: accuracy of the last evaluation)")


def plot_convergence(runs: Mapping[str, History], title: str = "",
                     log_time: bool = False) -> Figure:
    """Test accuracy against virtual time (left) and against updates received (right).

    ``log_time`` puts time on a log scale, for comparisons whose runs take very
    different times; the time curves are then drawn as steps (see :func:`_curve`).
    """
    fig, (ax_t, ax_u) = plt.subplots(1, 2, sharey=True)
    floor = log_time_floor(runs) if log_time else None
    for i, (label, h) in enumerate(runs.items()):
        style = "--" if label.startswith("sequential") else "-"
        color, marker = color_for(label, i), marker_for(label, i)
        _curve(ax_t, h, "time", label, color, style, marker, log_floor=floor)
        _curve(ax_u, h, "update", label, color, style, marker)
    if log_time:
        _log_time_axis(ax_t, floor)
    else:
        ax_t.set_xlabel("virtual time (s)")
    ax_u.set_xlabel("updates received by the server")
    ax_t.set_ylabel("test accuracy")
    ax_t.set_ylim(0, 1)
    ax_u.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_objective(runs: Mapping[str, History], title: str = "") -> Figure:
    """Test accuracy (left) and the training objective (right, log scale) against updates.

    The training objective is ``train_loss``: the server model's mean loss over every
    client's training samples. The convergence theorems bound another quantity, the squared
    gradient norm of the clients' uniform average (``grad_norm_sq`` in the same records).
    """
    fig, (ax_a, ax_l) = plt.subplots(1, 2)
    for i, (label, h) in enumerate(runs.items()):
        style = "--" if label.startswith("sequential") else "-"
        color, marker = color_for(label, i), marker_for(label, i)
        _curve(ax_a, h, "update", label, color, style, marker)
        loss = h.column("train_loss", "evals").astype(float)
        finite = np.isfinite(loss)
        ax_l.plot(h.column("update", "evals")[finite], loss[finite], label=label, color=color,
                  linestyle=style, marker=marker, markersize=4)
    ax_a.set(xlabel="updates received by the server", ylabel="test accuracy", ylim=(0, 1))
    ax_l.set(xlabel="updates received by the server", ylabel="training loss (log scale)",
             yscale="log")
    ax_l.legend(loc="upper right")
    if title:
        fig.suptitle(title)
    return fig


def seed_band(histories, y: str = "accuracy"):
    """``(updates, mean, std)`` of ``y`` over runs that evaluate at the same update counts
    (runs of one config, different seeds); a run that stopped early counts up to its end."""
    grid, rows = _seed_rows(histories, y)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(rows, axis=0)
        std = np.nanstd(rows, axis=0, ddof=1) if len(histories) > 1 else np.zeros(len(grid))
    return grid, mean, np.nan_to_num(std)


def _band_edges(rows: np.ndarray, mean: np.ndarray, log_y: bool):
    """The edges of a band over seeds (``rows``: one row per seed, nan where a run had
    stopped), and what the band is, for the legend.

    On a linear axis: mean +/- one standard deviation. On a log axis that band can reach
    below 0, where it falls off the bottom of the plot and looks like a collapse to 0;
    there the band is the range over the seeds instead (lowest to highest seed), which
    stays above 0 whenever every value does."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column where every seed had stopped
        if log_y:
            return np.nanmin(rows, axis=0), np.nanmax(rows, axis=0), "band: lowest to highest seed"
        std = np.nanstd(rows, axis=0, ddof=1) if len(rows) > 1 else np.zeros(rows.shape[1])
    std = np.nan_to_num(std)
    return mean - std, mean + std, "band: mean \u00b1 1 s.d. over seeds"


def _seed_rows(histories, y: str):
    """``(updates, rows)``: ``y`` per seed (one row each) at the update counts of the longest run."""
    grid = max((h.column("update", "evals") for h in histories), key=len)
    rows = np.full((len(histories), len(grid)), np.nan)
    for k, h in enumerate(histories):
        values = h.column(y, "evals").astype(float)
        rows[k, :len(values)] = np.where(np.isfinite(values), values, np.nan)
    return grid, rows


def plot_seed_bands(groups: Mapping[str, list], y: str = "accuracy", title: str = "",
                    log_y: bool = False, ax: Axes | None = None) -> Figure:
    """The mean of ``y`` over seeds against updates, one curve per setting, with a band:
    how far one seed's curve can be from another's. The band is one standard deviation
    either side of the mean on a linear axis, and the range over the seeds (lowest to
    highest) with ``log_y``, where mean - s.d. can be below 0; the legend says which."""
    fig = ax.figure if ax is not None else plt.subplots(1, 1, figsize=(7, 3.8))[0]
    ax = ax if ax is not None else fig.axes[0]
    what = ""
    for i, (label, runs) in enumerate(groups.items()):
        grid, mean, _ = seed_band(runs, y)
        low, high, what = _band_edges(_seed_rows(runs, y)[1], mean, log_y)
        color, marker = color_for(label, i), marker_for(label, i)
        ax.plot(grid, mean, color=color, marker=marker, markersize=4,
                label=f"{label} ({len(runs)} seeds)")
        ax.fill_between(grid, low, high, color=color, alpha=0.18, linewidth=0)
    ax.set_xlabel("updates received by the server")
    ax.set_ylabel({"accuracy": "test accuracy", "train_loss": "training loss"}.get(y, y)
                  + (" (log scale)" if log_y else ""))
    if log_y:
        ax.set_yscale("log")
        low, high = ax.get_ylim()
        plain_log_axis(ax.yaxis, low, high)  # plain numbers, not 10^-1 and 10^0 alone
    # outside the axes, so that it covers no band (a seed's spike can reach the top)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="line: mean over seeds\n" + what,
              title_fontsize=9, alignment="left")
    if title:
        ax.set_title(title)
    return fig


# --- 1. timelines ----------------------------------------------------------------
SPEED_CMAP = "plasma_r"  # client colours: light (yellow) = fast, dark (purple) = slow


def speed_norm(latency) -> "matplotlib.colors.LogNorm":
    """Colour scale for clients' typical job times (log, since speeds spread by orders of magnitude)."""
    from matplotlib.colors import LogNorm
    latency = np.asarray(latency, dtype=float)
    low, high = float(latency.min()), float(latency.max())
    return LogNorm(vmin=low, vmax=high if high > low else low * 1.0001)


def plain_log_ticks(low: float, high: float) -> list:
    """Ticks 1, 2, 5, 10, 20, ... (and their tenths) between ``low`` and ``high``: a log
    axis labelled in plain numbers rather than in powers of ten."""
    ticks = [m * 10.0 ** e for e in range(int(np.floor(np.log10(low))) - 1,
                                          int(np.ceil(np.log10(high))) + 1) for m in (1, 2, 5)]
    inside = [t for t in ticks if low <= t <= high]
    return inside if len(inside) >= 2 else [low, high]


def few_log_ticks(low: float, high: float, most: int = 6) -> list:
    """At most ``most`` ticks for a log axis from ``low`` to ``high``, in plain numbers: 1, 2, 5,
    10, ... when they are few enough, else 1, 3, 10, 30, ..., else the powers of ten."""
    ticks = []
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** e for e in range(int(np.floor(np.log10(low))) - 1,
                                              int(np.ceil(np.log10(high))) + 1) for m in mantissas]
        ticks = [t for t in ticks if low <= t <= high]
        if len(ticks) <= most:
            break
    return ticks if len(ticks) >= 2 else [low, high]


def plain_log_axis(axis, low: float, high: float) -> None:
    """Label a log axis (``ax.xaxis`` or ``ax.yaxis``) from ``low`` to ``high`` with a few
    plain numbers and no minor labels: matplotlib's own minor labels (2 x 10^-1, 3 x 10^-1, ...)
    run into each other on a short axis."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
    axis.set_major_locator(FixedLocator(few_log_ticks(low, high)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def speed_colorbar(fig: Figure, axes, norm) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=SPEED_CMAP), ax=axes,
                       label="client's typical job time (s; light: fast, dark: slow)")
    bar.ax.yaxis.set_major_locator(FixedLocator(plain_log_ticks(norm.vmin, norm.vmax)))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    bar.ax.yaxis.set_minor_locator(NullLocator())


def _gantt(ax: Axes, jobs, num_clients: int, horizon: float, latency, norm) -> None:
    """One bar per job, coloured by its client's speed (colour means speed, not identity)."""
    cmap = plt.get_cmap(SPEED_CMAP)
    for j in jobs:
        if j.start_time >= horizon:
            continue
        end = min(j.arrival_time, horizon)
        ax.barh(j.client_id, end - j.start_time, left=j.start_time, height=0.7,
                color=cmap(norm(latency[j.client_id])), edgecolor="white", linewidth=0.5,
                alpha=0.9 if j.arrival_time <= horizon else 0.35)
    ax.set_ylim(-0.7, num_clients - 0.3)
    ax.invert_yaxis()
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # clients are whole numbers
    ax.set_ylabel("client")


def plot_timelines(t: Timelines) -> Figure:
    """Gantt charts of the same number of jobs, synchronous rounds above, async below."""
    horizon = max(t.sync_time, t.async_time)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.8))
    norm = speed_norm(t.client_latency)
    _gantt(top, t.sync_jobs, t.num_clients, horizon, t.client_latency, norm)
    rounds = sorted({j.start_time for j in t.sync_jobs})
    for r in rounds[1:]:
        top.axvline(r, color="black", linewidth=0.8, linestyle=":")
    top.set_title(f"synchronous rounds of {t.concurrency}: {len(t.sync_jobs)} jobs in "
                  f"{t.sync_time:.1f} s, clients busy {100 * t.sync_utilization:.0f} % of the time\n"
                  "(dotted: round barriers)")
    _gantt(bottom, t.async_jobs, t.num_clients, horizon, t.client_latency, norm)
    bottom.axvline(t.async_time, color="black", linewidth=0.8, linestyle=":")
    bottom.set_title(f"asynchronous, {t.concurrency} at a time: the same number of updates in "
                     f"{t.async_time:.1f} s, clients busy {100 * t.async_utilization:.0f} %\n"
                     "(faded: still running)")
    bottom.set_xlabel("virtual time (s)")
    bottom.set_xlim(0, horizon * 1.01)
    speed_colorbar(fig, [top, bottom], norm)
    return fig


# --- 2. staleness ---------------------------------------------------------------
def plot_staleness_profile(p: StalenessProfile) -> Figure:
    """Histogram of staleness (left); updates per client against its speed (right)."""
    fig, (left, right) = plt.subplots(1, 2)
    counts = np.bincount(p.staleness)
    left.stairs(counts, np.arange(len(counts) + 1) - 0.5, fill=True, color=COLORS["constant"])
    left.axvline(p.staleness.mean(), color="black", linestyle="--",
                 label=f"mean {p.staleness.mean():.1f}")
    left.set_xlabel("staleness (server versions behind)")
    left.set_ylabel("updates")
    left.set_title(f"concurrency {p.concurrency}, heterogeneity {p.heterogeneity:g}")
    left.legend()
    order = np.argsort(p.client_latency, kind="stable")
    right.bar(np.arange(len(order)), p.contributions[order], color=COLORS["hinge"])
    right.set_xticks(np.arange(len(order)))
    right.set_xticklabels([f"{p.client_latency[i]:.2g}" for i in order], rotation=90, fontsize=8)
    right.set_xlabel("clients, fastest first (typical job time, virtual s)")
    right.set_ylabel("updates delivered")
    right.set_title("who gets heard")
    return fig


def plot_class_exposure(exposure: Dict[str, np.ndarray]) -> Figure:
    """Each class's share of the data against its share of what the server learned from."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    k = np.arange(len(exposure["data"]))
    ax.bar(k - 0.2, exposure["data"], width=0.4, label="share of the training data",
           color=COLORS["sequential"])
    ax.bar(k + 0.2, exposure["updates"], width=0.4, label="share in the applied updates",
           color=COLORS["exponential"])
    ax.set_xticks(k)
    ax.set_xlabel("digit class")
    ax.set_ylabel("share")
    ax.legend()
    return fig


# --- 3. weighting functions -------------------------------------------------------
def plot_weighting_functions(curves: Dict[str, np.ndarray], mixing_alpha: float | None = None) -> Figure:
    """s(t) of the four functions; with ``mixing_alpha``, the right axis shows alpha_t."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    t = curves["t"]
    for name in ("constant", "polynomial", "hinge", "exponential"):
        ax.plot(t, curves[name], label=name, color=COLORS[name], marker=MARKERS[name], markersize=3.5)
    ax.set_xlabel("staleness t (server versions behind)")
    ax.set_ylabel("weight s(t)")
    ax.set_ylim(0, 1.05)
    if mixing_alpha is not None:
        right = ax.secondary_yaxis("right", functions=(lambda y: y * mixing_alpha,
                                                       lambda y: y / mixing_alpha))
        right.set_ylabel(f"mixing rate alpha_t (alpha = {mixing_alpha:g})")
    # outside the axes, so that it covers no curve (the constant one runs along the top)
    ax.legend(loc="upper left", bbox_to_anchor=(1.13 if mixing_alpha is not None else 1.01, 1.0))
    return fig


# --- 4. mixing ---------------------------------------------------------------------
def plot_alpha_sweep(sweep: Mapping[float, History],
                     shown: tuple = (0.05, 0.2, 0.6, 1.0)) -> Figure:
    """Accuracy curves for a few alphas (left); tail accuracy and swing against every alpha (right).

    The left panel draws only the ``shown`` alphas present in ``sweep`` (all of them
    when none is), each with its own colour and marker; the right panel summarises
    the whole sweep. Accuracy axes start at 0, like every accuracy axis of the lesson.
    """
    fig, (left, right) = plt.subplots(1, 2)
    alphas = sorted(sweep)
    picked = [a for a in alphas if any(np.isclose(a, b) for b in shown)] or alphas
    cmap = plt.get_cmap("plasma")  # ordered dark (small alpha) to orange (large); no pale yellow
    for i, a in enumerate(picked):
        _curve(left, sweep[a], "update", f"alpha {a:g}", cmap(0.8 * i / max(len(picked) - 1, 1)),
               marker=MARKER_CYCLE[i % len(MARKER_CYCLE)])
    left.set_xlabel("updates received by the server")
    left.set_ylabel("test accuracy")
    left.set_ylim(0, 1)
    left.legend(loc="lower right")
    tails = [sweep[a].tail_accuracy() for a in alphas]
    swings = [sweep[a].swing() for a in alphas]
    right.plot(alphas, tails, marker="o", color=COLORS["constant"], label="accuracy, last 5 evaluations")
    right.set_xlabel("mixing rate alpha")
    right.set_ylabel("test accuracy")
    right.set_ylim(0, 1)
    twin = right.twinx()
    twin.plot(alphas, swings, marker="s", linestyle="--", color=COLORS["exponential"], label="swing")
    twin.set_ylabel("swing (mean |change| between evaluations)")
    twin.set_ylim(bottom=0)
    twin.grid(False)
    lines = right.get_lines() + twin.get_lines()
    right.legend(lines, [ln.get_label() for ln in lines], loc="upper center",
                 bbox_to_anchor=(0.5, -0.16), ncol=2)
    return fig


def plot_damping_rates(rates: Dict[str, np.ndarray]) -> Figure:
    """alpha_t against staleness: the original rule per sample count, and FedAsync's."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    t = rates["t"]
    ax.plot(t, rates["fedasync"], color="black", linewidth=2.5, label="FedAsync, any n")
    sizes = [k for k in rates if k.startswith("n=")]
    cmap = plt.get_cmap("magma")
    for i, k in enumerate(sizes):
        ax.plot(t, rates[k], linestyle="--", color=cmap(0.15 + 0.7 * i / max(len(sizes) - 1, 1)),
                label=f"original rule, {k}")
    ax.set_xlabel("staleness t")
    ax.set_ylabel("mixing rate alpha_t")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper right")
    return fig


def plot_applied_rates(runs: Mapping[str, History], sizes: np.ndarray,
                       max_staleness: int = 12) -> Figure:
    """Every applied alpha_t against its staleness, coloured by the client's data size.

    Only staleness up to ``max_staleness`` is shown: beyond it both rules give
    rates near 0.
    """
    fig, axes = plt.subplots(1, len(runs), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (label, h) in zip(axes, runs.items()):
        s, alpha = h.column("staleness"), h.column("alpha")
        shown = s <= max_staleness
        n = sizes[h.column("client_id")]
        sc = ax.scatter(s[shown], alpha[shown], c=n[shown], cmap="viridis", s=16,
                        vmin=sizes.min(), vmax=sizes.max())
        ax.set_title(f"{label} (staleness <= {max_staleness})")
        ax.set_xlabel("staleness")
    axes[0].set_ylabel("applied mixing rate alpha_t")
    fig.colorbar(sc, ax=axes, label="client's samples")
    return fig


# --- exercises ------------------------------------------------------------------------
POLICY_COLORS = {"drop": "#D55E00", "wait": "#0072B2"}


def plot_bound_sweep(sweep) -> Figure:
    """Exercise 1: accuracy, work thrown away and virtual time against the bound, per policy.

    ``sweep`` maps a policy to :class:`experiments.BoundResult` rows, the last
    one unbounded (drawn as a dotted line).
    """
    fig, (acc, waste, clock) = plt.subplots(1, 3, figsize=(12, 3.8))
    for policy, rows in sweep.items():
        bounded_rows = [r for r in rows if r.max_staleness is not None]
        x = [r.max_staleness for r in bounded_rows]
        color = POLICY_COLORS[policy]
        acc.plot(x, [r.accuracy for r in bounded_rows], marker="o", color=color, label=policy)
        waste.plot(x, [100 * r.thrown_away for r in bounded_rows], marker="o", color=color, label=policy)
        clock.plot(x, [r.virtual_time for r in bounded_rows], marker="o", color=color, label=policy)
    unbounded = sweep["drop"][-1]
    # The reference is drawn above the policies' lines and labelled with its value: a policy
    # can lie exactly on it (drop never delays a job, so its time is the unbounded time).
    for ax, value, unit in ((acc, unbounded.accuracy, ""), (clock, unbounded.virtual_time, " s")):
        ax.axhline(value, color="black", linestyle=(0, (1, 2)), linewidth=1.8, zorder=3,
                   label="no bound")
        ax.annotate(f"no bound: {value:.3g}{unit}", (1.0, value), xycoords=("axes fraction", "data"),
                    textcoords="offset points", xytext=(-4, 3), ha="right", va="bottom",
                    fontsize=8.5, annotation_clip=False)
        ax.margins(y=0.1)  # no line on the frame, the lowest one included
    acc.set_ylabel("test accuracy (last 5 evaluations)")
    waste.set_ylabel("client work thrown away (%)")
    clock.set_ylabel("virtual time for all updates (s, log scale)")
    clock.set_yscale("log")
    times = [r.virtual_time for rows in sweep.values() for r in rows if r.virtual_time > 0]
    if times:
        plain_log_axis(clock.yaxis, min(times), max(times))
    for ax in (acc, waste, clock):
        ax.set_xlabel("max_staleness")
        ax.legend()
    return fig


def plot_scheduling(results) -> Figure:
    """Exercise 2: updates per client (fastest first) for each scheduler, and the scores."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    n = len(results[0].history.client_latency)
    order = np.argsort(results[0].history.client_latency, kind="stable")
    width = 0.8 / len(results)
    for i, r in enumerate(results):
        counts = r.history.contributions(applied_only=False)[order]
        left.bar(np.arange(n) + (i - (len(results) - 1) / 2) * width, counts, width=width,
                 label=r.label)
    left.set_xticks(np.arange(0, n, 2))
    left.set_xlabel("clients, fastest first (rank)")
    left.set_ylabel("updates delivered")
    left.legend(fontsize=8.5)
    labels = [r.label for r in results]
    k = np.arange(len(results))
    # shades of grey and hatching: the left panel's colours name schedulers, not measures
    right.bar(k - 0.27, [r.jain for r in results], width=0.27, label="Jain's fairness index",
              color="0.75", edgecolor="0.3", linewidth=0.6)
    right.bar(k, [r.accuracy for r in results], width=0.27, label="test accuracy",
              color="0.35", edgecolor="0.2", linewidth=0.6)
    right.bar(k + 0.27, [r.slow_class_accuracy for r in results], width=0.27,
              label=f"accuracy on digits {results[0].slow_classes} (slowest clients)",
              color="white", edgecolor="0.2", hatch="///", linewidth=0.6)
    right.set_xticks(k)
    right.set_xticklabels(labels, rotation=15, fontsize=9)
    right.set_ylim(0, 1.05)
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, fontsize=8.5)
    return fig


def plot_influence(runs: Mapping[str, History], sizes, slow, over_time: Mapping[str, dict]) -> Figure:
    """The fast-client bias. Left: each client's share of the applied update mass (the sum of
    its alphas) against its share of the data, one marker per client and run, coloured by the
    client's speed; on the diagonal, influence follows data. Right: the slowest clients' share
    of the update mass so far, over virtual time, against their share of the data (dashed)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    sizes = np.asarray(sizes, dtype=float)
    data_share = sizes / sizes.sum()
    norm = speed_norm(next(iter(runs.values())).client_latency)
    cmap = plt.get_cmap(SPEED_CMAP)
    for i, (label, h) in enumerate(runs.items()):
        mass = h.influence()
        left.scatter(data_share, mass / mass.sum(), c=[cmap(norm(v)) for v in h.client_latency],
                     marker=marker_for(label, i), s=36, edgecolors="black", linewidths=0.4,
                     label=label)
    top = max(left.get_xlim()[1], left.get_ylim()[1])
    left.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1)
    left.set(xlabel="client's share of the training data",
             ylabel="client's share of the applied update mass", xlim=(0, top), ylim=(0, top))
    left.legend(loc="upper left")
    for i, (label, curve) in enumerate(over_time.items()):
        right.plot(curve["time"], curve["influence"], color=color_for(label, i),
                   marker=marker_for(label, i), markevery=6, markersize=4, label=label)
    first = next(iter(over_time.values()))
    right.plot(first["time"], first["data"], color="grey", linestyle="--",
               label="their share of the data")
    right.set(xlabel="virtual time (s)", ylabel=f"share of the update mass, slowest {len(slow)} clients",
              ylim=(0, None))
    right.legend(loc="center right")
    speed_colorbar(fig, [left, right], norm)
    return fig


def plot_sync_vs_async(runs: Mapping[str, History], target: float | None = None) -> Figure:
    """Exercise 4: accuracy against virtual time (log scale) and against client computation."""
    fig, (ax_t, ax_w) = plt.subplots(1, 2, sharey=True)
    floor = log_time_floor(runs)
    for i, (label, h) in enumerate(runs.items()):
        color, marker = cycle_color(i), MARKER_CYCLE[i % len(MARKER_CYCLE)]
        _curve(ax_t, h, "time", label, color, marker=marker, log_floor=floor)
        _curve(ax_w, h, "work", label, color, marker=marker)
    _log_time_axis(ax_t, floor)
    ax_t.set_xlabel("virtual time (s, log scale)\n(steps: accuracy of the last evaluation)")
    ax_w.set_xlabel("client computation\n(client-seconds, running jobs included)")
    ax_t.set_ylabel("test accuracy")
    ax_t.set_ylim(0, 1)
    if target is not None:
        for ax in (ax_t, ax_w):
            ax.axhline(target, color="black", linestyle=":", linewidth=1)
    ax_w.legend(loc="lower right")
    return fig


def plot_crossover(heterogeneities, times: Mapping[str, list], target: float) -> Figure:
    """Exercise 4: virtual time to the target accuracy against heterogeneity."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, (label, ts) in enumerate(times.items()):
        ys = [np.nan if t is None else t for t in ts]
        ax.plot(heterogeneities, ys, marker=MARKER_CYCLE[i % len(MARKER_CYCLE)], label=label,
                color=cycle_color(i))
    ax.set_yscale("log")
    ax.set_xlabel("heterogeneity (spread of client speeds)")
    ax.set_ylabel(f"virtual time to {target:.0%} accuracy (s)")
    ax.legend()
    return fig


def plot_classroom(runs: Mapping[str, History], algorithm: str) -> Figure:
    """The classroom app: accuracy against virtual time and against updates for the
    chosen algorithm and the sequential reference, and the chosen run's staleness."""
    fig = plt.figure(figsize=(12, 4.2))
    grid = fig.add_gridspec(1, 3, width_ratios=[1.2, 1.2, 1])
    ax_t = fig.add_subplot(grid[0])
    ax_u = fig.add_subplot(grid[1], sharey=ax_t)
    ax_s = fig.add_subplot(grid[2])
    floor = log_time_floor(runs)
    for label, h in runs.items():
        sequential = label == "sequential"
        color = COLORS["sequential"] if sequential else COLORS["constant"]
        style, marker = ("--", MARKERS["sequential"]) if sequential else ("-", "o")
        _curve(ax_t, h, "time", label, color, style, marker, log_floor=floor)
        _curve(ax_u, h, "update", label, color, style, marker)
    _log_time_axis(ax_t, floor)
    ax_t.set_ylabel("test accuracy")
    ax_t.set_ylim(0, 1)
    ax_u.set_xlabel("updates received by the server")
    ax_u.legend(loc="lower right")
    chosen = runs[algorithm]
    counts = np.bincount(chosen.column("staleness"))
    ax_s.stairs(counts, np.arange(len(counts) + 1) - 0.5, fill=True, color=COLORS["hinge"])
    ax_s.set_xlabel("staleness (versions behind)")
    ax_s.set_ylabel("updates")
    s = chosen.summary()
    accuracy = "diverged" if s["diverged"] else f"accuracy {s['tail_accuracy']:.3f}"
    ax_s.set_title(f"{algorithm}: {accuracy}, {s['virtual_time']:.1f} virtual s", fontsize=10.5)
    return fig


# --- deployment on Dask -------------------------------------------------------------------
def plot_deploy_vs_simulation(deployed: History, simulated: History) -> Figure:
    """Accuracy per update (left) and staleness (right): real clients against the simulator."""
    fig, (left, right) = plt.subplots(1, 2)
    _curve(left, simulated, "update", "simulated (virtual clock)", COLORS["sequential"], "--")
    _curve(left, deployed, "update", "deployed (Dask workers)", COLORS["constant"])
    left.set_xlabel("updates received by the server")
    left.set_ylabel("test accuracy")
    left.set_ylim(0, 1)
    left.legend(loc="lower right")
    top = int(max(deployed.column("staleness").max(), simulated.column("staleness").max()))
    edges = np.arange(top + 2) - 0.5
    for h, label, color in ((simulated, "simulated", COLORS["sequential"]),
                            (deployed, "deployed", COLORS["constant"])):
        counts = np.bincount(h.column("staleness"), minlength=top + 1)
        right.stairs(counts, edges, label=f"{label}: mean {h.column('staleness').mean():.1f}",
                     color=color, linewidth=2)
    right.set_xlabel("staleness (versions behind)")
    right.set_ylabel("updates")
    right.legend()
    return fig


def _settled(times, counts):
    """A step function's points with one count per distinct time: the count after every
    event at that time. A job that arrives and its client's next job that starts at the same
    instant would otherwise draw a dip of zero duration, a vertical spike of no length in time."""
    keep = [k for k in range(len(times)) if k + 1 == len(times) or times[k + 1] != times[k]]
    return [times[k] for k in keep], [counts[k] for k in keep]


def plot_concurrency(deployed: History, simulated: History, time_scale: float) -> Figure:
    """How many clients were training at each moment: the deployed run by its workers' own
    start and finish times, the simulated one by its jobs' start and arrival on the virtual
    clock, scaled to real seconds by ``time_scale`` (a job still running when the run ended
    counts until the end). The deployed trace counts only jobs whose results reached the
    server, and each slot is empty for the round trip between a job's end and the next start."""
    from ..deploy.dask_driver import concurrency_profile

    fig, ax = plt.subplots(figsize=(8, 3.4))
    # every job the simulation started: those that arrived, and those still running (or
    # waiting for the server) when the run ended, counted up to their arrival or that end
    end = simulated.virtual_time
    spans = ([(u["start_time"], u["arrival_time"]) for u in simulated.updates]
             + [(u["start_time"], min(u["arrival_time"], end)) for u in simulated.unfinished])
    edges = sorted([(start * time_scale, 1) for start, _ in spans]
                   + [(stop * time_scale, -1) for _, stop in spans])
    sim_t, sim_n, running = [0.0], [0], 0
    for t, step in edges:
        running += step
        sim_t.append(t)
        sim_n.append(running)
    dep_t, dep_n = concurrency_profile(deployed)
    sim_t, sim_n = _settled(sim_t, sim_n)
    dep_t, dep_n = _settled(dep_t, dep_n)
    # Both traces solid and thin (a dashed step line that changes every few milliseconds
    # reads as noise); the simulated one thicker and pale, under the deployed one.
    ax.step(sim_t, sim_n, where="post", color=COLORS["sequential"], linewidth=2.4, alpha=0.55,
            label=f"simulated, x {time_scale:g} s per virtual s")
    ax.step([0.0, *dep_t], [0, *dep_n], where="post", color=COLORS["constant"], linewidth=1.0,
            label="deployed, by the workers' clocks")
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel("clients training at once")
    ax.set_ylim(0, max(max(sim_n), max(dep_n, default=0)) + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # above the axes, so that it covers no part of either trace
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2)
    return fig


def _mark_incidents(ax: Axes, history: History, legend: bool = True) -> None:
    """Mark a lost worker: the moment the server declared it lost (red dashed line, from
    ``History.incidents``) and, shaded before it, the stall while the server waited to find
    out: from the last result the lost worker delivered (``History.jobs``) until it was
    declared lost. The worker died somewhere in that span. The kill itself is not recorded
    in a ``History``, so it is not drawn. With ``legend``, a legend below the axes says
    what each mark is (no text on the axes, where it could be clipped or cover data)."""
    lost = [i for i in history.incidents if i["event"] == "job lost"]
    workers = [i for i in history.incidents if i["event"] == "worker lost"]
    if not lost and not workers:
        return
    detected = workers[0]["time"] if workers else lost[0]["time"]
    moved = sum(len(i["client_ids"]) for i in workers)
    what = f", {moved} clients moved" if moved else ""
    handles = []
    if workers:
        gone = workers[0]["worker"]
        before = [j["arrived"] for j in history.jobs if j["worker"] == gone and j["arrived"] <= detected]
        if before:
            last = max(before)
            handles.append(ax.axvline(last, color="black", linestyle=":", linewidth=1.2,
                                      label="last result from the worker that was lost"))
            handles.append(ax.axvspan(last, detected, color="red", alpha=0.12, linewidth=0,
                                      label="failure detection: the worker died in here,\n"
                                            "the server had not noticed yet"))
    handles.append(ax.axvline(detected, color="red", linestyle="--", linewidth=1.2,
                              label=f"worker declared lost: {len(lost)} job(s) redone{what}"))
    if legend:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.2), fontsize=8.5)


def plot_fault_tolerance(history: History) -> Figure:
    """Accuracy against wall-clock time, with the moment a worker was declared lost and the
    stall before it marked (see :func:`_mark_incidents`)."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    _curve(ax, history, "time", history.algorithm, COLORS["constant"])
    _mark_incidents(ax, history)
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    return fig


def plot_replay(history: History, until: float) -> Figure:
    """The deployed run up to wall-clock time ``until``: who was training (left) and accuracy (right)."""
    fig, (gantt, acc) = plt.subplots(1, 2, figsize=(11, 3.8))
    norm = speed_norm(history.client_latency)
    cmap = plt.get_cmap(SPEED_CMAP)
    for u in history.updates:
        if u["start_time"] <= until:
            gantt.barh(u["client_id"], min(u["arrival_time"], until) - u["start_time"], left=u["start_time"],
                       height=0.7, color=cmap(norm(history.client_latency[u["client_id"]])),
                       alpha=0.9 if u["arrival_time"] <= until else 0.35)
    gantt.set_xlim(0, history.virtual_time * 1.02)
    gantt.set_ylim(-0.7, len(history.client_latency) - 0.3)
    gantt.invert_yaxis()
    gantt.yaxis.set_major_locator(MaxNLocator(integer=True))  # clients are whole numbers
    gantt.set_xlabel("wall-clock time (s)")
    gantt.set_ylabel("client")
    done = sum(u["arrival_time"] <= until for u in history.updates)
    gantt.set_title(f"{done} updates by {until:.1f} s (faded: still training)")
    speed_colorbar(fig, gantt, norm)
    evals = [e for e in history.evals if e["time"] <= until]
    acc.plot([e["time"] for e in evals], [e["accuracy"] for e in evals], marker="o", markersize=3,
             color=COLORS["constant"])
    acc.set_xlim(0, history.virtual_time * 1.02)
    acc.set_ylim(0, 1)
    acc.set_xlabel("wall-clock time (s)")
    acc.set_ylabel("test accuracy")
    if any(i["time"] <= until for i in history.incidents):
        _mark_incidents(gantt, history, legend=False)  # a legend would cover the bars
        _mark_incidents(acc, history)
    return fig


# --- 5. analyzing convergence ------------------------------------------------------------------
def plot_staleness_prediction(p) -> Figure:
    """Notebook 5: each client's staleness against its mean job time, predicted (product form
    and mean-field) and measured (marker area: its share of the updates); and each client's
    share of the updates, predicted against measured."""
    fig, (left, right) = plt.subplots(1, 2)
    order = np.argsort(p.durations, kind="stable")
    d = p.durations[order]
    seen = ~np.isnan(p.measured[order])
    left.scatter(d[seen], p.measured[order][seen], s=2000 * p.measured_share[order][seen],
                 color=COLORS["constant"], alpha=0.6, edgecolors="black", linewidths=0.4,
                 label="measured (area: share of updates)")
    left.plot(d, p.predicted[order], color=COLORS["polynomial"], marker="^", markersize=4,
              label="predicted (product form)")
    left.plot(d, p.mean_field[order], color=COLORS["sequential"], linestyle="--",
              label="mean-field shortcut")
    left.axhline(p.concurrency - 1, color="black", linestyle=":", linewidth=1)
    left.set(xscale="log", xlabel="client's mean job time (s, log scale)",
             ylabel="staleness of its updates", title=f"{p.num_clients} clients, {p.concurrency} in flight "
             f"(dotted: c - 1 = {p.concurrency - 1})")
    # room around the data, so that no client's marker (the slowest's, top right) sits on the frame
    left.margins(x=0.07, y=0.09)
    plain_log_axis(left.xaxis, float(d.min()), float(d.max()))
    left.legend(loc="upper left")
    top = max(p.predicted_share.max(), p.measured_share.max()) * 1.1
    right.scatter(p.predicted_share, p.measured_share, color=COLORS["constant"], s=20)
    right.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1)
    right.set(xlim=(0, top), ylim=(0, top), xlabel="predicted share of the updates",
              ylabel="measured share of the updates")
    return fig


def plot_stability_grid(grids: Mapping[str, np.ndarray], concurrencies, steps) -> Figure:
    """Notebook 5: the share of seeds whose run was not stable (``History.stable``), per
    concurrency and server step size, one panel per weighting of stale changes."""
    fig, axes = plt.subplots(1, len(grids), figsize=(4 * len(grids), 3.4), squeeze=False)
    for ax, (name, grid) in zip(axes[0], grids.items()):
        image = ax.imshow(grid, cmap="Reds", vmin=0, vmax=1, aspect="auto", origin="lower")
        ax.set_xticks(range(len(steps)), [f"{s:g}" for s in steps])
        ax.set_yticks(range(len(concurrencies)), [str(c) for c in concurrencies])
        ax.set(xlabel="server step size", ylabel="clients in flight", title=name)
        ax.grid(False)
        for i in range(len(concurrencies)):
            for j in range(len(steps)):
                ax.text(j, i, f"{grid[i, j]:.0%}", ha="center", va="center", fontsize=8,
                        color="white" if grid[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=axes[0].tolist(), label="share of seeds not stable")
    return fig


def plot_stability_region(max_delay: int = 64) -> Figure:
    """Notebook 5: the largest stable step eta * L of gradient descent with a gradient d steps
    old, against d (log-log), with its large-delay behaviour pi / (2 d + 1) and the step
    1 / (4 d) that Koloskova et al.'s Theorem 8 allows a gradient d steps old."""
    from ..analysis.delayed_step import largest_stable_step

    delays = np.arange(0, max_delay + 1)
    exact = np.array([largest_stable_step(int(d)) for d in delays])
    fig, ax = plt.subplots(1, 1, figsize=(6.4, 3.6))
    ax.plot(delays + 1, exact, color=COLORS["constant"], marker="o", markersize=3,
            label="largest stable step, exact: 2 sin(pi / (4d + 2))")
    ax.plot(delays + 1, np.pi / (2 * delays + 1), color="grey", linestyle=":",
            label="pi / (2d + 1)")
    ax.plot(delays[1:] + 1, 1 / (4 * delays[1:]), color=COLORS["exponential"], linestyle="--",
            label="1 / (4d): Theorem 8's cap on a gradient d > tau_C steps old")
    ax.set(xscale="log", yscale="log", xlabel="delay d + 1 (log scale)",
           ylabel="eta * L (log scale)", title="Delayed gradient descent on a quadratic")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def plot_quadratic_run(history: History, predicted: float, step: float) -> Figure:
    """Notebook 5's demo: the training loss of one run on the quadratic, against the update,
    with the verdict (``History.stable``) and the largest stable step predicted for its
    delay."""
    loss = history.column("train_loss", "evals")
    updates = history.column("update", "evals")
    fig, ax = plt.subplots(1, 1, figsize=(6.4, 3.4))
    ax.plot(updates, loss, color=COLORS["constant"] if history.stable else COLORS["exponential"])
    ax.axhline(loss[0], color="grey", linestyle=":", linewidth=1)
    ax.set(yscale="log", xlabel="updates", ylabel="training loss (log scale)",
           title=f"server step {step:.3g}, predicted largest {predicted:.3g}: "
                 + ("stable" if history.stable else "unstable"))
    return fig


def plot_over_time(groups: Mapping[str, list], key: str = "train_loss", until: float | None = None,
                   log_y: bool = True) -> Figure:
    """Notebook 5: the mean of ``key`` over seeds against virtual time, one curve per setting
    (each seed's value at a time is its last evaluation before it), with a band: one
    standard deviation either side on a linear axis, the range over the seeds with ``log_y``
    (see :func:`plot_seed_bands`)."""
    from .convergence import at_time

    fig, ax = plt.subplots(1, 1, figsize=(7, 3.8))
    end = until or min(h.virtual_time for runs in groups.values() for h in runs)
    grid = np.linspace(0, end, 80)
    what = ""
    for i, (label, runs) in enumerate(groups.items()):
        values = np.array([[at_time(h, t, key) for t in grid] for h in runs])
        mean = values.mean(0)
        low, high, what = _band_edges(values, mean, log_y)
        color = color_for(label, i)
        ax.plot(grid, mean, color=color, marker=marker_for(label, i), markevery=10, markersize=4,
                label=f"{label} ({len(runs)} seeds)")
        ax.fill_between(grid, low, high, color=color, alpha=0.18, linewidth=0)
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel({"train_loss": "training loss", "accuracy": "test accuracy"}.get(key, key)
                  + (" (log scale)" if log_y else ""))
    if log_y:
        ax.set_yscale("log")
        low, high = ax.get_ylim()
        plain_log_axis(ax.yaxis, low, high)  # 0.3, 0.5, 1, 2, not 3 x 10^-1, 2 x 10^0
    # outside the axes, so that it covers no band (a seed's spike can reach the top)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="line: mean over seeds\n" + what,
              title_fontsize=9, alignment="left")
    return fig


# --- the design challenge ------------------------------------------------------------------
def plot_scoreboard(scores, metric: str = "accuracy") -> Figure:
    """The challenge: each entry's ``metric`` (``"accuracy"`` or ``"fairness"``) in every
    held-out scenario (left), and each entry's score (right), best first."""
    if metric not in ("accuracy", "fairness"):
        raise ValueError(f"metric={metric!r} is invalid: expected 'accuracy' or 'fairness'")
    scored = sorted([s for s in scores if s.score is not None], key=lambda s: -s.score)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    scenarios = list(scored[0].scenarios) if scored else []
    width = 0.8 / max(1, len(scored))
    for i, s in enumerate(scored):
        values = [s.scenarios[name][metric] for name in scenarios]
        left.bar(np.arange(len(scenarios)) + (i - (len(scored) - 1) / 2) * width, values,
                 width=width, color=cycle_color(i), label=s.name)
    left.set_xticks(range(len(scenarios)), [n.replace(", ", "\n") for n in scenarios], fontsize=7.5)
    left.set_ylabel({"accuracy": "tail accuracy", "fairness": "Jain's index of applied alpha"}[metric])
    left.set_ylim(0, 1.05)
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=3, fontsize=8)
    names = [s.name.replace("baseline: ", "") for s in scored]
    right.barh(range(len(scored))[::-1], [s.score for s in scored],
               color=[cycle_color(i) for i in range(len(scored))])
    right.set_yticks(range(len(scored))[::-1], names, fontsize=8)
    low = min((s.score for s in scored), default=0.0)
    right.set_xlim(max(0.0, low - 0.05), 1.0)
    right.set_xlabel("score: accuracy - 0.1 (1 - fairness)")
    return fig
