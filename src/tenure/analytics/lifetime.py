"""Lifetime value: the BG/NBD model of repeat purchases and the Gamma-Gamma model of spend.

BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): while alive a
customer buys as a Poisson process of rate lambda ~ Gamma(r, alpha); after each repeat
purchase they drop out for good with probability p ~ Beta(a, b). Data per customer: x
repeat purchases (purchase days after the first), t_x the time of the last one and T the
time of observation, both from the first purchase, in the run's time unit.

Gamma-Gamma (Fader, Hardie and Lee 2005, "RFM and CLV"): the spend of each repeat purchase
is Gamma(p, nu) with nu ~ Gamma(q, gamma) per customer, independent of the purchase
process; data per customer: x >= 1 repeat purchases and their mean spend m.

Both are fitted by maximum likelihood over the logarithms of their parameters (so they
stay positive), with every likelihood term computed in log space (log-gamma, log-beta,
logaddexp), customers with the same data counted once with a weight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special

from tenure.analytics.errors import TooLittleHistory

FloatArray = NDArray[np.float64]
# Fitting on more customers than this uses a random sample of them (maximum likelihood
# on a sample of this size pins the four parameters far below their between-run spread).
MAX_FIT_CUSTOMERS = 200_000
MIN_CUSTOMERS = 20
MIN_REPEAT_CUSTOMERS = 10


@dataclass(frozen=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Fit:
    """Fitted parameters with the total log-likelihood at them, and what it took."""

    params: Any
    log_likelihood: float
    customers: int
    iterations: int
    converged: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params.to_json(),
            "log_likelihood": self.log_likelihood,
            "customers": self.customers,
            "iterations": self.iterations,
            "converged": self.converged,
        }


def bgnbd_log_likelihood(
    params: BGNBD, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """Each customer's log-likelihood ln L(r, alpha, a, b | x, t_x, T)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    beta_ab = special.betaln(a, b)
    observed_alive = special.betaln(a, b + x) - beta_ab - (r + x) * np.log(alpha + T)
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    dropped = np.where(
        repeat,
        special.betaln(a + 1, b + safe_x - 1) - beta_ab - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    result: FloatArray = common + np.logaddexp(observed_alive, dropped)
    return result


class _Summary:
    """(x, t_x, T) rows with each column's distinct values found once, so that the terms
    of ``bgnbd_log_likelihood`` depending on one column are evaluated once per distinct
    value (few: purchase days, and days in the time unit) and gathered; every term is the
    same floating-point operation on the same operands, so the sums are identical."""

    def __init__(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
        self.x = x
        self.repeat = x > 0
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.ut, self.it = np.unique(t_x, return_inverse=True)
        self.uT, self.iT = np.unique(T, return_inverse=True)
        self.safe_ux = np.where(self.ux > 0, self.ux, 1.0)

    def bgnbd_log_likelihood(self, params: BGNBD) -> FloatArray:
        r, alpha, a, b = params.r, params.alpha, params.a, params.b
        ix = self.ix
        r_x = (r + self.ux)[ix]
        common = special.gammaln(r + self.ux)[ix] - special.gammaln(r) + r * np.log(alpha)
        beta_ab = special.betaln(a, b)
        observed_alive = (
            special.betaln(a, b + self.ux)[ix] - beta_ab - r_x * np.log(alpha + self.uT)[self.iT]
        )
        dropped = np.where(
            self.repeat,
            special.betaln(a + 1, b + self.safe_ux - 1)[ix]
            - beta_ab
            - r_x * np.log(alpha + self.ut)[self.it],
            -np.inf,
        )
        result: FloatArray = common + np.logaddexp(observed_alive, dropped)
        return result


def gamma_gamma_log_likelihood(params: GammaGamma, x: FloatArray, m: FloatArray) -> FloatArray:
    """Each customer's log density of mean spend ``m`` over ``x`` purchases."""
    p, q, g = params.p, params.q, params.gamma
    px = p * x
    result: FloatArray = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(g + m * x)
    )
    return result


def unique_rows(
    *columns: FloatArray,
) -> tuple[list[FloatArray], NDArray[np.int64], NDArray[np.int64]]:
    """The distinct rows of parallel columns in lexicographic order (as ``np.unique`` with
    ``axis=0`` gives them, by one ``lexsort`` instead of a sort of row records), each
    row's position among them and how many times each occurs."""
    n = len(columns[0])
    order = np.lexsort(columns[::-1])
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
        for column in columns:
            ordered = column[order]
            new[1:] |= ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    counts = np.diff(np.r_[starts, n]).astype(np.int64)
    return [column[order[starts]] for column in columns], inverse, counts


def _weighted_unique(*columns: FloatArray) -> tuple[list[FloatArray], FloatArray]:
    unique, _inverse, counts = unique_rows(*columns)
    return unique, counts.astype(np.float64)


def _sample(n: int, limit: int, seed: int) -> NDArray[np.int64] | slice:
    if n <= limit:
        return slice(None)
    chosen: NDArray[np.int64] = np.sort(
        np.random.default_rng(seed).choice(n, size=limit, replace=False)
    )
    return chosen


def _maximise(negative: Any, start: FloatArray) -> tuple[FloatArray, float, int, bool]:
    """Minimise ``negative`` over log-parameters: L-BFGS-B, then Nelder-Mead to confirm."""
    first = optimize.minimize(negative, start, method="L-BFGS-B", bounds=[(-12, 12)] * len(start))
    second = optimize.minimize(
        negative,
        first.x,
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000},
    )
    best = second if second.fun <= first.fun else first
    return (
        np.asarray(best.x, dtype=np.float64),
        float(best.fun),
        int(first.nit) + int(second.nit),
        bool(second.success or first.success),
    )


