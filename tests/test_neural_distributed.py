"""Data-parallel neural training: 2 CPU ranks (gloo on loopback) follow the single-process
loss curve on the same points; batch slicing; one writer of checkpoints."""

import os
import socket
import sys

import pytest
import torch
import torch.multiprocessing as mp

from mfgnet.benchmarks import ergodic_torus, hopf_cole
from mfgnet.neural import NeuralSolverConfig, solve_neural
from mfgnet.neural.distributed import DataParallel, init_from_env
from mfgnet.neural.trainer import Trainer
from mfgnet.problems import ProblemError

WORLD = 2
TINY = {"dtype": "float64", "steps": 20, "log_every": 10, "n_eval": 64, "checkpoint_every": 10,
        "model": {"width": 16, "depth": 2},
        "sampler": {"n_interior": 64, "n_initial": 32, "n_terminal": 32, "n_quadrature": 64, "time_slices": 8}}
# B1 d=1 with the default joint Adam (projected λ: a mean over all ranks' points); B3 d=1
# time-dependent (initial/terminal points sliced) with the paths that need their own
# collectives: Hutchinson probes, alternating optimisers, gradient-norm weights, L-BFGS.
CASES = {
    "b1": (lambda: ergodic_torus(1)[0], {}),
    "b3": (lambda: hopf_cole(1)[0], {"loss.laplacian": "hutchinson", "loss.adaptive": "grad_norm",
                                     "loss.adapt_every": 5, "optim.training": "alternating",
                                     "optim.lbfgs_steps": 10}),
}


def _train(case: str, checkpoint_dir: str) -> dict:
    build, overrides = CASES[case]
    cfg = NeuralSolverConfig.from_dict(TINY).replace(checkpoint_dir=checkpoint_dir, **overrides)
    sol = solve_neural(build(), cfg)
    return {"history": sol.diagnostics.extra["history"], "lambda": sol.ergodic_constant,
            "world_size": sol.diagnostics.extra["world_size"]}


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only: no network in CI
    torch.set_num_threads(1)
    assert init_from_env("cpu", timeout_s=120)  # a short timeout: a hung rank fails the test
    results = {case: _train(case, os.path.join(out_dir, f"ckpt_{case}_rank{rank}")) for case in CASES}
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = {case: _train(case, str(out / f"ckpt_{case}_single")) for case in CASES}
    finally:
        torch.set_num_threads(threads)
    return out, ranks, single


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_ranks_reach_the_single_process_loss_curve(runs, case):
    _, ranks, single = runs
    ref = single[case]["history"]
    assert single[case]["world_size"] == 1 and ranks[0][case]["world_size"] == WORLD
    loss_ref = torch.tensor(ref["loss"], dtype=torch.float64)
    assert len(loss_ref) >= TINY["steps"] and loss_ref[-1] < loss_ref[0]  # it trains
    for rank in ranks:
        hist = rank[case]["history"]
        for key in ("loss", "hjb", "fp"):
            got = torch.tensor(hist[key], dtype=torch.float64)
            want = torch.tensor(ref[key], dtype=torch.float64)
            assert got.shape == want.shape, key
            rel = ((got - want).abs() / want.abs()).max()
            assert rel < 1e-10, (case, key, float(rel))
    # Every rank logs the same numbers (the all-reduced ones).
    assert ranks[0][case]["history"]["loss"] == ranks[1][case]["history"]["loss"]
    if case == "b1":
        assert ranks[0][case]["lambda"] == pytest.approx(single[case]["lambda"], rel=1e-10)


def test_only_rank_zero_writes_checkpoints(runs):
    out, _, _ = runs
    assert (out / "ckpt_b1_rank0" / "checkpoint.pt").is_file()
    assert not (out / "ckpt_b1_rank1").exists()


def test_batch_slices_are_contiguous_and_quadrature_stays_whole():
    problem = hopf_cole(1)[0]
    trainer = Trainer(problem, NeuralSolverConfig.from_dict(TINY))
    full = trainer.sampler.draw(trainer.nets, 0)
    shards = [DataParallel(rank=r, world=WORLD).shard_batch(full) for r in range(WORLD)]
    for name in ("t", "x", "slice_id", "init_x", "term_x"):
        parts = [getattr(s, name) for s in shards]
        assert all(p.shape[0] == getattr(full, name).shape[0] // WORLD for p in parts), name
        assert torch.equal(torch.cat(parts), getattr(full, name)), name
    for s in shards:
        assert s.quad_y is full.quad_y and s.quad_logw is full.quad_logw and s.quad_t is full.quad_t


def test_point_counts_must_divide_among_ranks():
    problem = ergodic_torus(1)[0]
    trainer = Trainer(problem, NeuralSolverConfig.from_dict(TINY))
    batch = trainer.sampler.draw(trainer.nets, 0)
    with pytest.raises(ProblemError, match=r"sampler\.n_interior gives 64 points .* 3 data-parallel ranks"):
        DataParallel(rank=0, world=3).shard_batch(batch)


def test_single_process_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_from_env("cpu") is False
    assert not DataParallel().enabled


def test_time_warp_factors_are_sharded_with_their_points():
    problem = hopf_cole(1)[0]
    cfg = NeuralSolverConfig.from_dict(TINY)
    trainer = Trainer(problem, cfg.replace(sampler=cfg.sampler.replace(time_warp="early")))
    full = trainer.sampler.draw(trainer.nets, 0)
    assert full.time_scale is not None and full.time_scale.shape[0] == full.t.shape[0]
    shards = [DataParallel(rank=r, world=WORLD).shard_batch(full) for r in range(WORLD)]
    assert torch.equal(torch.cat([s.time_scale for s in shards]), full.time_scale)
    for s in shards:  # each point keeps its own slice's factor √(2r), t = T r²
        r = torch.sqrt(s.t[:, 0] / problem.horizon)
        assert torch.allclose(s.time_scale, torch.sqrt(2.0 * r))
