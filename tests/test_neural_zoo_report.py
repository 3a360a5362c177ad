"""The zoo experiment's report: which targets a row misses, the compact table and the figure."""


def _row(problem, m, u, mass, wall):
    return {"problem": problem, "rel_l2_m": m, "rel_l2_u": u, "mass_error": mass, "wall_s": wall,
            "converged": False}


def test_missed_targets_name_each_target_a_row_misses(experiment_script):
    zoo = experiment_script("neural_zoo")
    assert zoo.missed_targets(_row("box_bump_1d", 0.01, 0.01, 1e-6, 100.0)) == []
    assert zoo.missed_targets(_row("box_bump_1d", 0.031, 0.01, 1e-6, 301.0)) == ["m", "wall"]
    assert zoo.missed_targets(_row("box_bump_1d", 0.01, 0.06, 2e-3, 100.0)) == ["u", "mass"]
    # A NaN error is a miss, never a pass.
    assert zoo.missed_targets(_row("box_bump_1d", float("nan"), 0.01, 1e-6, 100.0)) == ["m"]


def test_summary_table_and_figure(tmp_path, experiment_script):
    zoo = experiment_script("neural_zoo")
    rows = [_row("box_bump_2d", 0.076, 0.027, 1.2e-4, 236.0), _row("ergodic_torus_2d", 0.0011, 0.0047, 8e-8, 31.0),
            _row("lq_offset_1d", 0.0081, 0.0012, 1e-8, 310.0)]
    lines = zoo.summary_lines(rows)
    assert len(lines) == 2 + len(rows)
    assert lines[2].startswith("| box_bump_2d | box, 2D, time-dependent | 0.076 | 0.027 |")
    assert lines[2].endswith("| m |")
    assert "| torus, 2D, ergodic |" in lines[3] and lines[3].endswith("| none |")
    assert "| R^d, 1D, time-dependent |" in lines[4] and lines[4].endswith("| wall |")
    path = zoo.plot_rows(rows, tmp_path / "zoo.png")
    assert path.exists() and path.stat().st_size > 10_000


def test_the_error_of_m_is_reported_at_every_evaluation_time(experiment_script):
    import numpy as np
    import torch

    from mfgnet.problems.zoo import ZOO

    zoo = experiment_script("neural_zoo")
    problem = ZOO["readme_box_1d"]()
    times = np.array([0.0, 0.5, 1.0])
    x = np.linspace(0.0, 1.0, 41)[:, None]
    # a "solution" 10 % off the reference at t = 0.5 and exact elsewhere (u exact everywhere)
    ref_m = np.stack([1.0 + 0.5 * np.cos(np.pi * x[:, 0]) * (1 + t) for t in times])
    ref = {"times": times, "x": x, "m": ref_m, "u": np.ones_like(ref_m)}

    class Off:
        def __init__(self):
            self.problem = problem

        def value(self, t, x):
            return torch.ones(x.shape[0], dtype=torch.float64)

        def density(self, t, x):
            m = 1.0 + 0.5 * torch.cos(torch.pi * x[:, 0]) * (1 + t)
            return m * (1.1 if t == 0.5 else 1.0)

    zoo.mass_error = lambda solution, n_times: 0.0  # not what this test is about
    out = zoo.evaluate("readme_box_1d", Off(), ref)
    assert out["rel_l2_m_by_time"] == {"0": 0.0, "0.5": out["rel_l2_m_by_time"]["0.5"], "1": 0.0}
    assert abs(out["rel_l2_m_by_time"]["0.5"] - 0.1) < 1e-12
    assert out["m_worst_time"] == "t=0.5: 0.1"
    total = np.sqrt(0.1 ** 2 * (ref_m[1] ** 2).sum() / (ref_m ** 2).sum())
    assert abs(out["rel_l2_m"] - total) < 1e-12


def test_reference_check_measures_a_coarse_grid_against_the_cached_reference(tmp_path, monkeypatch,
                                                                             experiment_script):
    """experiments/neural_zoo_references.py: a check on a coarser pair (here 60 and 80 cells against readme_box_1d's
    cached 400 / 800 Richardson) is close to the reference but not equal to it, first order further off than the
    extrapolation, and the table and JSON record the row."""
    import json

    checks = experiment_script("neural_zoo_references")
    spec = dict(checks.REFERENCE["readme_box_1d"])
    monkeypatch.setitem(checks.REFERENCE, "readme_box_1d", {**spec, "cells": 40, "time_steps": 40})
    monkeypatch.setattr(checks, "CHECKS", tmp_path / "checks.json")
    row = checks.check("readme_box_1d")
    assert row["check_cells"] == [60, 80] and row["converged"]
    assert 1e-4 < row["rel_l2_m"] < 2e-2 and row["rel_l2_u"] < 2e-2
    assert row["first_order_2n_rel_l2_m"] > row["rel_l2_m"]  # the extrapolation removes most of the first-order error
    assert row["rel_l2_m_worst_later"] >= 0 and 0 < row["worst_later_time"] <= 1
    assert checks.check("lq_offset_1d") is None  # exact references are not checked
    checks.write({"readme_box_1d": row})
    assert json.loads((tmp_path / "checks.json").read_text())["readme_box_1d"]["check_cells"] == [60, 80]
    assert "| readme_box_1d | 40 | 60 / 80 |" in (tmp_path / "checks.md").read_text()
