"""What the plots draw is honest: the t = 0 evaluation is not clipped on a log-time
axis, curves differ by marker as well as colour, timeline colours mean speed, the
weighting legend covers no curve, the alpha sweep is readable, and a diverged run's
cross carries no update count."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fedasync_lib import experiments, lesson, plots  # noqa: E402

LESSON = lesson.LESSON


def data_lines(ax):
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def test_log_time_curves_start_at_the_left_edge_with_the_initial_accuracy():
    runs = lesson.compare_weightings()
    fig = plots.plot_convergence(runs, log_time=True)
    ax_t = fig.axes[0]
    left = ax_t.get_xlim()[0]
    for line, h in zip(data_lines(ax_t), runs.values()):
        x, y = line.get_xdata(), line.get_ydata()
        assert line.get_drawstyle() == "steps-post"
        assert x[0] == left and y[0] == h.evals[0]["accuracy"]  # t = 0, drawn at the edge
        assert np.all(x[1:] > left)  # every real evaluation is inside the axis
        # steps: until its first evaluation after t = 0 the sequential run shows its start
        if h is runs["sequential"]:
            assert x[1] == h.evals[1]["time"] > 50 and y[0] < 0.2
    plt.close(fig)


def test_log_time_floor_is_below_every_positive_evaluation():
    runs = experiments.sync_vs_async(1.5)
    floor = plots.log_time_floor(runs)
    assert 0 < floor < min(e["time"] for h in runs.values() for e in h.evals if e["time"] > 0)
    fig = plots.plot_sync_vs_async(runs, 0.9)
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_xlim()[0] == floor
    plt.close(fig)


def test_curves_differ_by_marker_not_only_by_colour():
    fig = plots.plot_convergence(lesson.compare_weightings(), log_time=True)
    for ax in fig.axes[:2]:
        markers = [ln.get_marker() for ln in data_lines(ax)]
        assert len(set(markers)) == len(markers) == 5
    plt.close(fig)
    fig = plots.plot_sync_vs_async(experiments.sync_vs_async(1.5), 0.9)
    assert len({ln.get_marker() for ln in data_lines(fig.axes[1])}) == 3
    plt.close(fig)


def test_timeline_colours_encode_speed_with_a_colorbar():
    t = lesson.timelines(5, 1.0)
    fig = plots.plot_timelines(t)
    top = fig.axes[0]
    norm, cmap = plots.speed_norm(t.client_latency), plt.get_cmap(plots.SPEED_CMAP)
    for bar, job in zip(top.patches, [j for j in t.sync_jobs if j.start_time < max(t.sync_time, t.async_time)]):
        assert np.allclose(bar.get_facecolor()[:3], cmap(norm(t.client_latency[job.client_id]))[:3])
    assert any("job time" in ax.get_ylabel() for ax in fig.axes)  # the colorbar says what colour means
    plt.close(fig)


def test_weighting_legend_sits_outside_the_axes():
    fig = plots.plot_weighting_functions(lesson.weighting_curves(0.5, 0.5, 10.0, 4), mixing_alpha=0.9)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # right of the plotting area: covers no curve
    plt.close(fig)


def test_alpha_sweep_draws_few_readable_curves_and_axes_from_zero():
    sweep = lesson.alpha_sweep([0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0])
    fig = plots.plot_alpha_sweep(sweep)
    left, right = fig.axes[0], fig.axes[1]
    lines = data_lines(left)
    assert len(lines) == 4 and len({ln.get_marker() for ln in lines}) == 4
    for ln in lines:  # no pale yellow: every colour is dark enough to read on white
        r, g, b, _ = matplotlib.colors.to_rgba(ln.get_color())
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.75
    assert right.get_ylim()[0] == 0 and left.get_ylim()[0] == 0
    assert len(data_lines(right)[0].get_xdata()) == 8  # the summary keeps every alpha
    plt.close(fig)


def test_diverged_run_is_marked_without_an_update_count():
    runs = {"lr 0.1": lesson.simulate(LESSON), "lr 3": lesson.simulate(LESSON.replace(learning_rate=3.0))}
    assert runs["lr 3"].diverged
    fig = plots.plot_convergence(runs)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts and all("diverged" in t and not any(ch.isdigit() for ch in t) for t in texts)
    plt.close(fig)
