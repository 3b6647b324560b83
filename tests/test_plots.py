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


# --- the reviewer's misleading figures ------------------------------------------------------
from types import SimpleNamespace  # noqa: E402

from fedasync_lib.core.history import History  # noqa: E402
from fedasync_lib.teaching.experiments import BoundResult  # noqa: E402


def _loss_history(losses):
    return History("fedasync", evals=[{"update": 10 * k, "time": float(k), "train_loss": v}
                                      for k, v in enumerate(losses)])


def test_seed_band_on_a_log_axis_stays_above_zero_and_says_what_it_is():
    # one seed's spike makes mean - s.d. negative at update 10
    runs = [_loss_history([2.0, 0.1, 0.05]), _loss_history([2.0, 0.1, 0.06]),
            _loss_history([2.0, 3.0, 0.05])]
    grid, mean, std = plots.seed_band(runs, "train_loss")
    assert (mean - std)[1] < 0
    fig = plots.plot_seed_bands({"alpha 1": runs}, y="train_loss", log_y=True)
    ax = fig.axes[0]
    (band,) = ax.collections
    ys = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
    assert ys.min() > 0 and np.isclose(ys.min(), 0.05) and np.isclose(ys.max(), 3.0)  # min to max
    assert "lowest to highest" in ax.get_legend().get_title().get_text()
    plt.close(fig)
    fig = plots.plot_seed_bands({"alpha 1": runs}, y="train_loss")
    assert "s.d." in fig.axes[0].get_legend().get_title().get_text()
    plt.close(fig)


def _inside(inner, outer, slack=0.5):
    return (inner.x0 >= outer.x0 - slack and inner.x1 <= outer.x1 + slack
            and inner.y0 >= outer.y0 - slack and inner.y1 <= outer.y1 + slack)


def test_staleness_prediction_has_few_log_labels_and_no_marker_on_the_frame():
    d = np.geomspace(0.13, 7.5, 40)
    share = np.full(40, 1 / 40)
    p = SimpleNamespace(durations=d, measured=9 * d, measured_share=share, predicted=9 * d,
                        mean_field=8.5 * d, predicted_share=share, concurrency=10, num_clients=40)
    fig = plots.plot_staleness_prediction(p)
    fig.canvas.draw()
    left = fig.axes[0]
    labels = [t for t in left.get_xticklabels() + left.get_xticklabels(minor=True) if t.get_text()]
    assert 2 <= len(labels) <= 6
    boxes = [t.get_window_extent() for t in labels]
    assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    frame = left.get_window_extent()
    (points,) = left.collections
    centres = left.transData.transform(points.get_offsets())
    radius = np.sqrt(points.get_sizes()) / 2 * fig.dpi / 72
    assert np.all(centres - radius[:, None] > [frame.x0, frame.y0])
    assert np.all(centres + radius[:, None] < [frame.x1, frame.y1])
    plt.close(fig)


def test_a_diverged_run_is_stopped_by_a_line_not_a_data_marker():
    stopped = lesson.simulate(LESSON.replace(learning_rate=3.0))
    fig = plots.plot_convergence({"lr 0.1": lesson.simulate(LESSON), "lr 3": stopped})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax, key in zip(fig.axes[:2], ("time", "update")):
        assert all(ln.get_marker() not in ("x", "X") for ln in ax.get_lines())
        stop = [ln for ln in ax.get_lines() if ln.get_label() == "_stopped"]
        assert len(stop) == 1 and np.allclose(stop[0].get_xdata(), stopped.evals[-1][key])
        assert list(stop[0].get_ydata()) == [0, 1]  # across the axis, in axes coordinates
        for text in ax.texts:  # the label is inside the axes: nothing clipped
            assert "stopped" in text.get_text()
            assert _inside(text.get_window_extent(renderer), ax.get_window_extent())
    plt.close(fig)


def test_bound_sweep_reference_line_is_visible_when_a_policy_lies_on_it():
    def rows(policy, times):
        return [BoundResult(policy, b, 0.9, 0.0, 0.0, t, 0, None)
                for b, t in zip([0, 5, None], times)]
    fig = plots.plot_bound_sweep({"drop": rows("drop", [15.7, 15.7, 15.7]),
                                  "wait": rows("wait", [1000.0, 500.0, 15.7])})
    clock = fig.axes[2]
    ref = [ln for ln in clock.get_lines() if ln.get_label() == "no bound"][0]
    assert all(ref.get_zorder() > ln.get_zorder() for ln in clock.get_lines() if ln is not ref)
    low, high = clock.get_ylim()
    assert np.log10(15.7) - np.log10(low) > 0.05 * (np.log10(high) - np.log10(low))  # off the frame
    assert any("no bound" in t.get_text() for t in clock.texts)
    plt.close(fig)


def test_fault_tolerance_shades_the_stall_before_the_loss_was_detected():
    lost_worker = "tcp://a"
    jobs = [{"worker": w, "arrived": t} for w, t in ((lost_worker, 0.5), (lost_worker, 1.0),
                                                     ("tcp://b", 2.0), ("tcp://b", 4.0))]
    incidents = [{"time": 3.5, "event": "worker lost", "worker": lost_worker, "client_ids": [1, 3]},
                 {"time": 3.5, "event": "job lost", "client_id": 1, "worker": lost_worker}]
    h = History("fedasync", evals=[{"update": 0, "time": 0.0, "accuracy": 0.1},
                                   {"update": 10, "time": 4.0, "accuracy": 0.9}],
                incidents=incidents, jobs=jobs, clock="wall-clock")
    with plt.style.context(plots.STYLE):  # the lesson's style (constrained layout), as in the notebooks
        fig = plots.plot_fault_tolerance(h)
        fig.canvas.draw()
    ax = fig.axes[0]
    (span,) = [p for p in ax.patches if "failure detection" in p.get_label()]
    # from the lost worker's last result to the moment it was declared lost, in data x
    x0, x1 = ax.transData.inverted().transform(span.get_window_extent().get_points())[:, 0]
    assert np.isclose(x0, 1.0, atol=0.02) and np.isclose(x1, 3.5, atol=0.02)
    assert not ax.texts  # what the marks are is in the legend, which fits in the figure
    assert _inside(ax.get_legend().get_window_extent(), fig.bbox)
    plt.close(fig)
