"""The fused 1D simulation kernel (numba, issue 16): its normals, its reproducibility across threads
and chunks, and the same statistics as the numpy kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("numba")

from scipy import stats  # noqa: E402

from mfgnet.agents.simulation import fused, simulate  # noqa: E402
from mfgnet.grid import solve_grid  # noqa: E402
from mfgnet.problems import ProblemError  # noqa: E402
from mfgnet.problems.examples import crowd_aversion  # noqa: E402


def test_box_muller_normals_are_standard_normal():
    z = fused.standard_normals(2024, 2_000_000).astype(np.float64)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n) and abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 4 / np.sqrt(n / 2)  # a word's two normals
    for a in (1.0, 2.0, 3.0, 3.5, 4.0):
        p, exact = (z > a).mean(), stats.norm.sf(a)
        assert abs(p - exact) < 5 * np.sqrt(exact / n), (a, p, exact)
    assert np.array_equal(fused.standard_normals(2024, 1000), fused.standard_normals(2024, 1000))
    assert not np.array_equal(fused.standard_normals(2024, 1000), fused.standard_normals(2025, 1000))


def test_polynomial_logarithm_of_box_muller():
    """The branch-free float32 logarithm behind the normals: float32 round-off over its whole range."""
    from mfgnet.agents.simulation import fused_kernels

    x = np.geomspace(2.0**-33, 1.0, 200_001)[:-1].astype(np.float32)
    exact = np.log(x.astype(np.float64))
    got = fused_kernels.log_units(x).astype(np.float64)
    assert np.max(np.abs(got - exact) / np.maximum(np.abs(exact), 1e-3)) < 1e-6


def test_same_seed_same_agents_whatever_the_threads_and_chunks(b3_tabulated):
    """Counter-based numbers for the initial positions (m0's quantile table) and the noise (agent, step):
    1 or 2 threads and any chunk size give the same agents to the bit."""
    bench, policy, steps = b3_tabulated
    runs = [simulate(bench.exact, 30_000, steps, policy=policy, backend="numba", threads=threads, chunk_size=chunk,
                     keep_samples=4096, record_steps=[0, 10, steps], progress=False, seed=7)
            for threads, chunk in ((1, 1 << 20), (2, 4096), (2, 30_000))]
    for other in runs[1:]:
        assert torch.equal(other.histograms, runs[0].histograms)
        assert torch.equal(other.samples, runs[0].samples)
    assert runs[0].timings["backend"] == "numba"
    other_seed = simulate(bench.exact, 30_000, steps, policy=policy, backend="numba", record_steps=[steps],
                          progress=False, seed=8)
    assert not torch.equal(other_seed.histograms[-1], runs[0].histograms[-1])


def test_initial_positions_follow_m0(b3_tabulated):
    """The quantile table's draw against m0's CDF (B3's m0 on the torus): a KS test on 10^6 agents, and
    agents numbered alike get the same position whatever the range they are drawn in."""
    bench, _, _ = b3_tabulated
    problem = bench.problem
    q = fused.quantile_table(problem)
    x = fused.initial_positions(q, 99, 0, 1_000_000)[:, 0].astype(np.float64)
    grid = np.linspace(0, 1, 20_001)
    centres = torch.as_tensor(0.5 * (grid[1:] + grid[:-1]))[:, None]
    cdf = np.concatenate([[0.0], np.cumsum(problem.initial_density(centres).numpy())])
    cdf /= cdf[-1]
    assert stats.kstest(x, lambda v: np.interp(v, grid, cdf)).pvalue > 1e-3
    assert np.array_equal(fused.initial_positions(q, 99, 500, 100), fused.initial_positions(q, 99, 0, 600)[500:])


def _l1_to_exact(bench, res, bins):
    centres = (torch.arange(bins, dtype=torch.float64) + 0.5) / bins
    m = bench.exact.density(torch.full((bins, 1), bench.problem.horizon, dtype=torch.float64), centres[:, None])
    return float((res.histograms[-1] - m / m.sum()).abs().sum())


def test_same_statistics_as_the_numpy_kernel_on_the_torus(b3_tabulated):
    """B3 (exact policy): both kernels' histograms of 400k agents are as far from the exact m(T) as each
    other (the scheme's time-step bias plus sampling noise), and from each other only by noise."""
    bench, policy, steps = b3_tabulated
    bins, n = 128, 400_000
    fast, plain = (simulate(bench.exact, n, steps, policy=policy, backend=b, bins=bins, progress=False, seed=1)
                   for b in ("numba", "numpy"))
    l1_fast, l1_plain = _l1_to_exact(bench, fast, bins), _l1_to_exact(bench, plain, bins)
    noise = np.sqrt(2 * bins / (np.pi * n))  # E|histogram - p|_1 of n multinomial draws (p ~ uniform)
    assert abs(l1_fast - l1_plain) < noise, (l1_fast, l1_plain, noise)
    assert float((fast.histograms[-1] - plain.histograms[-1]).abs().sum()) < 2 * np.sqrt(2) * noise


def test_same_statistics_as_the_numpy_kernel_in_a_box():
    """A no-flux box (crowd aversion, its grid solution's policy): the same mean, spread and mass by the
    faces from both kernels (reflection included)."""
    solution = solve_grid(crowd_aversion(viscosity=0.1), cells=64, progress=False)
    n = 200_000
    runs = [simulate(solution, n, 40, backend=b, keep_samples=n, progress=False, seed=3, bins=64)
            for b in ("numba", "numpy")]
    x_fast, x_plain = (r.samples[:, 0].numpy() for r in runs)
    assert x_fast.min() >= 0 and x_fast.max() <= 1
    se = x_plain.std() / np.sqrt(n)
    assert abs(x_fast.mean() - x_plain.mean()) < 5 * np.sqrt(2) * se
    assert abs(x_fast.std() - x_plain.std()) < 0.01 * x_plain.std()
    assert abs((x_fast > 0.95).mean() - (x_plain > 0.95).mean()) < 0.005


def test_default_backend_and_refusals(b3_tabulated, monkeypatch):
    bench, policy, steps = b3_tabulated
    assert simulate(bench.exact, 1000, steps, policy=policy, progress=False).timings["backend"] == "numba"
    uniform = simulate(bench.exact, 1000, steps, policy=policy, noise="uniform", progress=False)
    assert uniform.timings["backend"] == "numpy"  # the fused kernel draws Gaussian noise only
    with pytest.raises(ProblemError, match="backend='numba'.*noise='uniform'"):
        simulate(bench.exact, 1000, steps, policy=policy, noise="uniform", backend="numba", progress=False)
    monkeypatch.setattr(fused, "AVAILABLE", False)
    assert simulate(bench.exact, 1000, steps, policy=policy, progress=False).timings["backend"] == "numpy"
    with pytest.raises(ProblemError, match="needs numba"):
        simulate(bench.exact, 1000, steps, policy=policy, backend="numba", progress=False)
