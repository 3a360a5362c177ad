"""Shared fixtures."""

import importlib.util
import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist (the README's test command runs one worker per core) each worker, and the
    # subprocesses its tests start, computes on one thread: the tests' problems are small, and
    # worker threads competing for the same cores cost more than they gain (OpenBLAS's threaded
    # level-1/2 calls doubled a loaded grid solve's time).  Set before torch or numpy is imported.
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny ops: one intra-op thread is faster, and much faster on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run_mfgnet():
    """What ``python -m mfgnet <overrides>`` does, in this interpreter: compose, then run into
    ``run_dir``; returns the metrics."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mfgnet.configs import CONFIG_DIR, register_configs
    from mfgnet.runner import run_experiment

    def run(overrides, run_dir):
        register_configs()
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
        return run_experiment(OmegaConf.to_container(cfg, resolve=True), run_dir)

    return run


@pytest.fixture(scope="module")
def b3_tabulated():
    """B3 (Hopf-Cole) with its exact policy tabulated on 512 nodes at the 20 steps of [0, 0.5]:
    (benchmark, policy, steps), for the simulation kernels' tests."""
    from mfgnet.agents.simulation import TabulatedPolicy
    from mfgnet.benchmarks import hopf_cole

    bench = hopf_cole()
    steps = 20
    policy = TabulatedPolicy.from_solution(bench.exact, [0.5 * k / steps for k in range(steps)], 512)
    return bench, policy, steps


@pytest.fixture
def experiment_script():
    """``load(name)``: the module of ``experiments/<name>.py``, loaded from the checkout (the scripts are
    not a package)."""
    root = Path(__file__).resolve().parents[1]

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"experiment_{name}", root / "experiments" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
