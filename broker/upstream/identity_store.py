"""Redis primitives of upstream mode's identity cache (the rules are in
``broker.upstream.tokens``).

Every key carries the upstream pool's hash tag, as ``keys.PoolKeys`` and
``token_cache`` do, so a user's entry, its lock and its failure record share one Redis
Cluster slot and one ``MGET`` reads them together.

- login ``ib:{<pool>}:upstream:login:<digest>``: JSON ``{"id": identity id, "seen": epoch}``,
  the IdentityId upstream Cognito gave for ``provider:user`` and when this broker first saw
  it; the digest (SHA-256 of provider and user id) keeps user ids out of key names. It
  expires ``LOGIN_TTL_SECONDS`` after the last token fetched for the user.
- lock ``<login>:lock``: ``SET NX PX``, held by the one request calling upstream for the user
  (taken and released through ``RedisTokenCache``, the backend cache's lock primitives);
- failure ``<login>:failed``: JSON ``{"holder", "error", "message"}`` left for a moment by a
  holder whose upstream call failed, so the requests that waited on it share its answer
  instead of each calling upstream in turn.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Final

from broker.store.connection import RedisConnector
from broker.store.faults import translates_faults
from broker.store.keys import pool_prefix
from broker.store.token_cache import lock_key

LOGIN_TTL_SECONDS: Final = 90 * 86400
FAILURE_TTL_MS: Final = 2_000


def login_key(pool_id: str, provider: str, user_id: str) -> str:
    material = json.dumps([provider, user_id], separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{pool_prefix(pool_id)}:upstream:login:{digest}"


def failure_key(login: str) -> str:
    return f"{login}:failed"


@dataclass(frozen=True)
class KnownIdentity:
    identity_id: str
    first_seen: float


@dataclass(frozen=True)
class Failure:
    holder: str
    error: str  # the name of the broker error class the holder raised
    message: str


@translates_faults
class RedisUpstreamIdentities:
    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector

    def get(self, login: str) -> KnownIdentity | None:
        return _decode_identity(self._connector.client().get(login))

    def remember(self, login: str, identity_id: str, first_seen: float) -> None:
        record = json.dumps({"id": identity_id, "seen": first_seen})
        self._connector.client().set(login, record, ex=LOGIN_TTL_SECONDS)

    def forget(self, login: str, identity_id: str) -> None:
        """Drop the entry if it still names ``identity_id`` (upstream no longer agrees)."""
        client = self._connector.client()
        known = _decode_identity(client.get(login))
        if known is not None and known.identity_id == identity_id:
            client.delete(login)

    def holder_and_failure(self, login: str) -> tuple[str | None, Failure | None]:
        """Who holds the user's lock now, and the last failure record, in one round trip."""
        holder, raw = self._connector.client().mget([lock_key(login), failure_key(login)])
        return (None if holder is None else str(holder)), _decode_failure(raw)

    def record_failure(self, login: str, failure: Failure) -> None:
        record = json.dumps(
            {"holder": failure.holder, "error": failure.error, "message": failure.message}
        )
        self._connector.client().set(failure_key(login), record, px=FAILURE_TTL_MS)


def _decode_identity(raw: object) -> KnownIdentity | None:
    if raw is None:
        return None
    try:
        record = json.loads(str(raw))
        return KnownIdentity(str(record["id"]), float(record["seen"]))
    except (ValueError, TypeError, KeyError):
        return None  # unreadable: a miss, overwritten by the next fetch


def _decode_failure(raw: object) -> Failure | None:
    if raw is None:
        return None
    try:
        record = json.loads(str(raw))
        return Failure(str(record["holder"]), str(record["error"]), str(record["message"]))
    except (ValueError, TypeError, KeyError):
        return None
