"""Metrics and figures that compare any two solutions through the ``Solution`` interface."""

from mfgnet.evaluation.metrics import compare, evaluation_points, mass_error, relative_l2

__all__ = ["compare", "evaluation_points", "mass_error", "relative_l2"]
