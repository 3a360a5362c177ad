"""The initial density carried by pure diffusion, h(t) = e^{tνΔ} m0, as a spectral series.

On a torus (Fourier modes) or a no-flux box (cosine modes) in one or two dimensions,

    h(t, x) = Σ_k c_k e^{-ν λ_k t} φ_k(x),

with the coefficients c_k of m0 from a fine grid (interpolating there) and λ_k the
eigenvalues of -Δ; in two dimensions the modes are products of the axes' modes, so h is a
bilinear form of two (n, K) matrices.  The series is used only where it converges: the
dropped coefficients add up to at most ``TOLERANCE`` × max m0, with at most ``MAX_MODES`` modes
per axis.  A smooth m0 on a torus qualifies (47 modes for the zoo's torus_bimodal_1d, whose
narrowest crowd is 5 % of the circle); on a box, m0 must have zero slope at the faces, since
the cosine series of a density whose slope at a face is not zero (a bump that reaches the
face, or 6x(1 - x)) decays only like 1/k² (far more than 256 modes).

Why (``model.hard_initial="heat"``, see :class:`mfgnet.neural.networks.MFGNetworks`): the blend
form m = (1 - s) m0 + s exp(free) makes the fading part m0 stand still, although a narrow
crowd spreads on the time scale width²/ν (0.025 T on torus_bimodal_1d), and the residual
training then settled on a density that was flat at t = 0.1 where the crowd still had a bump
(peak 1.0 against 1.4): most of that problem's 10.6 % error.  Fading the heat flow instead,
m = (1 - s) (m0 + h(t) - h(0)) + s exp(free), makes the fast spreading exact.  It is an option,
not the default: on the zoo (12000 steps) it took torus_bimodal_1d from rel L2 m 0.106 to 0.033
but torus_power_1d from 0.048 to 0.067 (results/neural_zoo/means.md).

The series is evaluated in float64 (the far tails of a narrow m0 are 1e-10 of its peak, below
float32's resolution of a sum of modes of size one).  Its derivatives reach autograd
analytically (:meth:`HeatFlow.__call__`), so that no autograd graph is built over the (n, K)
mode tables.
"""

from __future__ import annotations

import math

import torch

from mfgnet.problems import Box, MFGProblem, Torus

# Grid points per axis for the coefficients of m0 (1D, 2D), and the most modes kept per axis.
GRID = {1: 1024, 2: 128}
MAX_MODES = {1: 256, 2: 64}
# The kept modes reproduce m0 to TOLERANCE × max m0 (a bound: the dropped coefficients' sum).
TOLERANCE = 1e-12


