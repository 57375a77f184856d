"""The pool cap (BROKER_MAX_POOLS) answers LimitExceededException, in-process on its own Redis."""

from __future__ import annotations

import json
from typing import Any

from support.processes import RedisServer
from support.signing import signed_headers

from broker.app.factory import create_app
from config.settings import Settings


def call(client: Any, operation: str, body: dict[str, Any], key: str, secret: str) -> Any:
    raw = json.dumps(body).encode()
    headers = signed_headers(
        "http://localhost/", raw, operation=operation, key_id=key, secret=secret
    )
    return client.post("/", data=raw, headers=headers)


def test_creating_past_the_cap_is_limit_exceeded_and_deleting_frees_a_slot() -> None:
    key, secret = "AKIDLIMIT", "limit-test-secret-0123456789"
    with RedisServer() as redis_server:
        settings = Settings.from_env(
            {
                "REDIS_URL": redis_server.url,
                "BROKER_CREDENTIALS": f"{key}:{secret}",
                "BROKER_MAX_POOLS": "2",
            }
        )
        client = create_app(settings).test_client()
        body = {"IdentityPoolName": "p", "AllowUnauthenticatedIdentities": False}
        made = [call(client, "CreateIdentityPool", body, key, secret) for _ in range(2)]
        assert [r.status_code for r in made] == [200, 200]

        refused = call(client, "CreateIdentityPool", body, key, secret)
        assert refused.status_code == 400
        error = json.loads(refused.data)
        assert error["__type"] == "LimitExceededException"
        assert "limit of 2 identity pools" in error["message"]
        assert redis_server.client().zcard("ib:{pools}:index") == 2

        first = json.loads(made[0].data)["IdentityPoolId"]
        deleted = call(client, "DeleteIdentityPool", {"IdentityPoolId": first}, key, secret)
        assert deleted.status_code == 200
        assert json.loads(deleted.data) == {}
        assert call(client, "CreateIdentityPool", body, key, secret).status_code == 200
