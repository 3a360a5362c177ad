"""NeuralSolverConfig validation and the Hydra yaml of the neural solver."""

import pytest

from mfgnet.neural import NeuralSolverConfig
from mfgnet.problems import ProblemError


def test_composed_config_is_the_dataclass_default():
    """solver=neural with the default model/sampler/optim groups is the dataclass default."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mfgnet.configs import CONFIG_DIR, register_configs
    from mfgnet.registry import get_solver

    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="config", overrides=["solver=neural"]), resolve=True)
    data = dict(cfg["solver"], **{group: cfg[group] for group in get_solver("neural").groups})
    assert data.pop("name") == "neural"
    assert NeuralSolverConfig.from_dict(data) == NeuralSolverConfig()


def test_nested_dict_and_replace():
    cfg = NeuralSolverConfig.from_dict({"steps": 10, "optim": {"lr": 1e-3}, "model": {"width": 8}})
    assert (cfg.steps, cfg.optim.lr, cfg.model.width, cfg.model.depth) == (10, 1e-3, 8, 3)
    cfg2 = cfg.replace(**{"optim.lr": 5e-4, "loss": {"fp": 2.0}})
    assert (cfg2.optim.lr, cfg2.loss.fp, cfg2.loss.hjb, cfg2.model.width) == (5e-4, 2.0, None, 8)


@pytest.mark.parametrize("data, field, allowed", [
    ({"stepz": 3}, "solver.stepz", "allowed"),
    ({"optim": {"learning_rate": 1e-3}}, "optim.learning_rate", "allowed"),
    ({"optim": {"lr": 0.0}}, "optim.lr", "(0.0, 10.0]"),
    ({"optim": {"lr": -1}}, "optim.lr", "(0.0, 10.0]"),
    ({"optim": {"grad_clip": float("inf")}}, "optim.grad_clip", "finite"),
    ({"steps": -1}, "solver.steps", "[0, "),
    ({"steps": 2.5}, "solver.steps", "integer"),
    ({"steps": True}, "solver.steps", "integer"),
    ({"dtype": "float16"}, "solver.dtype", "['float32', 'float64']"),
    ({"device": "tpu"}, "solver.device", "['auto', 'cpu', 'cuda']"),
    ({"model": {"activation": "relu6"}}, "model.activation", "tanh"),
    ({"sampler": {"adaptive_fraction": 1.5}}, "sampler.adaptive_fraction", "[0.0, 1.0]"),
    ({"loss": {"hjb": -1.0}}, "solver.loss.hjb", "[0.0, inf)"),
    ({"loss": {"fp": float("nan")}}, "solver.loss.fp", "[0.0, inf)"),
    ({"tolerance": float("inf")}, "solver.tolerance", "finite"),
    ({"resume": "yes"}, "solver.resume", "true or false"),
    ({"model": 3}, "solver.model", "mapping"),
    ({"model": {"time_scales": [0.1, 0.0]}}, "model.time_scales[1]", "(0.0, 100.0]"),
    ({"model": {"time_scales": 0.1}}, "model.time_scales", "a list of numbers"),
])
def test_bad_values_name_the_field_and_the_allowed_range(data, field, allowed):
    with pytest.raises(ProblemError) as info:
        NeuralSolverConfig.from_dict(data)
    msg = str(info.value)
    assert field in msg and allowed in msg, msg


def test_default_steps_follow_the_problem():
    """steps=None: 12000 Adam steps on a time-dependent 1D box, 18000 on a 1D torus, 9000 in 2D (with 1024
    interior points), 4000 elsewhere (R and R² included)."""
    from mfgnet.neural.config import default_steps
    from mfgnet.problems.zoo import ZOO

    assert NeuralSolverConfig().steps is None
    assert {name: default_steps(ZOO[name]()) for name in ("box_bump_1d", "torus_bimodal_1d", "lq_offset_1d",
                                                          "ergodic_box_strong_1d", "box_bump_2d", "lq_offset_2d",
                                                          "ergodic_torus_2d")} == {
        "box_bump_1d": 12000, "torus_bimodal_1d": 18000, "lq_offset_1d": 4000, "ergodic_box_strong_1d": 4000,
        "box_bump_2d": 9000, "lq_offset_2d": 4000, "ergodic_torus_2d": 4000}


def test_interior_points_default_to_1024_on_time_dependent_2d_boxes():
    """sampler.n_interior=None: 1024 on a time-dependent 2D box, 512 elsewhere; the trainer's sampler draws
    that many, and an explicit number wins."""
    from mfgnet.neural.config import default_interior_points
    from mfgnet.neural.trainer import Trainer
    from mfgnet.problems.zoo import ZOO

    assert NeuralSolverConfig().sampler.n_interior is None
    names = ("box_bump_2d", "box_wall_push_2d", "box_bump_1d", "lq_offset_2d", "ergodic_torus_2d", "torus_power_1d")
    assert [default_interior_points(ZOO[n]()) for n in names] == [1024, 1024, 512, 512, 512, 512]
    small = {"steps": 2, "progress": False, "model": {"width": 8}}
    assert Trainer(ZOO["box_bump_2d"](), NeuralSolverConfig.from_dict(small)).cfg.sampler.n_interior == 1024
    explicit = dict(small, sampler={"n_interior": 300})
    assert Trainer(ZOO["box_bump_2d"](), NeuralSolverConfig.from_dict(explicit)).cfg.sampler.n_interior == 300
    assert Trainer(ZOO["box_bump_1d"](), NeuralSolverConfig.from_dict(small)).cfg.sampler.n_interior == 512


def test_default_lbfgs_finish_only_after_long_runs_on_time_dependent_rd_and_the_circle():
    """optim.lbfgs_steps=None: 300 L-BFGS iterations after at least 2000 Adam steps on a time-dependent
    problem on R^d (d = 1 or 3..10) or a 1D circle (guarded: optim.lbfgs_guard = 2); none on boxes, ergodic
    problems, in d = 2 or after short runs; the trainer resolves it."""
    from mfgnet.benchmarks.lq_gaussian import lq_gaussian
    from mfgnet.neural.config import default_lbfgs_steps
    from mfgnet.neural.trainer import Trainer
    from mfgnet.problems.zoo import ZOO

    assert NeuralSolverConfig().optim.lbfgs_steps is None
    rd, box, torus, ergodic = (ZOO[name]() for name in ("lq_offset_1d", "box_bump_1d", "torus_bimodal_1d",
                                                         "ergodic_box_strong_1d"))
    assert [default_lbfgs_steps(rd, s) for s in (1999, 2000, 4000)] == [0, 300, 300]
    assert [default_lbfgs_steps(p, 4000) for p in (box, ergodic, ZOO["lq_offset_2d"](), ZOO["box_bump_2d"](),
                                                   ZOO["ergodic_torus_2d"]())] == [0] * 5
    assert [default_lbfgs_steps(torus, s) for s in (1999, 18000)] == [0, 300]
    assert NeuralSolverConfig().optim.lbfgs_guard == 2.0
    assert [default_lbfgs_steps(lq_gaussian(d).problem, 4000) for d in (3, 10, 11, 20)] == [300, 300, 0, 0]
    trainer = Trainer(rd, NeuralSolverConfig.from_dict({"steps": 2000, "progress": False}))
    assert trainer.cfg.optim.lbfgs_steps == 300
    explicit = Trainer(rd, NeuralSolverConfig.from_dict({"steps": 2000, "progress": False,
                                                         "optim": {"lbfgs_steps": 7}}))
    assert explicit.cfg.optim.lbfgs_steps == 7


def _trainer_weight(zoo_name: str, term: str, explicit: float | None = None) -> float:
    """The weight of the loss term ``term`` in a small Trainer on the zoo problem (``explicit``: set it)."""
    from mfgnet.neural.trainer import Trainer
    from mfgnet.problems.zoo import ZOO

    data = {"steps": 2, "progress": False, "model": {"width": 8}}
    if explicit is not None:
        data["loss"] = {term: explicit}
    return Trainer(ZOO[zoo_name](), NeuralSolverConfig.from_dict(data)).weights[term]


def _trainer_loss_setting(zoo_name: str, field: str, explicit: float | None = None) -> float:
    """A loss setting as a small Trainer on the zoo problem resolved it (``explicit``: set it)."""
    from mfgnet.neural.trainer import Trainer
    from mfgnet.problems.zoo import ZOO

    data = {"steps": 2, "progress": False, "model": {"width": 8}}
    if explicit is not None:
        data["loss"] = {field: explicit}
    return getattr(Trainer(ZOO[zoo_name](), NeuralSolverConfig.from_dict(data)).cfg.loss, field)


def test_hjb_weight_defaults_to_ten_on_time_dependent_euclidean_problems_and_boxes():
    """loss.hjb = None resolves to 10 on time-dependent R^d (R and R² since the twenty-fifth session, every d since
    the twenty-eighth), 1D boxes (thirty-first) and 2D boxes (thirty-second) and 1 elsewhere (ergodic problems,
    tori); the trainer weighs the HJB term with it, and an explicit weight wins.  loss.hjb_density = None resolves
    to 3 on time-dependent 2D boxes (since the forty-eighth session) and to the HJB weight elsewhere."""
    from mfgnet.benchmarks.log_congestion import log_congestion
    from mfgnet.benchmarks.lq_gaussian import lq_gaussian
    from mfgnet.neural.config import default_hjb_density, default_hjb_weight
    from mfgnet.problems.zoo import ZOO

    assert NeuralSolverConfig().loss.hjb is None and NeuralSolverConfig().loss.hjb_density is None
    names = ("lq_offset_1d", "lq_offset_2d", "r_split_1d", "box_bump_1d", "box_bump_2d", "torus_bimodal_1d",
             "ergodic_box_strong_1d", "ergodic_torus_2d")
    assert [default_hjb_weight(ZOO[n]()) for n in names] == [10.0, 10.0, 10.0, 10.0, 10.0, 1.0, 1.0, 1.0]
    assert [default_hjb_density(ZOO[n](), 10.0) for n in names] == [10.0, 10.0, 10.0, 10.0, 3.0, 10.0, 10.0, 10.0]
    assert [default_hjb_weight(lq_gaussian(d).problem) for d in (1, 2, 3, 10)] == [10.0, 10.0, 10.0, 10.0]
    assert default_hjb_weight(log_congestion(5, ergodic=True).problem) == 1.0
    assert _trainer_weight("lq_offset_1d", "hjb") == 10.0
    assert _trainer_weight("box_bump_2d", "hjb") == 10.0
    assert _trainer_weight("box_bump_1d", "hjb") == 10.0
    assert [_trainer_loss_setting(n, "hjb_density") for n in ("box_bump_2d", "box_bump_1d")] == [3.0, 10.0]
    assert _trainer_loss_setting("box_bump_2d", "hjb_density", explicit=4.0) == 4.0
    assert _trainer_weight("lq_offset_1d", "hjb", explicit=2.5) == 2.5


def test_fp_weight_defaults_to_a_tenth_on_the_time_dependent_circle_and_2d_box():
    """loss.fp = None resolves to 0.1 on time-dependent problems on the circle (means.md, twenty-sixth session)
    and on a 2D box (forty-seventh session), 1 elsewhere; the trainer weighs the FP term with it, and an explicit
    weight wins."""
    from mfgnet.benchmarks import hopf_cole
    from mfgnet.neural.config import default_fp_weight
    from mfgnet.problems.zoo import ZOO

    assert NeuralSolverConfig().loss.fp is None
    names = ("torus_bimodal_1d", "torus_power_1d", "box_bump_1d", "box_bump_2d", "lq_offset_1d",
             "ergodic_box_strong_1d", "ergodic_torus_2d")
    assert [default_fp_weight(ZOO[n]()) for n in names] == [0.1, 0.1, 1.0, 0.1, 1.0, 1.0, 1.0]
    assert default_fp_weight(ZOO["box_wall_corner_2d"]()) == 0.1
    assert _trainer_weight("box_two_crowds_2d", "fp") == 0.1
    assert default_fp_weight(hopf_cole().problem) == 0.1
    assert _trainer_weight("torus_power_1d", "fp") == 0.1
    assert _trainer_weight("box_bump_1d", "fp") == 1.0
    assert _trainer_weight("torus_power_1d", "fp", explicit=2.5) == 2.5


def test_time_scales_are_early_clocks_of_the_time_input():
    """model.time_scales: each c adds 2 exp(-t / (c T)) - 1 after the linear time input (time-dependent only)."""
    import torch

    from mfgnet.neural.config import ModelConfig
    from mfgnet.neural.networks import InputEmbedding
    from mfgnet.problems.zoo import ZOO

    problem = ZOO["box_noisy_long_1d"]()  # T = 2
    gen = torch.Generator().manual_seed(0)
    embed = InputEmbedding(problem, ModelConfig.from_dict({"time_scales": [0.05, 0.5], "fourier_features": 0}), gen)
    t = torch.tensor([[0.0], [0.1], [2.0]], dtype=torch.float64)
    x = torch.full((3, 1), 0.25, dtype=torch.float64)
    feats = embed(t, x)
    assert feats.shape == (3, 4) and embed.out_features == 4
    expected = torch.cat([t - 1.0, 2 * torch.exp(-t / 0.1) - 1, 2 * torch.exp(-t / 1.0) - 1], -1)
    torch.testing.assert_close(feats[:, 1:], expected, rtol=0, atol=1e-15)
    none = InputEmbedding(problem, ModelConfig.from_dict({"time_scales": [], "fourier_features": 0}), gen)
    assert none(t, x).shape == (3, 2)
    ergodic = InputEmbedding(ZOO["ergodic_box_strong_1d"](), ModelConfig.from_dict({"fourier_features": 0}), gen)
    assert ergodic.out_features == 1  # no time input, no clocks
    # The default (None): one clock, c = 0.1, on a box; none on a torus or R^d.
    default = ModelConfig()
    assert default.time_scales is None
    assert InputEmbedding(problem, ModelConfig.from_dict({"fourier_features": 0}), gen).out_features == 3
    torch.testing.assert_close(InputEmbedding(problem, default, gen).time_rates,
                               torch.tensor([1 / (0.1 * 2.0)], dtype=torch.float64))
    assert InputEmbedding(ZOO["torus_bimodal_1d"](), default, gen).time_rates.numel() == 0
    assert InputEmbedding(ZOO["lq_offset_1d"](), default, gen).time_rates.numel() == 0


def test_u_first_steps_default_to_an_eighth_of_the_run_after_a_gaussian_start_only():
    """optim.u_first_steps = None resolves to steps // 8 where the Gaussian start runs (time-dependent R and R²)
    and to 0 elsewhere (boxes, tori, ergodic problems, R^d above d = 2); an explicit value wins (fortieth session)."""
    from mfgnet.benchmarks import lq_gaussian
    from mfgnet.neural.config import default_u_first_steps
    from mfgnet.neural.trainer import Trainer
    from mfgnet.problems.zoo import ZOO

    assert NeuralSolverConfig().optim.u_first_steps is None
    assert [default_u_first_steps(mode, 4000) for mode in ("gaussian", "initial", "grid", "off")] == [500, 0, 0, 0]

    def resolved(problem, **optim):
        data = {"steps": 4000, "progress": False, "model": {"width": 8}, "optim": optim}
        return Trainer(problem, NeuralSolverConfig.from_dict(data)).cfg.optim.u_first_steps

    assert [resolved(ZOO[name]()) for name in ("lq_offset_1d", "lq_offset_2d", "box_bump_1d", "torus_bimodal_1d",
                                               "ergodic_box_strong_1d")] == [500, 500, 0, 0, 0]
    assert resolved(lq_gaussian(3).problem) == 0
    assert resolved(ZOO["lq_offset_1d"](), u_first_steps=7) == 7


def test_the_first_steps_move_u_alone():
    """With optim.u_first_steps = 3, three Adam steps leave every parameter of the density network (and the base's
    motion) bit for bit where it was and move u's; the fourth moves both."""
    import torch

    from mfgnet.benchmarks import lq_gaussian
    from mfgnet.neural.trainer import Trainer

    data = {"steps": 6, "progress": False, "warm_start": "off", "model": {"width": 8},
            "sampler": {"n_interior": 64, "n_initial": 32, "n_terminal": 32, "particles": 64},
            "optim": {"u_first_steps": 3}}
    trainer = Trainer(lq_gaussian(1).problem, NeuralSolverConfig.from_dict(data))
    density = [p.detach().clone() for p in trainer.nets.density_parameters()]
    value = [p.detach().clone() for p in trainer.nets.value_parameters()]
    for _ in range(3):
        assert trainer.train_step()
    assert all(torch.equal(a, b) for a, b in zip(density, trainer.nets.density_parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(value, trainer.nets.value_parameters()))
    assert trainer.train_step()
    assert any(not torch.equal(a, b) for a, b in zip(density, trainer.nets.density_parameters()))
