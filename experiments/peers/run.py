"""Side-by-side comparison of mfgnet with a peer library, one command per peer.

    python experiments/peers/run.py mfglib  [--threads 1] [--repeats 3] [--quick]
    python experiments/peers/run.py deepxde [--threads 1] [--repeats 3] [--dims 1 2] [--budget 180] [--quick]
    python experiments/peers/run.py deepxde --dims 2 --tag d2     # -> results/peers/deepxde_d2.md
    python experiments/peers/run.py deepxde --dims 2 --mfgnet-config '{"loss": {"compile_jets": true}}' \
        --tag d2_compiled                                       # a third mfgnet row (float32) with these settings
    python experiments/peers/run.py deepxde --problem b2 --dims 5 --repeats 1 --budget 1200 --tag b2_d5
    python experiments/peers/run.py deepxde --problem b2 --dims 5 --repeats 1 --budget 900 --crowd-box \
        --tag b2_d5_crowdbox                                    # DeepXDE's box: the exact crowd's

On first use it creates ``.peers/<peer>/`` (a separate virtual environment: the peer's pins
never reach mfgnet's) and installs the peer there.  Both sides run as subprocesses with the same
thread count; the markdown table and the error-against-wall-time figure go to
``results/peers/<peer>.md`` / ``.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, PeerError, ensure_peer  # noqa: E402

if str(ROOT) not in sys.path:  # mfgnet importable from a checkout (B2 draws its evaluation points here)
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=["mfglib", "deepxde"])
    parser.add_argument("--threads", type=int, default=1, help="threads per side (torch, BLAS, OpenMP)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side; medians are reported")
    parser.add_argument("--quick", action="store_true", help="a few iterations/steps only (smoke run)")
    parser.add_argument("--problem", choices=["b1", "b2"], default="b1",
                        help="deepxde: B1 (ergodic torus, time to rel L2 m <= 1e-2) or B2 (LQ on R^d, <= 3e-2)")
    parser.add_argument("--dims", type=int, nargs="+", default=[1],
                        help="deepxde: dimensions (B1: 1 and/or 2; B2: one d >= 1)")
    parser.add_argument("--steps", type=int, default=None,
                        help="deepxde --problem b2: mfgnet's Adam steps (default: the solver's default)")
    parser.add_argument("--crowd-box", action="store_true",
                        help="deepxde --problem b2: DeepXDE's box is that of the exact crowd, not the bounding box")
    parser.add_argument("--budget", type=float, default=180.0, help="deepxde: wall seconds per DeepXDE run")
    parser.add_argument("--mfgnet-lbfgs", type=int, default=300, help="deepxde: mfgnet's L-BFGS steps after Adam 200")
    parser.add_argument("--mfgnet-config", type=json.loads, default=None,
                        help="deepxde B1: a JSON overlay of mfgnet's settings, run as a third row in float32 "
                             "(e.g. '{\"loss\": {\"compile_jets\": true}}')")
    parser.add_argument("--out", default=str(ROOT / "results" / "peers"))
    parser.add_argument("--tag", default="", help="write <peer>_<tag>.md/.png instead of <peer>.md/.png")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be >= 1")
    if args.peer == "deepxde" and args.problem == "b2" and (len(args.dims) != 1 or args.dims[0] < 1):
        parser.error("--problem b2 takes one dimension d >= 1 in --dims")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python experiments/peers/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        python = ensure_peer(args.peer)
    except PeerError as err:
        sys.exit(f"[peers] {err}")
    name = args.peer + (f"_{args.tag}" if args.tag else "")
    start = time.perf_counter()
    if args.peer == "mfglib":
        import compare_mfglib

        text = compare_mfglib.run(python, out, args.threads, args.repeats, args.quick, command, name)
    elif args.problem == "b2":
        import compare_deepxde_b2

        text = compare_deepxde_b2.run(python, out, args.threads, args.repeats, args.quick, command, args.dims[0],
                                      args.budget, args.steps, name, args.crowd_box)
    else:
        import compare_deepxde

        text = compare_deepxde.run(python, out, args.threads, args.repeats, args.quick, command, args.dims,
                                   args.budget, name, args.mfgnet_lbfgs, args.mfgnet_config)
    print(text)
    print(f"[peers] {args.peer}: {time.perf_counter() - start:.0f} s; wrote {out / (name + '.md')}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
