"""Record scope: which customers (and through them, which orders) a caller reaches.

Services take a ``RecordScope`` as a plain value; the entry points (API, pages, command
line) work it out once per request from the caller's role and team.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenure.security.permissions import Scope


@dataclass(frozen=True)
class RecordScope:
    """``owners`` are the users whose customers are reached; None reaches every customer
    (unowned ones too)."""

    kind: Scope
    owners: frozenset[int] | None
    user_id: int | None = None

    @property
    def unrestricted(self) -> bool:
        return self.owners is None

    def reaches(self, owner_id: int | None) -> bool:
        """Whether a customer owned by ``owner_id`` is in the scope."""
        return self.owners is None or owner_id in self.owners

    def may_assign(self, owner_id: int | None) -> bool:
        """Whether a customer may be given to ``owner_id``: someone in the scope (a sales
        rep only themselves, a manager their team); only an unrestricted scope may leave
        a customer without an owner."""
        return self.owners is None or (owner_id is not None and owner_id in self.owners)


# Every record: the command line, demo data and other work no signed-in user does.
EVERYTHING = RecordScope(Scope.ALL, None)


def own(user_id: int) -> RecordScope:
    return RecordScope(Scope.OWN, frozenset({user_id}), user_id)


def team(user_id: int, members: set[int]) -> RecordScope:
    return RecordScope(Scope.TEAM, frozenset(members | {user_id}), user_id)
