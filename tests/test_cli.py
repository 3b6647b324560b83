import subprocess
import sys

import pytest

from fedasync_lib.__main__ import main


def test_demo_prints_the_summary(capsys):
    assert main(["--num-updates", "40", "--concurrency", "5"]) == 0
    out = capsys.readouterr().out
    for phrase in ("final test accuracy", "updates applied", "updates rejected",
                   "staleness mean / max", "virtual time"):
        assert phrase in out


def test_none_is_accepted_for_optional_fields(capsys):
    main(["--num-updates", "20", "--max-staleness", "none", "--dirichlet-alpha", "0.5"])
    assert "max_staleness=None" in capsys.readouterr().out


def test_bad_flag_value_is_a_clear_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--concurrency", "0"])
    assert exit_info.value.code == 2
    assert "concurrency=0 is invalid: expected an integer in [1, 20]" in capsys.readouterr().err


def test_module_runs_as_a_program():
    done = subprocess.run([sys.executable, "-m", "fedasync_lib", "--num-updates", "20"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "FedAsync on synthetic" in done.stdout


def test_config_file_is_read_and_flags_override_it(tmp_path, capsys):
    path = tmp_path / "experiment.json"
    path.write_text('{"dataset": "digits", "concurrency": 3, "num_updates": 30}')
    assert main(["--config", str(path), "--concurrency", "1"]) == 0
    out = capsys.readouterr().out
    assert "FedAsync on digits: 20 clients, 1 training at once" in out
    assert "updates applied       30" in out


def test_config_file_with_unknown_fields_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text('{"dataset": "digits", "clients": 5}')
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(path)])
    assert exit_info.value.code == 2
    assert "unknown AsyncConfig fields ['clients']" in capsys.readouterr().err
