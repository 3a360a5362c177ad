"""Nonlocal kernels that are products over the axes: the grid applies them axis by axis
(:class:`mfgnet.grid.coupling.ProductKernel`) instead of through a dense quadrature matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mfgnet.benchmarks.separable_crowd import separable_crowd_2d
from mfgnet.grid import coupling as grid_coupling
from mfgnet.grid import solve_grid
from mfgnet.grid.coupling import KernelFactor, ProductKernel, factor_kernel
from mfgnet.grid.mesh import Grid
from mfgnet.problems import MFGProblem, NonlocalCoupling, ProblemError, Torus


def two_channels(x, y):
    """A Gaussian product kernel and twice a narrower one: two channels, both products."""
    sq = (x[:, None, :] - y[None, :, :]) ** 2
    return torch.stack([torch.exp(-sq.sum(-1) / 0.18), 2.0 * torch.exp(-sq[..., 0] / 0.05 - sq[..., 1] / 0.3)], -1)


def l1_squared(x, y):
    """exp(−(|dx1| + |dx2|)²): not a product over the axes."""
    return torch.exp(-(x[:, None, :] - y[None, :, :]).abs().sum(-1, keepdim=True) ** 2)


def dense(kernel, grid: Grid) -> np.ndarray:
    return grid.cell_volume * kernel(grid.nodes, grid.nodes).numpy()  # (n, n, c)


@pytest.mark.parametrize("periodic", [False, True])
def test_product_kernel_applies_the_dense_quadrature_matrix(periodic):
    grid = Grid(np.array([-1.0, 0.0]), np.array([2.0, 1.5]), (18, 13), periodic)  # unequal cells and widths
    operator = factor_kernel(two_channels, grid)
    assert isinstance(operator, ProductKernel) and operator.channels == 2
    m = np.random.default_rng(0).random((3, grid.n))
    expected = np.einsum("jkc,lk->ljc", dense(two_channels, grid), m)
    assert np.abs(operator.conv(m) - expected).max() <= 1e-13 * np.abs(expected).max()
    low = operator.low_rank()  # the ergodic Newton's auxiliary unknowns
    assert isinstance(low, KernelFactor)
    assert np.abs(low.conv(m) - expected).max() <= 1e-12 * np.abs(expected).max()


def test_a_kernel_that_is_not_a_product_keeps_the_dense_path():
    grid = Grid(np.array([0.0, 0.0]), np.array([1.0, 1.0]), (12, 10), False)
    operator = factor_kernel(l1_squared, grid)
    assert isinstance(operator, KernelFactor)
    m = np.random.default_rng(1).random((2, grid.n))
    expected = np.einsum("jkc,lk->ljc", dense(l1_squared, grid), m)
    assert np.abs(operator.conv(m) - expected).max() <= 1e-12 * np.abs(expected).max()


def test_only_a_product_kernel_passes_the_dense_limit(monkeypatch):
    grid = Grid(np.array([0.0, 0.0]), np.array([1.0, 1.0]), (12, 10), False)
    monkeypatch.setattr(grid_coupling, "MAX_DENSE_ENTRIES", 1000.0)  # 120² entries exceed it
    assert isinstance(factor_kernel(two_channels, grid), ProductKernel)
    with pytest.raises(ProblemError, match="product over the axes"):
        factor_kernel(l1_squared, grid)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def solve_with_and_without_the_product(problem, monkeypatch, **kwargs):
    product = solve_grid(problem, progress=False, **kwargs)
    with monkeypatch.context() as patch:  # a negative tolerance rejects every product: the dense SVD path
        patch.setattr(grid_coupling, "PRODUCT_TOLERANCE", -1.0)
        plain = solve_grid(problem, progress=False, **kwargs)
    return product, plain


def test_b7_planar_solve_matches_the_dense_path(monkeypatch):
    product, plain = solve_with_and_without_the_product(separable_crowd_2d(), monkeypatch, cells=16, time_steps=16)
    assert product.diagnostics.converged and plain.diagnostics.converged
    assert relative(product.m, plain.m) <= 1e-10 and relative(product.u, plain.u) <= 1e-10
    assert product.diagnostics.extra["mass_error"] <= 1e-12


def ergodic_aversion_torus() -> MFGProblem:
    """Ergodic 2D torus, F = 2 (K ∗ m) − cos(2π x1), K a periodic Gaussian (a product): the auxiliary unknowns."""
    def kernel(x, y):
        diff = x[:, None, :] - y[None, :, :]
        diff = diff - torch.round(diff)
        return torch.exp(-(diff ** 2).sum(-1, keepdim=True) / (2 * 0.15**2))

    def coupling(t, x, m, conv):
        return 2.0 * conv[:, 0] - torch.cos(2 * math.pi * x[:, 0])

    return MFGProblem(Torus(2), horizon=None, viscosity=0.2, coupling=NonlocalCoupling(coupling, kernel),
                      name="ergodic_aversion_torus_2d")


@pytest.mark.parametrize("ergodic_lu", ["fresh", "reuse"])
def test_ergodic_product_kernel_matches_the_dense_path(monkeypatch, ergodic_lu):
    grid = Grid(np.zeros(2), np.ones(2), (12, 12), True)
    assert isinstance(factor_kernel(ergodic_aversion_torus().coupling.kernel, grid), ProductKernel)
    product, plain = solve_with_and_without_the_product(ergodic_aversion_torus(), monkeypatch, cells=12,
                                                        ergodic_lu=ergodic_lu)
    assert product.diagnostics.converged and plain.diagnostics.converged
    assert relative(product.m, plain.m) <= 1e-9 and relative(product.u, plain.u) <= 1e-9
    assert abs(product.ergodic_constant - plain.ergodic_constant) <= 1e-9 * abs(plain.ergodic_constant)
