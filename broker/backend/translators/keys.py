"""Verification keys for bearer JWTs: one static key, or a JWKS fetched from a URL.

Why this shape (RFC 8725 section 3.1, "perform algorithm verification"): the key decides
the algorithm family, never the token. A resolver answers ``key_for(kid, alg)`` only with a
key whose type fits ``alg``: an HMAC secret serves HS* alone, a public key never serves
HS*, so an HS256 token "signed" with the RSA public key as its secret finds no key. The
token's ``jku``, ``x5u`` and ``jwk`` headers are never followed (RFC 8725 section 3.10), nor
is a redirect from the configured JWKS URL (https, or http to a loopback host only).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Final, NoReturn, Protocol

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from broker.backend.errors import SessionRejected, SessionSourceUnavailable
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


class RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """The JWKS comes from the configured URL itself: a redirect (to plain http, to another
    host) fails the fetch instead of being followed."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> NoReturn:
        raise urllib.error.HTTPError(req.full_url, code, "JWKS redirect refused", headers, fp)


def fetch_jwks(url: str, timeout: float) -> list[dict[str, Any]]:
    """GET the JWKS document (RFC 7517 section 5); its ``keys`` member, unparsed."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - https (or loopback http) checked by config
    opener = urllib.request.build_opener(RefuseRedirects)
    with opener.open(request, timeout=timeout) as response:
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
    document = json.loads(body)
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise ValueError("JWKS document has no 'keys' array")
    return [k for k in keys if isinstance(k, dict)]


class JwksKeys:
    """A JWKS URL, cached per process: fetched on first use, again after ``ttl`` seconds,
    and at once when a token names an unknown kid, but never more often than once per
    ``min_refetch`` seconds (a stream of forged kids must not turn into a stream of GETs).
    When a refetch fails the keys already held keep serving; with none held the door answers
    UNAVAILABLE. Only public signature keys are kept: no ``oct`` key, no ``use: enc``.
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
        with self._lock:
            if self._keys is not seen and self._keys is not None:
                return self._keys  # another thread refreshed while this one waited
            now = self._now()
            if self._attempted_at is not None and now - self._attempted_at < self._min_refetch:
                if self._keys is None:
                    raise SessionSourceUnavailable(
                        "The issuer's JWKS could not be fetched; retry shortly."
                    )
                return self._keys
            self._attempted_at = now
            try:
                documents = self._fetch(self._url, self._timeout)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                log.warning("JWKS fetch failed: %s", type(exc).__name__)
                if self._keys is None:
                    raise SessionSourceUnavailable(
                        "The issuer's JWKS could not be fetched; retry shortly."
                    ) from None
                return self._keys
            self._keys = _import(documents)
            self._fetched_at = now
            log.info(
                "JWKS fetched: %d signature keys%s",
                len(self._keys),
                " (unknown kid)" if unknown_kid else "",
            )
            return self._keys


def _import(documents: list[dict[str, Any]]) -> list[_Published]:
    published = []
    for document in documents:
        if document.get("kty") not in ("RSA", "EC", "OKP") or document.get("use", "sig") != "sig":
            continue
        key_class: type[RSAKey] | type[ECKey] | type[OKPKey] = KEY_CLASSES[document["kty"]]
        try:
            key: Key = key_class.import_key(document)
        except (ValueError, TypeError, KeyError, JoseError):
            continue  # one malformed key must not hide the others
        kid = document.get("kid")
        alg = document.get("alg")
        published.append(
            _Published(
                kid if isinstance(kid, str) else None, alg if isinstance(alg, str) else None, key
            )
        )
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
