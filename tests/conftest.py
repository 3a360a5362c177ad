"""Shared fixtures."""

import pytest


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
