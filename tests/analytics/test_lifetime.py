"""BG/NBD and Gamma-Gamma: log-likelihoods against numerical integration of the models,
parameter recovery from simulated customers, and a calibration/holdout comparison."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import integrate, stats

from tenure.analytics import lifetime
from tenure.analytics.errors import TooLittleHistory
from tenure.analytics.lifetime import BGNBD, GammaGamma
from tests.analytics.simulate import bgnbd_purchase_times, gamma_gamma_spend, summarise

# The published CDNOW estimates (weeks): any realistic point will do.
CDNOW = BGNBD(r=0.243, alpha=4.414, a=0.793, b=2.426)


def _integrated_bgnbd(params: BGNBD, x: int, t_x: float, T: float) -> float:
    """The BG/NBD likelihood by integrating the individual likelihood over the gamma
    (purchase rate) and beta (dropout) mixing distributions numerically."""
    rate = stats.gamma(params.r, scale=1 / params.alpha)
    dropout = stats.beta(params.a, params.b)

    def over_rate(f: Callable[[float], float]) -> float:
        return float(integrate.quad(lambda lam: f(lam) * rate.pdf(lam), 0, np.inf, limit=400)[0])

    def over_dropout(f: Callable[[float], float]) -> float:
        return float(integrate.quad(lambda p: f(p) * dropout.pdf(p), 0, 1, limit=400)[0])

    alive = over_dropout(lambda p: (1 - p) ** x) * over_rate(
        lambda lam: lam**x * math.exp(-lam * T)
    )
    if x == 0:
        return alive
    left = over_dropout(lambda p: p * (1 - p) ** (x - 1)) * over_rate(
        lambda lam: lam**x * math.exp(-lam * t_x)
    )
    return alive + left


@pytest.mark.parametrize(
    ("x", "t_x", "T"), [(0, 0.0, 38.0), (1, 2.5, 30.0), (4, 20.0, 35.5), (12, 37.0, 39.0)]
)
def test_bgnbd_log_likelihood_matches_the_integrated_model(x: int, t_x: float, T: float) -> None:
    got = lifetime.bgnbd_log_likelihood(
        CDNOW, np.array([float(x)]), np.array([t_x]), np.array([T])
    )[0]

    assert got == pytest.approx(math.log(_integrated_bgnbd(CDNOW, x, t_x, T)), rel=1e-6)


def test_bgnbd_without_repeat_purchases_is_the_chance_of_none_in_t() -> None:
    # x = 0: no purchase in (0, T], a negative binomial zero: (alpha / (alpha + T))^r.
    got = lifetime.bgnbd_log_likelihood(CDNOW, np.array([0.0]), np.array([0.0]), np.array([10.0]))

    assert got[0] == pytest.approx(CDNOW.r * math.log(CDNOW.alpha / (CDNOW.alpha + 10)))


@pytest.mark.parametrize(("x", "m"), [(1, 12.5), (3, 40.0), (25, 7.2)])
def test_gamma_gamma_log_likelihood_matches_the_integrated_model(x: int, m: float) -> None:
    params = GammaGamma(p=6.25, q=3.74, gamma=15.44)
    mixing = stats.gamma(params.q, scale=1 / params.gamma)

    # The mean of x Gamma(p, nu) spends is Gamma(p x, nu x); integrate over nu.
    density = integrate.quad(
        lambda nu: stats.gamma.pdf(m, params.p * x, scale=1 / (nu * x)) * mixing.pdf(nu),
        0,
        np.inf,
        limit=400,
    )[0]

    got = lifetime.gamma_gamma_log_likelihood(params, np.array([float(x)]), np.array([m]))
    assert got[0] == pytest.approx(math.log(density), rel=1e-6)


def _simulated(n: int, seed: int, holdout: float = 0.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    T = rng.uniform(26, 78, n)
    times = bgnbd_purchase_times(0.6, 4.0, 0.8, 2.5, T + holdout, seed)
    x, t_x = summarise(times, T)
    after = np.array([sum(1 for t in ts if end < t) for ts, end in zip(times, T, strict=True)])
    return x, t_x, T, after.astype(np.float64)


def test_bgnbd_fit_recovers_the_parameters_it_was_simulated_from() -> None:
    x, t_x, T, _ = _simulated(4000, seed=11)

    fit = lifetime.fit_bgnbd(x, t_x, T)

    truth = BGNBD(0.6, 4.0, 0.8, 2.5)
    got = fit.params
    assert got.r == pytest.approx(truth.r, rel=0.15)
    assert got.alpha == pytest.approx(truth.alpha, rel=0.15)
    assert got.a == pytest.approx(truth.a, rel=0.25)
    assert got.b == pytest.approx(truth.b, rel=0.25)
    at_truth = lifetime.bgnbd_log_likelihood(truth, x, t_x, T).sum()
    assert fit.log_likelihood >= at_truth
    assert fit.log_likelihood == pytest.approx(lifetime.bgnbd_log_likelihood(got, x, t_x, T).sum())


def test_gamma_gamma_fit_recovers_the_parameters_it_was_simulated_from() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(1, 12, 5000).astype(np.float64)
    m = gamma_gamma_spend(6.0, 4.0, 15.0, x, seed=5)

    fit = lifetime.fit_gamma_gamma(x, m)

    assert fit.params.p == pytest.approx(6.0, rel=0.2)
    assert fit.params.q == pytest.approx(4.0, rel=0.2)
    assert fit.params.gamma == pytest.approx(15.0, rel=0.25)
    truth = GammaGamma(6.0, 4.0, 15.0)
    assert fit.log_likelihood >= lifetime.gamma_gamma_log_likelihood(truth, x, m).sum()


def test_holdout_purchases_match_the_prediction_per_frequency_bucket() -> None:
    weeks = 26.0
    x, t_x, T, actual = _simulated(4000, seed=23, holdout=weeks)
    fit = lifetime.fit_bgnbd(x, t_x, T)

    predicted = lifetime.expected_purchases(fit.params, weeks, x, t_x, T)

    buckets = np.minimum(x, 7)
    for bucket in range(8):
        inside = buckets == bucket
        if inside.sum() < 50:
            continue
        observed = actual[inside]
        # The bucket's mean holdout count, within three standard errors (and a little).
        tolerance = 3 * observed.std(ddof=1) / math.sqrt(inside.sum()) + 0.05
        assert abs(predicted[inside].mean() - observed.mean()) < tolerance, bucket


def test_probability_alive_is_one_without_repeat_purchases_and_falls_with_silence() -> None:
    x = np.array([0.0, 3.0, 3.0])
    t_x = np.array([0.0, 30.0, 5.0])
    T = np.array([40.0, 40.0, 40.0])

    got = lifetime.probability_alive(CDNOW, x, t_x, T)

    assert got[0] == 1.0
    assert 0 < got[2] < got[1] < 1
    # P(alive) = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)).
    odds = CDNOW.a / (CDNOW.b + 2) * ((CDNOW.alpha + 40) / (CDNOW.alpha + 30)) ** (CDNOW.r + 3)
    assert got[1] == pytest.approx(1 / (1 + odds))


def test_expected_spend_shrinks_a_customer_mean_towards_the_population_mean() -> None:
    params = GammaGamma(p=6.25, q=3.74, gamma=15.44)
    population = params.p * params.gamma / (params.q - 1)

    got = lifetime.expected_spend(params, np.array([0.0, 2.0, 200.0]), np.array([0.0, 80.0, 80.0]))

    assert got[0] == pytest.approx(population)
    assert population < got[1] < got[2] < 80.0 + 1e-9
    weight = params.p * 2 / (params.p * 2 + params.q - 1)
    assert got[1] == pytest.approx(weight * 80.0 + (1 - weight) * population)


def test_clv_without_discount_is_expected_purchases_times_expected_spend() -> None:
    spend = GammaGamma(p=6.25, q=3.74, gamma=15.44)
    x, t_x, T, m = (np.array([v]) for v in (2.0, 20.0, 30.0, 50.0))

    undiscounted = lifetime.clv(
        CDNOW, spend, horizon=52, period_discount=0.0, x=x, t_x=t_x, T=T, m=m
    )
    discounted = lifetime.clv(
        CDNOW, spend, horizon=52, period_discount=0.01, x=x, t_x=t_x, T=T, m=m
    )

    expected = lifetime.expected_purchases(CDNOW, 52, x, t_x, T) * lifetime.expected_spend(
        spend, x, m
    )
    assert undiscounted[0] == pytest.approx(expected[0])
    assert expected[0] / 1.01**52 < discounted[0] < expected[0]


def test_too_few_customers_cannot_be_fitted() -> None:
    with pytest.raises(TooLittleHistory, match="at least 20 customers"):
        lifetime.fit_bgnbd(np.zeros(5), np.zeros(5), np.ones(5))
    with pytest.raises(TooLittleHistory, match="at least 10 customers"):
        lifetime.fit_gamma_gamma(np.ones(3), np.ones(3))
