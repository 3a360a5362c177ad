"""Checkpoint files of the neural solver: safe loading, atomic saving, and the run fingerprint.

* Loading uses ``torch.load(..., weights_only=True)``: a checkpoint holds tensors and plain
  containers only, so a tampered file cannot run code when it is resumed.
* Saving writes a temp file unique to the process (pid + random suffix), syncs it and moves
  it over the checkpoint with ``os.replace`` (atomic): a kill, or a second process saving
  into the same folder, never leaves a half-written or mixed ``checkpoint.pt``.
* The fingerprint records everything that defines the training trajectory (the problem and
  the solver settings that change the mathematics); resuming refuses a checkpoint whose
  fingerprint differs and says which entries do.
"""

from __future__ import annotations

import os
import pickle
import secrets

import torch

from mfgnet.neural.config import NeuralSolverConfig
from mfgnet.problems import MFGProblem, ProblemError

CHECKPOINT_NAME = "checkpoint.pt"

# Settings that change how a run is observed, stored or where it runs, but not the
# trajectory of the parameters; resuming with other values of these is allowed.
_NOT_FINGERPRINTED = {"checkpoint_dir", "checkpoint_every", "resume", "verbose", "progress", "log_every",
                      "device", "cpu_threads", "n_eval", "tolerance", "equilibrium_tolerance", "on_nonfinite",
                      "steps"}
_PROBE_POINTS = 16
_PROBE_SEED = 20240917
_DIGITS = 12  # significant digits of the probe values: robust to last-bit noise, not to a parameter change


# ------------------------------------------------------------------ fingerprint
def fingerprint(problem: MFGProblem, cfg: NeuralSolverConfig) -> dict[str, object]:
    """A flat ``{entry: value}`` of everything that defines the run (primitives only).

    Entries: ``problem.*`` (name, dim, domain type and bounds, horizon, viscosity, ergodic),
    ``problem probe *`` (m0, G, F, H at fixed seeded points, as strings with 12 significant
    digits: parameters live inside the callables, so their values are the only witness), and
    the solver config flattened as ``optim.lr``, ``model.width``, ``seed``, ``dtype``, ...
    """
    lower, upper = problem.bounding_box().bounds()
    out: dict[str, object] = {
        "problem.name": problem.name, "problem.dim": problem.dim,
        "problem.domain": type(problem.domain).__name__,
        "problem.bounds": _fmt(torch.stack([lower, upper])),
        "problem.horizon": problem.horizon, "problem.viscosity": problem.viscosity,
        "problem.ergodic": problem.is_ergodic,
    }
    out.update({f"problem probe {k}": v for k, v in _probe(problem).items()})
    for key, value in _flatten(cfg.to_dict()).items():
        if key not in _NOT_FINGERPRINTED:
            out[key] = value
    # The learning-rate schedule (cosine, exponential) is a function of step / steps, so with
    # either of them `steps` changes every step's update and belongs to the run; with a
    # constant schedule it only says where to stop, and resuming with more steps extends
    # the same trajectory (the result equals a straight run of the larger count).
    if cfg.optim.schedule != "constant":
        out["steps"] = cfg.steps
    return out


def _probe(problem: MFGProblem) -> dict[str, list[str]]:
    """m0, G, F and H at fixed points of the problem's box (own generator, float64, CPU)."""
    gen = torch.Generator().manual_seed(_PROBE_SEED)
    n, d = _PROBE_POINTS, problem.dim
    lower, upper = problem.bounding_box().bounds()
    x = lower + (upper - lower) * torch.rand(n, d, generator=gen, dtype=torch.float64)
    T = problem.horizon
    t = torch.zeros(n, 1, dtype=torch.float64) if T is None else T * torch.rand(n, 1, generator=gen,
                                                                                   dtype=torch.float64)
    m = 0.1 + 2.0 * torch.rand(n, generator=gen, dtype=torch.float64)
    p = 2.0 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    values = {}
    with torch.no_grad():
        if not problem.is_ergodic:
            values["m0"] = problem.initial_density(x)
            values["G"] = problem.terminal_cost(torch.full_like(t, T), x, m, _conv(problem.terminal_cost, x, m))
        values["F"] = problem.coupling(t, x, m, _conv(problem.coupling, x, m))
        values["H"] = problem.hamiltonian(x, p)
    return {k: _fmt(v) for k, v in values.items()}


