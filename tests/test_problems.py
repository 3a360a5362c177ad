"""Problem layer: validation messages, domains, Hamiltonians, user-defined problems."""

import math
import re
import warnings

import numpy as np
import pytest
import torch

from mfgnet.problems import (
    Box,
    CongestionHamiltonian,
    Euclidean,
    MFGProblem,
    NonlocalCoupling,
    PowerHamiltonian,
    ProblemError,
    QuadraticHamiltonian,
    Torus,
    cell_centre_points,
    cell_centres,
    mean_kernel,
    reflect_box,
    wrap_periodic,
)


def uniform(x):
    return torch.ones(x.shape[0], dtype=x.dtype)


@pytest.mark.parametrize("kwargs, field", [
    (dict(viscosity=-0.1), "viscosity"),
    (dict(viscosity=float("nan")), "viscosity"),
    (dict(horizon=0.0), "horizon"),
    (dict(horizon=-1.0), "horizon"),
    (dict(horizon=float("inf")), "horizon"),
    (dict(initial_density=lambda x: 1.0 - 2.0 * x[:, 0]), "initial_density must be >= 0"),
    (dict(initial_density=lambda x: torch.zeros(x.shape[0], dtype=x.dtype)), "not normalisable"),
    (dict(initial_density=lambda x: x[:, 0] * x[:, 1] + 1), "domain.dim"),
    (dict(initial_density=lambda x: torch.ones(x.shape[0], 2)), "domain.dim"),
    (dict(initial_density=lambda x: torch.full((x.shape[0],), float("nan"))), "non-finite"),
    (dict(coupling=lambda x, m: m), "F(t, x, m)"),
    (dict(terminal_cost=lambda t, x, m: m), "G(x, m)"),
    # What F and G return is checked on a few points when the problem is declared: before, a (n, 1) F
    # crashed the neural solver with an IndexError deep inside, a (n, 1) G broadcast to (n, n) and
    # trained silently, a float or numpy result raised AttributeError inside the grid solver.
    (dict(coupling=lambda t, x, m: m.unsqueeze(-1)), "coupling(t, x, m) returned shape (5, 1)"),
    (dict(terminal_cost=lambda x, m: x ** 2), "terminal_cost(x, m) returned shape (5, 1)"),
    (dict(coupling=lambda t, x, m: 1.0), "got float (a constant c: return c + 0 * m)"),
    (dict(coupling=lambda t, x, m: np.asarray(m)), "must return a torch tensor of shape (n,)"),
    (dict(coupling=lambda t, x, m: (m > 0).long()), "expected a floating dtype"),
    (dict(coupling=lambda t, x, m: m / 0.0), "non-finite values"),
    (dict(coupling=lambda t, x, m: x[:, 0, 1] + m), "coupling(t, x, m) failed on x of shape (5, 1)"),
    (dict(coupling=NonlocalCoupling(lambda t, x, m, conv: conv, mean_kernel)), "returned shape (5, 1)"),
    # and a user's Hamiltonian (an (n, 1) H raised IndexError inside the neural solver, one argument TypeError)
    (dict(hamiltonian=lambda x, p: 0.5 * p ** 2), "hamiltonian(x, p) returned (5, 1)"),
    (dict(hamiltonian=lambda p: 0.5 * (p ** 2).sum(-1)), "H(x, p) (2 arguments), it takes 1"),
    (dict(hamiltonian=lambda x, p: p.norm(dim=-1) / 0.0), "non-finite values"),
])
def test_bad_input_names_the_field(kwargs, field):
    base = dict(domain=Torus(1), horizon=1.0, viscosity=0.1, initial_density=uniform)
    base.update(kwargs)
    with pytest.raises(ProblemError, match=re.escape(field)):
        MFGProblem(**base)


