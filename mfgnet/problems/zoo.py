"""A zoo of problems a user of the field would bring, for testing solvers on problems
nobody tuned them for (issue 11).

Every builder is a plain function returning an :class:`MFGProblem`; ``ZOO`` maps a name
to its builder.  The zoo spans 1D and 2D; no-flux box, torus and R^d; time-dependent and
ergodic; initial densities from smooth to narrow (width 5 % of the domain), off-centre and
bimodal; local and nonlocal couplings from F = 0.2 m to F = 5 m; quadratic, congestion and
power Hamiltonians; ν from 0.2 down to 0.01; horizons 0.5 to 2; terminal costs that pull
the crowd across the domain.

``REFERENCE`` says how each problem's reference solution is obtained: the grid solver
(``{"kind": "grid", ...}`` with its settings, fine enough that its error is well below the
targets) or a closed form (``{"kind": "exact"}``, see :func:`exact_solution`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from mfgnet.problems.couplings import NonlocalCoupling
from mfgnet.problems.domains import Box, Euclidean, Torus
from mfgnet.problems.hamiltonians import CongestionHamiltonian, PowerHamiltonian
from mfgnet.problems.problem import MFGProblem


def _box_bumps(centres: Sequence[Sequence[float]], width: float, weights: Sequence[float] | None = None
               ) -> Callable[[torch.Tensor], torch.Tensor]:
    """Mixture of isotropic Gaussian bumps restricted to [0, 1]^d, each normalised exactly
    (erf per axis), so ∫ m0 = 1.  ``centres``: k points of dimension d."""
    weights = list(weights) if weights is not None else [1.0 / len(centres)] * len(centres)
    z = math.sqrt(2) * width
    masses = [math.prod(0.5 * (math.erf((1 - c) / z) + math.erf(c / z)) * math.sqrt(2 * math.pi) * width
                        for c in centre) for centre in centres]

    def m0(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for centre, w, mass in zip(centres, weights, masses):  # a few bumps, vectorised over points
            c = torch.as_tensor(centre, dtype=x.dtype, device=x.device)
            out = out + w / mass * torch.exp(-((x - c) ** 2).sum(-1) / (2 * width**2))
        return out

    return m0


def _torus_bumps(centres: Sequence[float], widths: Sequence[float], weights: Sequence[float]
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
    """1D wrapped Gaussians on [0, 1) (images -3..3: mass 1 to round-off for widths ≤ 0.2)."""
    shifts = torch.arange(-3, 4, dtype=torch.float64)

    def m0(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for c, s, w in zip(centres, widths, weights):
            d = x[:, :1] - c - shifts.to(x)  # (n, 7)
            out = out + w * torch.exp(-d**2 / (2 * s**2)).sum(-1) / (math.sqrt(2 * math.pi) * s)
        return out

    return m0


def box_bump_1d() -> MFGProblem:
    """The issue's failing case: no-flux [0, 1], T = 1, ν = 0.05, F = m, a bump of width 0.1 at
    0.25 pulled by G = (x − 0.75)² to the other side."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.05, coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: (x[:, 0] - 0.75) ** 2,
                      initial_density=_box_bumps([[0.25]], 0.1), name="box_bump_1d")


def readme_box_1d() -> MFGProblem:
    """The README's custom example: m0 = 6x(1 − x) (vanishes on the faces), F = m,
    G = (x − 0.75)², ν = 0.05, T = 1."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.05, coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: (x[:, 0] - 0.75) ** 2,
                      initial_density=lambda x: 6 * x[:, 0] * (1 - x[:, 0]), name="readme_box_1d")


def box_narrow_far_1d() -> MFGProblem:
    """A narrow bump (width 0.05 = 5 % of the box) near the left face at 0.15, low noise
    ν = 0.02, pulled across the box by G = 2 (x − 0.85)²; F = m."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.02, coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: 2 * (x[:, 0] - 0.85) ** 2,
                      initial_density=_box_bumps([[0.15]], 0.05), name="box_narrow_far_1d")


