"""Redis key names.

Every key of one identity pool carries the pool id as its hash tag (``{<pool-id>}``), so
all of a pool's keys live in one Redis Cluster slot and a Lua script may touch them
together. Only the pool index and the broker-wide signing keys are outside any pool; each of
those groups has its own hash tag.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "ib"

#: Sorted set: pool id -> creation sequence number (the ListIdentityPools order).
POOL_INDEX = f"{PREFIX}:{{pools}}:index"
POOL_SEQUENCE = f"{PREFIX}:{{pools}}:seq"
#: Hash: kid -> JSON record of one signing key; string: the kid that signs now.
SIGNING_KEYS = f"{PREFIX}:{{signing}}:keys"
SIGNING_CURRENT = f"{PREFIX}:{{signing}}:current"
#: String: the secret that makes NextToken values tamper-evident.
PAGING_SECRET = f"{PREFIX}:paging-secret"


@dataclass(frozen=True)
class PoolKeys:
    """The keys of one pool, all in the pool's hash slot."""

    pool: str  # string: JSON of the pool's configuration
    logins: str  # hash: "<provider>:<user id>" -> identity id
    identities: str  # hash: identity id -> JSON record
    order: str  # sorted set: identity id -> creation sequence (ListIdentities order)
    sequence: str  # counter behind ``order``

    @classmethod
    def of(cls, pool_id: str) -> PoolKeys:
        tag = f"{PREFIX}:{{{pool_id}}}"
        return cls(
            pool=f"{tag}:pool",
            logins=f"{tag}:logins",
            identities=f"{tag}:identities",
            order=f"{tag}:order",
            sequence=f"{tag}:seq",
        )

    def all(self) -> list[str]:
        return [self.pool, self.logins, self.identities, self.order, self.sequence]
