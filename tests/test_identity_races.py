"""Merges, unlinks and token calls racing on the same few users, from many threads over the
live broker's three gunicorn workers: every answer is a success or a modeled client error,
and afterwards the consistency checker finds nothing and the data reads back coherently."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

from botocore.exceptions import ClientError
from support.clients import cognito_client
from support.identities import (
    DEVELOPER_PROVIDER,
    assert_consistent,
    identity_of,
    list_all,
    unsigned_client,
)
from support.processes import BrokerServer, RedisServer

USERS = [f"racer-{n}" for n in range(6)]
THREADS = 12
CALLS_PER_THREAD = 30
#: The client errors a race may legitimately produce (contract sections 5 and 7).
EXPECTED_ERRORS = {
    "ResourceNotFoundException",
    "ResourceConflictException",
    "NotAuthorizedException",
    "DeveloperUserAlreadyRegisteredException",
}


def client_for(server: BrokerServer) -> Any:
    return cognito_client(server, read_timeout=30)


def race(server: BrokerServer, pool_id: str, seed: int, answers: Counter[str]) -> None:
    rng = random.Random(seed)
    cognito = client_for(server)
    public = unsigned_client(server.url)
    tokens: dict[str, tuple[str, str]] = {}  # user -> (identity id, token) last issued
    try:
        for _ in range(CALLS_PER_THREAD):
            user, other = rng.sample(USERS, 2)
            action = rng.choice(["token", "token", "merge", "merge", "unlink", "refresh", "link"])
            try:
                if action == "token":
                    response = cognito.get_open_id_token_for_developer_identity(
                        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: user}
                    )
                    tokens[user] = (response["IdentityId"], response["Token"])
                elif action == "merge":
                    cognito.merge_developer_identities(
                        SourceUserIdentifier=user,
                        DestinationUserIdentifier=other,
                        DeveloperProviderName=DEVELOPER_PROVIDER,
                        IdentityPoolId=pool_id,
                    )
                elif action == "unlink":
                    found = cognito.lookup_developer_identity(
                        IdentityPoolId=pool_id, DeveloperUserIdentifier=user
                    )
                    cognito.unlink_developer_identity(
                        IdentityId=found["IdentityId"],
                        IdentityPoolId=pool_id,
                        DeveloperProviderName=DEVELOPER_PROVIDER,
                        DeveloperUserIdentifier=user,
                    )
                elif action == "refresh" and user in tokens:
                    identity, token = tokens[user]
                    public.get_open_id_token(
                        IdentityId=identity, Logins={"cognito-identity.amazonaws.com": token}
                    )
                elif action == "link" and other in tokens:
                    cognito.get_open_id_token_for_developer_identity(
                        IdentityPoolId=pool_id,
                        IdentityId=tokens[other][0],
                        Logins={DEVELOPER_PROVIDER: user},
                    )
                answers[f"{action} ok"] += 1
            except ClientError as exc:
                answers[f"{action} {exc.response['Error']['Code']}"] += 1
    except Exception as exc:  # anything but a ClientError fails the test below
        answers[f"crash {type(exc).__name__}: {exc}"] += 1
    finally:
        cognito.close()
        public.close()


def test_racing_merges_unlinks_and_tokens_leave_the_store_consistent(
    cognito: Any, pool: dict[str, Any], broker_server: BrokerServer, redis_server: RedisServer
) -> None:
    pool_id = pool["IdentityPoolId"]
    for user in USERS:
        identity_of(cognito, pool_id, user)
    answers: Counter[str] = Counter()
    threads = [
        threading.Thread(target=race, args=(broker_server, pool_id, seed, answers))
        for seed in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not any(thread.is_alive() for thread in threads)
    unexpected = {
        answer: count
        for answer, count in answers.items()
        if not answer.endswith(" ok") and answer.split(" ", 1)[1] not in EXPECTED_ERRORS
    }
    assert unexpected == {}, answers
    assert answers["merge ok"] > 0 and answers["unlink ok"] > 0 and answers["token ok"] > 0
    assert len(broker_server.worker_pids()) == 3
    with redis_server.client() as client:
        assert_consistent(client, pool_id)

    # every linked user reads back from both sides, and disabled identities hold nothing
    listed = list_all(cognito, pool_id)
    holders: dict[str, str] = {}
    for item in listed:
        users = cognito.lookup_developer_identity(
            IdentityPoolId=pool_id, IdentityId=item["IdentityId"]
        )["DeveloperUserIdentifierList"]
        for user in users:
            assert user not in holders
            holders[user] = item["IdentityId"]
        assert ("Logins" in item) == bool(users)
    for user, identity in holders.items():
        assert identity_of(cognito, pool_id, user) == identity
    enabled = {i["IdentityId"] for i in list_all(cognito, pool_id, HideDisabled=True)}
    assert set(holders.values()) <= enabled