def box_narrow_edge_1d() -> MFGProblem:
    """box_narrow_far_1d's harder neighbour (added when the mass term's entry at t = 0, loss.mass_at_start, rescued
    that row's seed 1 from a crowd that went flat at t = 0+): a narrower bump (width 0.04) nearer the left face (at
    0.1), less noise ν = 0.015, twice the aversion F = 2m and a stronger pull across the box, G = 3 (x − 0.9)²;
    T = 1."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.015, coupling=lambda t, x, m: 2.0 * m,
                      terminal_cost=lambda x, m: 3 * (x[:, 0] - 0.9) ** 2,
                      initial_density=_box_bumps([[0.1]], 0.04), name="box_narrow_edge_1d")


def box_narrow_face_1d() -> MFGProblem:
    """box_narrow_edge_1d's harder neighbour (added when the free part's mass at t = 0 held by the form,
    model.free_mass_at_start, rescued that row's seeds 1 and 2 from a crowd that went flat at t = 0+): a narrower
    bump (width 0.035) nearer the face (at 0.07, 2 widths from it), the field's lowest noise ν = 0.01, F = 2m and
    G = 3 (x − 0.9)² pulling it across the box; T = 1."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.01, coupling=lambda t, x, m: 2.0 * m,
                      terminal_cost=lambda x, m: 3 * (x[:, 0] - 0.9) ** 2,
                      initial_density=_box_bumps([[0.07]], 0.035), name="box_narrow_face_1d")


def box_noisy_long_1d() -> MFGProblem:
    """Strong noise ν = 0.2 over a long horizon T = 2: a bump at 0.8 (width 0.1) pulled to 0.2
    by G = 2 (x − 0.2)², F = m."""
    return MFGProblem(Box([0.0], [1.0]), horizon=2.0, viscosity=0.2, coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: 2 * (x[:, 0] - 0.2) ** 2,
                      initial_density=_box_bumps([[0.8]], 0.1), name="box_noisy_long_1d")


def box_wall_push_1d() -> MFGProblem:
    """A harder neighbour of :func:`box_noisy_long_1d` (added when Fourier features of x fixed that
    one, whose error was the no-flux condition): strong noise ν = 0.25 over T = 2, a bump at 0.7
    (width 0.1) driven against the face x = 0 by G = 4 (x + 0.1)², where congestion F = 2 m holds it
    spread along the wall for most of the horizon."""
    return MFGProblem(Box([0.0], [1.0]), horizon=2.0, viscosity=0.25, coupling=lambda t, x, m: 2.0 * m,
                      terminal_cost=lambda x, m: 4 * (x[:, 0] + 0.1) ** 2,
                      initial_density=_box_bumps([[0.7]], 0.1), name="box_wall_push_1d")


def box_steep_rise_1d() -> MFGProblem:
    """A harder neighbour of :func:`box_wall_push_1d` (added when the 1D boxes' heavier HJB term and the
    terminal layer's default made that one need the layer): G = 6 (x − 0.25)² rises steeply into the face
    x = 1 (slope 9; corner strength 8.9) and gently into x = 0 (slope 3), strong noise ν = 0.2 over T = 1.5,
    but the crowd (a bump at 0.6, width 0.08, F = 1.5 m) ends inside the box, not against a face."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.5, viscosity=0.2, coupling=lambda t, x, m: 1.5 * m,
                      terminal_cost=lambda x, m: 6 * (x[:, 0] - 0.25) ** 2,
                      initial_density=_box_bumps([[0.6]], 0.08), name="box_steep_rise_1d")


def box_center_pull_1d() -> MFGProblem:
    """A second neighbour of the terminal layer's default (added with :func:`box_steep_rise_1d`, not used to
    choose it): G = 8 (x − 0.5)² rises into both faces with slope 8 (corner strength 5.7 at each), ν = 0.2,
    T = 1; two crowds start near the faces (bumps at 0.15 and 0.85, width 0.08, weights 0.5 / 0.5) and are
    pulled together against congestion F = 2 m."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.2, coupling=lambda t, x, m: 2.0 * m,
                      terminal_cost=lambda x, m: 8 * (x[:, 0] - 0.5) ** 2,
                      initial_density=_box_bumps([[0.15], [0.85]], 0.08, [0.5, 0.5]), name="box_center_pull_1d")


def box_congestion_1d() -> MFGProblem:
    """Congestion Hamiltonian H = ½ c(x)|p|², c(x) = 1 / (1 + 2 sin²(πx)) (slow in the middle):
    a bump at 0.2 (width 0.08) pulled to 0.8 by G = (x − 0.8)², F = m, ν = 0.05, T = 1."""
    def speed(x):
        return 1.0 / (1.0 + 2.0 * torch.sin(math.pi * x[:, 0]) ** 2)

    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.05, hamiltonian=CongestionHamiltonian(speed),
                      coupling=lambda t, x, m: m, terminal_cost=lambda x, m: (x[:, 0] - 0.8) ** 2,
                      initial_density=_box_bumps([[0.2]], 0.08), name="box_congestion_1d")


