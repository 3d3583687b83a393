"""Storing a run: money columns rounded in numpy exactly as Decimal rounds them."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from tenure.analytics.run import money_units, text_order
from tenure.core.money import quantize, to_storage


def _by_decimal(values: np.ndarray, currency: str) -> list[int]:
    return [to_storage(quantize(Decimal(repr(float(v))), currency)) for v in values]


def test_money_units_round_like_decimal_even_on_half_cents() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.gamma(2.0, 150.0, 20_000),
            np.round(rng.uniform(0, 1000, 2_000), 2) + 0.005,  # ties, by decimal reading
            np.array([0.0, 0.005, 0.015, 1.005, 1.015, 2.675, 1e-9, 123456.785, 0.125]),
        ]
    )

    for currency in ("EUR", "JPY", "BHD"):
        assert money_units(values, currency) == _by_decimal(values, currency)


def test_text_order_sorts_ids_as_their_decimal_text() -> None:
    rng = np.random.default_rng(8)
    ids = np.unique(np.concatenate([rng.integers(0, 2_000_000, 5_000), [0, 1, 9, 10, 100, 99]]))

    got = text_order(ids)

    assert ids[got].tolist() == sorted(ids.tolist(), key=str)
