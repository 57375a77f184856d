"""The rules that guard the upstream, on a real Redis: the shared call quota (GCRA on
Redis's clock), the shared circuit breaker, retries inside the deadline, and how AWS's
answers are classified. The end-to-end behaviour is in tests/test_upstream*.py."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from support.processes import RedisServer

from broker import errors
from broker.backend.schemas import CredentialsRequest
from broker.backend.tokens import IssuedToken
from broker.backend.translators.session import Session
from broker.identity.models import Credentials
from broker.store.connection import RedisConnector
from broker.upstream.credentials import UpstreamCredentials
from broker.upstream.errors import (
    Kind,
    UpstreamFailure,
    UpstreamThrottled,
    UpstreamUnavailable,
    from_aws_error,
    rebuild,
    unreachable,
)
from broker.upstream.guard import Admission, CircuitBreaker, Guard, Quota, backoff_delay
from broker.upstream.guard_store import RedisBreakerState, RedisQuota
from broker.upstream.tokens import token_lifetime
from config.upstream import UpstreamSettings


@pytest.fixture
def connector(redis_server: RedisServer) -> RedisConnector:
    return RedisConnector.from_url(redis_server.url, 1.0)


@pytest.fixture
def pool_id() -> str:
    return f"us-east-1:{uuid.uuid4()}"


def settings(**values: float) -> UpstreamSettings:
    base = {"deadline": 1.0, "connect_timeout": 0.1, "read_timeout": 0.2}
    base.update(values)
    return UpstreamSettings(mode="aws", **base)  # type: ignore[arg-type]


# --- quota -------------------------------------------------------------------------------
def reserve(quota: Quota, max_wait: float) -> tuple[float, float]:
    """When the reserved call may start, as an interval of epoch seconds: Redis read its
    clock somewhere between our two readings, and the wait counts from there."""
    before = time.time()
    wait = quota.reserve(max_wait)
    after = time.time()
    return before + wait - 0.001, after + wait + 0.001


def at(slot: tuple[float, float], first: tuple[float, float], offset: float) -> bool:
    """``slot`` can be ``first`` + ``offset`` (the two intervals overlap)."""
    return slot[0] <= first[1] + offset and first[0] + offset <= slot[1]


def test_the_quota_spaces_calls_one_interval_apart(connector: RedisConnector, pool_id: str) -> None:
    quota = Quota(RedisQuota(connector), pool_id, rate=10)  # one call per 100 ms
    first = reserve(quota, max_wait=5.0)
    for n in range(1, 5):
        assert at(reserve(quota, max_wait=5.0), first, 0.1 * n)


def test_a_slot_beyond_the_wait_is_refused_and_not_booked(
    connector: RedisConnector, pool_id: str
) -> None:
    quota = Quota(RedisQuota(connector), pool_id, rate=2)  # one call per 500 ms
    first = reserve(quota, max_wait=0.1)
    with pytest.raises(UpstreamThrottled, match="2 calls/s"):
        quota.reserve(max_wait=0.1)
    assert at(reserve(quota, max_wait=1.0), first, 0.5)  # the refusal took no slot


def test_the_quota_is_shared_by_every_client_of_the_redis(
    redis_server: RedisServer, pool_id: str
) -> None:
    one = Quota(RedisQuota(RedisConnector.from_url(redis_server.url, 1.0)), pool_id, rate=10)
    other = Quota(RedisQuota(RedisConnector.from_url(redis_server.url, 1.0)), pool_id, rate=10)
    first = reserve(one, 1.0)
    assert at(reserve(other, 1.0), first, 0.1)


# --- circuit breaker ----------------------------------------------------------------------
COOLDOWN = 0.6


def breaker(connector: RedisConnector, pool_id: str, cooldown: float = COOLDOWN) -> CircuitBreaker:
    return CircuitBreaker(
        RedisBreakerState(connector),
        pool_id,
        settings(breaker_failures=2, breaker_cooldown=cooldown),
    )


def test_the_breaker_opens_after_consecutive_failures_and_one_probe_closes_it(
    connector: RedisConnector, pool_id: str
) -> None:
    one, other = breaker(connector, pool_id), breaker(connector, pool_id)  # two workers
    assert one.admit() is Admission.CLEAN
    one.failed()
    assert other.admit() is Admission.RECOVERING
    other.failed()  # the second consecutive failure: open
    for worker in (one, other):
        with pytest.raises(UpstreamUnavailable, match="circuit breaker is open"):
            worker.admit()

    time.sleep(COOLDOWN + 0.05)  # the cooldown passed: half-open, one probe for all workers
    assert one.admit() is Admission.PROBE
    with pytest.raises(UpstreamUnavailable):
        other.admit()
    one.succeeded(Admission.PROBE)
    assert other.admit() is Admission.CLEAN


def test_a_failed_probe_opens_the_breaker_again(connector: RedisConnector, pool_id: str) -> None:
    guard = breaker(connector, pool_id)
    guard.failed()
    guard.failed()
    time.sleep(COOLDOWN + 0.05)
    assert guard.admit() is Admission.PROBE
    guard.failed()
    with pytest.raises(UpstreamUnavailable):
        guard.admit()


def test_a_success_forgets_earlier_failures(connector: RedisConnector, pool_id: str) -> None:
    guard = breaker(connector, pool_id)
    guard.failed()
    guard.succeeded(guard.admit())
    guard.failed()  # one failure again, not two
    assert guard.admit() is Admission.RECOVERING


# --- retries inside the deadline ----------------------------------------------------------
def make_guard(connector: RedisConnector, pool_id: str, **values: float) -> Guard:
    config = settings(**values)
    return Guard(
        CircuitBreaker(RedisBreakerState(connector), pool_id, config),
        Quota(RedisQuota(connector), pool_id, 1000),
        config,
    )


def failing(kind: Kind, log: list[float], then: int | None = None) -> Callable[[], str]:
    def attempt() -> str:
        log.append(time.monotonic())
        if then is not None and len(log) > then:
            return "ok"
        if kind is Kind.THROTTLED:
            raise from_aws_error("TooManyRequestsException", "Rate exceeded", 429)
        if kind is Kind.REFUSED:
            raise from_aws_error("NotAuthorizedException", "no", 400)
        if kind is Kind.MISCONFIGURED:
            raise from_aws_error("UnrecognizedClientException", "who?", 400)
        raise unreachable("EndpointConnectionError")

    return attempt


def test_throttling_is_retried_with_backoff_until_it_passes(
    connector: RedisConnector, pool_id: str
) -> None:
    attempts: list[float] = []
    guard = make_guard(connector, pool_id, breaker_failures=2)
    assert guard.call(failing(Kind.THROTTLED, attempts, then=3), time.monotonic() + 1.0) == "ok"
    assert len(attempts) == 4
    assert breaker(connector, pool_id).admit() is Admission.CLEAN  # throttling is no outage


def test_an_outage_is_retried_within_the_deadline_then_reported(
    connector: RedisConnector, pool_id: str
) -> None:
    attempts: list[float] = []
    guard = make_guard(connector, pool_id, breaker_failures=1000)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="EndpointConnectionError"):
        guard.call(failing(Kind.UNAVAILABLE, attempts), started + 1.0)
    assert len(attempts) >= 3
    assert time.monotonic() - started <= 1.0
    assert attempts[-1] - started <= 1.0 - 0.3 + 0.05  # a retry starts only if it can finish


def test_the_breaker_stops_retries_once_it_opens(connector: RedisConnector, pool_id: str) -> None:
    attempts: list[float] = []
    guard = make_guard(connector, pool_id, breaker_failures=2)
    with pytest.raises(UpstreamUnavailable, match="circuit breaker is open"):
        guard.call(failing(Kind.UNAVAILABLE, attempts), time.monotonic() + 1.0)
    assert len(attempts) == 2


@pytest.mark.parametrize("kind", [Kind.REFUSED, Kind.MISCONFIGURED])
def test_refusals_are_not_retried(connector: RedisConnector, pool_id: str, kind: Kind) -> None:
    attempts: list[float] = []
    guard = make_guard(connector, pool_id)
    with pytest.raises((UpstreamFailure, UpstreamUnavailable)):
        guard.call(failing(kind, attempts), time.monotonic() + 1.0)
    assert len(attempts) == 1


def test_backoff_is_jittered_and_capped() -> None:
    for retry in range(12):
        delays = {backoff_delay(retry) for _ in range(20)}
        assert len(delays) > 1
        assert all(0 <= delay <= min(1.0, 0.05 * 2**retry) for delay in delays)


# --- classification -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "status", "kind", "error"),
    [
        ("TooManyRequestsException", 429, Kind.THROTTLED, UpstreamThrottled),
        ("ThrottlingException", 400, Kind.THROTTLED, UpstreamThrottled),
        ("InternalErrorException", 500, Kind.UNAVAILABLE, UpstreamUnavailable),
        ("SomethingNew", 503, Kind.UNAVAILABLE, UpstreamUnavailable),
        ("NotAuthorizedException", 400, Kind.REFUSED, errors.NotAuthorizedException),
        ("ResourceNotFoundException", 400, Kind.REFUSED, errors.ResourceNotFoundException),
        ("ResourceConflictException", 400, Kind.REFUSED, errors.ResourceConflictException),
        (
            "DeveloperUserAlreadyRegisteredException",
            400,
            Kind.REFUSED,
            errors.DeveloperUserAlreadyRegisteredException,
        ),
        ("InvalidParameterException", 400, Kind.REFUSED, errors.InvalidParameterException),
        (  # GetCredentialsForIdentity: the upstream pool has no role for the identity
            "InvalidIdentityPoolConfigurationException",
            400,
            Kind.REFUSED,
            errors.InvalidIdentityPoolConfigurationException,
        ),
        ("ExternalServiceException", 400, Kind.UNAVAILABLE, UpstreamUnavailable),
        ("UnrecognizedClientException", 400, Kind.MISCONFIGURED, UpstreamUnavailable),
        ("AccessDeniedException", 400, Kind.MISCONFIGURED, UpstreamUnavailable),
        ("SomethingNew", 400, Kind.MISCONFIGURED, UpstreamUnavailable),
    ],
)
def test_aws_answers_are_classified(
    code: str, status: int, kind: Kind, error: type[errors.BrokerError]
) -> None:
    failure = from_aws_error(code, "message from AWS\n", status)
    assert failure.kind is kind
    assert type(failure.error) is error
    assert "\n" not in failure.error.message


def test_a_recorded_failure_is_rebuilt_as_the_same_class() -> None:
    assert type(rebuild("NotAuthorizedException", "m")) is errors.NotAuthorizedException
    assert type(rebuild("UpstreamThrottled", "m")) is UpstreamThrottled
    assert type(rebuild("SomethingElse", "m")) is UpstreamUnavailable


# --- token lifetime -----------------------------------------------------------------------
def jwt_with(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS512'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (jwt_with({"iat": 500, "exp": 1400}), (500, 1400)),  # the token's own
        (jwt_with({"exp": 1700}), (800, 1700)),  # no iat: exp - duration
        ("us-east-1:opaque-moto-token", (1000, 1900)),  # no JWT: TokenDuration
        (jwt_with({"iat": 5, "exp": "never"}), (1000, 1900)),
        (jwt_with({"iat": 1500, "exp": 1400}), (1000, 1900)),
        ("a.%%%.c", (1000, 1900)),
    ],
)
def test_the_token_lifetime_is_read_without_verifying(
    token: str, expected: tuple[int, int]
) -> None:
    assert token_lifetime(token, 1000.4, 900) == expected


# --- POST /v1/credentials in upstream mode: the second call's rules ----------------------
class FakeTokens:
    """UpstreamTokens' two methods UpstreamCredentials uses: each issue a new identity's
    token unless told, forget recorded."""

    def __init__(self, cached: bool) -> None:
        self.cached = cached
        self.issued: list[str] = []
        self.forgotten: list[tuple[str, str]] = []

    def issue(self, session: Any, request: Any) -> IssuedToken:
        identity = f"us-east-1:{uuid.uuid4()}"
        self.issued.append(identity)
        cached, self.cached = self.cached, False  # a re-issue after forget is a fresh one
        return IssuedToken(identity, f"token-for-{identity}", 0, 0.0, cached, False)

    def forget(self, user_id: str, identity_id: str) -> None:
        self.forgotten.append((user_id, identity_id))


class FakeCognito:
    """get_credentials answers in turn from ``answers`` (an UpstreamFailure is raised)."""

    def __init__(self, *answers: UpstreamFailure | Credentials) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def get_credentials(self, **call: Any) -> Credentials:
        self.calls.append(call)
        answer = self.answers.pop(0)
        if isinstance(answer, UpstreamFailure):
            raise answer
        return answer


GIVEN = Credentials("ASIAFAKE", 2_000_000_000, secret_key="s", session_token="t")
SESSION = Session(user_id="alice", tags={})


def upstream_credentials(
    connector: RedisConnector, pool_id: str, tokens: FakeTokens, cognito: FakeCognito
) -> UpstreamCredentials:
    return UpstreamCredentials(
        tokens=tokens,  # type: ignore[arg-type]
        client=cognito,  # type: ignore[arg-type]
        guard=make_guard(connector, pool_id),
        deadline=1.0,
    )


def test_upstream_credentials_use_the_user_s_token(connector: RedisConnector, pool_id: str) -> None:
    tokens, cognito = FakeTokens(cached=True), FakeCognito(GIVEN)
    got = upstream_credentials(connector, pool_id, tokens, cognito).credentials(
        SESSION, CredentialsRequest(custom_role_arn="arn:aws:iam::123456789012:role/r")
    )
    assert got.credentials is GIVEN and got.identity_id == tokens.issued[0]
    [call] = cognito.calls
    assert call["identity_id"] == tokens.issued[0]
    assert call["token"] == f"token-for-{tokens.issued[0]}"
    assert call["custom_role_arn"] == "arn:aws:iam::123456789012:role/r"


def test_a_refused_cached_identity_is_forgotten_and_asked_again(
    connector: RedisConnector, pool_id: str
) -> None:
    refused = from_aws_error("ResourceNotFoundException", "identity gone", 400)
    tokens, cognito = FakeTokens(cached=True), FakeCognito(refused, GIVEN)
    got = upstream_credentials(connector, pool_id, tokens, cognito).credentials(
        SESSION, CredentialsRequest()
    )
    first, second = tokens.issued
    assert tokens.forgotten == [("alice", first)]
    assert got.identity_id == second and got.credentials is GIVEN
    assert [call["identity_id"] for call in cognito.calls] == [first, second]


def test_a_refusal_for_a_fresh_token_is_the_answer(connector: RedisConnector, pool_id: str) -> None:
    refused = from_aws_error("InvalidIdentityPoolConfigurationException", "no role", 400)
    tokens, cognito = FakeTokens(cached=False), FakeCognito(refused)
    with pytest.raises(errors.InvalidIdentityPoolConfigurationException, match="no role"):
        upstream_credentials(connector, pool_id, tokens, cognito).credentials(
            SESSION, CredentialsRequest()
        )
    assert tokens.forgotten == [] and len(cognito.calls) == 1


def test_an_outage_is_retried_then_unavailable_within_the_deadline(
    connector: RedisConnector, pool_id: str
) -> None:
    down = [unreachable("ConnectTimeoutError") for _ in range(50)]
    tokens, cognito = FakeTokens(cached=True), FakeCognito(*down)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable):
        upstream_credentials(connector, pool_id, tokens, cognito).credentials(
            SESSION, CredentialsRequest()
        )
    assert time.monotonic() - started < 1.0 + 0.3
    assert len(cognito.calls) >= 2  # retried with backoff inside the deadline
    assert tokens.forgotten == []  # an outage says nothing about the identity


def test_no_time_left_after_the_token_is_unavailable_without_a_call(
    connector: RedisConnector, pool_id: str
) -> None:
    tokens, cognito = FakeTokens(cached=False), FakeCognito(GIVEN)
    credentials = upstream_credentials(connector, pool_id, tokens, cognito)
    slow_issue = tokens.issue

    def issue(session: Any, request: Any) -> IssuedToken:
        time.sleep(1.05)  # the token took the whole deadline
        return slow_issue(session, request)

    tokens.issue = issue  # type: ignore[method-assign]
    with pytest.raises(UpstreamUnavailable, match="BROKER_UPSTREAM_DEADLINE"):
        credentials.credentials(SESSION, CredentialsRequest())
    assert cognito.calls == []
