"""The fast-client bias, measured and corrected: participation weighting spreads the applied
update mass more evenly (Jain's index of applied alpha) on the lesson's non-IID split, over
seeds, and lifts the accuracy on the digits held by the slow clients in Exercise E2's
experiment; and the design challenge scores entries, baselines and broken ones alike."""

import numpy as np
import pytest

from fedasync_lib import AsyncConfig, run
from fedasync_lib.algorithms.adaptive import ParticipationWeighted, participation_weighted
from fedasync_lib.algorithms.aggregator import MixingContext
from fedasync_lib.teaching import challenge, experiments, lesson
from fedasync_lib.teaching.exercises import example_context

SEEDS = (1, 2, 3, 4)


def test_participation_weighting_spreads_the_influence_on_the_lessons_split():
    base, weighted = [], []
    for seed in SEEDS:
        cfg = lesson.LESSON.replace(seed=seed)
        data = lesson.federated_data(cfg)
        base.append(run(cfg, "fedasync", data).jain_index(by="alpha"))
        weighted.append(run(cfg, "fedasync", data,
                            mixing_rule=participation_weighted()).jain_index(by="alpha"))
    assert all(w > b for w, b in zip(weighted, base)), (base, weighted)


def test_participation_weighting_helps_the_slow_clients_digits():
    gains = [r.slow_digit_accuracy["weighted"] - r.slow_digit_accuracy["plain"]
             for r in (experiments.bias_correction(seed) for seed in SEEDS)]
    assert all(g > 0 for g in gains), gains


def test_the_weight_is_the_mean_interval_over_the_number_of_clients():
    rule = ParticipationWeighted(cap=1.0)
    cfg = AsyncConfig(num_clients=4, concurrency=2, mixing_alpha=0.5, staleness="constant",
                      max_staleness=None)

    def ctx(client, version):
        c = example_context(0, 0.01, 0.5, client_id=client, version=version)
        return MixingContext(c.update, 0, c.server_state, version, 1.0, cfg)

    assert rule(ctx(0, 0)) == 0.5  # nothing known yet: FedAsync's rate
    assert rule(ctx(0, 2)) == pytest.approx(0.5 * 1 / 4)  # one interval of 1 (from -1 to 0)
    assert rule.weight(0, 4) == pytest.approx((1 + 2) / 2 / 4)
    assert rule(ctx(1, 10)) == 0.5  # client 1's first update; its interval from the start is 11
    assert rule(ctx(1, 22)) == 1.0  # 0.5 * 11 / 4 = 1.375, capped at 1
    rule(ctx(2, 0))  # the version went back: a new run, nothing remembered
    assert rule.weight(0, 4) == 1.0
    with pytest.raises(ValueError, match="cap=2 is invalid"):
        participation_weighted(cap=2)


def test_the_challenge_scores_baselines_and_a_learners_entry_in_time():
    board = challenge.baselines()
    assert [s.name for s in board][0] == "baseline: fixed alpha" and all(s.score for s in board)
    for s in board:
        assert s.score == pytest.approx(s.accuracy - challenge.FAIRNESS_WEIGHT * (1 - s.fairness))
        assert len(s.scenarios) == len(challenge.SCENARIOS) and s.seconds < 30

    def learner_rule(ctx):  # a learner-style entry: staleness weighting, written by hand
        return ctx.config.mixing_alpha / (1 + ctx.staleness) ** 0.5

    mine = challenge.score("learner", learner_rule)
    assert mine.score is not None and mine.seconds < 30
    broken = challenge.score("broken", lambda ctx: 1 / 0)
    assert broken.score is None and "ZeroDivisionError" in broken.error
    text = challenge.scoreboard(board + [mine, broken])
    assert text.splitlines()[-1].strip().startswith("broken")


def test_claim_the_challenge_baselines_trade_accuracy_against_fairness():
    """The design challenge's answer: staleness weighting (polynomial, hinge) is the most
    accurate and the least fair; participation weighting and fewest-first scheduling are the
    fairest, and less accurate; no baseline is best at both."""
    board = {s.name.split(": ")[1].split(" (")[0]: s for s in challenge.baselines()}
    by_accuracy = sorted(board, key=lambda n: -board[n].accuracy)
    by_fairness = sorted(board, key=lambda n: -board[n].fairness)
    assert set(by_accuracy[:2]) == {"polynomial", "hinge"}, by_accuracy
    assert set(by_fairness[-2:]) == {"polynomial", "hinge"}, by_fairness
    assert set(by_fairness[:2]) == {"participation weighted", "fewest-first scheduler"}, by_fairness
    assert by_accuracy[0] != by_fairness[0]


def test_a_teacher_collects_entries_into_one_board(tmp_path):
    entry = challenge.score("Ada's rule", lambda ctx: ctx.config.mixing_alpha / (1 + ctx.staleness))
    path = challenge.save(entry, tmp_path)
    assert path.name == "Ada_s_rule.json"
    (tmp_path / "notes.json").write_text("[1, 2]")
    board = challenge.board(tmp_path)
    assert [s.name for s in board] == ["Ada's rule"] and board[0].score == entry.score