def _conv(coupling, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor | None:
    """A stand-in for ∫K(x, y) m(y) dy: the m-weighted mean of K over the probe points."""
    if coupling.is_local:
        return None
    return torch.einsum("nkc,k->nc", coupling.kernel(x, x), m / m.sum())


def _fmt(values: torch.Tensor) -> list[str]:
    return [f"{v:.{_DIGITS}g}" for v in values.detach().to(torch.float64).cpu().flatten().tolist()]


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def differences(saved: dict, current: dict) -> list[str]:
    """Human-readable differences, e.g. ``"optim.lr 0.003 → 0.001"``, ``"problem probe F differs"``."""
    missing = object()
    out = []
    for key in sorted(set(saved) | set(current), key=lambda k: (not k.startswith("problem"), k)):
        a, b = saved.get(key, missing), current.get(key, missing)
        if a == b:
            continue
        if key.startswith("problem probe") or key == "problem.bounds":
            out.append(f"{key} differs")
        else:
            out.append(f"{key} {'(none)' if a is missing else a!r} → {'(none)' if b is missing else b!r}")
    return out


def check_fingerprint(state: dict, current: dict, path: str) -> None:
    """Raise ``ProblemError`` unless ``state`` was written for the run ``current`` describes."""
    saved = state.get("fingerprint")
    if not isinstance(saved, dict):
        raise ProblemError(f"checkpoint {path} has no run fingerprint (written by an older mfgnet?); "
                           "use a fresh checkpoint_dir or resume=false")
    diff = differences(saved, current)
    if diff:
        raise ProblemError(f"checkpoint {path} was written for a different run: {', '.join(diff)}; "
                           "use a fresh checkpoint_dir or resume=false")


# ------------------------------------------------------------------ files
def save(state: dict, path: str) -> None:
    """Write ``state`` to ``path`` atomically through a temp file unique to this process."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    # pid + random suffix, created exclusively: two processes (or two trainers in one) saving
    # into one folder never share a temp file.  (Not mkstemp: its 0600 mode would make the
    # checkpoint unreadable to the group; os.open with 0o666 honours the umask.)
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it the checkpoint
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path: str, map_location: torch.device | str | None = None) -> dict:
    """Read a checkpoint with ``weights_only=True``; any failure is one ``ProblemError`` line."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses, before running anything, whatever is not a tensor or a plain
        # container; a corrupted pickle stream ends up here too.
        raise ProblemError(f"checkpoint {path} was refused: it is corrupted or holds objects other than tensors "
                           f"and plain containers, which are not loaded since that could run code "
                           f"({_reason(exc)}); delete it or use a fresh checkpoint_dir, or resume=false") from None
    except Exception as exc:  # truncated, corrupted, not a torch file: torch raises many kinds
        raise ProblemError(f"checkpoint {path} could not be read, it is truncated or corrupted ({_reason(exc)}); "
                           "delete it or use a fresh checkpoint_dir, or resume=false") from None
    if not isinstance(state, dict) or "step" not in state:
        raise ProblemError(f"checkpoint {path} is not a neural solver checkpoint; "
                           "use a fresh checkpoint_dir or resume=false")
    return state


def _reason(exc: BaseException) -> str:
    """One short line from torch's (multi-line, advice-laden) error message."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0].split(". ")[0] if lines else type(exc).__name__
    return line if len(line) <= 120 else line[:117] + "..."
