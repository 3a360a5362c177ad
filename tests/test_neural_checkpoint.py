"""Checkpoints of the neural solver are safe: loaded with weights_only (a pickled payload is
never run), refused when written for another run (problem or settings), clear about missing,
truncated or corrupted files, and written atomically through per-process temp files."""

import os
import pickle
import warnings

import pytest
import torch

from mfgnet.benchmarks import ergodic_torus, hopf_cole
from mfgnet.neural import NeuralSolverConfig, solve_neural
from mfgnet.neural import checkpoint as ckpt
from mfgnet.neural.checkpoint import CHECKPOINT_NAME
from mfgnet.problems import ProblemError

TINY = {"dtype": "float64", "log_every": 2, "checkpoint_every": 2, "n_eval": 64,
        "model": {"width": 8, "depth": 1},
        "sampler": {"n_interior": 32, "n_initial": 16, "n_terminal": 16, "n_boundary": 8,
                    "n_quadrature": 32, "time_slices": 4, "n_conv": 16}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(tmp_path, **overrides):
    return NeuralSolverConfig.from_dict(dict(TINY, checkpoint_dir=str(tmp_path))).replace(**overrides)


def _params(sol):
    return torch.cat([p.detach().flatten() for p in sol.networks.parameters()])


class _Kill(Exception):
    pass


def _kill_at(step):
    def logger(s, metrics):
        if s == step:
            raise _Kill
    return logger


# ------------------------------------------------------------------ round trip
@pytest.mark.parametrize("overrides", [
    {"optim.training": "alternating", "sampler.kind": "residual", "sampler.refresh_every": 2},
    {"loss.normalization": "penalty", "loss.lambda_mode": "trainable", "dtype": "float32"},
])
def test_resume_is_exact_and_everything_loads_weights_only(tmp_path, overrides):
    """Two optimisers, the residual pool, a trainable λ, float32: all in a weights_only file."""
    problem = ergodic_torus(1).problem
    cfg = _config(tmp_path, steps=8, **overrides)
    straight = solve_neural(problem, cfg.replace(checkpoint_dir=str(tmp_path / "straight")))
    with pytest.raises(_Kill):
        solve_neural(problem, cfg, callback=_kill_at(4))
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 4 and state["fingerprint"]["seed"] == 0
    resumed = solve_neural(problem, cfg.replace(resume=True))
    assert torch.equal(_params(straight), _params(resumed))
    assert straight.diagnostics.extra["history"]["loss"] == resumed.diagnostics.extra["history"]["loss"]


def test_constant_schedule_may_extend_steps_and_bookkeeping_may_change(tmp_path):
    """`steps` is outside the fingerprint under a constant schedule: more steps continue the
    same trajectory.  Logging/checkpoint/evaluation settings never enter the fingerprint."""
    problem = hopf_cole().problem
    cfg = _config(tmp_path, steps=4, **{"optim.schedule": "constant"})
    solve_neural(problem, cfg)
    longer = cfg.replace(steps=6, resume=True, log_every=3, checkpoint_every=3, n_eval=32, verbose=False)
    resumed = solve_neural(problem, longer)
    straight = solve_neural(problem, cfg.replace(steps=6, checkpoint_dir=None))
    assert torch.equal(_params(straight), _params(resumed))


# ------------------------------------------------------------------ refusals
def test_problem_parameter_change_is_refused_and_named(tmp_path):
    cfg = _config(tmp_path, steps=2)
    solve_neural(hopf_cole(kappa=1.0).problem, cfg)
    with pytest.raises(ProblemError) as err:
        solve_neural(hopf_cole(kappa=2.0).problem, cfg.replace(resume=True))
    msg = str(err.value)
    assert str(tmp_path / CHECKPOINT_NAME) in msg and "different run" in msg and "resume=false" in msg
    assert "problem probe F differs" in msg
    # Only what changed is named: κ enters F, not m0, G or H.
    assert "probe m0" not in msg and "probe G" not in msg and "probe H" not in msg


def test_optimiser_setting_change_is_refused_and_named(tmp_path):
    problem = hopf_cole().problem
    cfg = _config(tmp_path, steps=2, **{"optim.lr": 3e-3})
    solve_neural(problem, cfg)
    with pytest.raises(ProblemError, match="optim.lr 0.003 → 0.001") as err:
        solve_neural(problem, cfg.replace(resume=True, **{"optim.lr": 1e-3}))
    assert "problem" not in str(err.value).split("different run")[1]
    # Under the (default) cosine schedule the total step count shapes every step's rate.
    with pytest.raises(ProblemError, match="steps 2 → 4"):
        solve_neural(problem, cfg.replace(resume=True, steps=4))


def test_checkpoint_without_fingerprint_is_refused(tmp_path):
    torch.save({"step": 3, "nets": {}}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(ProblemError, match="no run fingerprint"):
        solve_neural(hopf_cole().problem, _config(tmp_path, steps=4, resume=True))


def test_fingerprint_is_deterministic_and_leaves_out_bookkeeping():
    cfg = NeuralSolverConfig(seed=0)
    a = ckpt.fingerprint(hopf_cole().problem, cfg)
    b = ckpt.fingerprint(hopf_cole().problem, cfg.replace(checkpoint_dir="elsewhere", resume=True, log_every=7,
                                                          device="cpu", cpu_threads=3, tolerance=0.5))
    assert a == b
    for key in ("checkpoint_dir", "resume", "log_every", "device", "cpu_threads", "tolerance", "n_eval"):
        assert key not in a
    assert a["optim.lr"] == cfg.optim.lr and a["seed"] == 0 and a["steps"] == cfg.steps
    assert {"problem probe m0", "problem probe G", "problem probe F", "problem probe H"} <= set(a)
    assert ckpt.fingerprint(ergodic_torus(1).problem, cfg)["problem.ergodic"] is True


def test_checkpoint_of_another_network_layout_is_refused_clearly(tmp_path):
    """Same settings, but networks of another layout (an entry the current version does not have,
    as a checkpoint of an older mfgnet): one ProblemError naming the entry, not torch's RuntimeError."""
    problem = hopf_cole().problem
    solve_neural(problem, _config(tmp_path, steps=4))
    path = tmp_path / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)
    state["nets"]["stale_buffer"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(ProblemError, match="another layout.*stale_buffer.*resume=false"):
        solve_neural(problem, _config(tmp_path, steps=4, resume=True))


# ------------------------------------------------------------------ missing, unusable
def test_resume_without_a_checkpoint_warns_and_starts_from_scratch(tmp_path):
    folder = tmp_path / "never_written"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = solve_neural(hopf_cole().problem, _config(folder, steps=2, resume=True))
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(str(folder / CHECKPOINT_NAME) in m and "from scratch" in m for m in messages), messages
    assert sol.diagnostics.iterations == 2 and (folder / CHECKPOINT_NAME).is_file()


def test_resume_needs_a_checkpoint_dir():
    cfg = NeuralSolverConfig.from_dict(dict(TINY, steps=2, resume=True))
    with pytest.raises(ProblemError, match="resume=true needs checkpoint_dir"):
        solve_neural(hopf_cole().problem, cfg)


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_damaged_checkpoint_gives_one_clear_error(tmp_path, damage):
    problem = hopf_cole().problem
    cfg = _config(tmp_path, steps=2)
    solve_neural(problem, cfg)
    path = tmp_path / CHECKPOINT_NAME
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"",
                      "garbage": bytes(range(256)) * 8}[damage])
    with pytest.raises(ProblemError) as err:
        solve_neural(problem, cfg.replace(resume=True))
    msg = str(err.value)
    assert str(path) in msg and "resume=false" in msg and "\n" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no torch traceback attached


