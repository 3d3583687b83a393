"""Ticket priority from urgency, impact and complexity: one formula, with its reasons.

The formula (also in docs/service-desk.md)::

    score = 2 * urgency + 2 * impact + complexity        (each 1-4, so 5..20)
    P1 when score >= 17, P2 when score >= 13, P3 when score >= 9, else P4

Urgency and impact weigh twice what complexity does: how soon and how many people it
hurts decide what is worked first; a complex problem only moves up a little, because
it needs an early start. Urgency 4 with impact 4 is always P1 (score 17 at least);
nothing with urgency and impact of 1 is above P4.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIORITIES = ("P1", "P2", "P3", "P4")
WEIGHTS = {"urgency": 2, "impact": 2, "complexity": 1}
# The lowest score of each priority, highest priority first.
THRESHOLDS = (("P1", 17), ("P2", 13), ("P3", 9))
LOWEST = "P4"
MAX_SCORE = sum(w * 4 for w in WEIGHTS.values())

LEVELS = {
    "urgency": {1: "low", 2: "medium", 3: "high", 4: "critical"},
    "impact": {1: "one person", 2: "a few people", 3: "a department", 4: "the whole business"},
    "complexity": {1: "simple", 2: "moderate", 3: "involved", 4: "complex"},
}


@dataclass(frozen=True)
class Assessment:
    priority: str
    score: int
    reasons: list[str]


def score(*, urgency: int, impact: int, complexity: int) -> int:
    """The weighted score (5 to 20) of the three ratings."""
    values = {"urgency": urgency, "impact": impact, "complexity": complexity}
    for name, value in values.items():
        if not 1 <= value <= 4:
            raise ValueError(f"{name} must be between 1 and 4, not {value}")
    return sum(WEIGHTS[name] * value for name, value in values.items())


def assess(*, urgency: int, impact: int, complexity: int) -> Assessment:
    """The priority (P1-P4) the formula gives, and why, in words."""
    total = score(urgency=urgency, impact=impact, complexity=complexity)
    priority = next((p for p, low in THRESHOLDS if total >= low), LOWEST)
    reasons = [
        f"urgency {urgency}: {LEVELS['urgency'][urgency]}",
        f"impact {impact}: {LEVELS['impact'][impact]}",
        f"complexity {complexity}: {LEVELS['complexity'][complexity]}",
        f"score {total} of {MAX_SCORE} (2 x urgency + 2 x impact + complexity): {priority}",
    ]
    return Assessment(priority, total, reasons)
