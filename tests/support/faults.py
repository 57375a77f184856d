"""Load and verification for the fault tests (docs/reliability.md).

``NewIdentityLoad`` sends GetOpenIdTokenForDeveloperIdentity for never-seen users from a few
threads and records every outcome; ``verify_identities`` then proves, through the API and
straight from Redis, that every identity a client was told about (HTTP 200) is still there
and maps back from its login, that no user has two identities, and that the consistency
checker finds nothing. ``record_figures`` prints a test's figures and, when
``BROKER_RELIABILITY_FIGURES`` names a file, appends them to it as one JSON line.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Self

import redis
import requests

from broker.store import keys
from broker.store.checker import check_store
from support.processes import BrokerServer
from support.signing import post

TOKEN_OPERATION = "GetOpenIdTokenForDeveloperIdentity"
FIGURES_ENV = "BROKER_RELIABILITY_FIGURES"
NO_ANSWER = 0  # Attempt.status when the client got no HTTP answer at all


def call(server: BrokerServer, operation: str, body: dict[str, Any]) -> requests.Response:
    """One SigV4-signed AWS JSON request with the server's first key pair."""
    return post(
        server.url,
        json.dumps(body).encode(),
        operation=operation,
        key_id=server.access_key_id,
        secret=server.secret_access_key,
    )


def create_pool(server: BrokerServer, provider: str) -> str:
    response = call(
        server,
        "CreateIdentityPool",
        {
            "IdentityPoolName": f"faults_{uuid.uuid4().hex}",
            "AllowUnauthenticatedIdentities": False,
            "DeveloperProviderName": provider,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["IdentityPoolId"])


@dataclass(frozen=True)
class Attempt:
    user: str
    sent: float  # time.monotonic() when sent
    seconds: float
    status: int  # NO_ANSWER when the connection failed
    identity_id: str | None
    error: str  # the __type of an error answer, or the exception class of no answer


def token_attempt(server: BrokerServer, pool_id: str, provider: str, user: str) -> Attempt:
    """One token request for ``user``, never retried here: a 200 is an acknowledgement."""
    body = {"IdentityPoolId": pool_id, "Logins": {provider: user}}
    sent = time.monotonic()
    try:
        response = call(server, TOKEN_OPERATION, body)
    except requests.RequestException as exc:
        return Attempt(user, sent, time.monotonic() - sent, NO_ANSWER, None, type(exc).__name__)
    seconds = time.monotonic() - sent
    if response.status_code == 200:
        return Attempt(user, sent, seconds, 200, str(response.json()["IdentityId"]), "")
    try:
        kind = str(response.json()["__type"])
    except (ValueError, KeyError):
        kind = f"not AWS JSON: {response.text[:80]!r}"
    return Attempt(user, sent, seconds, response.status_code, None, kind)


class NewIdentityLoad:
    """``threads`` threads, each asking for tokens of users never seen before, until
    ``stop()``, ``max_requests`` per thread or ``max_seconds``, whichever comes first."""

    def __init__(
        self,
        server: BrokerServer,
        pool_id: str,
        provider: str,
        *,
        threads: int = 4,
        max_requests: int = 20_000,
        max_seconds: float = 120.0,
    ) -> None:
        self.server = server
        self.pool_id = pool_id
        self.provider = provider
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.attempts: list[Attempt] = []
        self._acknowledged = 0  # attempts answered 200, kept as they come in
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"load-{n}") for n in range(threads)
        ]
        self._run_id = uuid.uuid4().hex[:8]

    def _run(self, n: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        for i in range(self.max_requests):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            user = f"user-{self._run_id}-{n}-{i}"
            attempt = token_attempt(self.server, self.pool_id, self.provider, user)
            with self._lock:
                self.attempts.append(attempt)
                if attempt.status == 200:
                    self._acknowledged += 1

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return self._acknowledged

    def wait_for(self, acknowledged: int, timeout: float) -> None:
        """Block until this many requests in all have been answered 200."""
        deadline = time.monotonic() + timeout
        while self.acknowledged < acknowledged:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {self.acknowledged} of {acknowledged} acknowledged after {timeout} s; "
                    f"outcomes so far: {self.outcomes()}"
                )
            if not any(t.is_alive() for t in self._threads):
                raise AssertionError(f"the load ended early: {self.outcomes()}")
            time.sleep(0.02)

    def outcomes(self) -> Counter[str]:
        with self._lock:
            return Counter(f"{a.status} {a.error}".strip() for a in self.attempts)

    def start(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads), "a load thread did not stop"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Verification:
    """What ``verify_identities`` found; ``lost`` and ``problems`` must both be empty."""

    sent: int = 0
    acknowledged: int = 0
    retried: int = 0
    identities_checked: int = 0
    identities_in_pool: int = 0
    lost: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, int]:
        return {
            "requests_sent": self.sent,
            "acknowledged": self.acknowledged,
            "retried_after_error": self.retried,
            "identities_checked": self.identities_checked,
            "identities_in_pool": self.identities_in_pool,
            "identities_lost": len(self.lost),
            "problems": len(self.problems),
        }


