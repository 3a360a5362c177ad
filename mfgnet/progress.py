"""Progress bars for runs longer than a few seconds.

tqdm (well kept, and ``tqdm.auto`` draws a widget in Jupyter) on standard error; a bar
appears only after ``SHOW_AFTER_S`` seconds, so a 0.2 s grid solve stays quiet, and one
flag turns bars off (``progress=false`` on the command line, ``progress=False`` in Python).
"""

from __future__ import annotations

import logging
import sys

SHOW_AFTER_S = 2.0
REFRESH_S = 0.5  # at most two redraws a second: a log file of a long run stays readable


def progress_bar(total: int | None, desc: str, *, enabled: bool = True, unit: str = "it"):
    """A tqdm bar (a no-op object when ``enabled`` is False); ``total=None`` for open-ended loops."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, delay=SHOW_AFTER_S, file=sys.stderr,
                mininterval=REFRESH_S, dynamic_ncols=True, leave=False)


def console_logging(level: int = logging.INFO) -> None:
    """Log lines on standard error for the argparse entry points (compare, bench, report);
    the Hydra entry points get theirs from Hydra (console and the run's log file)."""
    logging.basicConfig(level=level, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s",
                        stream=sys.stderr)