def box_two_crowds_1d() -> MFGProblem:
    """A harder neighbour of :func:`box_bump_1d` (added when the density-following sampler
    fixed part of that one): two narrow crowds (width 0.06, at 0.15 and 0.85, weights 0.6 / 0.4)
    walk into each other, pulled to the middle by G = 1.5 (x − 0.5)² against stronger
    congestion F = 2 m, with less noise ν = 0.03; no-flux [0, 1], T = 1."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.03, coupling=lambda t, x, m: 2.0 * m,
                      terminal_cost=lambda x, m: 1.5 * (x[:, 0] - 0.5) ** 2,
                      initial_density=_box_bumps([[0.15], [0.85]], 0.06, [0.6, 0.4]), name="box_two_crowds_1d")


def box_aversion_strong_1d() -> MFGProblem:
    """A harder neighbour found by the price-of-anarchy run (the social optimum of crowd aversion
    a = 2, results/price_of_anarchy/neural_a2): F = 4 m on a bump at 0.3 (width 0.1) pulled to
    0.75 by G = (x − 0.75)², ν = 0.05, no-flux [0, 1], T = 1.  The neural solver spread the crowd
    uniformly within the blend time there and reached a small residual (0.0037) with m 52 % off
    the crowd its feedback produces."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.05, coupling=lambda t, x, m: 4.0 * m,
                      terminal_cost=lambda x, m: (x[:, 0] - 0.75) ** 2,
                      initial_density=_box_bumps([[0.3]], 0.1), name="box_aversion_strong_1d")


def box_aversion_three_1d() -> MFGProblem:
    """A harder neighbour of :func:`box_aversion_strong_1d` (added when Fourier features of x fixed
    that one): the issue's strongest aversion F = 5 m on three narrow crowds (width 0.05 at 0.1, 0.45
    and 0.9; weights 0.3 / 0.3 / 0.4), low noise ν = 0.02, all pulled to 0.3 by G = 1.5 (x − 0.3)²
    over T = 1.5, with two of the crowds against a face."""
    return MFGProblem(Box([0.0], [1.0]), horizon=1.5, viscosity=0.02, coupling=lambda t, x, m: 5.0 * m,
                      terminal_cost=lambda x, m: 1.5 * (x[:, 0] - 0.3) ** 2,
                      initial_density=_box_bumps([[0.1], [0.45], [0.9]], 0.05, [0.3, 0.3, 0.4]),
                      name="box_aversion_three_1d")


def torus_bimodal_1d() -> MFGProblem:
    """Bimodal m0 on the torus (bumps at 0.2 and 0.65, widths 0.05 and 0.1, weights 0.6 / 0.4)
    gathered towards 0.5 by G = sin²(π(x − 0.5)), F = m, ν = 0.1, T = 1."""
    return MFGProblem(Torus(1), horizon=1.0, viscosity=0.1, coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: torch.sin(math.pi * (x[:, 0] - 0.5)) ** 2,
                      initial_density=_torus_bumps([0.2, 0.65], [0.05, 0.1], [0.6, 0.4]),
                      name="torus_bimodal_1d")


def torus_three_crowds_1d() -> MFGProblem:
    """A harder neighbour of :func:`torus_bimodal_1d` (added when the heat blend fixed that one):
    three narrow crowds (widths 0.05, 0.05, 0.06 at 0.1, 0.4 and 0.75; weights 0.3 / 0.3 / 0.4),
    half the noise ν = 0.05, three times the aversion F = 3 m, all pulled towards 0.3 by
    G = 0.5 sin²(π(x − 0.3)); T = 1."""
    return MFGProblem(Torus(1), horizon=1.0, viscosity=0.05, coupling=lambda t, x, m: 3.0 * m,
                      terminal_cost=lambda x, m: 0.5 * torch.sin(math.pi * (x[:, 0] - 0.3)) ** 2,
                      initial_density=_torus_bumps([0.1, 0.4, 0.75], [0.05, 0.05, 0.06], [0.3, 0.3, 0.4]),
                      name="torus_three_crowds_1d")