def verify_identities(
    server: BrokerServer,
    client: redis.Redis,
    pool_id: str,
    provider: str,
    attempts: Iterable[Attempt],
    *,
    threads: int = 4,
) -> Verification:
    """Check every acknowledged identity after the faults, with the service healthy again.

    1. Each user whose request got no 200 asks again, as every AWS SDK does after an error
       (it may or may not have got an identity before the fault): the answer must be 200.
    2. For each user acknowledged (during the load or by that retry): LookupDeveloperIdentity
       by the user id names the same identity and only that user; DescribeIdentity (which
       goes through the identity index) finds it holding the provider; a new token call
       answers the same IdentityId. Any difference counts that identity as lost.
    3. In Redis: every login maps to an identity that lists exactly that login, and no
       identity is left without one (no duplicates, no orphans); ListIdentities agrees.
    4. The consistency checker finds nothing in the pool.
    """
    attempts = list(attempts)
    result = Verification(sent=len(attempts))
    acknowledged: dict[str, str] = {}
    for attempt in attempts:
        if attempt.status == 200 and attempt.identity_id is not None:
            if attempt.user in acknowledged:
                result.problems.append(f"{attempt.user} was asked for twice")
            acknowledged[attempt.user] = attempt.identity_id
    result.acknowledged = len(acknowledged)
    if len(set(acknowledged.values())) != len(acknowledged):
        result.problems.append("two acknowledged users share one identity")

    unanswered = sorted({a.user for a in attempts} - set(acknowledged))
    result.retried = len(unanswered)
    to_check = dict(acknowledged)
    with ThreadPoolExecutor(threads) as executor:
        for retry in executor.map(
            lambda user: token_attempt(server, pool_id, provider, user), unanswered
        ):
            if retry.status == 200 and retry.identity_id is not None:
                to_check[retry.user] = retry.identity_id
            else:
                result.problems.append(f"retry answered {retry.status} {retry.error}")
        checked = list(
            executor.map(
                lambda item: _still_there(server, pool_id, provider, *item),
                sorted(to_check.items()),
            )
        )
    result.identities_checked = len(checked)
    result.lost = [reason for reason in checked if reason]

    k = keys.PoolKeys.of(pool_id)
    logins = {str(a): str(b) for a, b in client.hgetall(k.logins).items()}
    records = {str(a): json.loads(b) for a, b in client.hgetall(k.identities).items()}
    result.identities_in_pool = len(records)
    for login, owner in logins.items():
        held = records.get(owner, {}).get("l") or []
        if held != [login]:
            result.problems.append(f"login -> {owner}, which holds {len(held)} logins")
    orphans = set(records) - set(logins.values())
    if orphans:
        result.problems.append(f"{len(orphans)} identities no login maps to (duplicates)")
    expected_logins = {f"{provider}:{user}" for user in {a.user for a in attempts}}
    if set(logins) != expected_logins:
        result.problems.append(
            f"logins in Redis: {len(logins)}, users asked for: {len(expected_logins)}"
        )
    listed = _count_listed(server, pool_id)
    if listed != len(records):
        result.problems.append(f"ListIdentities shows {listed}, Redis holds {len(records)}")
    report = check_store(client, [pool_id])
    result.problems.extend(f"checker: {problem}" for problem in report.problems)
    return result


def _still_there(
    server: BrokerServer, pool_id: str, provider: str, user: str, identity_id: str
) -> str:
    """'' when the acknowledged identity is intact, else what is wrong (never the user id)."""
    lookup = call(
        server,
        "LookupDeveloperIdentity",
        {"IdentityPoolId": pool_id, "DeveloperUserIdentifier": user, "MaxResults": 10},
    )
    if lookup.status_code != 200:
        return f"{identity_id}: lookup answered {lookup.status_code} {lookup.text[:120]}"
    found = lookup.json()
    if found.get("IdentityId") != identity_id:
        return f"{identity_id}: the login now maps to {found.get('IdentityId')}"
    if found.get("DeveloperUserIdentifierList") != [user]:
        return f"{identity_id}: holds {len(found.get('DeveloperUserIdentifierList', []))} users"
    described = call(server, "DescribeIdentity", {"IdentityId": identity_id})
    if described.status_code != 200:
        return f"{identity_id}: DescribeIdentity answered {described.status_code}"
    logins = described.json().get("Logins")
    if logins != [provider]:
        return f"{identity_id}: DescribeIdentity shows logins {logins}"
    again = token_attempt(server, pool_id, provider, user)
    if again.identity_id != identity_id:
        return f"{identity_id}: a new token call answered {again.status} {again.identity_id}"
    return ""


def _count_listed(server: BrokerServer, pool_id: str) -> int:
    count, body = 0, {"IdentityPoolId": pool_id, "MaxResults": 60}
    for _ in range(100_000):  # bounded: 6 million identities
        page = call(server, "ListIdentities", body)
        assert page.status_code == 200, page.text
        answer = page.json()
        count += len(answer["Identities"])
        token = answer.get("NextToken")
        if not token:
            return count
        body = {**body, "NextToken": token}
    raise AssertionError("ListIdentities never ended")


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Print one test's figures; append them to $BROKER_RELIABILITY_FIGURES when it is set."""
    line = json.dumps({"test": name, **figures}, sort_keys=False)
    print(f"\nreliability figures: {line}")
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
