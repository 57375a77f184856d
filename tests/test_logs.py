"""A full run's logs hold no secret, no Authorization header, no token and no login value."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support.clients import cognito_client, create_developer_pool
from support.processes import BrokerServer, RedisServer
from support.signing import post

PROVIDER = "login.logcheck"


@pytest.mark.slow
def test_logs_of_a_full_run_leak_nothing(
    redis_server: RedisServer, broker_credentials: dict[str, str], tmp_path: Path
) -> None:
    log_path = tmp_path / "broker.log"
    user = f"user-{uuid.uuid4().hex}"
    secret_login = f"login-secret-{uuid.uuid4().hex}"
    tokens: list[str] = []
    server = BrokerServer(
        redis_url=redis_server.url,
        credentials=broker_credentials,
        workers=2,
        log_path=log_path,
        env={"GUNICORN_CMD_ARGS": "--log-level debug"},
    )
    with server:
        client: Any = cognito_client(server)
        pool_id = create_developer_pool(client, "logcheck", PROVIDER)
        for duration in (60, 900):
            tokens.append(
                client.get_open_id_token_for_developer_identity(
                    IdentityPoolId=pool_id, Logins={PROVIDER: user}, TokenDuration=duration
                )["Token"]
            )
        # errors that carry login values and signatures
        with pytest.raises(ClientError):
            client.get_open_id_token_for_developer_identity(
                IdentityPoolId=pool_id, Logins={PROVIDER: "x" * 50001}
            )
        with pytest.raises(ClientError):
            client.get_open_id_token_for_developer_identity(
                IdentityPoolId=pool_id, Logins={"login.other": secret_login}
            )
        bad = post(
            server.url,
            json.dumps({"IdentityPoolId": pool_id, "Logins": {PROVIDER: secret_login}}).encode(),
            operation="GetOpenIdTokenForDeveloperIdentity",
            key_id=server.access_key_id,
            secret="wrong-secret-wrong-secret",
        )
        assert bad.status_code == 400
        client.delete_identity_pool(IdentityPoolId=pool_id)

    log = log_path.read_text()
    entries = [json.loads(line) for line in log.splitlines() if not line.startswith("---")]
    access = [e for e in entries if e["logger"] == "gunicorn.access"]
    assert {e["path"] for e in access} >= {"/", "/readyz"}
    assert all(len(e["request_id"]) == 36 for e in access)  # every request line has its id
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    forbidden = [
        *broker_credentials.values(),
        "AWS4-HMAC-SHA256",
        "Signature=",
        "Authorization",
        user,
        secret_login,
        *tokens,
        *(token.split(".")[2] for token in tokens),
    ]
    for needle in forbidden:
        assert needle not in log
