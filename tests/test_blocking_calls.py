"""Requests that wait on an outbound call neither stall their worker nor outlive their
deadline (issue 14 item 2).

Real parts throughout: gunicorn with one keep-alive worker (so "the same worker" is
certain), a JWKS server on 127.0.0.1 that trickles a byte every 50 ms, and an upstream
Cognito on 127.0.0.1 that answers in 300 ms or trickles its answer
(``support.upstream.SlowCognito``). Before the fix the worker served a request on its only
thread from start to end: a JWKS fetch held it (and ``/healthz``) until gunicorn killed it,
and each 300 ms upstream call made every cache hit of the worker wait too.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.backend import (
    API_KEY,
    JWT_AUDIENCE,
    JWT_ISSUER,
    TRUSTED,
    bearer,
    claims_for,
    door_client,
    public_jwk,
    rs_jwt,
    rsa_key,
)
from support.faults import record_figures
from support.processes import BrokerServer, RedisServer
from support.slow_http import ScriptedServer, json_answer, json_head, wait_for
from support.upstream import SlowCognito, aws_environment, upstream_environment
from werkzeug.test import EnvironBuilder

from broker.blocking import ENVIRON_KEY, WouldBlock

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

POOL_ID = "us-east-1:00000000-0000-4000-8000-0000000000a2"
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture(scope="module")
def one_worker_broker(
    own_redis: RedisServer, broker_credentials: dict[str, str]
) -> Callable[[dict[str, str]], BrokerServer]:
    def make(env: dict[str, str]) -> BrokerServer:
        return BrokerServer(
            redis_url=own_redis.url, credentials=broker_credentials, workers=1, env=env
        )

    return make


class Client:
    """One kept-alive connection, as an SDK or a backend's HTTP pool holds it."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def send(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self._conn.request(method, path, body, headers or {})
        response = self._conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - started

    def token(self, user: str) -> tuple[int, float]:
        body = json.dumps({"user_id": user})
        status, _, took = self.send(
            "POST", "/v1/token", body, {**TRUSTED, "Content-Type": "application/json"}
        )
        return status, took

    def close(self) -> None:
        self._conn.close()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def load(
    port: int, hit_users: list[str], seconds: float, hit_connections: int, miss_connections: int
) -> tuple[list[float], list[float], list[int]]:
    """Cache hits on ``hit_connections`` and new users (each an upstream call) on
    ``miss_connections`` for ``seconds``: the latencies of both and every status."""
    hits: list[float] = []
    misses: list[float] = []
    statuses: list[int] = []
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()

    def run(n: int, miss: bool) -> None:
        client = Client(port)
        try:
            while time.monotonic() < stop_at:
                user = f"new-{uuid.uuid4().hex}" if miss else hit_users[n % len(hit_users)]
                status, took = client.token(user)
                with lock:
                    statuses.append(status)
                    (misses if miss else hits).append(took)
                n += 1
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(n, False)) for n in range(hit_connections)]
    threads += [threading.Thread(target=run, args=(0, True)) for _ in range(miss_connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return hits, misses, statuses


def test_cache_hits_keep_their_latency_while_upstream_misses_wait(
    one_worker_broker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    """Upstream Cognito answers in 300 ms. Cache hits at 4 connections, alone and then
    beside 2 connections asking for new users: the hits' p99 stays under twice its value
    without misses (before the fix every miss held the worker, and the hits behind it, for
    300 ms)."""
    with SlowCognito(delay=0.3).running() as cognito:
        env = {
            **upstream_environment(endpoint=cognito.url, pool_id=POOL_ID, api_key=API_KEY),
            **aws_environment("AKIDSLOWCOGNITO", "slow-cognito-secret-key"),
        }
        with one_worker_broker(env) as broker:
            users = [f"hit-{n}-{uuid.uuid4().hex}" for n in range(8)]
            for user in users:  # first asks: each an upstream call, then cached
                client = Client(broker.port)
                assert client.token(user)[0] == 200
                client.close()
            calls_before = cognito.calls
            alone, _, statuses = load(broker.port, users, 2.0, 4, 0)
            assert set(statuses) == {200} and cognito.calls == calls_before
            beside, misses, statuses = load(broker.port, users, 2.0, 4, 2)
            assert set(statuses) == {200}
    figures = {
        "hits_alone": len(alone),
        "hits_alone_p99_ms": round(p99(alone) * 1000, 1),
        "hits_beside_misses": len(beside),
        "hits_beside_misses_p99_ms": round(p99(beside) * 1000, 1),
        "misses": len(misses),
        "misses_median_ms": round(statistics.median(misses) * 1000, 1),
    }
    record_figures("upstream misses beside cache hits, one worker", figures)
    assert len(misses) >= 6  # the misses did happen, about 300 ms each
    assert p99(beside) < max(2 * p99(alone), 0.05), figures


def test_a_trickling_jwks_holds_neither_the_worker_nor_its_other_requests(
    one_worker_broker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    """A token naming an unknown kid makes the worker fetch the JWKS again, from a server
    that now declares 100,000 bytes and sends one every 50 ms. Meanwhile ``/healthz`` and
    tokens with the known kid, on the same (only) worker, are answered within 100 ms, and
    the fetch ends at its 2 s total timeout (the kid is then unknown: 401)."""
    key = rsa_key()
    good = json.dumps({"keys": [public_jwk(key, "k")]}).encode()
    with ScriptedServer(*json_answer(good)).running() as jwks:
        env = {
            "BROKER_BACKEND_AUTH": "jwt",
            "BROKER_BACKEND_JWT_ISSUER": JWT_ISSUER,
            "BROKER_BACKEND_JWT_AUDIENCE": JWT_AUDIENCE,
            "BROKER_BACKEND_JWT_JWKS_URL": jwks.url,
            "BROKER_BACKEND_JWT_JWKS_TIMEOUT": "2",
            "BROKER_BACKEND_JWT_JWKS_MIN_REFETCH_SECONDS": "0",
            "BROKER_BACKEND_POOL_NAME": f"jwks-{uuid.uuid4().hex}",
            "BROKER_BACKEND_DEVELOPER_PROVIDER": "login.jwks.test",
            "BROKER_WORKER_TIMEOUT": "10",  # before the fix gunicorn killed the stalled worker
        }
        with one_worker_broker(env) as broker:
            valid = {
                **bearer(rs_jwt(claims_for("u"), key, "k")),
                "Content-Type": "application/json",
            }
            client = Client(broker.port, timeout=2)
            assert client.send("POST", "/v1/token", "{}", valid)[0] == 200
            jwks.head, jwks.body, jwks.every = json_head(100_000), b" " * 100_000, 0.05

            forged: list[tuple[int, float]] = []

            def ask_with_unknown_kid() -> None:
                other = Client(broker.port, timeout=10)
                headers = {
                    **bearer(rs_jwt(claims_for("u"), key, "new")),
                    "Content-Type": "application/json",
                }
                status, _, took = other.send("POST", "/v1/token", "{}", headers)
                forged.append((status, took))
                other.close()

            fetching = threading.Thread(target=ask_with_unknown_kid)
            fetching.start()
            assert wait_for(lambda: jwks.open == 1, 2), "the refetch did not start"
            health: list[float] = []
            tokens: list[float] = []
            while fetching.is_alive() and len(health) < 200:
                status, _, took = client.send("GET", "/healthz")
                assert status == 200
                health.append(took)
                status, _, took = client.send("POST", "/v1/token", "{}", valid)
                assert status == 200
                tokens.append(took)
                time.sleep(0.02)
            fetching.join(timeout=10)
            client.close()
    figures = {
        "healthz": len(health),
        "healthz_max_ms": round(max(health) * 1000, 1),
        "tokens_max_ms": round(max(tokens) * 1000, 1),
        "refetch_s": round(forged[0][1], 2),
    }
    record_figures("trickling JWKS beside /healthz, one worker", figures)
    assert len(health) >= 10
    assert max(health) < 0.1 and max(tokens) < 0.1, figures
    assert forged[0][0] == 401 and 1.9 <= forged[0][1] < 3.0, forged


def test_an_upstream_that_trickles_its_answer_is_cut_at_the_deadline(
    redis_server: RedisServer, broker_credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore's read timeout is per read: an answer sent a byte every 50 ms kept a 0.5 s
    read timeout satisfied for 20 s. The whole call now ends at BROKER_UPSTREAM_DEADLINE
    (1 s): UNAVAILABLE. (The upstream stops trickling after 4 s, so that the code before the
    fix ends too.)"""
    for name, value in aws_environment("AKIDTRICKLE", "trickle-secret-key-0000").items():
        monkeypatch.setenv(name, value)
    with SlowCognito(delay=0, trickle=0.05).running() as cognito:
        threading.Timer(4.0, cognito._stop.set).start()
        env = {
            **upstream_environment(endpoint=cognito.url, pool_id=POOL_ID, api_key=API_KEY),
            "BROKER_UPSTREAM_DEADLINE": "1",
            "BROKER_UPSTREAM_CONNECT_TIMEOUT": "0.2",
            "BROKER_UPSTREAM_READ_TIMEOUT": "0.5",
        }
        client = door_client(redis_server.url, broker_credentials, env)
        started = time.monotonic()
        response = client.post("/v1/token", headers=TRUSTED, json={"user_id": uuid.uuid4().hex})
        took = time.monotonic() - started
    assert response.status_code == 503, response.json
    assert response.json["error"]["code"] == "UNAVAILABLE"
    assert took < 1.5, took


def serve(
    client: FlaskClient, headers: dict[str, str], body: str, *, on_loop: bool
) -> tuple[str, dict[str, Any]] | type[WouldBlock]:
    """One POST /v1/token through the app's WSGI callable, as the keep-alive worker makes it
    on its loop (``on_loop``: waiting not allowed) or in a thread."""
    environ = EnvironBuilder(path="/v1/token", method="POST", headers=headers, data=body)
    wsgi_environ = environ.get_environ()
    wsgi_environ[ENVIRON_KEY] = not on_loop
    status: list[str] = []
    try:
        chunks = client.application(wsgi_environ, lambda s, h, e=None: status.append(s))
    except WouldBlock:
        return WouldBlock
    return status[0], json.loads(b"".join(chunks))


def test_on_the_loop_a_jwks_fetch_asks_for_a_thread_before_it_changes_anything(
    redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    key = rsa_key()
    good = json.dumps({"keys": [public_jwk(key, "k")]}).encode()
    with ScriptedServer(*json_answer(good)).running() as jwks:
        env = {
            "BROKER_BACKEND_AUTH": "jwt",
            "BROKER_BACKEND_JWT_ISSUER": JWT_ISSUER,
            "BROKER_BACKEND_JWT_AUDIENCE": JWT_AUDIENCE,
            "BROKER_BACKEND_JWT_JWKS_URL": jwks.url,
            "BROKER_BACKEND_JWT_JWKS_MIN_REFETCH_SECONDS": "0",
            "BROKER_BACKEND_POOL_ID": POOL_ID,
        }
        client = door_client(redis_server.url, broker_credentials, env)
        json_type = {"Content-Type": "application/json"}
        valid = {**bearer(rs_jwt(claims_for("u"), key, "k")), **json_type}
        assert serve(client, valid, "{}", on_loop=True) is WouldBlock  # no keys held yet
        assert jwks.hits == 0
        answer = serve(client, valid, "{}", on_loop=False)
        assert answer != WouldBlock and answer[0].startswith("404"), answer  # the pool: none
        assert jwks.hits == 1
        assert serve(client, valid, "{}", on_loop=True) != WouldBlock  # held: on the loop
        unknown = {**bearer(rs_jwt(claims_for("u"), key, "other")), **json_type}
        assert serve(client, unknown, "{}", on_loop=True) is WouldBlock  # a refetch is due
        assert jwks.hits == 1


def test_on_the_loop_an_upstream_miss_asks_for_a_thread_and_a_hit_stays(
    redis_server: RedisServer, broker_credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in aws_environment("AKIDLOOP", "loop-secret-key-00000000").items():
        monkeypatch.setenv(name, value)
    with SlowCognito(delay=0).running() as cognito:
        env = {
            **upstream_environment(endpoint=cognito.url, pool_id=POOL_ID, api_key=API_KEY),
            "BROKER_RATE_LIMIT_PER_IDENTITY": "1",  # the first ask (no identity yet) is free
        }
        client = door_client(redis_server.url, broker_credentials, env)
        headers = {**TRUSTED, "Content-Type": "application/json"}
        body = json.dumps({"user_id": uuid.uuid4().hex})
        assert serve(client, headers, body, on_loop=True) is WouldBlock
        assert cognito.calls == 0
        first = serve(client, headers, body, on_loop=False)
        assert first != WouldBlock and first[0].startswith("200"), first
        assert cognito.calls == 1
        hit = serve(client, headers, body, on_loop=True)  # cached: served on the loop
        assert hit != WouldBlock and hit[1]["data"]["cached"] is True, hit
        refused = serve(client, headers, body, on_loop=True)  # the second counted in a second
        assert refused != WouldBlock and refused[0].startswith("429"), refused


def test_operations_named_by_target_go_to_a_thread_at_once(
    redis_server: RedisServer, broker_credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hint for AWS door operations that wait on every call (GetCredentialsForIdentity's
    STS call): named in broker.app.factory.AWS_WAITING_OPERATIONS, by X-Amz-Target, POST
    only."""
    from broker.app import factory

    target = "AWSCognitoIdentityService.GetCredentialsForIdentity"
    assert target in factory.AWS_WAITING_OPERATIONS
    monkeypatch.setattr(factory, "AWS_WAITING_OPERATIONS", frozenset())
    plain = door_client(redis_server.url, broker_credentials, {})
    monkeypatch.setattr(factory, "AWS_WAITING_OPERATIONS", frozenset({target}))
    client = door_client(redis_server.url, broker_credentials, {})
    may_block = client.application.wsgi_app.may_block  # type: ignore[attr-defined]
    environ = {"PATH_INFO": "/", "REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": f" {target} "}
    assert may_block(environ) is True
    assert may_block({**environ, "REQUEST_METHOD": "GET"}) is False
    assert may_block({**environ, "HTTP_X_AMZ_TARGET": "AWSCognitoIdentityService.GetId"}) is False
    assert may_block({**environ, "PATH_INFO": "/v1/token"}) is False
    assert plain.application.wsgi_app.may_block(environ) is False  # type: ignore[attr-defined]


# --- the worker's rules for requests served in its threads ---------------------------------
def upstream_env(cognito: SlowCognito, **extra: str) -> dict[str, str]:
    return {
        **upstream_environment(endpoint=cognito.url, pool_id=POOL_ID, api_key=API_KEY),
        **aws_environment("AKIDSLOWCOGNITO", "slow-cognito-secret-key"),
        **extra,
    }


def token_request(user: str) -> bytes:
    body = json.dumps({"user_id": user}).encode()
    return (
        b"POST /v1/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"X-Api-Key: " + API_KEY.encode() + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def responses(sock: socket.socket, count: int) -> list[http.client.HTTPResponse]:
    """``count`` answers read from one socket, in order, through one buffer (http.client
    would make one per answer, and close it after the body)."""
    stream = sock.makefile("rb")
    close = stream.close
    stream.close = lambda: None  # type: ignore[method-assign]

    class Source:
        def makefile(self, *args: object, **kwargs: object) -> Any:
            return stream

    answers = []
    try:
        for _ in range(count):
            answer = http.client.HTTPResponse(Source(), method="POST")  # type: ignore[arg-type]
            answer.begin()
            answer.body = answer.read()  # type: ignore[attr-defined]
            answers.append(answer)
    finally:
        close()
    return answers


def test_pipelined_answers_keep_their_order_around_a_request_in_a_thread(
    one_worker_broker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    with (
        SlowCognito(delay=0.4).running() as cognito,
        one_worker_broker(upstream_env(cognito)) as broker,
    ):
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
            sock.sendall(HEALTH + token_request(uuid.uuid4().hex) + HEALTH)
            first, token, last = responses(sock, 3)
        assert (first.status, token.status, last.status) == (200, 200, 200)
        assert json.loads(token.body)["data"]["cached"] is False  # type: ignore[attr-defined]
        assert b'"status"' in first.body and b'"status"' in last.body  # type: ignore[attr-defined]


def test_sigterm_lets_a_request_in_a_thread_finish_and_closes_after_it(
    one_worker_broker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    with (
        SlowCognito(delay=0.6).running() as cognito,
        one_worker_broker(upstream_env(cognito)) as broker,
    ):
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
            sock.sendall(token_request(uuid.uuid4().hex))
            assert wait_for(lambda: cognito.calls == 1, 3)
            (worker,) = broker.worker_pids()
            os.kill(worker, signal.SIGTERM)  # the worker alone: the master starts another
            (answer,) = responses(sock, 1)
        assert answer.status == 200 and answer.getheader("Connection") == "close"


def test_no_threads_serves_every_request_on_the_loop_as_before(
    one_worker_broker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    """BROKER_WORKER_THREADS=0: the old behaviour, kept as an operator's choice (and the
    proof that the threads are what keeps /healthz answering)."""
    env = {"BROKER_WORKER_THREADS": "0"}
    with (
        SlowCognito(delay=0.5).running() as cognito,
        one_worker_broker(upstream_env(cognito, **env)) as broker,
        socket.create_connection(("127.0.0.1", broker.port), timeout=10) as slow,
    ):
        slow.sendall(token_request(uuid.uuid4().hex))
        assert wait_for(lambda: cognito.calls == 1, 3)
        other = Client(broker.port)
        status, _, took = other.send("GET", "/healthz")
        other.close()
        assert status == 200 and took >= 0.3  # waited behind the upstream call
        assert responses(slow, 1)[0].status == 200