class _Payload:
    """Unpickling this creates a file: stands for arbitrary code in a tampered checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_pickled_payload_in_checkpoint_is_not_executed(tmp_path, writer):
    path = tmp_path / CHECKPOINT_NAME

    def write(marker):
        state = {"step": 1, "fingerprint": {}, "nets": _Payload(marker)}
        if writer == "torch.save":
            torch.save(state, path)
        else:
            with open(path, "wb") as f:
                pickle.dump(state, f, protocol=2)  # protocol 2: the unpickler reaches the GLOBAL

    # The payload is live: an unsafe load would run it.
    control = tmp_path / "control_marker"
    write(control)
    if writer == "torch.save":
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as f:
            pickle.load(f)
    assert control.exists()

    marker = tmp_path / "marker"
    write(marker)
    with pytest.raises(ProblemError, match="refused") as err:
        solve_neural(hopf_cole().problem, _config(tmp_path, steps=2, resume=True))
    assert not marker.exists()
    assert str(path) in str(err.value) and "could run code" in str(err.value)


# ------------------------------------------------------------------ atomic saves
def test_concurrent_savers_use_their_own_temp_files(tmp_path, monkeypatch):
    """A second save landing between another's write and rename (two processes, one folder)
    must not touch the first one's temp file; the survivor is a whole checkpoint."""
    path = str(tmp_path / CHECKPOINT_NAME)
    real_replace = os.replace
    renamed = []

    def replace(src, dst):
        renamed.append(os.path.basename(src))
        if len(renamed) == 1:  # the other saver runs to completion in between
            ckpt.save({"step": 2}, path)
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", replace)
    ckpt.save({"step": 1}, path)
    first, second = renamed
    assert first != second
    for name in renamed:
        assert name.startswith(f"{CHECKPOINT_NAME}.{os.getpid()}.") and name.endswith(".tmp")
    assert ckpt.load(path) == {"step": 1}
    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]  # no stray temp files


def test_failed_save_leaves_no_temp_file_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / CHECKPOINT_NAME)
    ckpt.save({"step": 1}, path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save({"step": 2}, path)
    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]
    assert ckpt.load(path) == {"step": 1}
