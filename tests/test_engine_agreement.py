"""Whole runs of today's numpy engine against the torch engine it replaced (#30), over seeds.

The torch engine's runs were recorded once from a worktree of its last commit, with
``scripts/record_engine_runs.py`` (its docstring has the command), into
``tests/data/torch_engine_runs.json``. Today's runs are made here the same way. The two
engines draw different initial weights and splits from a seed, so single runs differ; what
must agree is the distribution over the eight seeds: for each algorithm, the means of the
final accuracy, of the last five evaluations' accuracy and of the last training loss, each
within the spread over seeds and within two standard errors of the difference of the two
means; and every run stable in both.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import record_engine_runs  # noqa: E402

RECORDED = json.loads((ROOT / "tests" / "data" / "torch_engine_runs.json").read_text())


@pytest.fixture(scope="module")
def today():
    return record_engine_runs.record()["runs"]


@pytest.mark.parametrize("algorithm", record_engine_runs.ALGORITHMS)
@pytest.mark.parametrize("measure", ["final_accuracy", "tail_accuracy", "last_train_loss"])
def test_the_means_agree_with_the_torch_engine_within_the_spread_over_seeds(today, algorithm, measure):
    old = np.array([r[measure] for r in RECORDED["runs"][algorithm]])
    new = np.array([r[measure] for r in today[algorithm]])
    assert len(old) == len(new) == len(record_engine_runs.SEEDS)
    spread = max(np.ptp(old), np.ptp(new))
    gap = abs(new.mean() - old.mean())
    assert gap <= spread, (f"{algorithm} {measure}: numpy engine {new.mean():.3f} "
                           f"(range {new.min():.3f}-{new.max():.3f}), torch engine {old.mean():.3f} "
                           f"(range {old.min():.3f}-{old.max():.3f}): the means differ by {gap:.3f}, "
                           f"more than the spread over seeds ({spread:.3f})")
    standard_error = np.sqrt(old.var(ddof=1) / len(old) + new.var(ddof=1) / len(new))
    assert gap <= 2 * standard_error, (f"{algorithm} {measure}: the means differ by {gap:.4f}, "
                                       f"more than two standard errors ({2 * standard_error:.4f})")


@pytest.mark.parametrize("algorithm", record_engine_runs.ALGORITHMS)
def test_every_run_is_stable_in_both_engines(today, algorithm):
    assert all(r["stable"] for r in RECORDED["runs"][algorithm]), "the recorded runs"
    assert all(r["stable"] for r in today[algorithm]), [r["seed"] for r in today[algorithm] if not r["stable"]]


def test_the_recording_names_the_torch_engines_commit():
    assert RECORDED["commit"].startswith("475f634")
