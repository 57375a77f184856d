"""Redis key names.

Every key of one identity pool carries the pool id as its hash tag (``{<pool-id>}``), so
all of a pool's keys live in one Redis Cluster slot and a Lua script may touch them
together. Outside any pool are the pool index, the identity index and the broker-wide
signing keys; each group has its own hash tag, and no key is hot for every pool at once.

The identity index exists because DescribeIdentity, DeleteIdentities, GetOpenIdToken and
UnlinkIdentity name an identity without its pool (contract section 7). It is sharded over
``IDENTITY_INDEX_BUCKETS`` hashes, each in its own slot (a cluster spreads them over every
primary), the bucket chosen by a CRC-32 of the identity id. An entry is written right after
the Lua script that creates an identity and cleared right after the one that deletes it;
being in another hash slot it cannot join those scripts, so readers treat an entry whose
identity is gone as absent, and the consistency checker reports any disagreement.

Stores written before the sharding hold the whole index in one hash,
``LEGACY_IDENTITY_INDEX``; ``broker.store.migration`` moves it into the buckets (at start,
or ``broker migrate``), and readers look there too while it exists.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

PREFIX = "ib"

#: Sorted set: pool id -> creation sequence number (the ListIdentityPools order).
POOL_INDEX = f"{PREFIX}:{{pools}}:index"
POOL_SEQUENCE = f"{PREFIX}:{{pools}}:seq"
#: Hash: pool id -> pool name, written once the pool record exists (what a listing shows).
POOL_NAMES = f"{PREFIX}:{{pools}}:names"
#: How many hashes the identity index is sharded over. Fixed for the life of a store: an
#: identity's bucket must never move.
IDENTITY_INDEX_BUCKETS: Final = 256
#: The identity index before sharding: one hash of every identity (see above).
LEGACY_IDENTITY_INDEX = f"{PREFIX}:{{identities}}:pool"
#: Hash: kid -> JSON record of one signing key; string: the kid that signs now.
SIGNING_KEYS = f"{PREFIX}:{{signing}}:keys"
SIGNING_CURRENT = f"{PREFIX}:{{signing}}:current"
#: String: the secret that makes NextToken values tamper-evident.
PAGING_SECRET = f"{PREFIX}:paging-secret"


def identity_index(identity_id: str) -> str:
    """The identity index bucket (a hash: identity id -> pool id) holding ``identity_id``."""
    bucket = zlib.crc32(identity_id.encode("utf-8", "surrogatepass")) % IDENTITY_INDEX_BUCKETS
    return index_bucket(bucket)


def index_bucket(bucket: int) -> str:
    return f"{PREFIX}:{{identity-index-{bucket:04d}}}:pools"


def all_index_buckets() -> list[str]:
    return [index_bucket(b) for b in range(IDENTITY_INDEX_BUCKETS)]


def pool_prefix(pool_id: str) -> str:
    """The start of every key of one pool: the prefix and the pool's hash tag. Modules that
    keep their own data per pool (the token cache, upstream mode) build on it, so that all
    of a pool's keys share one slot and one ``<prefix>*`` pattern finds them."""
    return f"{PREFIX}:{{{pool_id}}}"


def same_pool(pool_id: str, key: str) -> bool:
    """``key`` is one of the pool's keys (and so in its hash slot)."""
    return key.startswith(pool_prefix(pool_id) + ":")


@dataclass(frozen=True)
class PoolKeys:
    """The keys of one pool, all in the pool's hash slot."""

    pool: str  # string: JSON of the pool's configuration
    logins: str  # hash: "<provider>:<user id>" -> identity id
    identities: str  # hash: identity id -> JSON record
    order: str  # sorted set: identity id -> creation sequence (ListIdentities order)
    sequence: str  # counter behind ``order``
    roles: str  # string: JSON of SetIdentityPoolRoles' Roles and RoleMappings
    principal_tags: str  # hash: identity provider name -> JSON of its principal tag map
    fence: str  # counter: written to confirm (WAIT) a change that found nothing to do

    @classmethod
    def of(cls, pool_id: str) -> PoolKeys:
        tag = pool_prefix(pool_id)
        return cls(
            pool=f"{tag}:pool",
            logins=f"{tag}:logins",
            identities=f"{tag}:identities",
            order=f"{tag}:order",
            sequence=f"{tag}:seq",
            roles=f"{tag}:roles",
            principal_tags=f"{tag}:principal-tags",
            fence=f"{tag}:fence",
        )

    @property
    def tombstones(self) -> tuple[str, str, str]:
        """Where DELETE_POOL moves the logins, identities and order of a deleted pool, in the
        pool's hash slot, for ``PoolStore`` to clean in bounded steps."""
        tag = self.pool.removesuffix(":pool")
        return (f"{tag}:deleted:logins", f"{tag}:deleted:identities", f"{tag}:deleted:order")

    def deletion(self) -> list[str]:
        """The keys ``scripts.DELETE_POOL`` takes, in its order: the pool record, the small
        keys it deletes, the keys that grow with the pool, and their tombstones. These are
        every key of the pool's data; the backend door's token cache shares the hash tag
        (``broker.store.token_cache``) and is cleaned separately."""
        return [
            self.pool,
            self.sequence,
            self.roles,
            self.principal_tags,
            self.fence,
            self.logins,
            self.identities,
            self.order,
            *self.tombstones,
        ]
