"""MFGLib side of the finite-MFG comparison; runs inside the peer's venv (.peers/mfglib).

    .peers/mfglib/bin/python experiments/peers/mfglib_peer.py '{"env": "beach_bar", "params": {}, "iterations": 100,
                                                               "threads": 1}'

Prints one JSON object: the exploitability of every fictitious-play iterate (MFGLib's own
float32 score, k = 0 the uniform policy), the cumulative time of each since ``solve`` was
called, and the total wall time of ``solve`` (exploitability included).  Early stopping is
switched off (atol = rtol = None).
"""

from __future__ import annotations

import json
import sys
import time

# The env names and parameters are mfgnet's (make_env); MFGLib names them differently.
_PARAMS = {"n": "n", "horizon": "T", "bar_loc": "bar_loc", "p_still": "p_still", "torus_l": "torus_l",
           "torus_w": "torus_w", "seed": "seed"}


def main() -> None:
    spec = json.loads(sys.argv[1])
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    from mfglib.alg import FictitiousPlay
    from mfglib.env import Environment

    env = getattr(Environment, spec["env"])(**{_PARAMS[k]: v for k, v in spec.get("params", {}).items()})
    start = time.perf_counter()
    _, expls, rts = FictitiousPlay().solve(env, max_iter=int(spec["iterations"]), atol=None, rtol=None)
    wall = time.perf_counter() - start
    # MFGLib's clock starts after it has scored the initial policy (rts[0] = 0); shift its times by
    # what solve() spent before that, so that both sides' curves start when solve() is called.
    offset = wall - rts[-1]
    times = [offset] + [offset + t for t in rts[1:]]
    print(json.dumps({"exploitability": [float(e) for e in expls], "times": times,
                      "wall_s": wall, "iterations": int(spec["iterations"]), "dtype": "float32",
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
