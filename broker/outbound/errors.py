"""Why an outbound call failed: one base class, a short declaration per reason.

The messages name the reason only (never the URL, which may carry a token in its query,
nor what the other side sent), so they are safe to log; callers log the class name.
"""

from __future__ import annotations


class OutboundError(Exception):
    """An outbound call did not give a usable answer in time."""


class DeadlineExceeded(OutboundError):
    """The call's total deadline passed (connect, TLS, request, headers and body)."""


class Unreachable(OutboundError):
    """No connection, or it broke: refused, reset, a TLS failure, bad HTTP."""


class BadStatus(OutboundError):
    """An answer other than 200, redirects included (they are never followed)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP status {status}")
        self.status = status


class TooLarge(OutboundError):
    """The body is, or declares to be, larger than the caller's limit."""


class MalformedDocument(OutboundError):
    """The body is not the JSON asked for: not UTF-8, not JSON, nested too deeply, or not
    of the expected shape."""
