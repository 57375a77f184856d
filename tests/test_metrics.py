"""/metrics sums every gunicorn worker's counts (Prometheus multiprocess mode)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families
from support.clients import cognito_client, create_developer_pool
from support.processes import BrokerServer, RedisServer

PROVIDER = "login.metrics"
OP = "GetOpenIdTokenForDeveloperIdentity"


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{url}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.slow
def test_counts_add_up_across_workers(
    redis_server: RedisServer, broker_credentials: dict[str, str], tmp_path: Path
) -> None:
    log_path = tmp_path / "broker.log"
    with BrokerServer(
        redis_url=redis_server.url, credentials=broker_credentials, workers=3, log_path=log_path
    ) as server:
        setup: Any = cognito_client(server)
        pool_id = create_developer_pool(setup, "metrics", PROVIDER)

        def work(n: int) -> None:
            client: Any = cognito_client(server)
            for i in range(10):  # users n-0..n-4, each asked twice
                client.get_open_id_token_for_developer_identity(
                    IdentityPoolId=pool_id, Logins={PROVIDER: f"user-{n}-{i % 5}"}
                )
            with pytest.raises(ClientError):
                client.get_open_id_token_for_developer_identity(
                    IdentityPoolId=pool_id, Logins={"login.nobody": "x"}
                )

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        reads = [samples(server.url) for _ in range(6)]  # answered by several workers

    pids = {
        entry["pid"]
        for line in log_path.read_text().splitlines()
        if line.startswith("{")
        and (entry := json.loads(line))["logger"] == "gunicorn.access"
        and entry["path"] == "/"
    }
    assert len(pids) >= 2, "the requests should have been spread over several workers"
    for found in reads:
        assert (
            value(found, "broker_requests_total", door="aws", operation=OP, outcome="success") == 60
        )
        assert (
            value(
                found,
                "broker_requests_total",
                door="aws",
                operation=OP,
                outcome="NotAuthorizedException",
            )
            == 6
        )
        assert value(found, "broker_tokens_issued_total", door="aws") == 60
        assert value(found, "broker_identities_created_total", kind="developer") == 30
        assert value(found, "broker_request_duration_seconds_count", door="aws", operation=OP) == 66
