"""The simulator without torch: what runs in the browser (Pyodide has no torch).

Each test runs in a fresh Python process in which ``import torch`` fails, as it does where
torch is not installed. (``sys.modules["torch"] = None`` hides it too, but scikit-learn's
copy of array-api-compat then finds ``None`` under "torch" in ``sys.modules`` and fails on
it; a finder that refuses the import is what a machine without torch looks like.)
"""

import subprocess
import sys
import textwrap

HIDE_TORCH = textwrap.dedent('''
    import sys

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoTorch())
''')


def without_torch(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", HIDE_TORCH + textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=240,
                            env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_torch_is_really_hidden():
    out = without_torch('''
        try:
            import torch
        except ModuleNotFoundError as err:
            print("refused:", err)
    ''')
    assert "refused: No module named 'torch'" in out


def test_the_default_and_the_lessons_experiments_run_without_torch():
    out = without_torch('''
        import math
        from fedasync_lib import AsyncConfig, LinearModel, run
        from fedasync_lib.teaching import lesson

        for config in (AsyncConfig(), lesson.LESSON):
            for algorithm in ("fedasync", "fedbuff", "fedavg"):
                h = run(config, algorithm)
                assert len(h.updates) == config.num_updates and not h.diverged, algorithm
                assert h.final_accuracy > h.evals[0]["accuracy"], algorithm
                assert all(math.isfinite(e["train_loss"]) for e in h.evals)
        h = run(AsyncConfig(num_updates=20, eval_every=10, track_grad_norm=True))
        assert all(math.isfinite(e["grad_norm_sq"]) for e in h.evals)
        least_squares = LinearModel(64, 10, seed=1, loss="squared_error")
        h = run(lesson.LESSON.replace(num_updates=40, learning_rate=0.01), "fedbuff", model=least_squares)
        assert h.evals[-1]["train_loss"] < h.evals[0]["train_loss"]
        print("torch" in sys.modules)
    ''')
    assert out.strip() == "False"


def test_the_lessons_modules_checkers_and_a_learners_hooks_work_without_torch():
    """Everything notebooks 1-5, E1-E4, the challenge and the classroom app import, and a
    learner's mix and buffer_step, which receive numpy arrays."""
    out = without_torch('''
        import numpy as np
        from fedasync_lib import exercises, lesson, plots, run
        from fedasync_lib.algorithms.fedbuff import fedbuff_step
        from fedasync_lib.teaching import (challenge, convergence, experiments, lesson_checks,
                                           widgets)

        def my_mix(server, client, alpha):
            assert all(isinstance(v, np.ndarray) for v in server.values())
            return {k: (1 - alpha) * server[k] + alpha * client[k] for k in server}

        assert lesson_checks.check_mix(my_mix)
        assert exercises.check_exercise_4(fedbuff_step)
        h = run(lesson.LESSON.replace(num_updates=30), "fedbuff", buffer_step=fedbuff_step)
        assert len(h.updates) == 30
        print("torch" in sys.modules)
    ''')
    assert out.strip().splitlines()[-1] == "False"


def test_a_torch_model_without_torch_is_a_clear_error():
    out = without_torch('''
        import fedasync_lib
        try:
            fedasync_lib.DigitsCNN
        except ModuleNotFoundError as err:
            print("error:", err)
        from fedasync_lib import AsyncConfig, run
        try:
            run(AsyncConfig(num_updates=5), model="a module")
        except ValueError as err:
            print("error:", err)
    ''')
    assert "error: No module named 'torch'" in out
    assert "expected a built-in model (AsyncModel, LinearModel) or a torch.nn.Module" in out
