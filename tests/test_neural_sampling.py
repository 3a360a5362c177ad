"""The collocation sampler's placement rules, checked on fields with known answers."""

import math

import torch

from mfgnet.neural.config import SamplerConfig
from mfgnet.neural.sampling import CollocationSampler
from mfgnet.problems import Box, MFGProblem


class _BumpField:
    """Stands in for MFGNetworks: an unnormalised log-density with a narrow bump at 0.3 + 0.4 t
    (width 0.05), renormalised like the networks on a box."""

    renormalise = True

    def density_field(self, t, x):
        return -((x[:, 0] - 0.3 - 0.4 * t[:, 0]) ** 2) / (2 * 0.05**2)

    def density(self, t, x, log_mass=None):  # only the unnormalised field may be used
        raise AssertionError("the density sampler must not renormalise per candidate time")


def test_density_points_follow_m_at_the_slice_times():
    problem = MFGProblem(Box([0.0], [1.0]), horizon=1.0, viscosity=0.1, coupling=lambda t, x, m: m,
                         initial_density=lambda x: torch.ones(x.shape[0], dtype=x.dtype))
    cfg = SamplerConfig(kind="density", n_interior=4000, time_slices=8)
    sampler = CollocationSampler(problem, cfg, torch.float64, torch.device("cpu"),
                                 torch.Generator().manual_seed(0), need_quadrature=False)
    slice_t = sampler.slice_times(8)
    t, x = sampler._density_points(_BumpField(), slice_t, 4000)
    assert set(t[:, 0].tolist()) <= set(slice_t.tolist())  # candidates live on the step's slices
    offset = x[:, 0] - 0.3 - 0.4 * t[:, 0]
    # Resampled ∝ m from uniform candidates: the offsets are N(0, 0.05²) up to sampling noise.
    assert abs(float(offset.mean())) < 5e-3
    assert math.isclose(float(offset.std()), 0.05, rel_tol=0.1)
