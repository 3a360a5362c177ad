"""The L-BFGS guard (``optim.lbfgs_guard``): L-BFGS on its one fixed batch is kept only while the
solver's residual check on fresh points stays within the bound; the first chunk above it restores
the weights of the last chunk that passed."""

from __future__ import annotations

import pytest
import torch

import mfgnet
import mfgnet.neural.trainer as trainer_module
from mfgnet.benchmarks import hopf_cole

SETTINGS = {"steps": 30, "progress": False, "log_every": 20, "seed": 3,
            "model": {"width": 16, "depth": 2}, "sampler": {"n_interior": 64, "time_slices": 4},
            "optim": {"lbfgs_steps": 60, "lbfgs_dtype": "same"}, "dtype": "float64"}


def _scripted_checks(monkeypatch, values):
    """Make the guard's check return ``values`` one after the other (the final check is the real one)."""
    calls = iter(values)
    monkeypatch.setattr(trainer_module, "check_residual", lambda check: next(calls))


def _weights(solution):
    return {k: v.clone() for k, v in solution.networks.state_dict().items()}


@pytest.fixture(scope="module")
def problem():
    return hopf_cole().problem


def test_a_rising_check_restores_the_weights_adam_left(problem, monkeypatch):
    adam_only = mfgnet.solve(problem, "neural", **{**SETTINGS, "optim": {"lbfgs_steps": 0}})
    _scripted_checks(monkeypatch, [1.0, 2.5])  # before L-BFGS, after its first chunk of 20: above 2 x
    guarded = mfgnet.solve(problem, "neural", **SETTINGS)
    info = guarded.diagnostics.extra["lbfgs_guard"]
    assert info == {"bound": 2.0, "start": 1.0, "checks": [2.5], "kept": 0, "rolled_back": True}
    assert guarded.diagnostics.extra["lbfgs_steps"] == 20  # it ran one chunk, then stopped
    for (name, a), b in zip(_weights(adam_only).items(), _weights(guarded).values()):
        assert torch.equal(a, b), name
    assert guarded.diagnostics.residual == pytest.approx(adam_only.diagnostics.residual, rel=1e-12)
    # The diagnosis no longer suggests the L-BFGS that its guard just rolled back, and says why.
    assert not guarded.diagnostics.converged
    advice = guarded.diagnostics.extra["diagnosis"]["advice"]
    assert "not more L-BFGS: its guard rolled the finish back to 0 iterations (the residual check rose from 1 to 2.5)" \
        in advice, advice
    adam_advice = adam_only.diagnostics.extra["diagnosis"]["advice"]
    assert "add optim.lbfgs_steps (a float64 L-BFGS finish after Adam)" in adam_advice


def test_the_last_chunk_that_passed_is_kept(problem, monkeypatch):
    _scripted_checks(monkeypatch, [1.0, 1.5, 1.9, 2.1])
    stopped = mfgnet.solve(problem, "neural", **SETTINGS)
    info = stopped.diagnostics.extra["lbfgs_guard"]
    assert info["checks"] == [1.5, 1.9, 2.1], info
    assert info["kept"] == 40 and info["rolled_back"]
    monkeypatch.undo()
    _scripted_checks(monkeypatch, [1.0, 1.5, 1.9])
    forty = mfgnet.solve(problem, "neural", **{**SETTINGS, "optim": {**SETTINGS["optim"], "lbfgs_steps": 40}})
    assert not forty.diagnostics.extra["lbfgs_guard"]["rolled_back"]
    for (name, a), b in zip(_weights(forty).items(), _weights(stopped).values()):
        assert torch.equal(a, b), name


def test_no_guard_and_real_checks(problem):
    free = mfgnet.solve(problem, "neural", **{**SETTINGS, "optim": {**SETTINGS["optim"], "lbfgs_guard": None}})
    assert free.diagnostics.extra["lbfgs_guard"] is None and free.diagnostics.extra["lbfgs_steps"] == 60
    assert not free.diagnostics.converged
    assert "more optim.lbfgs_steps (the finish made 60 iterations and kept them)" \
        in free.diagnostics.extra["diagnosis"]["advice"]
    guarded = mfgnet.solve(problem, "neural", **SETTINGS)
    info = guarded.diagnostics.extra["lbfgs_guard"]
    assert info["start"] > 0 and all(c > 0 for c in info["checks"])
    if not info["rolled_back"]:  # then every check passed and the final check is the last one
        assert max(info["checks"]) <= 2.0 * info["start"]
        assert guarded.diagnostics.residual == pytest.approx(info["checks"][-1], rel=1e-9)


def test_an_early_stop_reports_the_iterations_made_and_why(problem):
    # Chunks of 4 iterations may evaluate the loss 5 times: the strong-Wolfe line search spends them early
    # (measured: 3 iterations, then torch's L-BFGS stopped on the evaluation budget).  The solution says so
    # instead of claiming the 12 iterations asked for.
    settings = {**SETTINGS, "log_every": 4, "optim": {"lbfgs_steps": 12, "lbfgs_dtype": "same", "lbfgs_guard": None}}
    solution = mfgnet.solve(problem, "neural", **settings)
    extra = solution.diagnostics.extra
    assert extra["lbfgs_stop"] == "evaluation budget" and 1 <= extra["lbfgs_steps"] < 4
    full = mfgnet.solve(problem, "neural", **{**settings, "log_every": 20})
    assert full.diagnostics.extra["lbfgs_stop"] == "" and full.diagnostics.extra["lbfgs_steps"] == 12
