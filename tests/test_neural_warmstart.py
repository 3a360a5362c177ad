"""Warm start of the neural solver from a coarse grid solve (``warm_start="grid"``, d ≤ 2):
the fit alone brings the networks close to the grid solution, d ≥ 3 is refused, and a
resumed run skips it (resume stays bit-exact)."""

import numpy as np
import pytest
import torch

from mfgnet.benchmarks import ergodic_torus
from mfgnet.evaluation.metrics import relative_l2
from mfgnet.grid import solve_grid
from mfgnet.neural import NeuralSolverConfig, solve_neural
from mfgnet.neural import trainer as trainer_module
from mfgnet.neural.warmstart import warm_start
from mfgnet.problems import ProblemError
from mfgnet.problems.examples import crowd_aversion

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"dtype": "float64", "progress": False, "n_eval": 64, "model": {"width": 32, "depth": 2},
         "sampler": {"n_interior": 64, "n_initial": 16, "n_terminal": 16, "n_boundary": 8,
                     "n_quadrature": 64, "time_slices": 4}}


def on_points(solution, problem, n=2000):
    """u and m of a solution at fixed random (t, x) of the box; u centred when ergodic."""
    gen = torch.Generator().manual_seed(1)
    lower, upper = problem.bounding_box().bounds()
    x = lower + (upper - lower) * torch.rand(n, problem.dim, generator=gen, dtype=torch.float64)
    t = None if problem.is_ergodic else problem.horizon * torch.rand(n, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        return solution.value(t, x).double().numpy(), solution.density(t, x).double().numpy()


@pytest.mark.parametrize("problem, steps", [(crowd_aversion(1), 600), (ergodic_torus(1).problem, 200)],
                         ids=["box_1d", "ergodic_torus"])
def test_warm_start_alone_is_close_to_the_coarse_grid(problem, steps):
    """0 residual steps: the networks are the fit to the coarse grid solution (the ergodic
    one has no time axis and fits in fewer steps)."""
    # The default networks (64 x 3): the fit is what the solver will use; 32 x 2 fitted m to 22 %.
    sol = solve_neural(problem, dict(SMALL, model={}, steps=0, warm_start="grid", warm_start_cells=32,
                                     warm_start_steps=steps))
    info = sol.diagnostics.extra["warm_start"]
    assert info["cells"] == 32 and info["steps"] == steps and info["grid_time_s"] > 0 and info["grid_converged"]
    assert info["fit_rel_l2_m"] < 5e-2 and info["fit_rel_l2_u"] < 5e-2
    coarse = solve_grid(problem, cells=32, progress=False)
    u, m = on_points(sol, problem)
    u_ref, m_ref = on_points(coarse, problem)
    assert relative_l2(m, m_ref) < 5e-2
    assert relative_l2(u, u_ref, center=problem.is_ergodic) < 5e-2
    if problem.is_ergodic:  # λ from the grid, then re-estimated from the fitted networks
        assert info["lambda"] == pytest.approx(coarse.ergodic_constant)
        assert abs(sol.ergodic_constant - coarse.ergodic_constant) < 0.1


def test_warm_start_default_and_validation():
    """"auto" fits m0 where the blend form holds m(0) = m0 and does nothing elsewhere."""
    assert NeuralSolverConfig().warm_start == "auto"
    with pytest.raises(ProblemError, match="warm_start"):
        NeuralSolverConfig.from_dict({"warm_start": "fine_grid"})
    with pytest.raises(ProblemError, match="warm_start_cells"):
        NeuralSolverConfig.from_dict({"warm_start_cells": 4})
    sol = solve_neural(crowd_aversion(1), dict(SMALL, steps=1))
    assert sol.diagnostics.extra["warm_start"]["source"] == "initial"
    assert sol.diagnostics.extra["warm_start"]["steps"] == 500
    sol = solve_neural(crowd_aversion(1), dict(SMALL, steps=1, warm_start="off"))
    assert sol.diagnostics.extra["warm_start"] is None
    ergodic = ergodic_torus(1).problem
    assert solve_neural(ergodic, dict(SMALL, steps=1)).diagnostics.extra["warm_start"] is None
    with pytest.raises(ProblemError, match="warm_start='initial'.*hard_initial"):
        solve_neural(ergodic, dict(SMALL, steps=1, warm_start="initial"))


def test_initial_fit_makes_m_equal_m0_at_every_time():
    """After the initial fit (no residual step) m(t) is m0 at every t, up to the fit's error,
    where the untrained blend is far from it; m(0) = m0 holds exactly either way."""
    problem = crowd_aversion(1)
    x = torch.linspace(0.0, 1.0, 201, dtype=torch.float64)[:, None]
    m0 = problem.initial_density(x).numpy()
    errors = {}
    for mode in ("off", "initial"):
        sol = solve_neural(problem, dict(SMALL, model={}, steps=0, warm_start=mode))
        with torch.no_grad():
            np.testing.assert_allclose(sol.density(0.0, x).numpy(), m0, rtol=1e-10)
            errors[mode] = max(relative_l2(sol.density(t, x).numpy(), m0) for t in (0.3, 0.7, 1.0))
    assert errors["initial"] < 2e-2 < 0.2 < errors["off"], errors


def test_warm_start_refuses_three_dimensions():
    problem = crowd_aversion(3)
    with pytest.raises(ProblemError, match=r"1D or 2D problem \(problem.dim = 3\).*warm_start='off'"):
        solve_neural(problem, dict(SMALL, steps=1, warm_start="grid"))
    from mfgnet.neural.config import ModelConfig
    from mfgnet.neural.networks import MFGNetworks

    nets = MFGNetworks(problem, ModelConfig(width=8, depth=1), torch.Generator().manual_seed(0))
    with pytest.raises(ProblemError, match="1D or 2D"):
        warm_start(problem, nets)


class _Kill(Exception):
    pass


def test_resume_skips_the_warm_start_and_stays_exact(tmp_path, monkeypatch):
    """A run killed after its first checkpoint resumes from the checkpoint's networks without
    fitting again, and ends bit-identical to the straight warm-started run."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return warm_start(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "warm_start", counting)
    problem = crowd_aversion(1)
    cfg = NeuralSolverConfig.from_dict(dict(SMALL, steps=6, log_every=2, checkpoint_every=2, warm_start="grid",
                                            warm_start_cells=16, warm_start_steps=20))
    straight = solve_neural(problem, cfg.replace(checkpoint_dir=str(tmp_path / "straight")))
    assert len(calls) == 1 and straight.diagnostics.extra["warm_start"]["steps"] == 20

    def kill(step, metrics):
        if step == 4:
            raise _Kill

    with pytest.raises(_Kill):
        solve_neural(problem, cfg.replace(checkpoint_dir=str(tmp_path / "run")), callback=kill)
    assert len(calls) == 2
    resumed = solve_neural(problem, cfg.replace(checkpoint_dir=str(tmp_path / "run"), resume=True))
    assert len(calls) == 2, "resume must not warm start again"
    assert resumed.diagnostics.extra["warm_start"] is None
    params = [torch.cat([p.detach().flatten() for p in s.networks.parameters()]) for s in (straight, resumed)]
    assert torch.equal(*params)
    np.testing.assert_array_equal(straight.diagnostics.extra["history"]["loss"],
                                  resumed.diagnostics.extra["history"]["loss"])
