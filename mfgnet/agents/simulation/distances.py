"""Distances between a simulated population and a solution's density m(t, ·).

* histogram L1: Σ_cells |empirical share - ∫_cell m|, on cells of the bounding box;
* 1D Wasserstein-1 from a fine histogram: ∫ |F_N - F| dx (on a circle, min_c ∫ |F_N - F - c|,
  attained at the median of F_N - F);
* sliced Wasserstein-1 between two point clouds in any d (mean over random directions of
  the 1D distances between sorted projections).

For N agents the statistical part of each falls like N^(-1/2) (the mean-field limit).
"""

from __future__ import annotations

import torch

from mfgnet.problems import ProblemError, Torus


def cell_probabilities(solution, t, lower: torch.Tensor, upper: torch.Tensor, bins: int, sub: int = 4) -> torch.Tensor:
    """∫_cell m(t, ·) for the bins^d cells of [lower, upper] (Gauss–Legendre, ``sub`` points per
    axis per cell); shape (bins,) * d."""
    d = lower.numel()
    if bins ** d * sub ** d > 1 << 26:
        raise ProblemError(f"bins^d * sub^d = {bins ** d * sub ** d} quadrature points is too many")
    import numpy as np

    g, w = np.polynomial.legendre.leggauss(sub)
    g, w = torch.tensor((g + 1) / 2, dtype=torch.float64), torch.tensor(w / 2, dtype=torch.float64)
    h = (upper - lower).to(torch.float64) / bins
    axes, weights = [], []
    for i in range(d):
        pts = lower[i] + h[i] * (torch.arange(bins, dtype=torch.float64)[:, None] + g[None, :])
        axes.append(pts.reshape(-1))
        weights.append((w[None, :] * h[i]).expand(bins, sub).reshape(-1))
    x = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
    wt = weights[0]
    for i in range(1, d):
        wt = (wt[:, None] * weights[i][None, :]).reshape(-1)
    with torch.no_grad():
        m = solution.density(t, x).to(torch.float64) * wt
    m = m.reshape(*([bins, sub] * d)) if d == 1 else m.reshape(*([bins * sub] * d))
    if d == 1:
        return m.sum(-1)
    for ax in range(d):
        m = m.reshape(*m.shape[:ax], bins, sub, *m.shape[ax + 1:]).sum(ax + 1)
    return m


def histogram_l1(hist: torch.Tensor, ref: torch.Tensor, coarsen: int = 1) -> float:
    """Σ |hist - ref| over cells after merging ``coarsen`` cells per axis (both (bins,)*d)."""
    if hist.shape != ref.shape:
        raise ProblemError(f"histogram shapes differ: {tuple(hist.shape)} vs {tuple(ref.shape)}")
    if coarsen > 1:
        hist, ref = _coarsen(hist, coarsen), _coarsen(ref, coarsen)
    return float((hist - ref).abs().sum())


def _coarsen(h: torch.Tensor, k: int) -> torch.Tensor:
    for ax in range(h.dim()):
        if h.shape[ax] % k:
            raise ProblemError(f"coarsen = {k} must divide the number of bins {h.shape[ax]}")
        h = h.reshape(*h.shape[:ax], h.shape[ax] // k, k, *h.shape[ax + 1:]).sum(ax + 1)
    return h


def wasserstein1_from_histogram(hist: torch.Tensor, ref: torch.Tensor, width: float, periodic: bool) -> float:
    """W1 in 1D between two histograms on the same cells of an interval (or circle) of length
    ``width``: Σ_k |F_hist(e_k) - F_ref(e_k)| h over the cell edges."""
    if hist.dim() != 1 or hist.shape != ref.shape:
        raise ProblemError("wasserstein1_from_histogram needs two 1D histograms of the same length")
    diff = torch.cumsum(hist.to(torch.float64) - ref.to(torch.float64), 0)
    if periodic:
        diff = diff - diff.median()
    return float(diff.abs().sum() * width / hist.numel())


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_proj: int = 64, seed: int = 0) -> float:
    """Sliced W1 between point clouds x (n, d) and y (m, d): the mean over ``n_proj`` random
    unit directions of W1 between the projections (quantiles on a common grid of n ∧ m)."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ProblemError("sliced_wasserstein needs x (n, d) and y (m, d) with the same d")
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], n_proj, generator=gen, dtype=torch.float64)
    theta /= theta.norm(dim=0, keepdim=True)
    px, _ = torch.sort(x.to(torch.float64) @ theta, 0)
    py, _ = torch.sort(y.to(torch.float64) @ theta, 0)
    k = min(px.shape[0], py.shape[0])
    q = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    ix = (q * px.shape[0]).long().clamp_(max=px.shape[0] - 1)
    iy = (q * py.shape[0]).long().clamp_(max=py.shape[0] - 1)
    return float((px[ix] - py[iy]).abs().mean())


def compare_to_solution(result, solution, l1_coarsen: int = 64) -> list[dict]:
    """Distances between a simulated population and the solution's density, per recorded time.

    Parameters
    ----------
    result : SimulationResult
        The output of [`simulate`][mfgnet.agents.simulation.simulate.simulate].
    solution : Solution
        The solution whose m(t) the histograms are compared with.
    l1_coarsen : int
        Histogram cells merged per axis before the L1 distance (fewer, fuller cells).

    Returns
    -------
    list of dict
        One ``{"t", "l1"}`` per recorded time, with ``"w1"`` (Wasserstein-1) in 1D.
    """
    problem = solution.problem
    bins = result.histograms.shape[1]
    d = problem.dim
    out = []
    for k, t in enumerate(result.times):
        ref = cell_probabilities(solution, None if problem.is_ergodic else t, result.lower, result.upper, bins,
                                 sub=4 if d == 1 else 2)
        ref = ref / ref.sum()
        entry = {"t": t, "l1": histogram_l1(result.histograms[k], ref, min(l1_coarsen, bins))}
        if d == 1:
            entry["w1"] = wasserstein1_from_histogram(result.histograms[k], ref,
                                                      float(result.upper[0] - result.lower[0]),
                                                      isinstance(problem.domain, Torus))
        out.append(entry)
    return out