def torus_low_noise_1d() -> MFGProblem:
    """Low noise ν = 0.01, weak coupling F = 0.2 m, short horizon T = 0.5: the smooth
    m0 = 1 + 0.5 cos(2πx) (crowd at 0) is pulled to 0.5 by G = 0.5 cos(2πx)."""
    return MFGProblem(Torus(1), horizon=0.5, viscosity=0.01, coupling=lambda t, x, m: 0.2 * m,
                      terminal_cost=lambda x, m: 0.5 * torch.cos(2 * math.pi * x[:, 0]),
                      initial_density=lambda x: 1 + 0.5 * torch.cos(2 * math.pi * x[:, 0]),
                      name="torus_low_noise_1d")


def _periodic_gaussian_kernel(width: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """K(x, y) = exp(−dist²/(2 w²)) / (√(2π) w) with the periodic distance on [0, 1); (n, k, 1)."""

    def kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        diff = x[:, None, 0] - y[None, :, 0]
        diff = diff - torch.round(diff)
        return (torch.exp(-diff**2 / (2 * width**2)) / (math.sqrt(2 * math.pi) * width)).unsqueeze(-1)

    return kernel


def torus_nonlocal_1d() -> MFGProblem:
    """Nonlocal crowd aversion F = 2 (K ∗ m) with a periodic Gaussian kernel (width 0.1): a bump at
    0.5 (width 0.07) spreads while G = 0.3 cos(2πx) pulls it to 0.5; ν = 0.05, T = 1."""
    return MFGProblem(Torus(1), horizon=1.0, viscosity=0.05,
                      coupling=NonlocalCoupling(lambda t, x, m, conv: 2.0 * conv[:, 0],
                                                _periodic_gaussian_kernel(0.1)),
                      terminal_cost=lambda x, m: 0.3 * torch.cos(2 * math.pi * x[:, 0]),
                      initial_density=_torus_bumps([0.5], [0.07], [1.0]), name="torus_nonlocal_1d")


def torus_power_1d() -> MFGProblem:
    """Non-quadratic H = |p|³/3 (q = 3; q < 2 makes div ∂pH singular where ∇u = 0), F = m,
    a bump at 0.3 (width 0.1) pulled to 0.7 by G = −0.5 cos(2π(x − 0.7)), ν = 0.1, T = 1."""
    return MFGProblem(Torus(1), horizon=1.0, viscosity=0.1, hamiltonian=PowerHamiltonian(3.0),
                      coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: -0.5 * torch.cos(2 * math.pi * (x[:, 0] - 0.7)),
                      initial_density=_torus_bumps([0.3], [0.1], [1.0]), name="torus_power_1d")


def torus_power_two_1d() -> MFGProblem:
    """A harder neighbour of :func:`torus_power_1d` (added when the circle's lighter FP term fixed that
    one): a steeper H = |p|⁴/4, two crowds (bumps at 0.15 and 0.55, widths 0.05 / 0.08, weights 0.5 /
    0.5), half the noise ν = 0.05 and twice the aversion F = 2 m, all pulled to 0.85 by
    G = −0.5 cos(2π(x − 0.85)); T = 1."""
    return MFGProblem(Torus(1), horizon=1.0, viscosity=0.05, hamiltonian=PowerHamiltonian(4.0),
                      coupling=lambda t, x, m: 2.0 * m,
                      terminal_cost=lambda x, m: -0.5 * torch.cos(2 * math.pi * (x[:, 0] - 0.85)),
                      initial_density=_torus_bumps([0.15, 0.55], [0.05, 0.08], [0.5, 0.5]),
                      name="torus_power_two_1d")


def ergodic_box_strong_1d() -> MFGProblem:
    """Ergodic, no-flux box, strong crowd aversion F = 5 m + cos(2πx) (the potential favours the
    middle, the crowd repels itself), ν = 0.1."""
    return MFGProblem(Box([0.0], [1.0]), horizon=None, viscosity=0.1,
                      coupling=lambda t, x, m: 5.0 * m + torch.cos(2 * math.pi * x[:, 0]),
                      name="ergodic_box_strong_1d")


def box_bump_2d() -> MFGProblem:
    """2D no-flux square: a bump at (0.3, 0.3) (width 0.1) pulled to the far corner region
    by G = |x − (0.75, 0.7)|², F = m, ν = 0.05, T = 1."""
    target = torch.tensor([0.75, 0.7], dtype=torch.float64)
    return MFGProblem(Box([0.0, 0.0], [1.0, 1.0]), horizon=1.0, viscosity=0.05, coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: ((x - target.to(x)) ** 2).sum(-1),
                      initial_density=_box_bumps([[0.3, 0.3]], 0.1), name="box_bump_2d")


def box_two_crowds_2d() -> MFGProblem:
    """2D no-flux square: two narrow crowds (width 0.07) at (0.25, 0.7) and (0.7, 0.25) pulled to
    the centre, where they meet, by G = 2|x − (0.5, 0.5)|², with crowd aversion F = 2m, ν = 0.03,
    T = 1: box_bump_2d's harder neighbour (narrower, two crowds, stronger aversion, less noise)."""
    target = torch.tensor([0.5, 0.5], dtype=torch.float64)
    return MFGProblem(Box([0.0, 0.0], [1.0, 1.0]), horizon=1.0, viscosity=0.03, coupling=lambda t, x, m: 2.0 * m,
                      terminal_cost=lambda x, m: 2.0 * ((x - target.to(x)) ** 2).sum(-1),
                      initial_density=_box_bumps([[0.25, 0.7], [0.7, 0.25]], 0.07), name="box_two_crowds_2d")


def box_three_crowds_2d() -> MFGProblem:
    """2D no-flux square: three narrow crowds (width 0.06) of unequal sizes (0.5, 0.3, 0.2) at (0.2, 0.75),
    (0.8, 0.7) and (0.45, 0.2), drawn to an off-centre point (0.55, 0.45) by G = 2|x − (0.55, 0.45)|², where
    they meet under stronger crowd aversion F = 3m, ν = 0.03, T = 1: box_two_crowds_2d's harder neighbour,
    added when the density network's HJB share 3 brought that row within 3 % on every seed (forty-eighth
    session)."""
    target = torch.tensor([0.55, 0.45], dtype=torch.float64)
    return MFGProblem(Box([0.0, 0.0], [1.0, 1.0]), horizon=1.0, viscosity=0.03, coupling=lambda t, x, m: 3.0 * m,
                      terminal_cost=lambda x, m: 2.0 * ((x - target.to(x)) ** 2).sum(-1),
                      initial_density=_box_bumps([[0.2, 0.75], [0.8, 0.7], [0.45, 0.2]], 0.06, [0.5, 0.3, 0.2]),
                      name="box_three_crowds_2d")


def box_wall_push_2d() -> MFGProblem:
    """2D no-flux square: a bump at (0.6, 0.6) (width 0.08) pushed into the face x₁ = 0 by
    G = 3 (x₁ + 0.1)² + (x₂ − 0.5)², with congestion F = m, ν = 0.05, T = 1: the 2D neighbour of
    box_wall_push_1d (a crowd held against a face, G steep into the empty face x₁ = 1), added as the
    unseen check of the 2D boxes' HJB weights (thirty-second session)."""
    return MFGProblem(Box([0.0, 0.0], [1.0, 1.0]), horizon=1.0, viscosity=0.05, coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: 3.0 * (x[:, 0] + 0.1) ** 2 + (x[:, 1] - 0.5) ** 2,
                      initial_density=_box_bumps([[0.6, 0.6]], 0.08), name="box_wall_push_2d")


def box_wall_corner_2d() -> MFGProblem:
    """2D no-flux square: a narrower bump at (0.65, 0.6) (width 0.06) pushed into the corner (0, 0) by
    G = 3 (x₁ + 0.1)² + 3 (x₂ + 0.1)², with congestion F = 2 m, ν = 0.03, T = 1: box_wall_push_2d's harder
    neighbour (two faces meet where the crowd piles up; narrower, less noise, more congestion), added when 1024
    points a step kept that row out of the state two of three seeds had ended in (forty-third session)."""
    return MFGProblem(Box([0.0, 0.0], [1.0, 1.0]), horizon=1.0, viscosity=0.03, coupling=lambda t, x, m: 2.0 * m,
                      terminal_cost=lambda x, m: 3.0 * (x[:, 0] + 0.1) ** 2 + 3.0 * (x[:, 1] + 0.1) ** 2,
                      initial_density=_box_bumps([[0.65, 0.6]], 0.06), name="box_wall_corner_2d")


def box_obstacle_2d() -> MFGProblem:
    """2D no-flux square: a bump at (0.2, 0.5) (width 0.08) drawn across the square by G = 2 (x₁ − 1.1)²
    past an obstacle, a running cost 5 exp(−|x − (0.55, 0.5)|² / (2 · 0.1²)) in its way, with congestion
    F = m on top, ν = 0.05, T = 1: the crowd splits around the obstacle.  Added as the unseen check of the
    2D boxes' slice-time warp and no-flux weight (forty-fifth session): none of the other 2D rows has a
    cost in x that the crowd must go around."""
    obstacle = torch.tensor([0.55, 0.5], dtype=torch.float64)

    def coupling(t, x, m):
        return m + 5.0 * torch.exp(-((x - obstacle.to(x)) ** 2).sum(-1) / (2 * 0.1**2))

    return MFGProblem(Box([0.0, 0.0], [1.0, 1.0]), horizon=1.0, viscosity=0.05, coupling=coupling,
                      terminal_cost=lambda x, m: 2.0 * (x[:, 0] - 1.1) ** 2,
                      initial_density=_box_bumps([[0.2, 0.5]], 0.08), name="box_obstacle_2d")


def ergodic_torus_2d() -> MFGProblem:
    """Ergodic 2D torus: F = m + 0.5 (cos 2πx₁ + sin 2πx₂ cos 2πx₁) (no closed form), ν = 0.1."""
    def coupling(t, x, m):
        c1, s2 = torch.cos(2 * math.pi * x[:, 0]), torch.sin(2 * math.pi * x[:, 1])
        return m + 0.5 * (c1 + s2 * c1)

    return MFGProblem(Torus(2), horizon=None, viscosity=0.1, coupling=coupling, name="ergodic_torus_2d")


# The B2 parameters of the R^d entries: not the benchmark's defaults (T = 2, stronger pull,
# a narrower m0 far from the origin, less noise).
LQ_PARAMS = {"horizon": 2.0, "kappa": 2.0, "terminal_weight": 1.0, "rho": 0.3, "viscosity": 0.05,
             "mean0": 2.0, "var0": 0.05}


def _lq_benchmark(name: str):
    """B2 (problem and closed form) of the LQ entry ``name`` (:data:`LQ_ROWS`)."""
    from mfgnet.benchmarks import lq_gaussian  # the benchmark layer owns the closed form

    dim, params = LQ_ROWS[name]
    return lq_gaussian(dim, **params)


def lq_offset_1d() -> MFGProblem:
    """B2 (linear-quadratic, exact Gaussian solution) on R with non-default parameters
    (``LQ_PARAMS``): nonlocal coupling through the mean, m0 = N(2, 0.05), T = 2, ν = 0.05."""
    return _lq_benchmark("lq_offset_1d").problem


def lq_offset_2d() -> MFGProblem:
    """As :func:`lq_offset_1d` on R²."""
    return _lq_benchmark("lq_offset_2d").problem


# The harder neighbour of lq_offset_1d for the fixed-point check (added when its 1D grid learned to refine an
# undecided gap): a crowd of std 0.1 instead of 0.22 at ν = 0.02, so that the check's grid on R's bounding box
# is 7.8 % off at 400 cells and 4.0 % at 800 for the exact pair.
LQ_NARROW_PARAMS = {**LQ_PARAMS, "var0": 0.01, "viscosity": 0.02}


def lq_narrow_1d() -> MFGProblem:
    """B2 on R as :func:`lq_offset_1d`, with a narrower crowd and less noise (``LQ_NARROW_PARAMS``):
    m0 = N(2, 0.01), ν = 0.02, T = 2; exact Gaussian solution."""
    return _lq_benchmark("lq_narrow_1d").problem


# lq_narrow_1d with a strong terminal pull towards 0.9 × the crowd's own mean at T: c_T = 4 instead of 1, ρ = 0.9
# instead of 0.3 (the crowd contracts at the end, std 0.115 -> 0.086 over the last half; u's curvature 1.8 -> 4).
LQ_TERMINAL_PULL_PARAMS = {**LQ_NARROW_PARAMS, "terminal_weight": 4.0, "rho": 0.9}


def lq_terminal_pull_1d() -> MFGProblem:
    """B2 on R as :func:`lq_narrow_1d` with G = 2 (x − 0.9 m̄(T))² (``LQ_TERMINAL_PULL_PARAMS``): the harder
    neighbour of u(T) = G(x, m̄(T)) by the networks' form, where G reads the crowd's own mean strongly and
    curves four times as much; exact Gaussian solution."""
    return _lq_benchmark("lq_terminal_pull_1d").problem


# The harder neighbour of lq_terminal_pull_1d (added when the gradient-enhanced HJB term made that row meet): half
# the crowd's width (std 0.05), half the noise (ν = 0.01) and a pull twice as strong towards 0.95 × the crowd's own
# mean (c_T = 8, ρ = 0.95).
LQ_SHARP_PULL_PARAMS = {**LQ_TERMINAL_PULL_PARAMS, "var0": 0.0025, "viscosity": 0.01, "terminal_weight": 8.0,
                        "rho": 0.95}


def lq_sharp_pull_1d() -> MFGProblem:
    """B2 on R as :func:`lq_terminal_pull_1d` with m0 = N(2, 0.05²), ν = 0.01 and G = 4 (x − 0.95 m̄(T))²
    (``LQ_SHARP_PULL_PARAMS``); exact Gaussian solution."""
    return _lq_benchmark("lq_sharp_pull_1d").problem


# The zoo's B2 entries: dimension and parameters, for the problem and its exact solution alike.
LQ_ROWS = {"lq_offset_1d": (1, LQ_PARAMS), "lq_offset_2d": (2, LQ_PARAMS), "lq_narrow_1d": (1, LQ_NARROW_PARAMS),
           "lq_terminal_pull_1d": (1, LQ_TERMINAL_PULL_PARAMS), "lq_sharp_pull_1d": (1, LQ_SHARP_PULL_PARAMS)}


def r_two_crowds_1d() -> MFGProblem:
    """R, no closed form: two crowds 0.6 N(-1.2, 0.2²) + 0.4 N(1, 0.15²) pulled together by
    F = m + x²/2 (local congestion: they cannot simply merge) and G = (x - 0.5)²/2, ν = 0.1,
    T = 1.  The non-Gaussian neighbour of lq_offset_1d (the Gaussian warm start's guess is
    wrong here; the residual training has to fix it).  Box for the grid reference and the
    evaluation: [-4, 4]."""
    parts = ((0.6, -1.2, 0.2), (0.4, 1.0, 0.15))

    def m0(x: torch.Tensor) -> torch.Tensor:
        return sum(w * torch.exp(-(x[:, 0] - c) ** 2 / (2 * s * s)) / (math.sqrt(2 * math.pi) * s)
                   for w, c, s in parts)

    def sampler(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        first = torch.rand(n, generator=generator, dtype=torch.float64) < parts[0][0]
        centre = torch.where(first, parts[0][1], parts[1][1])
        width = torch.where(first, parts[0][2], parts[1][2])
        return (centre + width * torch.randn(n, generator=generator, dtype=torch.float64)).unsqueeze(-1)

    return MFGProblem(Euclidean(1, box=Box([-4.0], [4.0])), horizon=1.0, viscosity=0.1,
                      coupling=lambda t, x, m: m + 0.5 * (x**2).sum(-1),
                      terminal_cost=lambda x, m: 0.5 * ((x - 0.5) ** 2).sum(-1),
                      initial_density=m0, initial_sampler=sampler, name="r_two_crowds_1d")


def r_split_1d() -> MFGProblem:
    """R, no closed form: one Gaussian crowd N(0.15, 0.25²) that a double-well terminal cost
    G = (x² − 1)² splits into two unequal crowds near ±1 by t = T = 1; congestion F = m, ν = 0.1.
    The harder neighbour of lq_offset_1d for settings that help a single crowd (it starts as one
    and ends as two).  Box for the grid reference and the evaluation: [-4, 4]."""
    centre, width = 0.15, 0.25

    def m0(x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(x[:, 0] - centre) ** 2 / (2 * width * width)) / (math.sqrt(2 * math.pi) * width)

    def sampler(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return (centre + width * torch.randn(n, generator=generator, dtype=torch.float64)).unsqueeze(-1)

    return MFGProblem(Euclidean(1, box=Box([-4.0], [4.0])), horizon=1.0, viscosity=0.1,
                      coupling=lambda t, x, m: m,
                      terminal_cost=lambda x, m: ((x**2).sum(-1) - 1.0) ** 2,
                      initial_density=m0, initial_sampler=sampler, name="r_split_1d")


ZOO: dict[str, Callable[[], MFGProblem]] = {
    "box_bump_1d": box_bump_1d,
    "readme_box_1d": readme_box_1d,
    "box_narrow_far_1d": box_narrow_far_1d,
    "box_narrow_edge_1d": box_narrow_edge_1d,
    "box_narrow_face_1d": box_narrow_face_1d,
    "box_noisy_long_1d": box_noisy_long_1d,
    "box_wall_push_1d": box_wall_push_1d,
    "box_steep_rise_1d": box_steep_rise_1d,
    "box_center_pull_1d": box_center_pull_1d,
    "box_congestion_1d": box_congestion_1d,
    "box_two_crowds_1d": box_two_crowds_1d,
    "box_aversion_strong_1d": box_aversion_strong_1d,
    "box_aversion_three_1d": box_aversion_three_1d,
    "torus_bimodal_1d": torus_bimodal_1d,
    "torus_three_crowds_1d": torus_three_crowds_1d,
    "torus_low_noise_1d": torus_low_noise_1d,
    "torus_nonlocal_1d": torus_nonlocal_1d,
    "torus_power_1d": torus_power_1d,
    "torus_power_two_1d": torus_power_two_1d,
    "ergodic_box_strong_1d": ergodic_box_strong_1d,
    "box_bump_2d": box_bump_2d,
    "box_two_crowds_2d": box_two_crowds_2d,
    "box_three_crowds_2d": box_three_crowds_2d,
    "box_wall_push_2d": box_wall_push_2d,
    "box_wall_corner_2d": box_wall_corner_2d,
    "box_obstacle_2d": box_obstacle_2d,
    "ergodic_torus_2d": ergodic_torus_2d,
    "lq_offset_1d": lq_offset_1d,
    "lq_offset_2d": lq_offset_2d,
    "lq_narrow_1d": lq_narrow_1d,
    "lq_terminal_pull_1d": lq_terminal_pull_1d,
    "lq_sharp_pull_1d": lq_sharp_pull_1d,
    "r_two_crowds_1d": r_two_crowds_1d,
    "r_split_1d": r_split_1d,
}

# How each reference is obtained.  Grid: first-order upwind on ``cells`` per axis and
# ``time_steps`` steps, Richardson-extrapolated (order 2) in 1D.
REFERENCE: dict[str, dict] = {
    "box_bump_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "readme_box_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_narrow_far_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_narrow_edge_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_narrow_face_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_noisy_long_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_wall_push_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_steep_rise_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_center_pull_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_congestion_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_two_crowds_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_aversion_strong_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "box_aversion_three_1d": {"kind": "grid", "cells": 400, "time_steps": 600, "order": 2},
    "torus_bimodal_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "torus_three_crowds_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "torus_low_noise_1d": {"kind": "grid", "cells": 512, "time_steps": 256, "order": 2},
    "torus_nonlocal_1d": {"kind": "grid", "cells": 256, "time_steps": 256, "order": 2},
    "torus_power_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    # The grid's default start diverges at 200-400 cells on this steep H (its retry would catch that): asking for
    # the damped Picard start directly skips the failed first attempt.
    "torus_power_two_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2, "picard_warmup": 20,
                           "damping": 0.3},
    "ergodic_box_strong_1d": {"kind": "grid", "cells": 1024, "order": 2},
    "box_bump_2d": {"kind": "grid", "cells": 48, "time_steps": 48, "order": 2},
    "box_two_crowds_2d": {"kind": "grid", "cells": 64, "time_steps": 64, "order": 2},
    "box_three_crowds_2d": {"kind": "grid", "cells": 64, "time_steps": 64, "order": 2},
    "box_wall_push_2d": {"kind": "grid", "cells": 64, "time_steps": 64, "order": 2},
    "box_wall_corner_2d": {"kind": "grid", "cells": 64, "time_steps": 64, "order": 2},
    "box_obstacle_2d": {"kind": "grid", "cells": 64, "time_steps": 64, "order": 2},
    "ergodic_torus_2d": {"kind": "grid", "cells": 128, "order": 2},
    "lq_offset_1d": {"kind": "exact"},
    "lq_offset_2d": {"kind": "exact"},
    "lq_narrow_1d": {"kind": "exact"},
    "lq_terminal_pull_1d": {"kind": "exact"},
    "lq_sharp_pull_1d": {"kind": "exact"},
    "r_two_crowds_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
    "r_split_1d": {"kind": "grid", "cells": 400, "time_steps": 400, "order": 2},
}


def exact_solution(name: str):
    """The closed-form solution of a zoo entry whose ``REFERENCE`` kind is ``"exact"``, else None."""
    if REFERENCE[name]["kind"] != "exact":
        return None
    return _lq_benchmark(name).exact
