"""The BG/NBD and Gamma-Gamma formulas on tiny hand-made cases, each checked against a hand
computation or an independent route (the likelihood in linear space with math.lgamma, the
expectations by numeric integration over the mixing distributions instead of the papers'
hypergeometric closed forms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from crmkpi import clv_models as m

R, ALPHA, A, B = 0.5, 2.0, 0.8, 2.5
X = np.array([0.0, 1.0, 3.0, 10.0])
T_X = np.array([0.0, 2.0, 4.0, 9.5])
T = np.array([5.0, 8.0, 10.0, 10.0])


def _bgnbd_likelihood(
    r: float, alpha: float, a: float, b: float, x: int, t_x: float, T: float
) -> float:
    """FHL 2005 eq. 6, term by term in linear space."""

    def beta(u: float, v: float) -> float:
        return math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))

    rate = math.exp(math.lgamma(r + x) - math.lgamma(r)) * alpha**r
    alive = beta(a, b + x) / beta(a, b) * rate / (alpha + T) ** (r + x)
    gone = beta(a + 1, b + x - 1) / beta(a, b) * rate / (alpha + t_x) ** (r + x) if x else 0.0
    return alive + gone


def test_bgnbd_log_likelihood_equals_the_paper_term_by_term() -> None:
    got = m.bgnbd_log_likelihood_of(X, T_X, T)(R, ALPHA, A, B)
    expected = [math.log(_bgnbd_likelihood(R, ALPHA, A, B, int(x), tx, t))
                for x, tx, t in zip(X, T_X, T, strict=True)]  # fmt: skip
    assert got == pytest.approx(expected, rel=1e-12)


def test_bgnbd_log_likelihood_stays_finite_where_linear_space_overflows() -> None:
    # x = 400: Gamma(r + x) alone is about 1e868, beyond a float; the log form is fine
    at_400 = m.bgnbd_log_likelihood_of(np.array([400.0]), np.array([300.0]), np.array([310.0]))
    got = at_400(R, ALPHA, A, B)
    assert np.isfinite(got).all()
    # and it equals the log of the likelihood's two terms written with lgamma by hand
    x, tx, t = 400, 300.0, 310.0
    common = math.lgamma(R + x) - math.lgamma(R) + R * math.log(ALPHA)
    lbeta = lambda u, v: math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v)  # noqa: E731
    alive = lbeta(A, B + x) - lbeta(A, B) - (R + x) * math.log(ALPHA + t)
    gone = lbeta(A + 1, B + x - 1) - lbeta(A, B) - (R + x) * math.log(ALPHA + tx)
    top = max(alive, gone)
    expected = common + top + math.log(math.exp(alive - top) + math.exp(gone - top))
    assert got[0] == pytest.approx(expected, rel=1e-12)


def test_p_alive_by_hand() -> None:
    # x = 3, t_x = 4, T = 10: odds = a / (b + x - 1) x ((alpha + T) / (alpha + t_x))^(r + x)
    #   = 0.8 / 4.5 x (12 / 6)^3.5 = 0.177778 x 11.313708 = 2.011326 -> 1 / 3.011326 = 0.332080
    # x = 0: no repeat purchase, so nothing says the customer has left: 1
    got = m.bgnbd_p_alive(R, ALPHA, A, B, X, T_X, T)
    assert got[0] == 1.0
    assert got[2] == pytest.approx(1 / (1 + 0.8 / 4.5 * 2**3.5), rel=1e-12)
    assert got[2] == pytest.approx(0.332080, abs=1e-6)
    # and it is the share of the likelihood's "still alive" term, for every customer
    for i in range(len(X)):
        x, tx, t = int(X[i]), T_X[i], T[i]
        rate = math.exp(math.lgamma(R + x) - math.lgamma(R)) * ALPHA**R
        lbeta = math.lgamma(A) + math.lgamma(B + x) - math.lgamma(A + B + x)
        alive = math.exp(lbeta - (math.lgamma(A) + math.lgamma(B) - math.lgamma(A + B)))
        alive *= rate / (ALPHA + t) ** (R + x)
        assert got[i] == pytest.approx(alive / _bgnbd_likelihood(R, ALPHA, A, B, x, tx, t))


def _conditional_by_integration(t: float, x: int, t_x: float, T: float) -> float:
    """P(alive) x E[(1 - exp(-lambda p t)) / p] with lambda ~ Gamma(r + x, alpha + T) and
    p ~ Beta(a, b + x) (the posteriors given alive), lambda integrated out in closed form."""
    alive = float(m.bgnbd_p_alive(R, ALPHA, A, B, np.array([float(x)]), np.array([t_x]),
                                  np.array([T]))[0])  # fmt: skip

    def integrand(p: float) -> float:
        survive = ((ALPHA + T) / (ALPHA + T + p * t)) ** (R + x)
        return float(stats.beta.pdf(p, A, B + x)) * (1 - survive) / p

    mean, _ = integrate.quad(integrand, 0, 1, limit=200)
    return alive * mean


@pytest.mark.parametrize("t", [1.0, 5.0, 39.0])
def test_conditional_expectation_matches_numeric_integration(t: float) -> None:
    got = m.bgnbd_conditional_expected(R, ALPHA, A, B, t, X, T_X, T)
    expected = [_conditional_by_integration(t, int(x), tx, tt)
                for x, tx, tt in zip(X, T_X, T, strict=True)]  # fmt: skip
    assert got == pytest.approx(expected, rel=1e-6)


def test_unconditional_expectation_matches_numeric_integration() -> None:
    spans = np.array([-1.0, 0.0, 3.0, 40.0])

    def by_integration(t: float) -> float:
        def integrand(p: float) -> float:
            return float(stats.beta.pdf(p, A, B)) * (1 - (ALPHA / (ALPHA + p * t)) ** R) / p

        return integrate.quad(integrand, 0, 1, limit=200)[0]

    got = m.bgnbd_expected(R, ALPHA, A, B, spans)
    assert got[:2].tolist() == [0.0, 0.0]  # nothing happens before the first purchase
    assert got[2:] == pytest.approx([by_integration(3.0), by_integration(40.0)], rel=1e-6)


def test_discounted_purchases_step_by_month() -> None:
    # time unit month, horizon 2, rate 10 %: E1 / 1.1 + (E2 - E1) / 1.21
    e1, e2 = (m.bgnbd_conditional_expected(R, ALPHA, A, B, t, X, T_X, T) for t in (1.0, 2.0))
    got = m.discounted_expected_purchases(R, ALPHA, A, B, 2.0, 1.0, 0.1, X, T_X, T)
    assert got == pytest.approx(e1 / 1.1 + (e2 - e1) / 1.21, rel=1e-12)
    # a week unit with a horizon of 6 weeks, 4 weeks a month: month 1 ends at week 4, a partial
    # month 2 at week 6, discounted by 1.1^(6 / 4)
    w4, w6 = (m.bgnbd_conditional_expected(R, ALPHA, A, B, t, X, T_X, T) for t in (4.0, 6.0))
    got = m.discounted_expected_purchases(R, ALPHA, A, B, 6.0, 4.0, 0.1, X, T_X, T)
    assert got == pytest.approx(w4 / 1.1 + (w6 - w4) / 1.1**1.5, rel=1e-12)
    # no discount: the expected purchases over the horizon
    undiscounted = m.discounted_expected_purchases(R, ALPHA, A, B, 6.0, 4.0, 0.0, X, T_X, T)
    assert undiscounted == pytest.approx(w6, rel=1e-12)


def test_gamma_gamma_log_likelihood_and_expected_value_by_hand() -> None:
    p, q, gamma = 6.0, 4.0, 15.0
    x, m_x = np.array([2.0, 5.0]), np.array([20.0, 8.0])
    got = m.gamma_gamma_log_likelihood_of(x, m_x)(p, q, gamma)
    for i in range(2):
        px = p * x[i]
        # Gamma(px + q) / (Gamma(px) Gamma(q)) gamma^q m^(px - 1) x^px / (gamma + m x)^(px + q)
        density = (
            math.gamma(px + q) / (math.gamma(px) * math.gamma(q)) * gamma**q
            * m_x[i] ** (px - 1) * x[i] ** px / (gamma + m_x[i] * x[i]) ** (px + q)
        )  # fmt: skip
        assert got[i] == pytest.approx(math.log(density), rel=1e-12)
    # x = 2, m = 20: 6 (15 + 40) / (12 + 3) = 22; x = 0: the population mean 6 x 15 / 3 = 30
    value = m.gamma_gamma_expected_value(p, q, gamma, np.array([2.0, 0.0]), np.array([20.0, 0.0]))
    assert value.tolist() == pytest.approx([22.0, 30.0])
    # q <= 1: the population mean does not exist
    assert np.isnan(m.gamma_gamma_expected_value(p, 1.0, gamma, x, m_x)).all()


def test_a_weighted_fit_equals_the_fit_on_repeated_customers() -> None:
    x = np.array([0.0, 0.0, 1.0, 2.0, 4.0, 0.0, 1.0, 6.0])
    t_x = np.array([0.0, 0.0, 3.0, 10.0, 20.0, 0.0, 15.0, 28.0])
    T = np.array([30.0, 12.0, 30.0, 25.0, 30.0, 5.0, 20.0, 30.0])
    weights = np.array([40.0, 25.0, 10.0, 8.0, 5.0, 30.0, 12.0, 3.0])
    weighted = m.fit_bgnbd(x, t_x, T, weights)
    repeated = m.fit_bgnbd(*(np.repeat(v, weights.astype(int)) for v in (x, t_x, T)))
    assert weighted.converged and repeated.converged
    for name in ("r", "alpha", "a", "b"):
        assert weighted.params[name] == pytest.approx(repeated.params[name], rel=1e-4)
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-9)
    # the maximum: the log-likelihood there beats any nearby point
    best = weighted.params
    for name in best:
        for step in (0.97, 1.03):
            moved = {**best, name: best[name] * step}
            ll = float((weights * m.bgnbd_log_likelihood_of(x, t_x, T)(**moved)).sum())
            assert ll < weighted.log_likelihood


def test_a_fit_with_no_interior_maximum_is_reported_not_converged() -> None:
    # everyone bought again on the last day: no sign of dropping out, a runs to 0
    x = np.array([3.0, 5.0, 2.0, 4.0])
    T = np.array([10.0, 12.0, 8.0, 9.0])
    fit = m.fit_bgnbd(x, T, T)
    assert not fit.converged
    assert "edge" in fit.message
