"""Up-front memory estimates: a run too large for the machine is refused with a ProblemError
naming the setting to lower, before it allocates; tabular MF-Q works in chunks of agents."""

from __future__ import annotations

import numpy as np
import pytest

import mfgnet
import mfgnet.resources as resources
from mfgnet.agents.config import MFQConfig
from mfgnet.agents.mfq import GAMES, train_tabular
from mfgnet.benchmarks import ergodic_torus, hopf_cole
from mfgnet.compare import compose_config
from mfgnet.grid import GridSolverConfig, solve_grid
from mfgnet.problems import ProblemError
from mfgnet.runner import prepare_run

GIB = 2**30


@pytest.fixture
def one_gib(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: GIB)


def test_check_memory_names_the_setting():
    resources.check_memory(GIB, "a run", "solver.cells", available=2 * GIB)
    with pytest.raises(ProblemError, match=r"needs about 2 GiB.*1 GiB available.*lower solver.cells"):
        resources.check_memory(2 * GIB, "a run", "solver.cells", available=GIB)


def test_grid_estimate_counts_unknowns():
    assert resources.grid_unknowns(1, 128, None, True, 1.0, None) == 258
    assert resources.grid_unknowns(1, 64, 32, False, 1.0, 1.0) == 2 * 64 * 32
    assert resources.grid_unknowns(2, 64, None, False, 2.0, 1.0) == 2 * 64**2 * 32
    assert resources.grid_unknowns(1, 64, None, True, 1.0, None, order=2) == 258


def test_grid_refuses_a_system_too_large_before_building_it():
    # 10^6 cells in 1D, dt <= h: ~10^12 unknowns; refused at once (a few TB), not after minutes
    with pytest.raises(ProblemError, match="lower solver.cells"):
        solve_grid(hopf_cole().problem, cells=10**6)
    with pytest.raises(ProblemError, match="lower solver.cells"):
        solve_grid(ergodic_torus(2).problem, cells=10**6)


def test_grid_default_runs_pass_the_check(one_gib):
    resources.check_grid_memory(hopf_cole().problem, GridSolverConfig(cells=256))
    resources.check_grid_memory(ergodic_torus(2).problem, GridSolverConfig(cells=128))


def test_neural_points_refused_from_api_and_runner():
    problem = hopf_cole().problem
    with pytest.raises(ProblemError, match="lower sampler.n_interior"):
        mfgnet.solve(problem, "neural", sampler={"n_interior": 10**7})
    with pytest.raises(ProblemError, match="lower sampler.n_interior"):
        prepare_run(compose_config(["problem=hopf_cole", "solver=neural", "sampler.n_interior=10000000"]))
    prepare_run(compose_config(["problem=hopf_cole", "solver=neural"]))


def test_mfq_cli_refuses_too_many_agents(one_gib, tmp_path):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mfgnet.agents.__main__ import register_task_configs
    from mfgnet.agents.tasks import run_task
    from mfgnet.configs import CONFIG_DIR

    def _cfg(*overrides):
        register_task_configs()
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return OmegaConf.to_container(compose(config_name="agents", overrides=list(overrides)), resolve=True)

    with pytest.raises(ProblemError, match=r"tabular MF-Q with 100000000 agents.*lower task.n_agents"):
        run_task(_cfg("task=mfq", "task.n_agents=100000000"), tmp_path)
    # one shared table: the per-agent state alone, 10^7 agents fit in 1 GiB
    assert resources.mfq_bytes(10**7, 10, 2, True, False, 1 << 20) < GIB


@pytest.mark.parametrize("env, params, n, cfg", [
    ("two_road_traffic", {}, 1000, dict(policy="egreedy", gamma=0.5)),
    ("ride_sharing", {}, 999, dict(q_init=1.0, gamma=0.3)),
    ("ride_sharing", {}, 999, dict(shared=True, policy="egreedy")),
    ("ising", {"side": 20}, 400, dict(gamma=0.2, revise_prob=0.5)),
    ("ising", {"side": 20}, 400, dict(shared=True, revise_prob=0.5)),
])
def test_mfq_chunks_give_the_same_run(env, params, n, cfg):
    game = GAMES[env](**params)
    one = train_tabular(game, n, MFQConfig(steps=40, record_every=5, **cfg))
    for chunk in (7, 128):
        chunked = train_tabular(game, n, MFQConfig(steps=40, record_every=5, chunk_size=chunk, **cfg))
        for key in ("action_dist", "mean_reward", "mean_action", "q", "actions"):
            assert np.array_equal(getattr(one, key), getattr(chunked, key)), (key, chunk)


def test_peak_memory_sees_an_allocation_and_forgets_it_after_a_reset():
    import mmap

    import numpy as np

    from mfgnet.resources import PeakMemory

    with PeakMemory() as big:
        # 305 MiB of fresh pages, touched, then unmapped: an anonymous mapping, not malloc, whose freed heap
        # (after earlier tests in this process, e.g. a grid solve) can serve the block without new pages
        # and keep them resident afterwards.
        pages = mmap.mmap(-1, 320_000_000)
        block = np.frombuffer(pages, dtype=np.uint8)
        block[:] = 1
        del block
        pages.close()
    with PeakMemory() as small:
        np.ones(1000)
    assert big.metrics["peak_rss_mb"] > 300
    if not small.metrics["peak_rss_since_start"]:  # Linux: the high-water mark was reset
        assert small.metrics["peak_rss_mb"] < big.metrics["peak_rss_mb"] - 250


def test_a_reset_that_leaves_the_mark_in_place_is_not_trusted(monkeypatch):
    # some sandboxes accept the write to clear_refs and keep the old high-water mark: the
    # peak must then be reported as the process-wide one, not as this run's
    monkeypatch.setattr(resources, "_proc_status_kib", lambda *fields: (900 * 1024, 600 * 1024))
    with resources.PeakMemory() as run:
        pass
    assert run.reset is False
    assert run.metrics["peak_rss_since_start"] is True
