"""The identity store on Redis: implements ``broker.identity.ports.IdentityStore``.

Every change touching more than one key of a pool is one Lua script (``scripts.py``).
Creating and deleting a pool also touch the broker-wide pool index, which lives in another
hash slot; those two steps are ordered so that a crash between them leaves only an index
entry without a pool, which listings skip and the consistency checker reports.
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from broker.identity.models import Identity, IdentityPool, Page, PoolConfig
from broker.identity.ports import LinkOutcome
from broker.store import keys, scripts
from broker.store.client import RedisConnector


class RedisStore:
    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector
        self._scripts: dict[str, Any] = {}
        self._scripts_client: redis.Redis | None = None

    @property
    def redis(self) -> redis.Redis:
        return self._connector.client()

    def _script(self, source: str) -> Any:
        client = self.redis
        if client is not self._scripts_client:
            self._scripts = {}
            self._scripts_client = client
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        return script

    # --- pools ---------------------------------------------------------------------------
    def reserve_pool_slot(self, pool_id: str, max_pools: int) -> bool:
        seq = self._script(scripts.RESERVE_POOL)(
            keys=[keys.POOL_INDEX, keys.POOL_SEQUENCE], args=[pool_id, max_pools]
        )
        return int(seq) > 0

    def put_new_pool(self, pool: IdentityPool) -> None:
        self.redis.set(keys.PoolKeys.of(pool.id).pool, _encode_pool(pool), nx=True)

    def get_pool(self, pool_id: str) -> IdentityPool | None:
        raw = self.redis.get(keys.PoolKeys.of(pool_id).pool)
        return None if raw is None else _decode_pool(pool_id, str(raw))

    def replace_pool_config(self, pool_id: str, config: PoolConfig) -> IdentityPool | None:
        current = self.get_pool(pool_id)
        if current is None:
            return None
        updated = IdentityPool(id=pool_id, config=config, created=current.created)
        written = self.redis.set(keys.PoolKeys.of(pool_id).pool, _encode_pool(updated), xx=True)
        return updated if written else None

    def delete_pool(self, pool_id: str) -> bool:
        deleted = self._script(scripts.DELETE_POOL)(keys=keys.PoolKeys.of(pool_id).all())
        self.redis.zrem(keys.POOL_INDEX, pool_id)
        return bool(deleted)

    def list_pools(self, after: int | None, limit: int) -> Page:
        low = f"({after}" if after is not None else "-inf"
        rows = cast(
            list[tuple[str, float]],
            self.redis.zrangebyscore(
                keys.POOL_INDEX, low, "+inf", start=0, num=limit, withscores=True
            ),
        )
        pipe = self.redis.pipeline(transaction=False)
        for pool_id, _ in rows:
            pipe.get(keys.PoolKeys.of(pool_id).pool)
        records = pipe.execute() if rows else []
        pools = [
            _decode_pool(pool_id, raw)
            for (pool_id, _), raw in zip(rows, records, strict=True)
            if raw is not None
        ]
        more = len(rows) == limit and self.redis.zcount(
            keys.POOL_INDEX, f"({int(rows[-1][1])}", "+inf"
        )
        return Page(items=pools, after=int(rows[-1][1]) if more else None)

    # --- identities and logins -------------------------------------------------------------
    def resolve_login(
        self, pool_id: str, login: str, new_identity_id: str, now: float
    ) -> tuple[LinkOutcome, Identity | None]:
        k = keys.PoolKeys.of(pool_id)
        answer = self._script(scripts.RESOLVE_LOGIN)(
            keys=[k.pool, k.logins, k.identities, k.order, k.sequence],
            args=[login, new_identity_id, repr(now)],
        )
        return _outcome(pool_id, answer)

    def link_login(
        self, pool_id: str, identity_id: str, login: str, now: float
    ) -> tuple[LinkOutcome, Identity | None]:
        k = keys.PoolKeys.of(pool_id)
        answer = self._script(scripts.LINK_LOGIN)(
            keys=[k.pool, k.logins, k.identities], args=[login, identity_id, repr(now)]
        )
        return _outcome(pool_id, answer)

    # --- health ----------------------------------------------------------------------------
    def ping(self) -> bool:
        return bool(self.redis.ping())


def _outcome(pool_id: str, answer: list[str]) -> tuple[LinkOutcome, Identity | None]:
    outcome = LinkOutcome(answer[0])
    if len(answer) < 3:
        return outcome, None
    return outcome, decode_identity(pool_id, answer[1], answer[2])


def decode_identity(pool_id: str, identity_id: str, raw: str) -> Identity:
    record = json.loads(raw)
    logins = record.get("l") or []  # Lua's cjson writes an empty list as {}
    return Identity(
        id=identity_id,
        pool_id=pool_id,
        created=float(record["c"]),
        modified=float(record["m"]),
        disabled=record.get("d") == 1,
        logins=tuple(logins),
    )


def _encode_pool(pool: IdentityPool) -> str:
    c = pool.config
    return json.dumps(
        {
            "created": pool.created,
            "name": c.name,
            "allow_unauthenticated": c.allow_unauthenticated,
            "allow_classic_flow": c.allow_classic_flow,
            "supported_login_providers": dict(c.supported_login_providers),
            "developer_provider_name": c.developer_provider_name,
            "open_id_connect_provider_arns": list(c.open_id_connect_provider_arns),
            "cognito_identity_providers": [dict(p) for p in c.cognito_identity_providers],
            "saml_provider_arns": list(c.saml_provider_arns),
            "tags": dict(c.tags),
        },
        separators=(",", ":"),
    )


def _decode_pool(pool_id: str, raw: str) -> IdentityPool:
    r = json.loads(raw)
    config = PoolConfig(
        name=r["name"],
        allow_unauthenticated=r["allow_unauthenticated"],
        allow_classic_flow=r["allow_classic_flow"],
        supported_login_providers=r["supported_login_providers"],
        developer_provider_name=r["developer_provider_name"],
        open_id_connect_provider_arns=tuple(r["open_id_connect_provider_arns"]),
        cognito_identity_providers=tuple(r["cognito_identity_providers"]),
        saml_provider_arns=tuple(r["saml_provider_arns"]),
        tags=r["tags"],
    )
    return IdentityPool(id=pool_id, config=config, created=float(r["created"]))
