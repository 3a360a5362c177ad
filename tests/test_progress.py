"""Progress and logging: bars on long runs, silence on short ones, one flag turns them off."""

import logging

import mfgnet.progress
from mfgnet.agents.config import MFQConfig
from mfgnet.agents.mfq import TwoRoadGame, train_tabular
from mfgnet.benchmarks import ergodic_torus
from mfgnet.grid import solve_grid


def test_a_short_grid_solve_draws_no_bar(capsys):
    solve_grid(ergodic_torus(1).problem, cells=32)
    assert "grid 32" not in capsys.readouterr().err


def test_bars_show_once_a_run_is_long_and_one_flag_turns_them_off(capsys, monkeypatch):
    monkeypatch.setattr(mfgnet.progress, "SHOW_AFTER_S", 0.0)  # every run counts as long
    monkeypatch.setattr(mfgnet.progress, "REFRESH_S", 0.0)
    solve_grid(ergodic_torus(1).problem, cells=32)
    err = capsys.readouterr().err
    assert "grid 32" in err and "newton" in err and "residual" in err
    solve_grid(ergodic_torus(1).problem, cells=32, progress=False)
    assert "grid 32" not in capsys.readouterr().err
    train_tabular(TwoRoadGame(), 100, MFQConfig(steps=20))
    err = capsys.readouterr().err
    assert "MF-Q" in err and "20/20" in err and "mean reward" in err
    train_tabular(TwoRoadGame(), 100, MFQConfig(steps=20, progress=False))
    assert "MF-Q" not in capsys.readouterr().err


def test_verbose_iterations_are_log_lines(caplog):
    with caplog.at_level(logging.INFO, logger="mfgnet"):
        solve_grid(ergodic_torus(1).problem, cells=32, verbose=True)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("mfgnet.grid")]
    assert any("iteration" in line and "residual" in line for line in lines), lines
