"""The advice of :func:`mfgnet.neural.solver.diagnose` follows what the run did and where the
remedies were measured (results/neural_zoo/means.md)."""

from __future__ import annotations

from types import SimpleNamespace

from mfgnet.neural import NeuralSolverConfig
from mfgnet.neural.solver import diagnose
from mfgnet.problems.zoo import ZOO

CHECK_HJB = {"terms": {"hjb": 2.0, "fp": 1.0},
             "worst": {"hjb": {"value": 3.0, "t": 0.5, "x": [0.5]}, "fp": {"value": 1.5, "t": 0.1, "x": [0.3]}}}


def _trainer(name: str, time_adaptive: float = 0.0, lbfgs_done: int = 0, guard: dict | None = None,
             hjb_fraction: float = 0.0):
    cfg = NeuralSolverConfig.from_dict({"sampler": {"time_adaptive": time_adaptive, "hjb_fraction": hjb_fraction}})
    return SimpleNamespace(problem=ZOO[name](), cfg=cfg, nets=SimpleNamespace(hard_initial="blend"),
                           lbfgs_guard_info=guard, lbfgs_done=lbfgs_done, warm_start_info=None, stopped_reason="")


def _configured(name: str, **sections) -> SimpleNamespace:
    """``_trainer(name)`` with config sections replaced, e.g. ``loss={"hjb": 10.0}``."""
    trainer = _trainer(name)
    trainer.cfg = trainer.cfg.replace(**sections)
    return trainer


def _advice(trainer, check: dict = CHECK_HJB) -> list[str]:
    return diagnose(trainer, check, mass_drift=None, residual=5 ** 0.5)["advice"]


def test_residual_following_times_are_suggested_on_the_circle_only():
    hint = "sampler.time_adaptive=0.5"
    assert any(hint in a for a in _advice(_trainer("torus_power_1d")))
    assert not any(hint in a for a in _advice(_trainer("torus_power_1d", time_adaptive=0.5)))  # already on
    assert not any(hint in a for a in _advice(_trainer("box_bump_1d")))  # it made every box row worse


def test_a_heavier_hjb_term_is_suggested_on_boxes_where_it_is_not_the_default():
    hint = "loss.hjb=10"
    assert not any(hint in a for a in _advice(_trainer("box_bump_2d")))  # 2D boxes: 10 by default (32nd session)
    assert any(hint in a for a in _advice(_configured("box_bump_2d", loss={"hjb": 1.0})))
    assert not any(hint in a for a in _advice(_trainer("box_narrow_far_1d")))  # 1D boxes: already 10 by default
    assert any(hint in a for a in _advice(_configured("box_narrow_far_1d", loss={"hjb": 1.0})))
    assert not any(hint in a for a in _advice(_trainer("torus_power_1d")))  # the circle's FP weight is 0.1
    assert not any(hint in a for a in _advice(_trainer("lq_offset_2d")))  # R²: already 10 by default
    assert not any(hint in a for a in _advice(_configured("box_bump_2d", loss={"hjb": 10.0})))


def test_the_terminal_layer_is_suggested_on_1d_boxes_under_the_heavier_hjb_term_where_it_is_off():
    hint = "model.terminal_layer=true"
    assert any(hint in a for a in _advice(_trainer("box_narrow_far_1d")))  # hjb 10 by default, layer off
    layered = _trainer("box_wall_push_1d")
    layered.nets.terminal_layer = True  # on by default there (corner strength 13.7)
    assert not any(hint in a for a in _advice(layered))
    assert not any(hint in a for a in _advice(_configured("box_narrow_far_1d", loss={"hjb": 1.0})))
    assert not any(hint in a for a in _advice(_trainer("box_bump_2d")))


def test_the_weak_form_is_suggested_on_bounded_time_dependent_problems_until_it_is_on():
    hint = "loss.weak_fp=100"
    assert any(hint in a for a in _advice(_trainer("box_narrow_far_1d")))
    assert any(hint in a for a in _advice(_trainer("torus_power_two_1d")))
    assert not any(hint in a for a in _advice(_trainer("lq_offset_1d")))  # R: its test functions need a bounded domain
    assert not any(hint in a for a in _advice(_trainer("ergodic_box_strong_1d")))
    assert not any(hint in a for a in _advice(_configured("box_narrow_far_1d", loss={"weak_fp": 100.0})))


