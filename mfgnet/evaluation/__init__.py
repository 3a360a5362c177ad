"""Metrics and figures that compare any two solutions through the ``Solution`` interface."""

from mfgnet.evaluation.metrics import compare, evaluation_points, mass_error, reference_on_nodes, relative_l2

__all__ = ["compare", "evaluation_points", "mass_error", "reference_on_nodes", "relative_l2"]