def test_a_float32_coupling_is_declared_with_a_warning_and_a_good_one_without():
    with pytest.warns(UserWarning, match="returned torch.float32 for torch.float64 points"):
        MFGProblem(Torus(1), 1.0, 0.1, initial_density=uniform, coupling=lambda t, x, m: m.float())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MFGProblem(Torus(2), 1.0, 0.1, initial_density=uniform, coupling=lambda t, x, m: m + t[:, 0] + x[:, 1],
                   terminal_cost=NonlocalCoupling(lambda t, x, m, conv: conv[:, 0] * m, mean_kernel))


def test_domain_validation():
    with pytest.raises(ProblemError, match="dim"):
        Torus(0)
    with pytest.raises(ProblemError, match="length"):
        Torus(1, length=-1.0)
    with pytest.raises(ProblemError, match=r"Box.upper\[1\]"):
        Box([0, 0], [1, 0])
    with pytest.raises(ProblemError, match="same length"):
        Box([0, 0], [1])
    with pytest.raises(ProblemError, match="on R\\^d needs initial_sampler"):
        MFGProblem(Euclidean(1), None, 0.1)
    with pytest.raises(ProblemError, match="initial_density"):
        MFGProblem(Torus(1), 1.0, 0.1)


def test_sampler_shape_mismatch():
    with pytest.raises(ProblemError, match=r"expected \(16, 2\)"):
        MFGProblem(Euclidean(2), 1.0, 0.1, initial_density=lambda x: torch.exp(-(x**2).sum(-1) / 2) / (2 * math.pi),
                   initial_sampler=lambda n, g: torch.randn(n, 3, generator=g))


def test_unnormalised_density_is_rescaled_with_warning():
    with pytest.warns(UserWarning, match="integrates to 3"):
        problem = MFGProblem(Box([0], [1]), 1.0, 0.1, initial_density=lambda x: 3 * torch.ones(x.shape[0]))
    assert float(problem.initial_density(torch.rand(5, 1)).max()) == pytest.approx(1.0)


def test_torus_sampling_excludes_upper_face_and_wraps():
    torus = Torus(2, length=2.0)
    x = torus.sample(10000, torch.Generator().manual_seed(0))
    assert x.min() >= 0 and x.max() < 2.0
    assert torus.wrap(torch.tensor([[2.5, -0.5]])).tolist() == [[0.5, 1.5]]


def test_box_reflection_stays_inside_and_is_identity_inside():
    box = Box([0.0, -1.0], [1.0, 1.0])
    x = torch.tensor([[1.2, -1.5], [0.3, 0.2], [-0.25, 3.5]])
    y = box.reflect(x)
    torch.testing.assert_close(y, torch.tensor([[0.8, -0.5], [0.3, 0.2], [0.25, -0.5]]))
    assert box.contains(y).all()


def test_cell_centres_and_points_in_c_order():
    axes = cell_centres([0.0, -1.0], [1.0, 1.0], (2, 4))
    assert [a.tolist() for a in axes] == [[0.25, 0.75], [-0.75, -0.25, 0.25, 0.75]]
    x = cell_centre_points([0.0, -1.0], [1.0, 1.0], (2, 4))
    assert x.shape == (8, 2) and x.dtype == torch.float64
    assert x[:4, 0].tolist() == [0.25] * 4 and x[:4, 1].tolist() == axes[1].tolist()  # last axis fastest
    assert cell_centre_points(0.0, 2.0, 4)[:, 0].tolist() == [0.25, 0.75, 1.25, 1.75]


def test_wrap_and_reflect_agree_for_numpy_and_torch():
    x = np.array([[2.5, -0.5], [0.3, 1.999], [-2.25, 4.0]])
    w = wrap_periodic(x, 2.0)
    np.testing.assert_allclose(w, wrap_periodic(torch.from_numpy(x), 2.0).numpy())
    assert (w >= 0).all() and (w < 2.0).all()
    buf = x.copy()
    assert wrap_periodic(buf, 2.0, out=buf, scratch=np.empty_like(buf)) is buf  # in place
    np.testing.assert_array_equal(buf, w)
    lower, width = np.array([0.0, -1.0]), np.array([1.0, 2.0])
    r = reflect_box(x, lower, width)
    np.testing.assert_allclose(r, reflect_box(torch.from_numpy(x), torch.from_numpy(lower),
                                              torch.from_numpy(width)).numpy())
    np.testing.assert_allclose(r, Box([0.0, -1.0], [1.0, 1.0]).reflect(torch.from_numpy(x)).numpy())
    assert ((r >= lower) & (r <= lower + width)).all()