def _axis_modes(periodic: bool, lower: float, length: float, n: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grid points (n,), the analysis matrix (K, n) that maps values at the points to
    coefficients, and per mode its frequency ω and a sine flag, (K, 2), in increasing ω."""
    j = torch.arange(n, dtype=torch.float64)
    if not periodic:  # cos(kπ(x - a)/L), k = 0..n-1: the DCT-II at the cell midpoints
        y = lower + (j + 0.5) * length / n
        k = torch.arange(n, dtype=torch.float64)
        analysis = (2.0 / n) * torch.cos(torch.outer(k, j + 0.5) * math.pi / n)
        analysis[0] *= 0.5
        modes = torch.stack([k * math.pi / length, torch.zeros(n, dtype=torch.float64)], -1)
        return y, analysis, modes
    # 1, then cos and sin of 2πk(x - a)/L for k = 1..n/2 - 1, at x_j = a + jL/n
    y = lower + j * length / n
    k = torch.arange(1, n // 2, dtype=torch.float64)
    phase = 2 * math.pi * torch.outer(k, j) / n
    rows = torch.stack([(2.0 / n) * torch.cos(phase), (2.0 / n) * torch.sin(phase)], 1).reshape(-1, n)
    analysis = torch.cat([torch.full((1, n), 1.0 / n, dtype=torch.float64), rows])
    omega = (2 * math.pi * k / length).repeat_interleave(2)
    sine = torch.tensor([0.0, 1.0], dtype=torch.float64).repeat(k.numel())
    modes = torch.cat([torch.zeros(1, 2, dtype=torch.float64), torch.stack([omega, sine], -1)])
    return y, analysis, modes


class HeatFlow:
    """h(t, x) - h(0, x) for the heat flow h of m0 on a 1D/2D box or torus.

    Build it with :meth:`build`, which returns None where the series does not converge (see
    the module docstring).  A plain object, not a module: its float64 tables must not be cast
    to float32 with the networks, and they follow from the problem (checkpoints need not carry
    them).
    """

    def __init__(self, viscosity: float, lower: torch.Tensor, modes: list[torch.Tensor], coef: torch.Tensor) -> None:
        self.viscosity, self.lower, self._modes, self.coef = viscosity, lower, modes, coef
        self.dim = len(modes)

    @classmethod
    def build(cls, problem: MFGProblem) -> HeatFlow | None:
        """The heat flow of ``problem``'s m0, or None when it is not available: not a
        time-dependent problem on a 1D/2D box or torus, or m0's series needs more than
        ``MAX_MODES`` modes per axis to reach ``TOLERANCE``."""
        domain, d = problem.domain, problem.dim
        if problem.is_ergodic or d not in GRID or not isinstance(domain, (Box, Torus)):
            return None
        lower, upper = problem.bounding_box().bounds()
        n = GRID[d]
        axes = [_axis_modes(isinstance(domain, Torus), float(lower[i]), float(upper[i] - lower[i]), n)
                for i in range(d)]
        pts = torch.stack(torch.meshgrid(*[a[0] for a in axes], indexing="ij"), -1).reshape(-1, d)
        with torch.no_grad():
            values = problem.initial_density(pts).double().reshape((n,) * d)
        coef = values
        for i, (_, analysis, _) in enumerate(axes):  # each axis' analysis along its own axis
            coef = torch.movedim(torch.tensordot(analysis, torch.movedim(coef, i, 0), dims=1), 0, i)
        budget = TOLERANCE * float(values.abs().max())
        modes = []
        for i, (_, _, axis_modes) in enumerate(axes):
            # Σ|c| over the modes of axis i from index k on (all modes of the other axis): a bound
            # on the max error of dropping them, since |φ| ≤ 1.  Modes are in increasing frequency.
            per_mode = coef.abs().sum(dim=tuple(a for a in range(d) if a != i)) if d > 1 else coef.abs()
            tail = torch.flip(torch.cumsum(torch.flip(per_mode, [0]), 0), [0])
            count = int((tail > budget / d).sum())
            if count > MAX_MODES[d]:
                return None
            coef = coef.narrow(i, 0, count)
            modes.append(axis_modes[:count])
        return cls(float(problem.viscosity), lower.double(), modes, coef.contiguous())

    def modes(self, i: int) -> torch.Tensor:
        """(K_i, 2): frequency and sine flag of the kept modes of axis i."""
        return self._modes[i]

    def _on(self, device: torch.device) -> None:
        if self.coef.device != device:
            self.lower, self.coef = self.lower.to(device), self.coef.to(device)
            self._modes = [m.to(device) for m in self._modes]

    def _axes(self, t: torch.Tensor, x: torch.Tensor) -> tuple[list, list, list]:
        """Per axis, at t (n, 1) and x (n, d): the modes e^{-νω²t} φ(x_i), their x_i-derivatives
        (n, K_i), and -ω² (K_i,); the same at t = 0 (no decay)."""
        decayed, at_zero, curv = [], [], []
        for i in range(self.dim):
            omega, phase = self._modes[i][:, 0], self._modes[i][:, 1] * (math.pi / 2)
            arg = (x[:, i:i + 1] - self.lower[i]) * omega - phase  # sin(θ) = cos(θ - π/2)
            phi, dphi = torch.cos(arg), -omega * torch.sin(arg)
            decay = torch.exp(-self.viscosity * omega * omega * t)
            decayed.append((decay * phi, decay * dphi))
            at_zero.append((phi, dphi))
            curv.append(-omega * omega)
        return decayed, at_zero, curv

    def _jet(self, axes: list, curv: list) -> tuple[torch.Tensor, ...]:
        """h, ∂t h (n,), ∇h (n, d) and ∂²h/∂x_i² (n, d) from the axes' mode tables."""
        if self.dim == 1:
            (val, der), c = axes[0], self.coef
            h, grad, second = val @ c, (der @ c).unsqueeze(-1), (val @ (curv[0] * c)).unsqueeze(-1)
        else:
            (val0, der0), (val1, der1), C = axes[0], axes[1], self.coef
            along = val0 @ C  # (n, K2): the first axis summed
            h = (along * val1).sum(-1)
            grad = torch.stack([((der0 @ C) * val1).sum(-1), (along * der1).sum(-1)], -1)
            second = torch.stack([((val0 @ (curv[0].unsqueeze(-1) * C)) * val1).sum(-1),
                                  (along * val1 * curv[1]).sum(-1)], -1)
        return h, self.viscosity * second.sum(-1), grad, second  # ∂t h = νΔh

    def __call__(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """h(t, x) - h(0, x) at t (n, 1), x (n, d): shape (n,), in x's dtype; zero at t = 0.

        m0 + h(t) - h(0) is m0 at t = 0 exactly and the heat flow to the series' accuracy
        (``TOLERANCE`` × max m0) after; unlike m0 h(t)/h(0) it stays right where m0 is below any
        floor (the far side of a narrow crowd, which diffusion reaches).  The value is exact;
        its derivatives reach autograd through a polynomial in (t, x) about the points
        themselves (whose added terms vanish there) with the analytic ∂t, ∇ and ∂²/∂x_i²:
        what the residuals differentiate (∂t, ∇, Δ); mixed and higher derivatives are not
        represented."""
        self._on(x.device)
        with torch.no_grad():
            t64, x64 = t.detach().double(), x.detach().double()
            decayed, at_zero, curv = self._axes(t64, x64)
            h, dt_h, grad, second = self._jet(decayed, curv)
            h0, _, grad0, second0 = self._jet(at_zero, curv)
            value, grad, second = h - h0, grad - grad0, second - second0
        dt, dx = t - t.detach(), x - x.detach()
        dtype = x.dtype
        return (value.to(dtype) + dt_h.to(dtype) * dt[:, 0] + (grad.to(dtype) * dx).sum(-1)
                + 0.5 * (second.to(dtype) * dx * dx).sum(-1))
