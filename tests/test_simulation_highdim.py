"""N agents under a pointwise policy on R^d (no tabulation): B2's exact moments in d = 5,
chunking, the neural path and the dispatch from ``simulate``."""

import math

import pytest
import torch

import mfgnet
from mfgnet.agents.simulation import (
    LinearFeedbackSolution,
    PolicySimulationResult,
    euler_lq_moments,
    simulate,
    simulate_policy,
)
from mfgnet.benchmarks import hopf_cole
from mfgnet.benchmarks.lq_gaussian import lq_gaussian
from mfgnet.problems import ProblemError

D, N, STEPS, VAR0 = 5, 20_000, 50, 0.1
RECORD = [0, 25, 50]


@pytest.fixture(scope="module")
def b2():
    return lq_gaussian(D)


@pytest.fixture(scope="module")
def exact_run(b2, one_torch_thread):
    policy = LinearFeedbackSolution.from_lq_coefficients(b2.problem, b2.exact.coefficients)
    return simulate_policy(policy, N, STEPS, record_steps=RECORD, chunk_size=20_000, progress=False)


def test_exact_policy_matches_the_exact_euler_chain(b2, exact_run):
    """Against the Euler chain's own moments the only error is Monte Carlo: within 4 standard
    errors (the max over 5 coordinates of |N(0, 1)| exceeds 4 with probability 3e-4)."""
    em, ev = euler_lq_moments(b2.exact.coefficients, VAR0, STEPS)
    err = exact_run.compare(em[RECORD], ev[RECORD])
    for k in range(len(RECORD)):
        assert err["mean_err"][k] < 4 * err["mean_se"][k]
        assert err["var_err"][k] < 4 * err["var_se"][k]
        assert err["offdiag_max"][k] < 4.5 * err["offdiag_se"][k]  # 10 distinct entries


def test_exact_policy_matches_the_continuous_moments_up_to_euler_bias(b2, exact_run):
    """Against m̄(t) and s(t): Monte Carlo error plus the scheme's O(Δt) bias, which the
    Euler chain's moments give exactly (and which halves when Δt does)."""
    coef = b2.exact.coefficients
    t = torch.tensor(exact_run.times, dtype=torch.float64)
    mean, var = coef.mean(t), coef.variance(t, VAR0).unsqueeze(-1).expand(-1, D)
    err = exact_run.compare(mean, var)
    em, ev = euler_lq_moments(coef, VAR0, STEPS)
    bias_m = (em[RECORD] - mean).abs().amax(-1)
    bias_v = (ev[RECORD] - var).abs().amax(-1)
    for k in range(len(RECORD)):
        assert err["mean_err"][k] < 4 * err["mean_se"][k] + bias_m[k]
        assert err["var_err"][k] < 4 * err["var_se"][k] + bias_v[k]
    em2, ev2 = euler_lq_moments(coef, VAR0, 2 * STEPS)
    bias_m2 = (em2[-1] - mean[-1]).abs().max()
    # first order; floats, since pytest 9.2 cannot iterate a 0-d tensor in approx
    assert float(bias_m2) == pytest.approx(float(bias_m[-1]) / 2, rel=0.1)


def test_chunk_size_changes_the_sample_not_the_statistics(b2, exact_run, one_torch_thread):
    """Chunks of 1000 draw other random streams than one chunk of 20 000, so the moments
    agree within Monte Carlo error (the difference of two independent means: √2 se), not
    bit for bit; the same chunk size and seed repeat exactly."""
    policy = LinearFeedbackSolution.from_lq_coefficients(b2.problem, b2.exact.coefficients)
    small = simulate_policy(policy, N, STEPS, record_steps=RECORD, chunk_size=1000, progress=False)
    assert small.timings["chunk_size"] == 1000
    se = small.covariance.diagonal(dim1=-2, dim2=-1).sqrt() / math.sqrt(N)
    assert ((small.mean - exact_run.mean).abs() < 4 * math.sqrt(2) * se).all()
    var_se = small.covariance.diagonal(dim1=-2, dim2=-1) * math.sqrt(2 / N)
    diff_v = (small.covariance - exact_run.covariance).diagonal(dim1=-2, dim2=-1).abs()
    assert (diff_v < 4 * math.sqrt(2) * var_se).all()
    again = simulate_policy(policy, N, STEPS, record_steps=RECORD, chunk_size=1000, progress=False)
    assert torch.equal(again.mean, small.mean)
    assert torch.equal(again.covariance, small.covariance)


def test_neural_policy_runs_in_chunks_and_simulate_dispatches(one_torch_thread):
    """A tiny trained network in d = 3: finite moments of the right shapes; ``simulate``
    sends d > 2 on R^d here rather than to a bins^d histogram."""
    problem = lq_gaussian(3).problem
    solution = mfgnet.solve(problem, "neural", steps=2, dtype="float32", progress=False,
                            sampler={"n_interior": 32, "n_initial": 16, "n_terminal": 16})
    res = simulate_policy(solution, 300, 4, record_steps=[0, 4], chunk_size=128, keep_samples=10, progress=False)
    assert res.mean.shape == (2, 3) and res.covariance.shape == (2, 3, 3)
    assert torch.isfinite(res.mean).all() and torch.isfinite(res.covariance).all()
    assert res.samples.shape == (10, 3) and res.agent_steps_per_s > 0
    assert torch.allclose(res.covariance, res.covariance.transpose(-1, -2))
    via = simulate(solution, 300, 4, record_steps=[0, 4], chunk_size=128, progress=False)
    assert isinstance(via, PolicySimulationResult)
    assert torch.allclose(via.mean, res.mean) and torch.allclose(via.covariance, res.covariance)


def test_float64_option_and_validation(b2):
    policy = LinearFeedbackSolution.from_lq_coefficients(b2.problem, b2.exact.coefficients)
    res = simulate_policy(policy, 100, 2, dtype="float64", progress=False)
    assert res.timings["dtype"] == "float64" and res.mean.shape == (1, D)
    with pytest.raises(ProblemError, match="dtype"):
        simulate_policy(policy, 100, 2, dtype="float16", progress=False)
    with pytest.raises(ProblemError, match="record_steps"):
        simulate_policy(policy, 100, 2, record_steps=[3], progress=False)
    with pytest.raises(ProblemError, match="Euclidean"):
        simulate_policy(hopf_cole().exact, 100, 2, progress=False)
