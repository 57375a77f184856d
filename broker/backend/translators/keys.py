"""Verification keys for bearer JWTs: one static key, or a JWKS fetched from a URL.

Why this shape (RFC 8725 section 3.1, "perform algorithm verification"): the key decides
the algorithm family, never the token. A resolver answers ``key_for(kid, alg)`` only with a
key whose type fits ``alg``: an HMAC secret serves HS* alone, a public key never serves
HS*, so an HS256 token "signed" with the RSA public key as its secret finds no key. The
token's ``jku``, ``x5u`` and ``jwk`` headers are never followed (RFC 8725 section 3.10), nor
is a redirect from the configured JWKS URL (https, or http to a loopback host only).

The JWKS comes through ``broker.outbound.get_json``: the whole fetch has a total deadline
(``BROKER_BACKEND_JWT_JWKS_TIMEOUT``), a byte limit and a nesting limit, and any document
that is not a JWK Set (RFC 7517 section 5: an object whose ``keys`` member is an array of
JSON objects), or that holds no usable signature key, fails the fetch like an unreachable
URL does: UNAVAILABLE while no keys are held, the keys already held otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from broker import blocking
from broker.backend.errors import SessionRejected, SessionSourceUnavailable
from broker.outbound import MalformedDocument, OutboundError, get_json
from config.errors import ConfigError

log = logging.getLogger("broker.backend")

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
UNKNOWN_KID: Final = "The bearer token names a key the issuer does not publish."
NO_KEY: Final = "No configured key fits the bearer token's algorithm."
UNAVAILABLE: Final = "The issuer's JWKS could not be fetched or holds no usable key; retry shortly."


def fits(key: Key, alg: str, declared_alg: str | None = None) -> bool:
    key_type, curve = KEY_TYPE_OF[alg]
    if key.key_type != key_type or (declared_alg is not None and declared_alg != alg):
        return False
    return curve is None or key.as_dict(private=False).get("crv") == curve


class KeyResolver(Protocol):
    def key_for(self, kid: str | None, alg: str) -> Key: ...


class StaticKey:
    """One configured key: the HMAC secret, or the public key read from a PEM file."""

    def __init__(self, key: Key) -> None:
        self._key = key

    @classmethod
    def hmac(cls, secret: str) -> StaticKey:
        return cls(OctKey.import_key(secret.encode()))

    @classmethod
    def from_pem_file(cls, path: str, algorithms: tuple[str, ...]) -> StaticKey:
        try:
            with open(path, "rb") as handle:
                pem = handle.read()
        except OSError as exc:
            raise ConfigError(
                f"BROKER_BACKEND_JWT_PUBLIC_KEY_FILE: cannot read {path!r}: {exc.strerror}"
            ) from None
        key: Key | None = None
        for key_class in (RSAKey, ECKey, OKPKey):
            try:
                key = key_class.import_key(pem)
                break
            except (ValueError, TypeError, JoseError):
                continue
        if key is None:
            raise ConfigError(
                f"BROKER_BACKEND_JWT_PUBLIC_KEY_FILE: {path!r} holds no RSA, EC or Ed25519 PEM key"
            )
        unfit = [alg for alg in algorithms if not fits(key, alg)]
        if unfit:
            raise ConfigError(
                f"BROKER_BACKEND_JWT_ALGORITHMS: {', '.join(unfit)} cannot be verified with the "
                f"{key.key_type} key in {path!r}"
            )
        return cls(key)

    def key_for(self, kid: str | None, alg: str) -> Key:
        if not fits(self._key, alg):
            raise SessionRejected(NO_KEY)
        return self._key


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
    When a refetch fails the keys already held keep serving; with none held the door answers
    UNAVAILABLE. Only public signature keys are kept: no ``oct`` key, no ``use: enc``.

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
            raise SessionRejected(UNKNOWN_KID if kid is not None else NO_KEY)
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
                raise SessionSourceUnavailable(UNAVAILABLE)
            return self._keys
        blocking.check()  # a fetch waits on the issuer: not on the worker's loop
        self._attempted_at = now
        try:
            keys = _import(self._fetch(self._url, self._timeout))
        except OutboundError as exc:
            log.warning("JWKS fetch failed: %s", type(exc).__name__)
            if self._keys is None:
                raise SessionSourceUnavailable(UNAVAILABLE) from None
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
        raise SessionRejected(NO_KEY)  # the kid is known, but its key does not fit alg
    return None
