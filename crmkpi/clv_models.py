"""The BG/NBD and Gamma-Gamma models of non-contractual customers, in numpy and scipy.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") gives each customer's
probability of being alive and expected number of future repeat purchases from x (repeat
purchases), t_x (time of the last purchase since the first) and T (time since the first
purchase). Gamma-Gamma (Fader & Hardie, "The Gamma-Gamma model of monetary value") gives the
expected value per purchase of a repeat buyer. Every formula is the papers', written in log
space (gammaln, betaln) over whole arrays of customers; a customer array may carry weights
(how many customers share those figures) so that a fit on a million customers costs a pass
over their distinct (x, t_x, T). Nothing here reads files or frames: arrays in, numbers out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

Array = npt.NDArray[np.float64]
Param = Array | float  # a fit's parameter, or one per customer (segment-level fits)

# log-parameters are searched within exp(-LOG_BOUND) .. exp(LOG_BOUND); a fit that ends on the
# edge has no interior maximum and is reported as not converged.
LOG_BOUND = 12.0
MAX_ITERATIONS = 500


@dataclass(frozen=True)
class Fit:
    """A maximum-likelihood fit: the parameters by name, the total log-likelihood at them, and
    whether the optimiser converged to an interior maximum (with its message when not)."""

    params: dict[str, float]
    log_likelihood: float
    converged: bool
    message: str
    iterations: int


class _ByRepeats:
    """The distinct repeat counts x of a fit's customers: terms that depend on the parameters
    and x alone (gammaln, betaln) are evaluated once per distinct x and gathered, instead of
    once per customer at every step of the optimiser; each customer's value is the same
    floating-point computation, so the bits do not change."""

    def __init__(self, x: Array) -> None:
        self.distinct, inverse = np.unique(x, return_inverse=True)
        self.inverse = inverse.reshape(x.shape)

    def gather(self, per_distinct: Array) -> Array:
        return np.asarray(per_distinct[self.inverse], dtype=np.float64)


def bgnbd_log_likelihood_of(x: Array, t_x: Array, T: Array) -> Callable[..., Array]:
    """Each customer's log-likelihood (FHL 2005, eq. 6) as a function of (r, alpha, a, b): the
    1{x>0} term is added in log space by logaddexp, and its beta function is only evaluated
    where x > 0."""
    repeats = _ByRepeats(x)
    ux = repeats.distinct
    repeat = x > 0
    u_repeat = ux > 0

    def log_likelihood(r: float, alpha: float, a: float, b: float) -> Array:
        common = repeats.gather(special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha))
        beta_ab = special.betaln(a, b)
        still_alive = repeats.gather(special.betaln(a, b + ux) - beta_ab) - (r + x) * np.log(
            alpha + T
        )
        # for x = 0 the second term is absent; b + x - 1 is then not a valid beta argument
        dropped_beta = repeats.gather(
            special.betaln(a + 1, np.where(u_repeat, b + ux - 1, 1.0)) - beta_ab
        )
        dropped_out = np.where(repeat, dropped_beta - (r + x) * np.log(alpha + t_x), -np.inf)
        return np.asarray(common + np.logaddexp(still_alive, dropped_out), dtype=np.float64)

    return log_likelihood


def gamma_gamma_log_likelihood_of(x: Array, m_x: Array) -> Callable[..., Array]:
    """Each repeat buyer's log-likelihood of the mean value m_x of x repeat purchases (Fader &
    Hardie's note, eq. 3) as a function of (p, q, gamma); x > 0 and m_x > 0. The logarithms of
    the data are taken once."""
    repeats = _ByRepeats(x)
    ux = repeats.distinct
    log_m_x, log_x, total_value = np.log(m_x), np.log(x), m_x * x

    def log_likelihood(p: float, q: float, gamma: float) -> Array:
        px = p * x
        upx = p * ux
        return np.asarray(
            repeats.gather(special.gammaln(upx + q) - special.gammaln(upx) - special.gammaln(q))
            + q * np.log(gamma)
            + (px - 1) * log_m_x
            + px * log_x
            - (px + q) * np.log(gamma + total_value),
            dtype=np.float64,
        )

    return log_likelihood


def _maximise(
    names: tuple[str, ...],
    log_likelihood: Callable[..., Array],
    weights: Array,
    start: Array,
) -> Fit:
    """L-BFGS-B on the log-parameters of the mean log-likelihood (scaled so that tolerances do
    not depend on the number of customers), from a fixed start: the same data give the same
    bits."""
    total = float(weights.sum())

    def negative_mean(log_params: Array) -> float:
        values = log_likelihood(*np.exp(log_params))
        result = -float((weights * values).sum()) / total  # pairwise sum: same bits each run
        return result if np.isfinite(result) else np.inf

    with np.errstate(all="ignore"):
        found = optimize.minimize(
            negative_mean,
            start,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(names),
            options={"maxiter": MAX_ITERATIONS, "ftol": 1e-13, "gtol": 1e-9},
        )
    params = {n: float(v) for n, v in zip(names, np.exp(found.x), strict=True)}
    on_edge = bool(np.any(np.abs(found.x) >= LOG_BOUND - 1e-6))
    finite = bool(np.isfinite(found.fun))
    converged = bool(found.success) and finite and not on_edge
    message = str(found.message)
    if on_edge:
        message = "a parameter ran to the edge of its range (no interior maximum)"
    elif not finite:
        message = "the log-likelihood is not finite at the solution"
    return Fit(params, -float(found.fun) * total, converged, message, int(found.nit))


def fit_bgnbd(x: Array, t_x: Array, T: Array, weights: Array | None = None) -> Fit:
    """Maximum-likelihood r, alpha, a, b; alpha is in the time unit of t_x and T. The start is
    r = a = b = 1 and alpha = the mean T (the scale of the data), always the same."""
    w = np.ones_like(x) if weights is None else weights
    start = np.log(np.array([1.0, max(float(np.average(T, weights=w)), 1e-3), 1.0, 1.0]))
    return _maximise(
        ("r", "alpha", "a", "b"),
        bgnbd_log_likelihood_of(x, t_x, T),
        w,
        start,
    )


def fit_gamma_gamma(x: Array, m_x: Array, weights: Array | None = None) -> Fit:
    """Maximum-likelihood p, q, gamma on repeat buyers (x > 0, m_x > 0). Start: p = q = 1 and
    gamma = the mean m_x (the scale of the values)."""
    w = np.ones_like(x) if weights is None else weights
    start = np.log(np.array([1.0, 1.0, max(float(np.average(m_x, weights=w)), 1e-9)]))
    return _maximise(
        ("p", "q", "gamma"),
        gamma_gamma_log_likelihood_of(x, m_x),
        w,
        start,
    )


def _alive_odds_log(
    r: Param, alpha: Param, a: Param, b: Param, x: Array, t_x: Array, T: Array
) -> Array:
    """log of a / (b + x - 1) x ((alpha + T) / (alpha + t_x))^(r + x), the odds of having
    dropped out against being alive; -inf when x = 0 (no repeat purchase: alive for sure)."""
    repeat = x > 0
    safe = np.where(repeat, b + x - 1, 1.0)
    odds = np.log(a) - np.log(safe) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.asarray(np.where(repeat, odds, -np.inf), dtype=np.float64)


def bgnbd_p_alive(
    r: Param, alpha: Param, a: Param, b: Param, x: Array, t_x: Array, T: Array
) -> Array:
    """P(alive | x, t_x, T) (FHL 2005's note on P(alive)): 1 / (1 + odds of having dropped out)."""
    return np.asarray(special.expit(-_alive_odds_log(r, alpha, a, b, x, t_x, T)))


def bgnbd_conditional_expected(
    r: Param, alpha: Param, a: Param, b: Param, t: float, x: Array, t_x: Array, T: Array
) -> Array:
    """E[Y(t) | x, t_x, T], the expected repeat purchases in the next t (FHL 2005, eq. 10)."""
    z = t / (alpha + T + t)
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * special.hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    odds = np.exp(_alive_odds_log(r, alpha, a, b, x, t_x, T))
    return np.asarray(head * tail / (1 + odds), dtype=np.float64)


def bgnbd_expected(r: Param, alpha: Param, a: Param, b: Param, t: Array) -> Array:
    """E[X(t)], the expected repeat purchases of a new customer in the first t (FHL 2005, eq. 9);
    0 for t <= 0."""
    span = np.maximum(t, 0.0)
    value = (
        (a + b - 1)
        / (a - 1)
        * (
            1
            - np.exp(r * np.log(alpha / (alpha + span)))
            * special.hyp2f1(r, b, a + b - 1, span / (alpha + span))
        )
    )
    return np.asarray(np.where(t > 0, value, 0.0), dtype=np.float64)


def gamma_gamma_expected_value(p: Param, q: Param, gamma: Param, x: Array, m_x: Array) -> Array:
    """E[M | x, m_x] = p (gamma + x m_x) / (p x + q - 1): the population mean p gamma / (q - 1)
    weighted against the customer's own mean; a customer with x = 0 gets the population mean.
    NaN when q <= 1 (the population mean does not exist)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        value = p * (gamma + x * m_x) / (p * x + q - 1)
    return np.asarray(np.where(np.asarray(q) > 1, value, np.nan), dtype=np.float64)


def discounted_expected_purchases(
    r: Param,
    alpha: Param,
    a: Param,
    b: Param,
    horizon: float,
    units_per_month: float,
    monthly_discount_rate: float,
    x: Array,
    t_x: Array,
    T: Array,
) -> Array:
    """Sum over the months of the horizon of the expected purchases in that month / (1 +
    rate)^month: times a value per purchase, lifetimes' customer_lifetime_value. Each step is
    one month of the model's time unit; a last partial month ends at the horizon."""
    months = int(np.ceil(horizon / units_per_month - 1e-9))
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for month in range(1, months + 1):  # one vectorised pass per month, over all customers
        end = min(month * units_per_month, horizon)
        cumulative = bgnbd_conditional_expected(r, alpha, a, b, end, x, t_x, T)
        discount = (1 + monthly_discount_rate) ** (end / units_per_month)
        total = total + (cumulative - previous) / discount
        previous = cumulative
    return total
