"""Errors of segments and campaigns, each with a stable code."""

from __future__ import annotations

from tenure.core.errors import Conflict, InvalidInput, NotFound


class InvalidSegment(InvalidInput):
    code = "invalid-segment"
    title = "The segment's filter is not valid"


class NoAnalyticsRun(InvalidInput):
    code = "no-analytics-run"
    title = "No analytics run to filter on"


class InvalidTemplate(InvalidInput):
    code = "invalid-template"
    title = "A message template does not render"


class EmptySegment(Conflict):
    code = "empty-segment"
    title = "The segment has no members"


class NotSendable(Conflict):
    code = "not-sendable"
    title = "The campaign cannot be sent"


class MailUnavailable(Conflict):
    code = "mail-unavailable"
    title = "No mail server is configured"


class BadLink(NotFound):
    """A tracking, click or unsubscribe link whose signature does not hold."""

    code = "bad-link"
    title = "This link is not valid"
