"""Shared plumbing of the peer comparisons: the peers' own virtual environments, running one side
of a comparison as a subprocess that prints JSON, and the machine note.

Each peer lives in ``.peers/<peer>/`` (git-ignored) so that its pins (MFGLib: optuna < 4) never
reach mfgnet's environment.  torch is installed in the same pip command as the peer, pinned to
the version on this machine's local wheel store, so that pip does not pull a CUDA build.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = ROOT / ".peers"
HERE = Path(__file__).resolve().parent
TORCH_PIN = "torch==2.13.0"
PEERS = {"mfglib": ["mfglib==0.3.0"], "deepxde": ["deepxde==1.15.0"]}
# Python modules whose import proves the peer's venv works.
IMPORTS = {"mfglib": "mfglib", "deepxde": "deepxde"}


class PeerError(RuntimeError):
    """A peer's venv could not be made or a side of a comparison failed."""


def peer_python(peer: str) -> Path:
    return PEERS_DIR / peer / "bin" / "python"


def peer_available(peer: str) -> bool:
    """True when ``.peers/<peer>`` exists and imports the peer (no install is attempted)."""
    py = peer_python(peer)
    if not py.exists():
        return False
    probe = subprocess.run([str(py), "-c", f"import {IMPORTS[peer]}"], capture_output=True, env=_env(1))
    return probe.returncode == 0


def ensure_peer(peer: str, verbose: bool = True) -> Path:
    """Create ``.peers/<peer>`` and install the peer (with torch pinned) on first use; return its python."""
    if peer not in PEERS:
        raise PeerError(f"unknown peer {peer!r}; choose one of {sorted(PEERS)}")
    if peer_available(peer):
        return peer_python(peer)
    target = PEERS_DIR / peer
    if verbose:
        print(f"[peers] creating {target} and installing {' '.join(PEERS[peer])} (first use, a few minutes)",
              file=sys.stderr, flush=True)
    venv.EnvBuilder(with_pip=True, clear=target.exists()).create(target)
    cmd = [str(peer_python(peer)), "-m", "pip", "install", "-q", TORCH_PIN, *PEERS[peer]]
    done = subprocess.run(cmd, capture_output=not verbose)
    if done.returncode != 0 or not peer_available(peer):
        raise PeerError(f"installing {peer} into {target} failed (command: {' '.join(cmd)})")
    return peer_python(peer)


def _env(threads: int) -> dict:
    """Environment of a side: the same thread count for every BLAS/OpenMP pool, mfgnet importable."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["DDE_BACKEND"] = "pytorch"
    return env


def run_side(python: Path | str, script: str, spec: dict, timeout_s: float = 600.0) -> dict:
    """Run ``experiments/peers/<script>`` with ``python`` and the JSON ``spec``; return its JSON output."""
    threads = int(spec.get("threads", 1))
    done = subprocess.run([str(python), str(HERE / script), json.dumps(spec)], capture_output=True, text=True,
                          env=_env(threads), cwd=str(ROOT), timeout=timeout_s)
    if done.returncode != 0:
        raise PeerError(f"{script} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise PeerError(f"{script} printed no JSON:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def side_main(run) -> None:
    """Entry point of an mfgnet side script: the JSON spec from argv, its thread count set before the
    run, the JSON result on stdout (what :func:`run_side` reads)."""
    spec = json.loads(sys.argv[1])
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    print(json.dumps(run(spec)))


def machine_note(threads: int) -> str:
    try:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    return (f"{platform.machine()}, {os.cpu_count()} cores SHARED with other jobs (load average {load}), "
            f"Python {platform.python_version()}, {threads} thread(s) per side; no GPU")


def median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])
