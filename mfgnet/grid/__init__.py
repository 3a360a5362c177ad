"""Classical finite-difference solver (Achdou & Capuzzo-Dolcetta scheme) for 1D/2D MFGs.

Monotone upwind numerical Hamiltonian, implicit Euler in time, the Fokker-Planck equation
as the adjoint of the linearised HJB (mass conserved to round-off, m >= 0), on a torus or
a no-flux box, time-dependent or ergodic; Newton on the whole coupled system.

    from mfgnet.benchmarks import ergodic_torus
    from mfgnet.grid import solve_grid
    sol = solve_grid(ergodic_torus(1).problem, cells=512)
    sol.ergodic_constant, sol.density(None, x)
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "config": ["GridSolverConfig"],
    "fp": ["solve_fp"],
    "hjb": ["HJBResult", "solve_hjb"],
    "mesh": ["Grid", "make_grid"],
    "solution": ["GridSolution"],
    "solver": ["solve_grid", "solve_on_grid"],
})
