"""Verification keys for bearer JWTs: one static key, or a JWKS fetched from a URL.

The JWKS cache is ``broker.providers.jwks`` (the public-provider login verifier uses it
too); here its neutral errors become the door's: an unknown kid or an unfit key is
UNAUTHENTICATED (:class:`SessionRejected`), a JWKS that cannot be fetched while no keys
are held is UNAVAILABLE (:class:`SessionSourceUnavailable`). A static key follows the same
rule as the JWKS (RFC 8725 section 3.1): the key decides the algorithm family, never the
token, so an HMAC secret serves HS* alone and a PEM public key never serves HS*.
"""

from __future__ import annotations

from typing import Final, Protocol

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from broker.backend.errors import SessionRejected, SessionSourceUnavailable
from broker.providers import jwks
from broker.providers.jwks import Key, fits
from config.errors import ConfigError

UNKNOWN_KID: Final = "The bearer token names a key the issuer does not publish."
NO_KEY: Final = "No configured key fits the bearer token's algorithm."
UNAVAILABLE: Final = "The issuer's JWKS could not be fetched or holds no usable key; retry shortly."


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


class JwksKeys(jwks.JwksKeys):
    """The shared JWKS cache, its errors said in the backend door's words."""

    def key_for(self, kid: str | None, alg: str) -> Key:
        try:
            return super().key_for(kid, alg)
        except jwks.KeyNotFound as exc:
            raise SessionRejected(UNKNOWN_KID if exc.unknown_kid else NO_KEY) from None
        except jwks.KeysUnavailable:
            raise SessionSourceUnavailable(UNAVAILABLE) from None
