"""mfgnet side of the finite-MFG comparison with MFGLib (float64 numpy, exact exploitability).

    python experiments/peers/mfglib_mfgnet.py '{"env": "beach_bar", "params": {}, "iterations": 100, "threads": 1}'

Prints the same JSON keys as ``mfglib_peer.py``.  ``run_mfgnet(spec)`` is the importable form.
"""

from __future__ import annotations

import json
import sys
import time


def run_mfgnet(spec: dict) -> dict:
    """Fictitious play (weights 1/(n+2), as MFGLib) for ``spec["iterations"]`` iterations, each scored."""
    from mfgnet.agents.finite import fictitious_play, make_env

    game = make_env(spec["env"], **spec.get("params", {}))
    start = time.perf_counter()
    res = fictitious_play(game, int(spec["iterations"]))
    wall = time.perf_counter() - start
    return {"exploitability": [float(e) for e in res.exploitability], "times": [float(t) for t in res.wall_time],
            "wall_s": wall, "iterations": int(spec["iterations"]), "dtype": "float64"}


def main() -> None:
    spec = json.loads(sys.argv[1])
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    print(json.dumps(run_mfgnet(spec)))


if __name__ == "__main__":
    main()
