"""Signing keys: where they come from, which one signs, which ones are published.

A key comes either from a PEM file (``BROKER_SIGNING_KEY_FILE``) or from Redis, where the
first broker process to start generates one RSA-2048 key and stores it with one atomic
script, so every worker and every broker process on that Redis signs with the same key.
The kid is the key's RFC 7638 thumbprint (contract section 6, decision).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc.jwk import RSAKey

from broker.errors import InternalErrorException
from broker.tokens.sealing import KeyEncryptionError, KeySealer
from config.keys import DEFAULT_RETENTION_SECONDS

log = logging.getLogger(__name__)

RSA_BITS = 2048
ALGORITHM = "RS512"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: RSAKey

    @classmethod
    def from_pem(cls, pem: str | bytes) -> SigningKey:
        key = RSAKey.import_key(pem)
        if not key.is_private:
            raise ValueError("the signing key must be an RSA private key")
        return cls(kid=key.thumbprint(), key=key)

    @classmethod
    def generate(cls) -> SigningKey:
        key = RSAKey.generate_key(RSA_BITS, private=True)
        return cls(kid=key.thumbprint(), key=key)

    def private_pem(self) -> str:
        pem = self.key.as_pem(private=True)
        return pem.decode() if isinstance(pem, bytes) else pem

    def public_jwk(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        return {
            "kty": "RSA",
            "alg": ALGORITHM,
            "use": "sig",
            "kid": self.kid,
            "n": public["n"],
            "e": public["e"],
        }


@dataclass(frozen=True)
class KeySet:
    current: SigningKey
    published: tuple[SigningKey, ...]


class KeySource(Protocol):
    def load(self) -> KeySet: ...


class FileKeySource:
    """One key from a PEM file; nothing is kept in Redis."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as handle:
            key = SigningKey.from_pem(handle.read())
        self._keys = KeySet(current=key, published=(key,))

    def load(self) -> KeySet:
        return self._keys


@dataclass(frozen=True)
class StoredKeySet:
    """What storage holds: the signing kid, every key's record, when retired keys stopped
    signing, and when staged keys start signing."""

    current: str | None
    records: Mapping[str, str]
    retired: Mapping[str, float]
    pending: Mapping[str, float]


class StoredKeys(Protocol):
    """The storage side of generated keys (implemented in ``broker.store.signing_keys``)."""

    def load_keys(self) -> StoredKeySet: ...
    def ensure_key(self, kid: str, record: str) -> tuple[str, str]: ...
    def rotate(self, kid: str, record: str, now: float, prune_before: float) -> str | None: ...
    def stage(
        self, kid: str, record: str, activate_at: float, prune_before: float
    ) -> str | None: ...
    def promote(self, kid: str, now: float) -> bool: ...
    def replace(self, kid: str, old: str, new: str) -> bool: ...


@dataclass(frozen=True)
class KeyState:
    """What ``broker keys`` says of one stored key (never its material)."""

    kid: str
    role: str  # "current", "staged", "retired" or "published"
    sealed: bool
    #: staged: when it starts signing; retired: when it stopped signing (epoch seconds).
    since: float | None = None
    #: retired: when it leaves the JWKS (pruned at the next rotation after that time).
    published_until: float | None = None
    created: float | None = None  # when the key was generated


