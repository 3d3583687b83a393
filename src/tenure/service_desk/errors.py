"""Service desk errors, each with a stable code (the ``type`` of its problem+json)."""

from __future__ import annotations

from tenure.core.errors import Conflict, InvalidInput, NotFound


class TicketNotFound(NotFound):
    code = "ticket-not-found"
    title = "Ticket not found"


class OverrideReasonRequired(InvalidInput):
    code = "override-reason-required"
    title = "A priority override needs a reason"


class SatisfactionNotOpen(Conflict):
    code = "satisfaction-not-open"
    title = "Satisfaction cannot be recorded now"


class BadSurveyLink(InvalidInput):
    status = 400
    code = "bad-survey-link"
    title = "This survey link is not valid"
