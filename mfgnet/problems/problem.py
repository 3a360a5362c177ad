"""The mean field game, declared once and solved by any solver.

    -∂t u - ν Δu + H(x, ∇u) = F(t, x, m)        u(T, x) = G(x, m(T))
     ∂t m - ν Δm - div(m ∂pH(x, ∇u)) = 0        m(0, x) = m0(x)

An *MFG of controls* adds to F a cost f(t, x, ᾱ(t)) of the crowd's mean control
ᾱ(t) = ∫ α(t, y) m(t, y) dy, α = -∂pH(y, ∇u) (``mean_control_cost``): agents interact
through what the others do, not only where they are.

or, when ``horizon is None``, the ergodic problem

     λ - ν Δu + H(x, ∇u) = F(x, m),   -ν Δm - div(m ∂pH(x, ∇u)) = 0,   ∫m = 1,  ∫u = 0.

All functions are torch callables (float64 or float32, CPU or GPU) so that the grid solver
can evaluate them on its nodes and the neural solver can differentiate through them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch

from mfgnet.problems.couplings import Coupling, NonlocalCoupling, PlusFixedCost, as_coupling
from mfgnet.problems.domains import Box, Domain, Euclidean, cell_centre_points
from mfgnet.problems.hamiltonians import CallableHamiltonian, Hamiltonian, as_hamiltonian
from mfgnet.problems.validation import ProblemError, argument_count

Sampler = Callable[[int, torch.Generator | None], torch.Tensor]


# Points at which a declaration calls the user's F, G and H once (their shapes, types and dtypes checked).
PROBE_POINTS = 5


class MFGProblem:
    """A mean field game, declared once for every solver.

    Every function is a torch callable on batches of points: ``x`` of shape (n, d), ``t``
    of shape (n, 1), ``m`` of shape (n,); each returns shape (n,).  The problem is checked
    on construction (m0 finite, >= 0, of the right shape and normalisable; T > 0; ν >= 0).

    Parameters
    ----------
    domain : Domain
        A [`Torus`][mfgnet.problems.domains.Torus], [`Box`][mfgnet.problems.domains.Box] or
        [`Euclidean`][mfgnet.problems.domains.Euclidean].
    horizon : float or None
        Final time T > 0, or ``None`` for the ergodic (stationary) problem.
    viscosity : float
        ν >= 0 (noise √(2ν) dW).
    hamiltonian : Hamiltonian or callable or None
        A [`Hamiltonian`][mfgnet.problems.hamiltonians.Hamiltonian] or a callable ``H(x, p)``; default ½|p|².
    coupling : Coupling or callable or None
        ``F(t, x, m)`` callable or [`Coupling`][mfgnet.problems.couplings.Coupling] (local or nonlocal); default 0.
    terminal_cost : Coupling or callable or None
        ``G(x, m)`` callable or [`Coupling`][mfgnet.problems.couplings.Coupling]; default 0
        (time-dependent problems only).
    initial_density : callable or None
        ``m0(x) -> (n,)``; required for time-dependent problems.  A density whose integral
        is not 1 is rescaled, with a warning.
    initial_sampler : callable or None
        ``sampler(n, generator) -> (n, d)`` drawing from m0; default rejection sampling on
        the problem's box.  On R^d it also defines the box (see
        [`bounding_box`][mfgnet.problems.problem.MFGProblem.bounding_box]).  An ergodic
        problem on R^d needs one too: there it is only a rough guess of the stationary crowd
        (it places the box and the neural solver's first points; no condition is imposed).
    mean_control_cost : callable or None
        ``f(t, x, mean_control) -> (n,)`` with mean_control (n, d): a running cost that
        depends on the crowd's mean control ᾱ(t) = ∫ α m dy (an MFG of controls, e.g. trade
        crowding, [`trade_crowding`][mfgnet.benchmarks.trade_crowding.trade_crowding]).  Time-dependent
        problems only.  The grid solver finds ᾱ by a fixed point over frozen-ᾱ games
        (:mod:`mfgnet.grid.controls`); the neural solver integrates ᾱ per time slice.
    name : str
        A label for logs and tables.

    Raises
    ------
    ProblemError
        When a field is out of range or a function has the wrong shape; the message names
        the field.

    Examples
    --------
    >>> problem = MFGProblem(
    ...     Box([0.0], [1.0]), horizon=1.0, viscosity=0.05,
    ...     coupling=lambda t, x, m: m,
    ...     terminal_cost=lambda x, m: (x[:, 0] - 0.75) ** 2,
    ...     initial_density=lambda x: 6 * x[:, 0] * (1 - x[:, 0]))
    """

    def __init__(
        self,
        domain: Domain,
        horizon: float | None,
        viscosity: float,
        hamiltonian: Hamiltonian | Callable | None = None,
        coupling: Coupling | Callable | None = None,
        terminal_cost: Coupling | Callable | None = None,
        initial_density: Callable[[torch.Tensor], torch.Tensor] | None = None,
        initial_sampler: Sampler | None = None,
        mean_control_cost: Callable | None = None,
        name: str = "custom",
    ) -> None:
        if not isinstance(domain, Domain):
            raise ProblemError(f"domain must be a Torus, Box or Euclidean, got {domain!r}")
        self.domain = domain
        self.dim = domain.dim
        self.name = name

        if horizon is not None:
            if isinstance(horizon, bool) or not isinstance(horizon, (int, float)) or not math.isfinite(horizon) \
                    or horizon <= 0:
                raise ProblemError(f"horizon T must be a finite number > 0 (or None for ergodic), got {horizon!r}")
            horizon = float(horizon)
        self.horizon = horizon

        if isinstance(viscosity, bool) or not isinstance(viscosity, (int, float)) \
                or not math.isfinite(viscosity) or viscosity < 0:
            raise ProblemError(f"viscosity ν must be a finite number >= 0, got {viscosity!r}")
        self.viscosity = float(viscosity)

        self.hamiltonian = as_hamiltonian(hamiltonian)
        self.coupling = as_coupling(coupling, "coupling", arity=3)
        self.terminal_cost = as_coupling(terminal_cost, "terminal_cost", arity=2)

        if self.is_ergodic:
            if not domain.bounded and initial_sampler is None:
                raise ProblemError(
                    "an ergodic problem (horizon=None) on R^d needs initial_sampler: a rough guess of the "
                    "stationary crowd that places the solvers' points and box (it imposes no condition)")
            if terminal_cost is not None:
                raise ProblemError("terminal_cost is meaningless for an ergodic problem (horizon=None)")
        elif initial_density is None:
            raise ProblemError("a time-dependent problem needs initial_density m0(x)")
        if initial_density is not None and not callable(initial_density):
            raise ProblemError("initial_density must be callable as m0(x) with x of shape (n, d)")
        if initial_sampler is not None and not callable(initial_sampler):
            raise ProblemError("initial_sampler must be callable as sampler(n, generator)")
        self.mean_control_cost = _checked_mean_control_cost(mean_control_cost, horizon)
        self._initial_density = initial_density
        self._initial_sampler = initial_sampler
        self._box: Box | None = domain.box if isinstance(domain, Euclidean) else None
        self._density_scale = 1.0
        if initial_density is not None:
            self._check_initial_density()
        # The user's own F and G (plain callables or a NonlocalCoupling; the library's wrappers are
        # trusted) are called once on a few points, so that a wrong shape or type is named here
        # instead of failing deep inside a solver, or (a (n, 1) G broadcast against (n,)) silently.
        for field, given in (("coupling", coupling), ("terminal_cost", terminal_cost)):
            if given is not None and (not isinstance(given, Coupling) or type(given) is NonlocalCoupling):
                self._check_coupling_output(field, getattr(self, field))
        if isinstance(self.hamiltonian, CallableHamiltonian):
            self._check_hamiltonian_output()

    # ------------------------------------------------------------------ basics
    @property
    def is_ergodic(self) -> bool:
        """Whether the problem is stationary (``horizon is None``), with an unknown constant λ."""
        return self.horizon is None

    @property
    def has_mean_control(self) -> bool:
        """Whether the costs depend on the crowd's mean control ᾱ(t) (an MFG of controls)."""
        return self.mean_control_cost is not None

    def with_mean_control(self, mean_control: Callable[[torch.Tensor], torch.Tensor]) -> MFGProblem:
        """The ordinary MFG in which the crowd's mean control is frozen to ``mean_control(t)``
        (t (n, 1) -> (n, d)): its coupling is F(t, x, m) + f(t, x, ᾱ(t)).  An equilibrium of the
        MFG of controls is a solution of this game whose own mean control is ᾱ."""
        if not self.has_mean_control:
            raise ProblemError(f"problem {self.name!r} has no mean_control_cost to freeze")
        cost = self.mean_control_cost
        return MFGProblem(
            self.domain, horizon=self.horizon, viscosity=self.viscosity, hamiltonian=self.hamiltonian,
            coupling=PlusFixedCost(self.coupling, lambda t, x: cost(t, x, mean_control(t))),
            terminal_cost=self.terminal_cost, initial_density=self.initial_density,
            initial_sampler=self._initial_sampler, name=self.name)

    def __repr__(self) -> str:
        kind = "ergodic" if self.is_ergodic else f"T={self.horizon}"
        return (f"MFGProblem(name={self.name!r}, domain={self.domain!r}, {kind}, ν={self.viscosity}, "
                f"H={self.hamiltonian!r})")

    # --------------------------------------------------------- initial density
    def initial_density(self, x: torch.Tensor) -> torch.Tensor:
        """m0(x) for x of shape (n, d); returns (n,)."""
        if self._initial_density is None:
            raise ProblemError(f"problem {self.name!r} has no initial_density")
        m = self._initial_density(x)
        return m if self._density_scale == 1.0 else m * self._density_scale

    def sample_initial(self, n: int, generator: torch.Generator | None = None,
                       dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``n`` points drawn from m0, shape (n, d)."""
        if self._initial_sampler is not None:
            return self._initial_sampler(n, generator).to(dtype)
        return self._rejection_sample(n, generator).to(dtype)

    @property
    def initial_sampler_function(self) -> Sampler | None:
        """The ``initial_sampler`` the problem was declared with (None: rejection sampling)."""
        return self._initial_sampler

    def bounding_box(self) -> Box:
        """The box solvers discretise or sample: the domain itself, or for R^d a box that
        holds the mass over [0, T], derived from m0 and the noise: around m0's mean, per axis
        the larger of 7 standard deviations of m0 and 4 of the diffused spread
        √(var0 + 2νT) (m0's variance grown by the noise alone over [0, T]), widened by 1 on
        each side for the drift of the mean.  (The benchmarks' default boxes are m0's: the
        noise term takes over only where 2νT is large against var0.)  The grid solver warns when its computed density
        reaches the box's edge (``diagnostics.extra["edge_mass"]``); pass
        ``Euclidean(dim, box=Box(...))`` to set the box yourself."""
        if self.domain.bounded or self._box is not None:
            lower, upper = self.domain.bounds() if self._box is None else self._box.bounds()
            return Box(lower.tolist(), upper.tolist())
        if self._initial_sampler is None:
            raise ProblemError(
                "an Euclidean problem needs initial_sampler (or Euclidean(dim, box=...)) to derive its box")
        gen = torch.Generator().manual_seed(0)
        samples = self._initial_sampler(20000, gen).double()
        mean, var = samples.mean(0), samples.var(0)
        spread = torch.sqrt(var + 2.0 * self.viscosity * (self.horizon or 0.0))
        half = torch.maximum(7.0 * var.sqrt(), 4.0 * spread) + 1.0
        self._box = Box((mean - half).tolist(), (mean + half).tolist())
        return self._box

    def _check_initial_density(self) -> None:
        d = self.dim
        if self._initial_sampler is not None:
            probe = self._initial_sampler(16, torch.Generator().manual_seed(0))
            if not isinstance(probe, torch.Tensor) or probe.shape != (16, d):
                shape = tuple(probe.shape) if isinstance(probe, torch.Tensor) else type(probe).__name__
                raise ProblemError(
                    f"initial_sampler(16) returned shape {shape}; expected (16, {d}) for domain.dim = {d}")
        box = self.bounding_box()
        lower, upper = box.bounds()
        # Quadrature on a cell-centred grid in low d; Monte Carlo above.
        per_axis = {1: 4096, 2: 256, 3: 48}.get(d, 0)
        if per_axis:
            x = cell_centre_points(lower, upper, per_axis)
        else:
            x = box.sample(20000, torch.Generator().manual_seed(0))
        try:
            with torch.no_grad():
                m = self._initial_density(x)
        except Exception as exc:  # a user's callable failing on (n, d) input
            raise ProblemError(
                f"initial_density failed on points of shape (n, {d}) (domain.dim = {d}): {exc}") from exc
        if not isinstance(m, torch.Tensor) or m.shape != (x.shape[0],):
            shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise ProblemError(
                f"initial_density returned shape {shape} for x of shape {tuple(x.shape)}; "
                f"expected ({x.shape[0]},) -- does it match domain.dim = {d}?")
        if not torch.isfinite(m).all():
            raise ProblemError("initial_density has non-finite values (NaN or Inf) on the domain")
        if m.min() < 0:
            raise ProblemError(f"initial_density must be >= 0 everywhere; its minimum is {float(m.min()):.3e}")
        if per_axis:
            mass = float(m.mean()) * box.volume()
        elif self.domain.bounded:
            mass = float(m.mean()) * box.volume()
        else:
            return  # high-d R^d: the sampler defines m0; no cheap quadrature.
        if not (math.isfinite(mass) and mass > 0):
            raise ProblemError(f"initial_density is not normalisable: its integral is {mass!r}")
        if abs(mass - 1) > 1e-3:
            warnings.warn(f"initial_density integrates to {mass:.6g}, not 1; it is rescaled to mass 1",
                          stacklevel=3)
            self._density_scale = 1.0 / mass

    def _probe_points(self) -> torch.Tensor:
        """PROBE_POINTS points drawn in the bounding box (seeded): where the declaration calls F, G and H."""
        lower, upper = self.bounding_box().bounds()
        gen = torch.Generator().manual_seed(0)
        return lower + (upper - lower) * torch.rand(PROBE_POINTS, self.dim, generator=gen, dtype=torch.float64)

    def _check_coupling_output(self, field: str, coupling: Coupling) -> None:
        """Call ``coupling`` at 5 points of the bounding box with m = 0.5 (t = 0) and check that it
        returns a finite floating tensor of shape (5,); warn when its dtype is less precise than
        the points' (float64): the grid solver's Newton then stalls at that dtype's rounding."""
        n, d, x = PROBE_POINTS, self.dim, self._probe_points()
        t = torch.zeros(n, 1, dtype=torch.float64)
        m = torch.full((n,), 0.5, dtype=torch.float64)
        call = f"{field}(t, x, m)" if field == "coupling" else f"{field}(x, m)"
        try:
            with torch.no_grad():
                conv = None
                if coupling.kernel is not None:  # ∫K m over the 5 points as the quadrature
                    conv = coupling.kernel(x, x).mean(dim=1) * 0.5
                out = coupling(t, x, m, conv)
        except ProblemError:
            raise
        except Exception as exc:  # a user's callable failing on (n, d) points and (n,) densities
            raise ProblemError(f"{call} failed on x of shape ({n}, {d}) (domain.dim = {d}) and m of shape "
                               f"({n},): {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, torch.Tensor):
            hint = ("a constant c: return c + 0 * m" if isinstance(out, (int, float))
                    else "torch operations on t, x and m give one")
            raise ProblemError(f"{call} must return a torch tensor of shape (n,) for x of shape (n, {d}), got "
                               f"{type(out).__name__} ({hint})")
        if out.shape != (n,):
            raise ProblemError(f"{call} returned shape {tuple(out.shape)} for x of shape ({n}, {d}) and m of "
                               f"shape ({n},); expected ({n},)")
        if not out.is_floating_point():
            raise ProblemError(f"{call} returned dtype {out.dtype}; expected a floating dtype (that of x)")
        if not torch.isfinite(out).all():
            raise ProblemError(f"{call} returned non-finite values (NaN or Inf) at m = 0.5 in the domain")
        if torch.finfo(out.dtype).eps > torch.finfo(x.dtype).eps:
            warnings.warn(f"{call} returned {out.dtype} for {x.dtype} points: its values carry {out.dtype}'s "
                          f"rounding (relative {torch.finfo(out.dtype).eps:.0e}), so the grid solver's Newton "
                          "stalls above its default tolerance (solver.tol = 1e-10); return values in x's dtype "
                          "(e.g. .to(x.dtype))", stacklevel=3)

    def _check_hamiltonian_output(self) -> None:
        """Call a user's H(x, p) and ∂pH at 5 points (p standard normal): H must give (5,), ∂pH (5, d)."""
        n, d, x = PROBE_POINTS, self.dim, self._probe_points()
        p = torch.randn(n, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        for call, expected, fn in (("hamiltonian(x, p)", (n,), self.hamiltonian),
                                   ("∂pH(x, p) of the hamiltonian", (n, d), self.hamiltonian.grad_p)):
            try:
                out = fn(x, p)
            except ProblemError:
                raise
            except Exception as exc:  # a user's callable failing on (n, d) points and momenta
                raise ProblemError(f"{call} failed on x and p of shape ({n}, {d}) (domain.dim = {d}): "
                                   f"{type(exc).__name__}: {exc}") from exc
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            if shape != expected:
                raise ProblemError(f"{call} returned {shape} for x and p of shape ({n}, {d}); expected {expected}"
                                   + (" (H sums over the coordinates of p: e.g. 0.5 * (p ** 2).sum(-1))"
                                      if expected == (n,) else ""))
            if not torch.isfinite(out).all():
                raise ProblemError(f"{call} returned non-finite values (NaN or Inf) at standard normal p")

    def _rejection_sample(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        box = self.bounding_box()
        grid = box.sample(4096, torch.Generator().manual_seed(1))
        bound = 1.5 * float(self.initial_density(grid).max())
        out: list[torch.Tensor] = []
        count = 0
        while count < n:  # batches, not points: each pass draws ~n/acceptance candidates
            cand = box.sample(max(2 * n, 1024), generator)
            accept = torch.rand(cand.shape[0], generator=generator, dtype=torch.float64) * bound \
                < self.initial_density(cand)
            out.append(cand[accept])
            count += int(accept.sum())
        return torch.cat(out)[:n]

    # --------------------------------------------------- convenient evaluators
    def coupling_needs_density_integral(self) -> bool:
        """Whether F or G is nonlocal, i.e. needs ∫K(x, y) m(t, y) dy and not just m(t, x)."""
        return not (self.coupling.is_local and self.terminal_cost.is_local)

    def noise_std(self, dt: float) -> float:
        """√(2ν dt): the standard deviation, per coordinate, of one time step's noise
        √(2ν) (W_{t+dt} − W_t) in an Euler–Maruyama step of the state equation."""
        return math.sqrt(2 * self.viscosity * dt)


def _checked_mean_control_cost(cost: Callable | None, horizon: float | None) -> Callable | None:
    if cost is None:
        return None
    if not callable(cost):
        raise ProblemError(f"mean_control_cost must be callable as f(t, x, mean_control), got {cost!r}")
    n_args = argument_count(cost, 3)
    if n_args != 3:
        raise ProblemError(f"mean_control_cost must be callable as f(t, x, mean_control) (3 arguments), "
                           f"it takes {n_args}")
    if horizon is None:
        raise ProblemError("mean_control_cost: an MFG of controls is implemented for time-dependent problems "
                           "(horizon > 0), not ergodic ones")
    return cost
