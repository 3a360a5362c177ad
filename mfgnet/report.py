"""``python -m mfgnet.report <multirun dir> [--out DIR]``: a sweep's table and plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mfgnet.evaluation.sweep import DEFAULT_METRICS, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mfgnet.report", description=__doc__)
    parser.add_argument("multirun_dir", type=Path, help="a Hydra multirun directory (e.g. multirun/2026-...)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default results/sweeps/<name>)")
    parser.add_argument("--metrics", nargs="*", default=list(DEFAULT_METRICS), help="metric columns")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    if not args.multirun_dir.is_dir():
        print(f"mfgnet.report: error: {args.multirun_dir} is not a directory", file=sys.stderr)
        return 2
    out = args.out or Path("results") / "sweeps" / args.multirun_dir.name
    try:
        paths = write_report(args.multirun_dir, out, tuple(args.metrics), args.title)
    except FileNotFoundError as exc:
        print(f"mfgnet.report: error: {exc}", file=sys.stderr)
        return 2
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
