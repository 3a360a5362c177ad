"""Figures a researcher would put in a paper: checked on the figure objects, not on pixels.

Every panel has axis labels, every image a labelled colour bar, every curve a legend entry;
error panels appear wherever a reference exists; histories are on log axes with the
tolerance and the solver's phases marked; sweep plots use the swept value (never job
numbers) on log-log axes with the fitted slope in the legend.
"""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from mfgnet.agents.tasks import action_names, actions_figure, exploitability_figure
from mfgnet.benchmarks import ergodic_torus, hopf_cole, lq_gaussian
from mfgnet.evaluation.comparison import densities_figure
from mfgnet.evaluation.plots import history_figure, solution_figure
from mfgnet.evaluation.style import DPI
from mfgnet.evaluation.sweep import histories_figure, metric_vs_figure
from mfgnet.solution import ExactSolution


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def shifted(bench, eps=0.01):
    """The exact solution with u and m scaled by (1 + eps): a stand-in for a solver's answer."""
    problem, exact = bench
    return ExactSolution(problem, lambda t, x: (1 + eps) * exact._value(t, x),
                         lambda t, x: (1 + eps) * exact._density(t, x), exact.ergodic_constant)


def plot_axes(fig):
    """The panels of a figure, without colour-bar axes."""
    bars = {im.colorbar.ax for ax in fig.axes for im in ax.images if im.colorbar is not None}
    return [ax for ax in fig.axes if ax not in bars]


def assert_labelled(fig):
    for ax in plot_axes(fig):
        if not ax.axison:
            continue
        assert ax.get_xlabel() or ax.get_shared_x_axes().get_siblings(ax) != [ax], ax.get_title()
        assert ax.get_ylabel(), ax.get_title()
        for im in ax.images:
            assert im.colorbar is not None, f"no colour bar on {ax.get_title()!r}"
            assert im.colorbar.ax.get_ylabel(), f"unlabelled colour bar on {ax.get_title()!r}"
        for line in ax.get_lines():
            label = line.get_label()
            if not label.startswith("_"):  # a named curve must be in a legend
                legends = [a.get_legend() for a in plot_axes(fig) if a.get_legend() is not None]
                assert any(label in [t.get_text() for t in lg.get_texts()] for lg in legends), label


def titles(fig):
    return [ax.get_title() for ax in plot_axes(fig)]


def test_dpi_is_paper_quality():
    assert DPI >= 150


def test_1d_time_dependent_has_u_and_m_error_panels():
    bench = hopf_cole()
    fig = solution_figure(shifted(bench), reference=bench.exact, reference_name="exact")
    assert len(plot_axes(fig)) == 4
    assert_labelled(fig)
    bar_labels = [im.colorbar.ax.get_ylabel() for ax in plot_axes(fig) for im in ax.images]
    assert bar_labels == ["u(t, x)", "m(t, x)", "u − u_exact", "m − m_exact"]
    assert {ax.get_xlabel() for ax in plot_axes(fig)} == {"x"} and {ax.get_ylabel() for ax in plot_axes(fig)} == {"t"}
    assert len(plot_axes(solution_figure(bench.exact))) == 2  # no reference, no error panels


def test_1d_ergodic_curves_and_errors():
    bench = ergodic_torus(1)
    fig = solution_figure(shifted(bench), reference=bench.exact, reference_name="exact")
    assert len(plot_axes(fig)) == 4
    assert_labelled(fig)
    assert [ax.get_ylabel() for ax in plot_axes(fig)][2:] == ["u − u_exact", "m − m_exact"]


@pytest.mark.parametrize("bench, panels", [(ergodic_torus(2), 4), (lq_gaussian(2), 12)])
def test_2d_snapshots_have_axes_colour_bars_and_u_m_errors(bench, panels):
    fig = solution_figure(shifted(bench), reference=bench.exact, reference_name="exact")
    assert len(plot_axes(fig)) == panels
    assert_labelled(fig)
    labels = {ax.get_xlabel() + ax.get_ylabel() for ax in plot_axes(fig)}
    assert labels == {"x₁x₂"}
    bar_labels = {im.colorbar.ax.get_ylabel() for ax in plot_axes(fig) for im in ax.images}
    assert {"m − m_exact", "u − u_exact"} <= bar_labels


