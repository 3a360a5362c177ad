"""mfgnet side of the finite-MFG comparison with MFGLib (float64 numpy, exact exploitability).

    python experiments/peers/mfglib_mfgnet.py '{"env": "beach_bar", "params": {}, "iterations": 100, "threads": 1}'

Prints the same JSON keys as ``mfglib_peer.py``.  ``run_mfgnet(spec)`` is the importable form.
"""

from __future__ import annotations

import time

# Run as a script from this folder (or imported with it on sys.path, as run.py and the tests do).
from common import side_main


def run_mfgnet(spec: dict) -> dict:
    """Fictitious play (weights 1/(n+2), as MFGLib) for ``spec["iterations"]`` iterations, each scored."""
    from mfgnet.agents.finite import fictitious_play, make_env

    game = make_env(spec["env"], **spec.get("params", {}))
    start = time.perf_counter()
    res = fictitious_play(game, int(spec["iterations"]))
    wall = time.perf_counter() - start
    return {"exploitability": [float(e) for e in res.exploitability], "times": [float(t) for t in res.wall_time],
            "wall_s": wall, "iterations": int(spec["iterations"]), "dtype": "float64"}


if __name__ == "__main__":
    side_main(run_mfgnet)
