"""mfgnet side of the finite-MFG comparison with MFGLib (float64, exact exploitability; numba's compiled
kernels where installed, else numpy).

    python experiments/peers/mfglib_mfgnet.py '{"env": "beach_bar", "params": {}, "iterations": 100, "threads": 1}'

Prints the same JSON keys as ``mfglib_peer.py``.  ``run_mfgnet(spec)`` is the importable form.
"""

from __future__ import annotations

import time

# Run as a script from this folder (or imported with it on sys.path, as run.py and the tests do).
from common import side_main


def run_mfgnet(spec: dict) -> dict:
    """Fictitious play (weights 1/(n+2), as MFGLib) for ``spec["iterations"]`` iterations, each scored.

    ``spec["backend"]`` (default ``"auto"``) is fictitious_play's.  The backend is chosen once before
    the clock starts, so that loading numba's compiled kernels (a one-off per process, like the
    imports of either side) is reported apart, as ``startup_s``.
    """
    from mfgnet.agents.finite import fictitious_play, make_env
    from mfgnet.agents.finite.backends import select

    game = make_env(spec["env"], **spec.get("params", {}))
    backend = spec.get("backend", "auto")
    start = time.perf_counter()
    engine = select(game, backend)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    res = fictitious_play(game, int(spec["iterations"]), backend=backend)
    wall = time.perf_counter() - start
    return {"exploitability": [float(e) for e in res.exploitability], "times": [float(t) for t in res.wall_time],
            "wall_s": wall, "iterations": int(spec["iterations"]), "dtype": "float64", "backend": engine.name,
            "startup_s": startup}


if __name__ == "__main__":
    side_main(run_mfgnet)
