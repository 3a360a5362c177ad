"""The optional extra ``mfgnet[fast]`` (numba): whether it is installed, and the error for a
compiled backend asked for without it.

The compiled modules (:mod:`mfgnet.grid.tridiagonal_kernels`, :mod:`mfgnet.agents.finite.kernels`,
:mod:`mfgnet.agents.mfq.kernel`, :mod:`mfgnet.agents.simulation.fused_kernels`) import numba
themselves, on first use: loading it costs about half a second that ``import mfgnet`` need not pay.
"""

from __future__ import annotations

import importlib.util

from mfgnet.problems import ProblemError

NUMBA_AVAILABLE = importlib.util.find_spec("numba") is not None


def numba_missing(setting: str = "backend='numba'", fallback: str = "backend='numpy'") -> ProblemError:
    """The error for ``setting`` when numba is not installed, naming the extra and the fallback."""
    return ProblemError(f"{setting} needs numba: pip install 'mfgnet[fast]' (or use {fallback})")