def fit_bgnbd(x: FloatArray, t_x: FloatArray, T: FloatArray, *, seed: int = 0) -> Fit:
    """Maximum likelihood BG/NBD parameters; ``TooLittleHistory`` without enough data."""
    if len(x) < MIN_CUSTOMERS or int((x > 0).sum()) < MIN_REPEAT_CUSTOMERS:
        raise TooLittleHistory(
            f"The lifetime model needs at least {MIN_CUSTOMERS} customers, "
            f"{MIN_REPEAT_CUSTOMERS} of whom bought on more than one day; "
            f"there are {len(x)} customers and {int((x > 0).sum())} repeat buyers."
        )
    chosen = _sample(len(x), MAX_FIT_CUSTOMERS, seed)
    (ux, ut, uT), weight = _weighted_unique(x[chosen], t_x[chosen], T[chosen])
    total = weight.sum()
    summary = _Summary(ux, ut, uT)

    def negative(theta: FloatArray) -> float:
        r, alpha, a, b = np.exp(theta)
        ll = summary.bgnbd_log_likelihood(BGNBD(r, alpha, a, b))
        value = -float((weight * ll).sum()) / total
        return value if np.isfinite(value) else 1e300

    scale = max(float(np.mean(T)), 1e-6)
    start = np.log(np.array([1.0, scale, 1.0, 1.0]))
    theta, value, iterations, converged = _maximise(negative, start)
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    return Fit(BGNBD(r, alpha, a, b), -value * total, int(total), iterations, converged)


def fit_gamma_gamma(x: FloatArray, m: FloatArray, *, seed: int = 0) -> Fit:
    """Maximum likelihood Gamma-Gamma parameters from repeat buyers with positive spend."""
    keep = (x > 0) & (m > 0)
    if int(keep.sum()) < MIN_REPEAT_CUSTOMERS:
        raise TooLittleHistory(
            f"The spend model needs at least {MIN_REPEAT_CUSTOMERS} customers who bought on "
            f"more than one day; there are {int(keep.sum())}."
        )
    x, m = x[keep], m[keep]
    chosen = _sample(len(x), MAX_FIT_CUSTOMERS, seed)
    (ux, um), weight = _weighted_unique(x[chosen], m[chosen])
    total = weight.sum()
    # The terms of gamma_gamma_log_likelihood that depend on x alone, once per distinct x,
    # and log(m) and log(x), which no parameter changes (the same operations on the same
    # operands: the sums are identical).
    xs, at = np.unique(ux, return_inverse=True)
    log_m, log_x = np.log(um), np.log(xs)[at]

    def log_likelihood(params: GammaGamma) -> FloatArray:
        p, q, g = params.p, params.q, params.gamma
        pxs = p * xs
        px = pxs[at]
        result: FloatArray = (
            (special.gammaln(pxs + q) - special.gammaln(pxs))[at]
            - special.gammaln(q)
            + q * np.log(g)
            + (px - 1) * log_m
            + px * log_x
            - (px + q) * np.log(g + um * ux)
        )
        return result

    def negative(theta: FloatArray) -> float:
        p, q, g = np.exp(theta)
        value = -float((weight * log_likelihood(GammaGamma(p, q, g))).sum())
        value /= total
        return value if np.isfinite(value) else 1e300

    start = np.log(np.array([1.0, 2.0, float(np.mean(m))]))
    theta, value, iterations, converged = _maximise(negative, start)
    p, q, g = (float(v) for v in np.exp(theta))
    return Fit(GammaGamma(p, q, g), -value * total, int(total), iterations, converged)


def probability_alive(params: BGNBD, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """P(still a customer at T | x, t_x, T)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    safe_x = np.where(x > 0, x, 1.0)
    log_odds_dead = (
        np.log(a) - np.log(b + safe_x - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    result: FloatArray = np.where(x > 0, special.expit(-log_odds_dead), 1.0)
    return result


def expected_purchases(
    params: BGNBD, t: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[purchases in (T, T + t] | x, t_x, T] (Fader, Hardie and Lee 2005, eq. 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if t <= 0:
        return np.zeros_like(x)
    z = t / (alpha + T + t)
    log_shrink = (r + x) * (np.log(alpha + T) - np.log(alpha + T + t))
    bracket = 1 - np.exp(log_shrink) * special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    result: FloatArray = (a + b + x - 1) / (a - 1) * bracket * probability_alive(params, x, t_x, T)
    return result


def expected_spend(params: GammaGamma, x: FloatArray, m: FloatArray) -> FloatArray:
    """E[spend per purchase | x, m]: the population mean for x = 0 (needs q > 1)."""
    p, q, g = params.p, params.q, params.gamma
    safe_m = np.where(x > 0, m, 0.0)
    result: FloatArray = p * (g + safe_m * x) / (p * x + q - 1)
    return result


def clv(
    purchases: BGNBD,
    spend: GammaGamma,
    *,
    horizon: float,
    period_discount: float,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    m: FloatArray,
    steps: int = 24,
) -> FloatArray:
    """Discounted expected revenue over ``horizon`` periods: expected spend per purchase
    times the purchases expected in each of ``steps`` equal steps, each discounted at
    ``period_discount`` per period to the end of its step."""
    (ux, ut, uT), index, _counts = unique_rows(x, t_x, T)
    per_step = np.zeros(len(ux))
    before = np.zeros(len(ux))
    for k in range(1, steps + 1):
        at = horizon * k / steps
        cumulative = expected_purchases(purchases, at, ux, ut, uT)
        per_step += (cumulative - before) / (1 + period_discount) ** at
        before = cumulative
    result: FloatArray = per_step[index] * expected_spend(spend, x, m)
    return result