class RedisKeySource:
    """Keys kept in Redis: generated once, shared by every worker and process.

    A rotation normally stages the new key: it is published at once and starts signing only
    after ``activate_after`` seconds (at least the JWKS cache lifetime), so a verifier that
    cached the JWKS knows it before it sees a token with it. The rotated-out key stays
    published for ``retention`` seconds after it stopped signing (the longest token
    lifetime plus clock skew), then leaves the JWKS (contract §6).
    """

    def __init__(
        self,
        stored: StoredKeys,
        clock: Callable[[], float] = time.time,
        sealer: KeySealer | None = None,
        retention: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        self._stored = stored
        self._clock = clock
        self._sealer = sealer or KeySealer(None)
        self._retention = retention
        self._parsed: dict[str, SigningKey] = {}  # kid -> key: open and parse each once

    def new_record(self, key: SigningKey) -> str:
        fields = self._sealer.seal(key.kid, key.private_pem())
        return json.dumps({**fields, "created": self._clock()})

    def load(self) -> KeySet:
        stored = self._seal_plain_keys(self._stored.load_keys())
        now = self._clock()
        due = [k for k, at in stored.pending.items() if at <= now and k in stored.records]
        if due:  # a staged key's time has come: whichever worker sees it first promotes it
            self._stored.promote(max(due, key=lambda k: stored.pending[k]), now)
            stored = self._stored.load_keys()
        current, records = stored.current, dict(stored.records)
        if current is None or current not in records:
            candidate = SigningKey.generate()
            current, raw = self._stored.ensure_key(candidate.kid, self.new_record(candidate))
            records[current] = raw
        retired = stored.retired
        live = [
            kid
            for kid in sorted(records)
            if kid == current or kid not in retired or retired[kid] + self._retention > now
        ]
        for kid in live:
            if kid not in self._parsed:
                pem = self._sealer.open(kid, json.loads(records[kid]))
                self._parsed[kid] = SigningKey.from_pem(pem)
        return KeySet(current=self._parsed[current], published=tuple(self._parsed[k] for k in live))

    def _seal_plain_keys(self, stored: StoredKeySet) -> StoredKeySet:
        """With a key-encryption key set, seal every key still stored in clear (written
        before the KEK was configured, or by a broker without it). Each record is replaced
        only if it is still the clear one this process read, so whichever worker or broker
        comes first seals it, once; the others find it sealed."""
        if not self._sealer.sealing:
            return stored
        plain = {kid: raw for kid, raw in stored.records.items() if "pem" in json.loads(raw)}
        if not plain:
            return stored
        for kid, raw in plain.items():
            record = json.loads(raw)
            pem = record.pop("pem")  # the other fields ("created") stay as they were
            sealed = {**record, **self._sealer.seal(kid, pem)}
            if self._stored.replace(kid, raw, json.dumps(sealed)):
                log.warning(
                    "signing key %s was stored in clear: sealed it with BROKER_KEY_ENCRYPTION_KEY",
                    kid,
                )
        return self._stored.load_keys()

    def states(self) -> list[KeyState]:
        """Every stored key, the signing one first, with its role and sealing state."""
        stored = self._stored.load_keys()

        def role(kid: str) -> str:
            if kid == stored.current:
                return "current"
            if kid in stored.pending:
                return "staged"
            return "retired" if kid in stored.retired else "published"

        def state(kid: str) -> KeyState:
            record = json.loads(stored.records[kid])
            sealed, created = "sealed" in record, record.get("created")
            if kid in stored.pending:
                return KeyState(kid, "staged", sealed, stored.pending[kid], created=created)
            if kid in stored.retired and kid != stored.current:
                retired_at = stored.retired[kid]
                until = retired_at + self._retention
                return KeyState(kid, "retired", sealed, retired_at, until, created)
            return KeyState(kid, role(kid), sealed, created=created)

        kids = sorted(stored.records, key=lambda kid: (kid != stored.current, kid))
        return [state(kid) for kid in kids]

    def rotate(self, activate_after: float = 0.0) -> tuple[str | None, str]:
        """A new key: signing now (``activate_after`` 0) or staged to sign after that many
        seconds. Keys retired longer than the retention are pruned. Returns the kid signing
        now (or until the new key activates) and the new kid."""
        key = SigningKey.generate()
        now = self._clock()
        record, prune_before = self.new_record(key), now - self._retention
        if activate_after <= 0:
            return self._stored.rotate(key.kid, record, now, prune_before), key.kid
        return self._stored.stage(key.kid, record, now + activate_after, prune_before), key.kid


class KeyRing:
    """The keys this process signs with and publishes, reloaded every few seconds so that
    every worker follows a rotation. Until the first load succeeds, signing fails with
    InternalErrorException and /readyz reports it."""

    def __init__(self, source: KeySource, refresh_seconds: float = 10.0) -> None:
        self._source = source
        self._refresh = refresh_seconds
        self._keys: KeySet | None = None
        self._jwks: dict[str, Any] = {"keys": []}
        self._loaded_at = 0.0
        self._refreshed_at = -math.inf  # the last reload refresh() asked for
        self._lock = threading.Lock()

    def _keyset(self) -> KeySet:
        keys = self._keys
        if keys is not None and time.monotonic() - self._loaded_at < self._refresh:
            return keys
        with self._lock:
            try:
                fresh = self._source.load()
            except KeyEncryptionError:
                raise  # a configuration fault, never papered over with an old key
            except Exception as exc:  # Redis away: keep signing with what we have
                if self._keys is None:
                    raise InternalErrorException("Signing key is not available.") from exc
                self._loaded_at = time.monotonic()
                return self._keys
            if self._keys is None or _kids(fresh) != _kids(self._keys):
                self._jwks = {"keys": [k.public_jwk() for k in fresh.published]}
            self._keys = fresh
            self._loaded_at = time.monotonic()
            return fresh

    def current(self) -> SigningKey:
        return self._keyset().current

    def published(self) -> tuple[SigningKey, ...]:
        """Every key a token still valid may carry: what ``broker.tokens.verify`` accepts."""
        return self._keyset().published

    def refresh(self, min_interval: float = 1.0) -> tuple[SigningKey, ...]:
        """Reload now and return the published keys, for a token whose kid this process does
        not know (another process may just have rotated it in); at most once per
        ``min_interval`` seconds per process, since such tokens arrive on unsigned requests
        and must not each cost a read of the key source."""
        with self._lock:
            now = time.monotonic()
            if now - self._refreshed_at >= min_interval:
                self._refreshed_at = now
                self._loaded_at = -math.inf  # due: published() reloads
        return self.published()

    def jwks(self) -> dict[str, Any]:
        self._keyset()
        return self._jwks


def _kids(keys: KeySet) -> tuple[str, tuple[str, ...]]:
    return keys.current.kid, tuple(k.kid for k in keys.published)
