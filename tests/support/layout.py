"""The store's Redis layout as tests reach into it (to inject faults or look at what was
written), through the store's own key functions, so a test names no key by hand."""

from __future__ import annotations

from typing import Any

from broker.store import keys

POOL_INDEX = keys.POOL_INDEX
POOL_NAMES = keys.POOL_NAMES
#: Every identity index bucket, as an ACL key pattern.
INDEX_PATTERN = f"{keys.PREFIX}:{{identity-index-*}}:pools"


def index_key(identity_id: str) -> str:
    return keys.identity_index(identity_id)


def indexed_pool(client: Any, identity_id: str) -> str | None:
    """The pool the identity index names for ``identity_id``."""
    value = client.hget(keys.identity_index(identity_id), identity_id)
    return None if value is None else str(value)


def index_entries(client: Any) -> dict[str, str]:
    """The whole identity index: identity id -> pool id (every bucket)."""
    entries: dict[str, str] = {}
    for bucket in keys.all_index_buckets():
        entries.update({str(a): str(b) for a, b in client.hscan_iter(bucket, count=1000)})
    return entries
