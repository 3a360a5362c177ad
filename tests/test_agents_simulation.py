"""N-agent simulation under exact solutions: the mean-field limit (N^(-1/2)), accuracy,
boundaries, the 2D path and the distances."""

import math

import numpy as np
import pytest
import torch

from mfgnet.agents.simulation import (
    TabulatedPolicy,
    cell_probabilities,
    compare_to_solution,
    histogram_l1,
    sample_density,
    simulate,
    sliced_wasserstein,
    wasserstein1_from_histogram,
)
from mfgnet.benchmarks import ergodic_torus, hopf_cole
from mfgnet.problems import Box, MFGProblem, ProblemError
from mfgnet.solution import ExactSolution


@pytest.fixture(scope="module")
def b3():
    return hopf_cole()


def test_tabulated_policy_matches_autograd_policy(b3):
    pol = TabulatedPolicy.from_solution(b3.exact, [0.25], n_nodes=256)
    x = torch.rand(1000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    tab = pol.prepare("cpu", torch.float64)[0]
    exact = b3.exact.policy(0.25, x)
    # α = 2ν φ_x / φ; linear interpolation error is O(h^2 |α''|) with h = 1/256.
    assert (pol.evaluate(tab, x) - exact).abs().max() < 5e-4
    assert (pol.evaluate(tab, x, "nearest") - exact).abs().max() < 2e-2


def test_mean_field_limit_slope(b3):
    ns = [100, 400, 1600, 6400, 25600]
    # 200 steps: the Euler bias (O(Δt)) stays below the statistical error up to N = 25600.
    policy = TabulatedPolicy.from_solution(b3.exact, [0.5 * k / 200 for k in range(200)], n_nodes=512)
    l1, w1 = [], []
    for n in ns:
        errs = [compare_to_solution(simulate(b3.exact, n, 200, bins=1024, seed=s, policy=policy), b3.exact,
                                    l1_coarsen=32)[0] for s in range(6)]
        l1.append(np.mean([e["l1"] for e in errs]))
        w1.append(np.mean([e["w1"] for e in errs]))
    slope_l1 = np.polyfit(np.log(ns), np.log(l1), 1)[0]
    slope_w1 = np.polyfit(np.log(ns), np.log(w1), 1)[0]
    assert -0.6 < slope_l1 < -0.4, l1
    assert -0.6 < slope_w1 < -0.35, w1


def test_simulation_accuracy_and_mass(b3):
    res = simulate(b3.exact, 200_000, 200, record_steps=[0, 100, 200], bins=512, seed=3)
    np.testing.assert_allclose(res.histograms.sum(-1).numpy(), 1.0, atol=1e-12)
    # 32 cells: the statistical L1 is about 0.8 sqrt(32 / N) = 0.01.
    for entry in compare_to_solution(res, b3.exact, l1_coarsen=16):
        assert entry["l1"] < 0.02 and entry["w1"] < 2e-3, entry
    # The population really moves: with A = B, m spreads out and gathers again (m(T) = m0);
    # at T/2 the agents are far closer to m(T/2) than to m0.
    ref0 = cell_probabilities(b3.exact, 0.0, res.lower, res.upper, 512)
    ref_mid = cell_probabilities(b3.exact, 0.25, res.lower, res.upper, 512)
    assert histogram_l1(res.histograms[1], ref_mid, 16) < 0.3 * histogram_l1(res.histograms[1], ref0, 16)


def test_reproducible_and_thread_independent(b3):
    a = simulate(b3.exact, 3000, 20, chunk_size=1000, threads=1, seed=7)
    b = simulate(b3.exact, 3000, 20, chunk_size=1000, threads=2, seed=7)
    assert torch.equal(a.histograms, b.histograms)


def test_torch_backend_agrees_in_law(b3):
    res = simulate(b3.exact, 20_000, 50, bins=256, backend="torch", noise="uniform", chunk_size=10_000)
    assert compare_to_solution(res, b3.exact, l1_coarsen=16)[0]["l1"] < 0.05


def test_box_reflection_keeps_uniform_density():
    problem = MFGProblem(Box(0.0, 1.0), horizon=1.0, viscosity=0.5, initial_density=lambda x: torch.ones(x.shape[0]))
    zero = ExactSolution(problem, lambda t, x: 0 * x[:, 0],
                         lambda t, x: torch.ones(x.shape[0], dtype=x.dtype))
    res = simulate(zero, 100_000, 50, bins=64, keep_samples=1000)
    assert res.samples.min() >= 0 and res.samples.max() <= 1
    assert compare_to_solution(res, zero, l1_coarsen=4)[0]["l1"] < 0.02


def test_two_dimensional_ergodic_torus():
    b1 = ergodic_torus(2)
    gen = torch.Generator().manual_seed(0)
    res = simulate(b1.exact, 10_000, 20, t1=0.05, bins=32, initial="solution", keep_samples=10_000, n_nodes=64)
    ref = sample_density(b1.exact, None, 10_000, gen)
    uniform = torch.rand(10_000, 2, generator=gen, dtype=torch.float64)
    sw = sliced_wasserstein(res.samples, ref)
    assert sw < 0.01
    assert sliced_wasserstein(uniform, ref) > 5 * sw
    assert compare_to_solution(res, b1.exact, l1_coarsen=8)[0]["l1"] < 0.08


@pytest.mark.parametrize("interp", ["linear", "nearest"])
@pytest.mark.parametrize("domain", ["torus", "box"])
def test_numpy_drift_kernel_matches_policy_evaluate(interp, domain):
    """The 2D numpy kernel's one-gather cell tables give α·dt as TabulatedPolicy.evaluate does
    (float32 rounding apart), also at the grid's edges."""
    from mfgnet.agents.simulation.simulate import _drift_tables, _DriftKernel

    if domain == "torus":
        solution, lo, up, n_nodes = ergodic_torus(2).exact, [0.0, 0.0], [1.0, 1.0], 100
    else:
        problem = MFGProblem(Box([0.0, -1.0], [1.0, 2.0]), horizon=1.0, viscosity=0.5,
                             initial_density=lambda x: torch.full((x.shape[0],), 1 / 3, dtype=x.dtype))
        solution = ExactSolution(problem, lambda t, x: torch.sin(3 * x[:, 0]) * torch.cos(2 * x[:, 1]) + x[:, 1] ** 2,
                                 lambda t, x: torch.full((x.shape[0],), 1 / 3, dtype=x.dtype))
        lo, up, n_nodes = [0.0, -1.0], [1.0, 2.0], 65
    policy = TabulatedPolicy.from_solution(solution, [0.0], n_nodes)
    x = np.random.default_rng(0).uniform(lo, up, (20_000, 2)).astype(np.float32)
    top = np.nextafter(np.float32(up), np.float32(-np.inf)) if domain == "torus" else np.float32(up)
    x[:3] = [lo, top, [lo[0], top[1]]]
    dt = 0.01
    moved = x.copy()
    _DriftKernel(policy, x.shape[0], interp == "nearest").add_drift(moved, _drift_tables(policy, dt, interp)[0])
    ref = policy.evaluate(policy.prepare("cpu", torch.float64)[0], torch.from_numpy(x).double(), interp).numpy() * dt
    err = np.abs((moved - x) - ref)
    # nearest: a position exactly halfway between two nodes may round either way.
    assert (err > 1e-6).sum() <= (3 if interp == "nearest" else 0), err.max()


def test_two_dimensional_thread_independent_and_timings_consistent():
    b1 = ergodic_torus(2)
    kw = {"t1": 0.05, "bins": 16, "initial": "solution", "n_nodes": 32, "chunk_size": 1000, "progress": False}
    one = simulate(b1.exact, 3000, 5, threads=1, **kw)
    two = simulate(b1.exact, 3000, 5, threads=2, **kw)
    assert torch.equal(one.histograms, two.histograms)
    tm = two.timings
    # The rate divides by steps_s, and steps_s is a share of the wall clock (not a sum over threads).
    assert two.agent_steps_per_s == pytest.approx(3000 * 5 / tm["steps_s"])
    assert tm["initial_s"] + tm["steps_s"] <= two.wall_time_s * (1 + 1e-9)


def test_wasserstein_on_circle_and_interval():
    h = torch.zeros(100)
    h[0] = 1.0
    g = torch.zeros(100)
    g[99] = 1.0
    assert wasserstein1_from_histogram(h, g, 1.0, periodic=False) == pytest.approx(0.99)
    assert wasserstein1_from_histogram(h, g, 1.0, periodic=True) == pytest.approx(0.01)


def test_bad_arguments(b3):
    with pytest.raises(ProblemError, match="interp"):
        simulate(b3.exact, 10, 1, interp="cubic")
    with pytest.raises(ProblemError, match="t1"):
        simulate(ergodic_torus(1).exact, 10, 1)
    with pytest.raises(ProblemError, match="backend"):
        simulate(b3.exact, 10, 1, backend="jax")
    assert math.isfinite(simulate(b3.exact, 10, 1).agent_steps_per_s)