def test_warped_slice_times_are_suggested_in_1d_where_they_are_off():
    hint = "sampler.time_warp=ends"
    assert any(hint in a for a in _advice(_trainer("box_narrow_far_1d")))  # "auto" is uniform on a box
    assert not any(hint in a for a in _advice(_trainer("torus_power_two_1d")))  # "auto" is "ends" on the circle
    uniform = _configured("torus_power_two_1d", sampler={"time_warp": "uniform"})
    assert any(hint in a for a in _advice(uniform))
    assert not any(hint in a for a in _advice(_trainer("box_bump_2d")))  # 2D boxes got worse with it
    assert not any(hint in a for a in _advice(_trainer("ergodic_box_strong_1d")))  # no time


def test_wider_hjb_points_are_suggested_on_time_dependent_rd_only():
    hint = "sampler.hjb_fraction=1 sampler.hjb_bandwidth=6"
    assert any(hint in a for a in _advice(_trainer("lq_offset_2d")))
    assert any(hint in a for a in _advice(_trainer("lq_offset_1d")))
    assert not any(hint in a for a in _advice(_trainer("lq_offset_2d", hjb_fraction=1.0)))  # already on
    assert not any(hint in a for a in _advice(_trainer("box_bump_1d")))  # a box: the points cover it
    assert not any(hint in a for a in _advice(_trainer("torus_power_1d")))


def test_the_lbfgs_advice_follows_the_finish():
    assert "add optim.lbfgs_steps (a float64 L-BFGS finish after Adam)" in _advice(_trainer("box_bump_1d"))
    kept = _advice(_trainer("lq_offset_1d", lbfgs_done=300))
    assert "more optim.lbfgs_steps (the finish made 300 iterations and kept them)" in kept
    guard = {"bound": 2.0, "start": 0.3, "checks": [1.64], "kept": 0, "rolled_back": True}
    rolled = _advice(_trainer("torus_power_1d", lbfgs_done=100, guard=guard))
    assert ("not more L-BFGS: its guard rolled the finish back to 0 iterations "
            "(the residual check rose from 0.3 to 1.6)") in rolled
    assert not any("add optim.lbfgs_steps" in a or "more optim.lbfgs_steps" in a for a in rolled)


def test_the_gaussian_start_is_suggested_on_time_dependent_rd_above_d_2():
    from mfgnet.benchmarks import log_congestion, lq_gaussian

    hint = "warm_start=gaussian"
    high = _trainer("lq_offset_2d")
    high.problem = lq_gaussian(10).problem
    assert any(hint in a for a in _advice(high))
    high.warm_start_info = {"steps": 2000}  # the start ran
    assert not any(hint in a for a in _advice(high))
    ergodic = _trainer("lq_offset_2d")
    ergodic.problem = log_congestion(10, ergodic=True).problem
    assert not any(hint in a for a in _advice(ergodic))
    assert not any(hint in a for a in _advice(_trainer("lq_offset_2d")))  # on by default up to d = 2
    assert not any(hint in a for a in _advice(_trainer("box_bump_2d")))


CHECK_FP = {"terms": {"hjb": 1.0, "fp": 2.0},
            "worst": {"hjb": {"value": 1.5, "t": 0.1, "x": [0.3]}, "fp": {"value": 3.0, "t": 0.5, "x": [0.5]}}}
CHECK_MASS = {"terms": {"hjb": 0.5, "fp": 0.5, "mass": 2.0},
              "worst": {"hjb": {"value": 1.5, "t": 0.1, "x": [0.3]}, "fp": {"value": 3.0, "t": 0.5, "x": [0.5]}}}


