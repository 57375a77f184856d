"""A JWKS fetched from a URL and cached per process: the verification keys of a JWT issuer.

Shared by the backend door's ``jwt`` translator (``broker.backend.translators``) and the
public-provider login verifier (``broker.providers.verifier``); each says the neutral
errors here in its own words: :class:`KeyNotFound` (no key for the token's kid or alg, the
caller's fault) and :class:`KeysUnavailable` (the fetch failed and no keys are held).

Why this shape (RFC 8725 section 3.1, "perform algorithm verification"): the key decides
the algorithm family, never the token. A resolver answers ``key_for(kid, alg)`` only with a
key whose type fits ``alg``: a public key never serves HS*, so an HS256 token "signed" with
the RSA public key as its secret finds no key, and a JWKS never yields an ``oct`` key. The
token's ``jku``, ``x5u`` and ``jwk`` headers are never followed (RFC 8725 section 3.10), nor
is a redirect from the configured JWKS URL (https, or http to a loopback host only).

The JWKS comes through ``broker.outbound.get_json``: the whole fetch has a total deadline
(the caller's timeout), a byte limit and a nesting limit, and any document that is not a
JWK Set (RFC 7517 section 5: an object whose ``keys`` member is an array of JSON objects),
or that holds no usable signature key, fails the fetch like an unreachable URL does:
:class:`KeysUnavailable` while no keys are held, the keys already held otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from broker import blocking
from broker.outbound import MalformedDocument, OutboundError, get_json

log = logging.getLogger("broker.providers")

Key = OctKey | RSAKey | ECKey | OKPKey
MAX_JWKS_BYTES: Final = 512 * 1024
#: JWS algorithm -> (key type, EC curve or None), RFC 7518 section 3.1 and RFC 8037.
KEY_TYPE_OF: Final[Mapping[str, tuple[str, str | None]]] = {
    **{f"HS{n}": ("oct", None) for n in (256, 384, 512)},
    **{f"RS{n}": ("RSA", None) for n in (256, 384, 512)},
    **{f"PS{n}": ("RSA", None) for n in (256, 384, 512)},
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}
KEY_CLASSES: Final[Mapping[str, type[RSAKey] | type[ECKey] | type[OKPKey]]] = {
    "RSA": RSAKey,
    "EC": ECKey,
    "OKP": OKPKey,
}


class KeyNotFound(ValueError):  # noqa: N818 - the name says what the caller learns
    """No published key serves the token: its kid is unknown (``unknown_kid``), or the key
    found does not fit its algorithm, or without a kid no single key fits."""

    def __init__(self, unknown_kid: bool) -> None:
        super().__init__("unknown kid" if unknown_kid else "no key fits the algorithm")
        self.unknown_kid = unknown_kid


class KeysUnavailable(Exception):  # noqa: N818 - a state, like the outbound errors
    """The JWKS could not be fetched (or held no usable key) and no keys are held."""


def fits(key: Key, alg: str, declared_alg: str | None = None) -> bool:
    key_type, curve = KEY_TYPE_OF[alg]
    if key.key_type != key_type or (declared_alg is not None and declared_alg != alg):
        return False
    return curve is None or key.as_dict(private=False).get("crv") == curve


@dataclass(frozen=True)
class _Published:
    kid: str | None
    alg: str | None
    key: Key


def fetch_jwks(url: str, timeout: float) -> list[dict[str, Any]]:
    """GET the JWK Set (RFC 7517 section 5) within ``timeout`` seconds in all; its ``keys``,
    each a JSON object, unparsed. Raises :class:`OutboundError` for any failure."""
    document = get_json(url, timeout=timeout, max_bytes=MAX_JWKS_BYTES)
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, dict) for key in keys):
        raise MalformedDocument("not a JWK Set: no 'keys' array of objects")
    return keys


class JwksKeys:
    """A JWKS URL, cached per process: fetched on first use, again after ``ttl`` seconds,
    and at once when a token names an unknown kid, but never more often than once per
    ``min_refetch`` seconds (a stream of forged kids must not turn into a stream of GETs).
    When a refetch fails the keys already held keep serving; with none held ``key_for``
    raises :class:`KeysUnavailable`. Only public signature keys are kept: no ``oct`` key,
    no ``use: enc``.

    While one thread fetches, the others use the keys already held rather than wait for
    it; with none held yet they wait, at most the fetch's deadline. A request that would
    fetch, or wait for a fetch, where it may not wait (the keep-alive worker's loop) raises
    ``WouldBlock`` first, with nothing changed (``broker.blocking``).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        ttl: float,
        min_refetch: float,
        fetch: Callable[[str, float], list[dict[str, Any]]] = fetch_jwks,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._fetch = fetch
        self._now = monotonic
        self._lock = threading.Lock()
        self._keys: list[_Published] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None

    def key_for(self, kid: str | None, alg: str) -> Key:
        keys = self._keys
        if keys is None or self._now() - self._fetched_at >= self._ttl:
            keys = self._refresh(keys)
        key = _pick(keys, kid, alg)
        if key is None and kid is not None:
            key = _pick(self._refresh(keys, unknown_kid=True), kid, alg)
        if key is None:
            raise KeyNotFound(unknown_kid=kid is not None)
        return key

    def _refresh(
        self, seen: list[_Published] | None, unknown_kid: bool = False
    ) -> list[_Published]:
        if not self._lock.acquire(blocking=False):
            if seen is not None:
                return seen  # another thread is fetching: serve what is held meanwhile
            blocking.check()  # nothing held: wait for that fetch, in a thread
            self._lock.acquire()  # bounded by the fetch's deadline
        try:
            return self._refresh_holding(seen, unknown_kid)
        finally:
            self._lock.release()

    def _refresh_holding(
        self, seen: list[_Published] | None, unknown_kid: bool
    ) -> list[_Published]:
        if self._keys is not seen and self._keys is not None:
            return self._keys  # another thread refreshed while this one waited
        now = self._now()
        if self._attempted_at is not None and now - self._attempted_at < self._min_refetch:
            if self._keys is None:
                raise KeysUnavailable("the last JWKS fetch failed, moments ago")
            return self._keys
        blocking.check()  # a fetch waits on the issuer: not on the worker's loop
        self._attempted_at = now
        try:
            keys = _import(self._fetch(self._url, self._timeout))
        except OutboundError as exc:
            log.warning("JWKS fetch failed: %s", type(exc).__name__)
            if self._keys is None:
                raise KeysUnavailable("the JWKS could not be fetched") from None
            return self._keys
        self._keys = keys
        self._fetched_at = now
        log.info(
            "JWKS fetched: %d signature keys%s",
            len(self._keys),
            " (unknown kid)" if unknown_kid else "",
        )
        return self._keys


def _import(documents: list[dict[str, Any]]) -> list[_Published]:
    """The usable signature keys; keys of other types or uses, and keys that do not import,
    are skipped (RFC 7517 section 5: ignore what is not understood or out of range). A set
    with none left is refused: it cannot verify any token, and 401 would blame the caller."""
    published = []
    for document in documents:
        if document.get("kty") not in ("RSA", "EC", "OKP") or document.get("use", "sig") != "sig":
            continue
        key_class: type[RSAKey] | type[ECKey] | type[OKPKey] = KEY_CLASSES[document["kty"]]
        try:
            key: Key = key_class.import_key(document)
        except Exception as exc:  # whatever a hostile member makes joserfc raise: that key only
            log.info("JWKS key skipped: %s", type(exc).__name__)
            continue  # one malformed key must not hide the others
        kid = document.get("kid")
        alg = document.get("alg")
        published.append(
            _Published(
                kid if isinstance(kid, str) else None, alg if isinstance(alg, str) else None, key
            )
        )
    if not published:
        raise MalformedDocument("the JWK Set holds no usable signature key")
    return published


def _pick(keys: list[_Published], kid: str | None, alg: str) -> Key | None:
    """The key named by ``kid``; without a kid, the only key that fits ``alg``, if one."""
    if kid is not None:
        matches = [k for k in keys if k.kid == kid]
    else:
        matches = [k for k in keys if fits(k.key, alg, k.alg)]
        if len(matches) != 1:
            return None
    for match in matches:
        if fits(match.key, alg, match.alg):
            return match.key
    if matches:
        raise KeyNotFound(unknown_kid=False)  # the kid is known, but its key does not fit alg
    return None


#: JWKS caches one process keeps: Cognito user pool ids come from pool configs, so the
#: URLs are unbounded otherwise.
MAX_JWKS_CACHES: Final = 256


class JwksCaches:
    """One :class:`JwksKeys` per JWKS URL, shared by every request of the process; the
    least recently used is dropped past ``limit`` (it is fetched again when next needed)."""

    def __init__(
        self,
        *,
        timeout: float,
        ttl: float,
        min_refetch: float,
        limit: int = MAX_JWKS_CACHES,
        fetch: Callable[[str, float], list[dict[str, Any]]] = fetch_jwks,
    ) -> None:
        self._timeout = timeout
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._limit = limit
        self._fetch = fetch
        self._lock = threading.Lock()
        self._caches: OrderedDict[str, JwksKeys] = OrderedDict()

    def __len__(self) -> int:
        return len(self._caches)

    def of(self, url: str) -> JwksKeys:
        with self._lock:
            keys = self._caches.get(url)
            if keys is None:
                keys = JwksKeys(
                    url,
                    timeout=self._timeout,
                    ttl=self._ttl,
                    min_refetch=self._min_refetch,
                    fetch=self._fetch,
                )
                self._caches[url] = keys
                while len(self._caches) > self._limit:
                    self._caches.popitem(last=False)
            else:
                self._caches.move_to_end(url)
            return keys
