"""Classical finite-difference solver (Achdou & Capuzzo-Dolcetta scheme) for 1D/2D MFGs.

Monotone upwind numerical Hamiltonian, implicit Euler in time, the Fokker-Planck equation
as the adjoint of the linearised HJB (mass conserved to round-off, m >= 0), on a torus or
a no-flux box, time-dependent or ergodic; Newton on the whole coupled system.

    from mfgnet.benchmarks import ergodic_torus
    from mfgnet.grid import solve_grid
    sol = solve_grid(ergodic_torus(1).problem, cells=512)
    sol.ergodic_constant, sol.density(None, x)
"""

from mfgnet.grid.config import GridSolverConfig
from mfgnet.grid.fp import solve_fp
from mfgnet.grid.hjb import HJBResult, solve_hjb
from mfgnet.grid.mesh import Grid, make_grid
from mfgnet.grid.solution import GridSolution
from mfgnet.grid.solver import solve_grid, solve_on_grid

__all__ = ["Grid", "GridSolution", "GridSolverConfig", "HJBResult", "make_grid", "solve_fp", "solve_grid",
           "solve_hjb", "solve_on_grid"]
