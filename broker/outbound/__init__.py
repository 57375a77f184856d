"""Calls the broker makes to other services while a request waits, each within a total
deadline.

Why a package of its own: a socket timeout bounds one read, not a call. A server that
declares a large body and sends a byte a second keeps a per-read timeout satisfied for as
long as it likes, and so does a resolver or an SDK that retries. Everything here takes a
number of seconds for the *whole* call (connect, TLS, request, headers, body, parsing) and
ends it with an :class:`OutboundError` when it is up, whatever the other side does.

- :func:`get_json`: one HTTP(S) GET of a JSON document (a JWKS, an OpenID discovery
  document) with a byte limit, no redirects, and a nesting-depth limit on the JSON. Every
  failure, a hostile document included, is an :class:`OutboundError`: callers map that one
  class to their own error (the backend door's UNAVAILABLE, the AWS door's
  ``ExternalServiceException``).
- :class:`BoundedCalls`: runs a blocking call that cannot be given a deadline itself (an
  AWS SDK call with its own retries, ``getaddrinfo``) in a small set of threads, and waits
  for it until the deadline only.
- :func:`backoff_delay`: the jittered delay before a retry, for every caller that retries.

These calls still block the thread that makes them. On a request path, call
``broker.blocking.check()`` first, before the request has changed anything: on the
keep-alive worker's loop it raises ``WouldBlock``, and the worker serves the request again
in one of its threads (``broker.server.offload``), so that the worker's other requests go on
meanwhile. Keep what was fetched per process (``JwksKeys`` in ``broker.providers.jwks``
is such a cache for a JWKS: fetched on first use, after its TTL and for unknown kids at
most once per interval, the held keys served while a fetch runs), so that most requests
need no call at all and stay on the loop.
"""

from broker.outbound.backoff import backoff_delay
from broker.outbound.calls import BoundedCalls
from broker.outbound.errors import (
    BadStatus,
    DeadlineExceeded,
    MalformedDocument,
    OutboundError,
    TooLarge,
    Unreachable,
)
from broker.outbound.http import DEFAULT_MAX_DEPTH, get_json, parse_json

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "BadStatus",
    "BoundedCalls",
    "DeadlineExceeded",
    "MalformedDocument",
    "OutboundError",
    "TooLarge",
    "Unreachable",
    "backoff_delay",
    "get_json",
    "parse_json",
]
