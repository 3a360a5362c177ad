"""The R^d sampler's cached cloud moments give the statistics of the interpolated particle cloud
(what the sampler computed directly from it before), and the contiguous-slice path of the
nonlocal integrals gives what the general per-slice path gives."""

import dataclasses

import torch

from mfgnet.benchmarks.lq_gaussian import lq_gaussian
from mfgnet.neural.config import SamplerConfig
from mfgnet.neural.losses import density_weights, nonlocal_integrals
from mfgnet.neural.sampling import CollocationSampler


def _sampler(d: int, seed: int = 0, **cfg) -> CollocationSampler:
    problem = lq_gaussian(d).problem
    return CollocationSampler(problem, SamplerConfig(**cfg), torch.float64, torch.device("cpu"),
                              torch.Generator().manual_seed(seed), need_quadrature=True)


def _random_walk_cloud(K: int, P: int, d: int, seed: int) -> torch.Tensor:
    """(K + 1, P, d) positions whose consecutive nodes are strongly correlated, as a particle path."""
    g = torch.Generator().manual_seed(seed)
    start = 3.0 + 0.5 * torch.randn(P, d, generator=g, dtype=torch.float64)
    moves = 0.1 * torch.randn(K, P, d, generator=g, dtype=torch.float64)
    return torch.cat([start[None], start[None] + torch.cumsum(moves, 0)])


class _DirectSampler(CollocationSampler):
    """The sampler as it was: statistics recomputed from the interpolated cloud at every call."""

    def _cloud_moments(self):
        var, mean = torch.var_mean(self.cloud, dim=1)
        return mean, var, None

    def _moments_at(self, t):
        pos = self._cloud_at(t)
        return pos.mean(1), pos.std(1)


def test_moments_at_match_the_interpolated_cloud():
    d, K = 5, 32
    sampler = _sampler(d)
    sampler.cloud = _random_walk_cloud(K, 1000, d, seed=1)
    T = sampler.T
    g = torch.Generator().manual_seed(2)
    t = torch.cat([T * torch.rand(40, generator=g, dtype=torch.float64),   # between nodes
                   T * torch.arange(K + 1, dtype=torch.float64) / K,      # on the nodes, 0 and T included
                   torch.tensor([-0.1, T + 0.1], dtype=torch.float64)])   # clamped to the ends
    pos = sampler._cloud_at(t)
    mean, std = sampler._moments_at(t)
    torch.testing.assert_close(mean, pos.mean(1), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(std, pos.std(1), rtol=1e-12, atol=0.0)
    # Only the picked particles: the same positions as picking from the whole interpolated cloud.
    pick = torch.randint(0, 1000, (t.shape[0], 7), generator=g)
    torch.testing.assert_close(sampler._cloud_at(t, pick),
                               torch.gather(pos, 1, pick.unsqueeze(-1).expand(-1, -1, d)), rtol=0, atol=0)


def test_moments_are_recomputed_when_the_cloud_changes():
    d = 3
    sampler = _sampler(d)
    sampler.cloud = _random_walk_cloud(8, 500, d, seed=1)
    t = torch.tensor([0.3 * sampler.T], dtype=torch.float64)
    first = sampler._moments_at(t)[1]
    assert sampler._moments_at(t)[1] is not first and torch.equal(sampler._moments_at(t)[1], first)
    sampler.cloud = 2.0 * sampler.cloud  # a new tensor (refresh, or set from outside)
    torch.testing.assert_close(sampler._moments_at(t)[1], 2.0 * first, rtol=1e-13, atol=0.0)
    sampler.cloud.mul_(0.5)  # modified in place
    torch.testing.assert_close(sampler._moments_at(t)[1], first, rtol=1e-13, atol=0.0)


def test_draws_match_the_direct_statistics():
    """Whole batches (KDE points, terminal and initial points, the Gaussian quadrature and its
    weights) from the same generator state: equal to round-off with the direct statistics, also
    for the density kind, whose candidates interpolate the cloud at many times."""
    d = 4
    for kind in ("uniform", "density"):
        new, old = _sampler(d, seed=5, kind=kind), _DirectSampler(_sampler(d).problem, SamplerConfig(kind=kind),
                                                                  torch.float64, torch.device("cpu"),
                                                                  torch.Generator().manual_seed(5), True)
        cloud = _random_walk_cloud(32, 2048, d, seed=3)
        new.cloud, old.cloud = cloud, cloud.clone()

        class _Nets:  # the density kind's field: a Gaussian around the cloud
            renormalise = True

            def density_field(self, t, x):
                return -0.5 * ((x - 3.0) ** 2).sum(-1)

        for step in range(1, 4):
            a, b = new.draw(_Nets(), step), old.draw(_Nets(), step)
            for field in dataclasses.fields(a):
                va, vb = getattr(a, field.name), getattr(b, field.name)
                if isinstance(va, torch.Tensor):
                    torch.testing.assert_close(va, vb, rtol=1e-12, atol=1e-12, msg=f"{kind} {field.name}")
                else:
                    assert va == vb, field.name


def test_contiguous_slices_give_the_general_path():
    """nonlocal_integrals on equal contiguous slices (the sampler's layout) against the same batch
    without the layout hint (the per-slice index path): identical."""
    problem = lq_gaussian(3).problem
    sampler = CollocationSampler(problem, SamplerConfig(n_interior=256, time_slices=8), torch.float64,
                                 torch.device("cpu"), torch.Generator().manual_seed(0), need_quadrature=True)
    sampler.cloud = _random_walk_cloud(32, 512, 3, seed=4)
    batch = sampler.draw(None, 1, refresh=False)
    assert batch.slice_size == 32
    S1, k = batch.quad_logw.shape
    log_m = torch.randn(S1, k, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fast, fast_t = nonlocal_integrals(problem, batch, log_m, differentiate=False)
    general, general_t = nonlocal_integrals(problem, dataclasses.replace(batch, slice_size=None), log_m, False)
    assert torch.equal(fast, general) and (fast_t is None) == (general_t is None)
    # And against the definition: slice s of the points sees slice s's weights.
    w = density_weights(batch, log_m, False)
    for s in range(S1 - 1):
        rows = batch.slice_id == s
        want = torch.einsum("nkc,k->nc", problem.coupling.kernel(batch.x[rows], batch.quad_y[s]), w[s])
        torch.testing.assert_close(fast[rows], want, rtol=1e-14, atol=1e-14)
