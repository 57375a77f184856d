"""The ``jwks_uri`` of an OpenID Connect issuer, from its discovery document (OpenID
Connect Discovery 1.0 section 4: ``<issuer>/.well-known/openid-configuration``).

The document's ``issuer`` must equal the issuer asked about (section 4.3: else an attacker
who controls the document could name another issuer's keys), and its ``jwks_uri`` must be
https (http to a loopback host only), like every configured key URL. The fetch is
``broker.outbound.get_json``'s (a total deadline, a byte and a nesting limit, no
redirects), after ``broker.blocking.check()``. What was found is kept per process for the
JWKS TTL and kept serving when a later fetch fails; a failure with nothing held is
remembered for the minimum refetch interval, so a dead issuer costs one fetch per interval,
not one per request. Issuers come from the broker's configuration only (Google, Apple and
``BROKER_OIDC_PROVIDERS``), so the table is bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from broker import blocking
from broker.outbound import OutboundError, get_json
from config.providers import fetchable

log = logging.getLogger("broker.providers")

MAX_DISCOVERY_BYTES: Final = 256 * 1024
WELL_KNOWN: Final = "/.well-known/openid-configuration"


class DiscoveryFailed(Exception):  # noqa: N818 - a state, like the outbound errors
    """No usable discovery document, and no ``jwks_uri`` held for the issuer."""


def fetch_document(url: str, timeout: float) -> Any:
    return get_json(url, timeout=timeout, max_bytes=MAX_DISCOVERY_BYTES)


class Discovery:
    def __init__(
        self,
        *,
        timeout: float,
        ttl: float,
        min_refetch: float,
        fetch: Callable[[str, float], Any] = fetch_document,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout = timeout
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._fetch = fetch
        self._now = monotonic
        self._lock = threading.Lock()
        self._found: dict[str, tuple[str, float]] = {}  # issuer -> (jwks_uri, fetched at)
        self._attempted: dict[str, float] = {}

    def jwks_uri(self, issuer: str) -> str:
        now = self._now()
        with self._lock:
            held = self._found.get(issuer)
            attempted = self._attempted.get(issuer)
            if held is not None and now - held[1] < self._ttl:
                return held[0]
            if attempted is not None and now - attempted < self._min_refetch:
                if held is not None:
                    return held[0]
                raise DiscoveryFailed("the last discovery failed, moments ago")
        blocking.check()  # a fetch waits on the issuer: not on the worker's loop
        with self._lock:
            self._attempted[issuer] = now
        try:
            uri = self._discover(issuer)
        except (OutboundError, DiscoveryFailed) as exc:
            log.warning("OpenID discovery failed: %s", type(exc).__name__)
            if held is not None:
                return held[0]
            raise DiscoveryFailed("no usable discovery document") from None
        with self._lock:
            self._found[issuer] = (uri, now)
        return uri

    def _discover(self, issuer: str) -> str:
        document = self._fetch(issuer.rstrip("/") + WELL_KNOWN, self._timeout)
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            raise DiscoveryFailed("the discovery document names another issuer")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or not fetchable(uri):
            raise DiscoveryFailed("the discovery document's jwks_uri is not an https URL")
        return uri