def test_slices_above_2d_have_error_panels():
    bench = lq_gaussian(3)
    fig = solution_figure(shifted(bench), reference=bench.exact)
    assert len(plot_axes(fig)) == 4
    assert_labelled(fig)


def legend_texts(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_grid_history_marks_picard_newton_and_tolerance():
    history = {"residual": [5.0, 1.0, 0.5, 1e-3, 1e-9, 1e-12, 2e-12],
               "phase": ["picard"] * 3 + ["newton"] * 3 + ["final"], "tolerance": 1e-10}
    fig = history_figure(history)
    (ax,) = plot_axes(fig)
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    texts = legend_texts(fig)
    assert {"residual", "tolerance 1e-10", "Picard iterations", "Newton iterations"} <= set(texts)
    assert_labelled(fig)


def test_neural_history_marks_adam_lbfgs_and_every_term():
    n_adam, n_lbfgs = 5, 2
    n = n_adam + n_lbfgs
    history = {"loss": list(np.geomspace(10, 1e-2, n)), "hjb": list(np.geomspace(5, 1e-3, n)),
               "fp": list(np.geomspace(4, 1e-3, n)), "terminal": [0.1] * n, "initial": [0.2] * n,
               "mass": [1e-3] * n, "lambda": [0.5] * n, "lr": [1e-3] * n_adam + [1.0] * n_lbfgs,
               "residual": list(np.geomspace(3, 0.05, n)), "phase": ["adam"] * n_adam + ["lbfgs"] * n_lbfgs,
               "step": [1, 2, 3, 4, 5, 15, 25], "tolerance": 1e-2}
    fig = history_figure(history)
    loss_ax = plot_axes(fig)[0]
    assert loss_ax.get_yscale() == "log"
    texts = legend_texts(fig)
    for label in ("loss (weighted sum)", "HJB residual²", "FP residual²", "terminal", "initial", "mass", "residual",
                  "λ", "learning rate", "tolerance 1e-02 (on the residual)", "Adam steps", "L-BFGS iterations"):
        assert label in texts, (label, texts)
    assert_labelled(fig)


def fake_runs(cells, sigmas=(None,)):
    runs = []
    for s in sigmas:
        for c in cells:
            overrides = {"solver.cells": c} | ({} if s is None else {"problem.sigma": s})
            err = 3.0 / c * (1 if s is None else s)
            runs.append({"job": str(len(runs)), "overrides": overrides,
                         "metrics": {"rel_l2_m": err, "rel_l2_u": err / 2},
                         "history": {"residual": [1.0, 1e-6, 1e-11], "phase": ["picard", "newton", "final"],
                                     "tolerance": 1e-10}})
    return runs


def test_sweep_plot_one_key_is_log_log_with_slopes():
    runs = fake_runs([64, 128, 256, 512])
    fig = metric_vs_figure(runs, "solver.cells", ["solver.cells"], ["rel_l2_m", "rel_l2_u"])
    (ax,) = plot_axes(fig)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "solver.cells" and ax.get_ylabel()
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(lines) == 2
    for line in lines:
        assert list(line.get_xdata()) == [64, 128, 256, 512]  # the swept values, never job numbers
    texts = legend_texts(fig)
    assert all("slope -1.00" in t for t in texts), texts


def test_sweep_plot_several_keys_one_curve_per_other_key():
    runs = fake_runs([64, 128, 256], sigmas=(0.5, 1.0))
    fig = metric_vs_figure(runs, "solver.cells", ["solver.cells", "problem.sigma"], ["rel_l2_m"])
    (ax,) = plot_axes(fig)
    texts = legend_texts(fig)
    assert len(texts) == 2 and all("problem.sigma=" in t and "slope -1.00" in t for t in texts), texts
    for line in ax.get_lines():
        assert list(line.get_xdata()) == [64, 128, 256]


def test_sweep_histories_have_tolerance_and_phases():
    runs = fake_runs([64, 128])
    fig = histories_figure(runs, ["solver.cells"])
    (ax,) = plot_axes(fig)
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    texts = legend_texts(fig)
    assert {"solver.cells=64", "solver.cells=128", "tolerance 1e-10", "Picard iteration", "Newton iteration"} <= set(
        texts)


@pytest.mark.parametrize("bench, panels", [(hopf_cole(), 6), (ergodic_torus(2), 3)])
def test_comparison_densities_have_error_panels(bench, panels):
    fig = densities_figure({"solver": shifted(bench)}, exact=bench.exact)
    visible = [ax for ax in plot_axes(fig) if ax.axison]
    assert len(visible) == panels
    assert_labelled(fig)


def test_agents_figures_have_colour_bars_and_action_names():
    from mfgnet.agents.mfq import GAMES

    assert action_names(GAMES["two_road_traffic"]()) == ["road A", "road B"]
    assert action_names(GAMES["ride_sharing"](n_prices=3))[0].startswith("price level 0")
    assert all(not n.startswith("action") for n in action_names(GAMES["ising"](side=4)))
    fig = exploitability_figure(np.geomspace(1, 1e-3, 10), np.full((4, 3), 1 / 3), "toy", "fp")
    assert_labelled(fig)
    assert plot_axes(fig)[0].get_yscale() == "log"
    fig = exploitability_figure(np.geomspace(1, 1e-3, 10), np.full((4, 3, 2), 1 / 6), "toy", "omd")
    assert_labelled(fig)
    fig = actions_figure(np.arange(5), np.full((5, 2), 0.5), ["road A", "road B"], "toy")
    assert legend_texts(fig) == ["road A", "road B"]
    assert_labelled(fig)



def test_grid_history_json_has_residual_and_phases(tmp_path, run_mfgnet):
    run_mfgnet(["solver=grid", "solver.cells=32"], tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    assert set(history) == {"residual", "phase", "tolerance"}
    assert len(history["phase"]) == len(history["residual"])
    assert history["phase"][0] == "picard" and "newton" in history["phase"] and history["phase"][-1] == "final"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert history["phase"].count("picard") == metrics["picard_iterations"]
    assert history["phase"].count("newton") == metrics["newton_iterations"]
    assert history["tolerance"] == 1e-10
    assert (tmp_path / "history.png").exists()


def test_neural_history_json_has_every_term_per_step(tmp_path, run_mfgnet):
    torch.set_num_threads(1)
    run_mfgnet(["problem=hopf_cole", "solver=neural", "solver.steps=3", "optim=adam_lbfgs",
                    "optim.lbfgs_steps=2", "solver.log_every=1", "solver.checkpoint_every=1000000",
                    "solver.n_eval=64", "model.hard_terminal=false", "model.hard_initial=off"], tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    # (with the exact constructions off, so that the terminal and initial terms are losses)
    for key in ("loss", "hjb", "fp", "terminal", "initial", "lr", "residual", "phase", "step", "tolerance"):
        assert key in history, (key, sorted(history))
    assert history["phase"] == ["adam"] * 3 + ["lbfgs"] * 2
    assert history["step"] == [1, 2, 3, 4, 5]
    assert all(len(history[k]) == 5 for k in ("loss", "hjb", "fp", "terminal", "initial", "lr", "residual"))
    assert (tmp_path / "history.png").exists()


def test_neural_ergodic_history_json_has_lambda_and_mass(tmp_path, run_mfgnet):
    torch.set_num_threads(1)
    run_mfgnet(["problem=ergodic_torus", "solver=neural", "solver.steps=3", "solver.checkpoint_every=1000000",
                    "solver.n_eval=64"], tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    assert {"loss", "hjb", "fp", "lambda", "lr", "residual", "phase"} <= set(history)
    assert history["phase"] == ["adam"] * 3 and len(history["lambda"]) == 3
