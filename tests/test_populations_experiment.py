"""experiments/populations.py's observed order on grids that do not double (16, 32, 48, 64)."""

import pytest


@pytest.mark.parametrize("p", [0.8, 1.0, 2.0])
def test_difference_order_recovers_the_order_of_synthetic_differences(p, experiment_script):
    order = experiment_script("populations").difference_order
    n0, n1, n2 = 32, 48, 64
    # Solutions u_N = u + C N^-p: successive differences C (N0^-p - N1^-p) and C (N1^-p - N2^-p).
    prev, value = 3.0 * (n0 ** -p - n1 ** -p), 3.0 * (n1 ** -p - n2 ** -p)
    assert float(order(prev, value, (n0, n1, n2))) == pytest.approx(p, abs=5e-3)
    assert order(None, value, (n0, n1, n2)) == ""
    assert order(value, prev, (n0, n1, n2)) == "?"  # differences that grow: no order in (0.01, 10)
