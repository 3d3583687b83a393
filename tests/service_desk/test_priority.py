"""The priority formula: 2 x urgency + 2 x impact + complexity, mapped to P1-P4."""

from __future__ import annotations

import pytest

from tenure.service_desk.priority import assess, score


@pytest.mark.parametrize(
    ("urgency", "impact", "complexity", "expected"),
    [
        (4, 4, 4, "P1"),  # 20
        (4, 4, 1, "P1"),  # 17: critical and business-wide is always P1
        (4, 3, 2, "P2"),  # 16
        (3, 3, 1, "P2"),  # 13
        (3, 2, 1, "P3"),  # 11
        (2, 2, 1, "P3"),  # 9
        (2, 1, 2, "P4"),  # 8
        (1, 1, 4, "P4"),  # 8: complexity alone never lifts a ticket
        (1, 1, 1, "P4"),  # 5
    ],
)
def test_the_formula_maps_the_score_to_a_priority(
    urgency: int, impact: int, complexity: int, expected: str
) -> None:
    assert assess(urgency=urgency, impact=impact, complexity=complexity).priority == expected


def test_the_reasons_name_each_rating_and_the_score() -> None:
    result = assess(urgency=4, impact=3, complexity=2)

    assert result.score == 16
    assert result.reasons == [
        "urgency 4: critical",
        "impact 3: a department",
        "complexity 2: moderate",
        "score 16 of 20 (2 x urgency + 2 x impact + complexity): P2",
    ]


@pytest.mark.parametrize("bad", [0, 5, -1])
def test_a_rating_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="urgency must be between 1 and 4"):
        score(urgency=bad, impact=2, complexity=2)
