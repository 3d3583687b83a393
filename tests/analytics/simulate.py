"""Customers simulated from the lifetime models, to test that fitting recovers them."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def bgnbd_purchase_times(
    r: float, alpha: float, a: float, b: float, horizon: NDArray[np.float64], seed: int
) -> list[list[float]]:
    """Repeat purchase times after a first purchase at 0, up to each customer's horizon:
    Poisson purchases at a gamma-distributed rate, a beta-distributed chance of leaving
    after each repeat purchase."""
    rng = np.random.default_rng(seed)
    n = len(horizon)
    rates = rng.gamma(r, 1 / alpha, n)
    drop = rng.beta(a, b, n)
    customers: list[list[float]] = []
    for i in range(n):
        times: list[float] = []
        t = 0.0
        while True:
            t += rng.exponential(1 / rates[i]) if rates[i] > 0 else np.inf
            if t > horizon[i]:
                break
            times.append(t)
            if rng.random() < drop[i]:
                break
        customers.append(times)
    return customers


def summarise(
    times: list[list[float]], T: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """x and t_x of each customer over (0, T]."""
    x = np.array([sum(1 for t in ts if t <= end) for ts, end in zip(times, T, strict=True)])
    t_x = np.array(
        [max((t for t in ts if t <= end), default=0.0) for ts, end in zip(times, T, strict=True)]
    )
    return x.astype(np.float64), t_x


def gamma_gamma_spend(
    p: float, q: float, gamma: float, x: NDArray[np.float64], seed: int
) -> NDArray[np.float64]:
    """Each customer's mean spend over x purchases: Gamma(p, nu) per purchase with a
    customer's nu ~ Gamma(q, gamma) (rates)."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1 / gamma, len(x))
    return np.array(
        [rng.gamma(p, 1 / v, int(k)).mean() if k > 0 else 0.0 for v, k in zip(nu, x, strict=True)]
    )
