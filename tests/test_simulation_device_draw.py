"""The torch (device) path of the N-agent simulation draws m0 on its device from m0's quantile table
(issue 16): the drawn positions follow m0, the simulation's statistics are those of the draw it replaced,
and a problem's own sampler (or a domain the table does not cover) still goes through the old draw.
All on the CPU with backend="torch", the code path a GPU runs."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
from scipy import stats

from mfgnet.agents.simulation import fused, simulate
from mfgnet.benchmarks import hopf_cole
from mfgnet.problems import Box, MFGProblem

simulate_module = importlib.import_module("mfgnet.agents.simulation.simulate")  # the package re-exports the function


def _m0_cdf(problem, lower: float, upper: float, cells: int = 20_000):
    grid = np.linspace(lower, upper, cells + 1)
    centres = torch.as_tensor(0.5 * (grid[1:] + grid[:-1]))[:, None]
    cdf = np.concatenate([[0.0], np.cumsum(problem.initial_density(centres).numpy())])
    return grid, cdf / cdf[-1]


def _bump_box():
    """A no-flux box [0, 2] with a lopsided m0 (no sampler of its own: rejection sampling before)."""
    mass = 0.5 * math.sqrt(math.pi / 8) * (math.erf(math.sqrt(8) * 1.4) + math.erf(math.sqrt(8) * 0.6)) + 0.4
    return MFGProblem(Box(0.0, 2.0), horizon=0.5, viscosity=0.05,
                      initial_density=lambda x: (torch.exp(-8 * (x[:, 0] - 0.6) ** 2) + 0.2 * x[:, 0]) / mass)


@pytest.mark.parametrize("make", [lambda: hopf_cole().problem, _bump_box], ids=["torus", "box"])
def test_device_draw_follows_m0(make):
    """10^6 draws of the device sampler (CPU here) against m0's CDF: a KS test, and the same seed gives the
    same points."""
    problem = make()
    lower, upper = (float(v[0]) for v in problem.bounding_box().bounds())
    draw = simulate_module._QuantileDraw(fused.quantile_table(problem), torch.device("cpu"))
    x = draw.sample(1_000_000, torch.Generator().manual_seed(5))
    assert x.shape == (1_000_000, 1) and x.dtype == torch.float32
    x = x[:, 0].double().numpy()
    assert x.min() >= lower and x.max() <= upper
    grid, cdf = _m0_cdf(problem, lower, upper)
    assert stats.kstest(x, lambda v: np.interp(v, grid, cdf)).pvalue > 1e-3
    again = draw.sample(1000, torch.Generator().manual_seed(5))[:, 0].double().numpy()
    assert np.array_equal(again, x[:1000])


def test_simulation_draws_m0_on_the_device_path(b3_tabulated, monkeypatch):
    """simulate(backend="torch") goes through the quantile draw, and its step-0 histogram of 4·10^5 agents
    is m0's cell probabilities up to multinomial noise (a chi-square test)."""
    bench, policy, steps = b3_tabulated
    calls = []
    real = simulate_module._QuantileDraw

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(simulate_module, "_QuantileDraw", spy)
    bins, n = 64, 400_000
    res = simulate(bench.exact, n, steps, policy=policy, backend="torch", bins=bins, record_steps=[0],
                   chunk_size=150_000, progress=False, seed=2)
    assert calls == [1]
    grid, cdf = _m0_cdf(bench.problem, 0.0, 1.0, 64 * 256)
    p = np.diff(cdf[::256])
    counts = res.histograms[0].numpy() * n
    assert abs(counts.sum() - n) < 1e-6
    assert stats.chisquare(counts, p * n).pvalue > 1e-3


def _l1_to_exact(bench, res, bins):
    centres = (torch.arange(bins, dtype=torch.float64) + 0.5) / bins
    m = bench.exact.density(torch.full((bins, 1), bench.problem.horizon, dtype=torch.float64), centres[:, None])
    return float((res.histograms[-1] - m / m.sum()).abs().sum())


def test_same_statistics_as_the_old_draw(b3_tabulated, monkeypatch):
    """B3 (exact policy), 4·10^5 agents, torch path: the histogram L1 to the exact m(T) with the device draw
    equals, within sampling noise, that of the old draw (rejection sampling on the CPU) and that of the numpy
    kernel; the two torch histograms differ from each other by noise only."""
    bench, policy, steps = b3_tabulated
    bins, n = 128, 400_000
    kw = dict(policy=policy, bins=bins, progress=False, seed=1)
    new = simulate(bench.exact, n, steps, backend="torch", **kw)
    plain = simulate(bench.exact, n, steps, backend="numpy", **kw)
    monkeypatch.setattr(simulate_module, "_QuantileDraw", lambda *args: None)  # the draw before issue 16
    old = simulate(bench.exact, n, steps, backend="torch", **kw)
    l1_new, l1_old, l1_plain = (_l1_to_exact(bench, r, bins) for r in (new, old, plain))
    noise = np.sqrt(2 * bins / (np.pi * n))  # E|histogram - p|_1 of n multinomial draws (p ~ uniform)
    assert abs(l1_new - l1_old) < noise, (l1_new, l1_old, noise)
    assert abs(l1_new - l1_plain) < noise, (l1_new, l1_plain, noise)
    assert float((new.histograms[-1] - old.histograms[-1]).abs().sum()) < 2 * np.sqrt(2) * noise


def test_own_sampler_and_solution_start_keep_the_old_draw(b3_tabulated, monkeypatch):
    """A problem's initial_sampler and initial="solution" do not go through the table."""
    bench, policy, steps = b3_tabulated

    def refuse(*args):
        raise AssertionError("the quantile draw ran")

    monkeypatch.setattr(simulate_module, "_QuantileDraw", refuse)
    problem = bench.problem
    sampler_calls = []

    def sampler(n, gen):
        sampler_calls.append(n)
        return torch.rand(n, 1, generator=gen, dtype=torch.float64)

    own = MFGProblem(problem.domain, horizon=problem.horizon, viscosity=problem.viscosity,
                     initial_density=problem.initial_density, initial_sampler=sampler)
    solution = type("S", (), {"problem": own})()
    simulate(solution, 3000, steps, policy=policy, backend="torch", progress=False)
    assert sampler_calls[-1] == 3000  # (the problem's constructor tries the sampler on a few points first)
    res = simulate(bench.exact, 3000, steps, policy=policy, backend="torch", initial="solution", progress=False)
    assert abs(float(res.histograms[-1].sum()) - 1) < 1e-12