@pytest.mark.parametrize("ham", [QuadraticHamiltonian(2.0), PowerHamiltonian(1.5), PowerHamiltonian(3.0),
                                 CongestionHamiltonian(lambda x: 1 + x[:, 0] ** 2)])
def test_hamiltonian_gradient_matches_autograd(ham):
    x = torch.rand(50, 2, dtype=torch.float64)
    p = torch.randn(50, 2, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(ham(x, p).sum(), p)
    torch.testing.assert_close(ham.grad_p(x, p.detach()), auto)


def test_hamiltonian_validation():
    with pytest.raises(ProblemError, match="q must be > 1"):
        PowerHamiltonian(1.0)
    with pytest.raises(ProblemError, match="scale"):
        QuadraticHamiltonian(0.0)


def test_user_defined_problem_with_callables():
    """A user's own H, F, G and m0 are first-class: evaluated and differentiated like built-ins."""
    problem = MFGProblem(
        Box([0.0], [2.0]), horizon=0.5, viscosity=0.2,
        hamiltonian=lambda x, p: 0.5 * (p**2).sum(-1) + 0.1 * (p**4).sum(-1),
        coupling=lambda t, x, m: torch.log1p(m) + t[:, 0],
        terminal_cost=lambda x, m: (x**2).sum(-1),
        initial_density=lambda x: 0.5 * torch.ones(x.shape[0], dtype=x.dtype))
    x = torch.rand(8, 1, dtype=torch.float64)
    p = torch.randn(8, 1, dtype=torch.float64)
    torch.testing.assert_close(problem.hamiltonian.grad_p(x, p), p + 0.4 * p**3)
    samples = problem.sample_initial(2000, torch.Generator().manual_seed(0))
    assert samples.shape == (2000, 1) and 0 <= float(samples.min()) and float(samples.max()) <= 2
    assert abs(float(samples.mean()) - 1.0) < 0.05


def test_nonlocal_mean_coupling():
    coupling = NonlocalCoupling(lambda t, x, m, mean: ((x - mean) ** 2).sum(-1), mean_kernel)
    assert not coupling.is_local
    x = torch.tensor([[0.0], [2.0]])
    y = torch.tensor([[1.0], [3.0]])
    kernel = mean_kernel(x, y)
    assert kernel.shape == (2, 2, 1)
    with pytest.raises(ProblemError, match="conv"):
        coupling(torch.zeros(2, 1), x, torch.ones(2))


def test_euclidean_bounding_box_holds_initial_mass():
    def gaussian(x):
        return torch.exp(-0.5 * ((x[:, 0] - 3) / 0.2) ** 2) / (0.2 * math.sqrt(2 * math.pi))

    problem = MFGProblem(Euclidean(1), 1.0, 0.1, initial_density=gaussian,
                         initial_sampler=lambda n, g: 3 + 0.2 * torch.randn(n, 1, generator=g, dtype=torch.float64))
    lower, upper = problem.bounding_box().bounds()
    assert float(lower) < 3 - 1.0 and float(upper) > 3 + 1.0


def test_ergodic_problem_on_rd_needs_a_guess_of_the_crowd():
    from mfgnet.problems import Euclidean

    with pytest.raises(ProblemError, match="initial_sampler"):
        MFGProblem(Euclidean(2), horizon=None, viscosity=0.1)
    problem = MFGProblem(Euclidean(2), horizon=None, viscosity=0.1,
                         initial_sampler=lambda n, g=None: torch.randn(n, 2, generator=g, dtype=torch.float64))
    lower, upper = problem.bounding_box().bounds()
    assert problem.is_ergodic and bool((lower < -5).all() and (upper > 5).all())