def test_density_points_are_suggested_only_where_they_are_not_already_on():
    hint = "sampler.kind=density"

    def first(trainer):
        return diagnose(trainer, CHECK_FP, mass_drift=None, residual=5 ** 0.5)["advice"][0]

    assert hint not in first(_trainer("box_bump_2d"))  # auto is density on time-dependent 1D/2D boxes
    assert "already on" in first(_trainer("box_bump_2d"))
    assert hint in first(_configured("box_bump_2d", sampler={"kind": "uniform"}))
    assert hint in first(_trainer("torus_power_1d"))  # auto is uniform on the circle


def test_a_dominant_mass_term_under_renormalised_mass_names_the_blend_not_the_setting_already_on():
    renormalised = _trainer("box_narrow_far_1d")
    renormalised.nets.renormalise = True
    advice = diagnose(renormalised, CHECK_MASS, mass_drift=None, residual=4.5 ** 0.5)["advice"][0]
    assert "model.renormalise=true" not in advice and "seed=N" in advice and "t = 0" in advice
    plain = _trainer("box_narrow_far_1d")
    plain.nets.renormalise = False
    advice = diagnose(plain, CHECK_MASS, mass_drift=None, residual=4.5 ** 0.5)["advice"][0]
    assert "model.renormalise=true" in advice


def test_a_dominant_blend_mass_term_suggests_the_form_that_holds_the_free_part_at_t0_only_where_it_is_off():
    hint = "model.free_mass_at_start=true"

    def advice(name: str, held: bool) -> list[str]:
        trainer = _trainer(name)
        trainer.nets.renormalise, trainer.nets.free_mass_at_start = True, held
        return diagnose(trainer, CHECK_MASS, mass_drift=None, residual=4.5 ** 0.5)["advice"]

    assert not any(hint in a for a in advice("box_narrow_far_1d", held=True))  # the default on 1D boxes
    assert any(hint in a for a in advice("box_narrow_far_1d", held=False))
    assert any(hint in a for a in advice("torus_bimodal_1d", held=False))


def test_early_slice_times_are_suggested_on_2d_boxes_whose_residual_peaks_in_the_first_slices():
    hint = "sampler.time_warp=early"
    early = {"terms": {"hjb": 2.0, "fp": 1.0, "mass": 3.0},
             "worst": {"hjb": {"value": 40.0, "t": 0.0109, "x": [0.64, 0.58]}, "fp": {"value": 9.0, "t": 0.4,
                                                                                  "x": [0.3, 0.2]}}}

    def advice(trainer, check):
        return diagnose(trainer, check, mass_drift=None, residual=14 ** 0.5)["advice"]

    uniform = _configured("box_wall_corner_2d", sampler={"time_warp": "uniform"})
    assert any(hint in a and "loss.boundary=10" in a for a in advice(uniform, early))  # whatever term dominates
    assert not any(hint in a for a in advice(uniform, CHECK_HJB))  # peaks at t = 0.1, 0.5
    assert not any(hint in a for a in advice(_trainer("box_wall_corner_2d"), early))  # already on (auto: early)
    assert not any(hint in a for a in advice(_trainer("box_narrow_far_1d"), early))  # measured on 2D boxes only


def test_a_dominant_fp_residual_under_the_light_default_weight_says_so():
    """Where FP weighs 0.1 by default (the time-dependent circle and 2D boxes), a dominant FP residual is partly the
    weight's, and the advice names it; at weight 1 (1D boxes, or an explicit loss.fp=1) it does not."""
    hint = "the FP residual weighs 0.1 here"
    assert any(hint in a for a in _advice(_trainer("box_bump_2d"), CHECK_FP))
    assert any(hint in a for a in _advice(_trainer("torus_power_1d"), CHECK_FP))
    assert not any("the FP residual weighs" in a for a in _advice(_trainer("box_bump_1d"), CHECK_FP))
    assert not any("the FP residual weighs" in a for a in _advice(_configured("box_bump_2d", loss={"fp": 1.0}),
                                                                   CHECK_FP))
    assert not any(hint in a for a in _advice(_trainer("box_bump_2d")))  # HJB dominant: not said
