"""The gunicorn worker class the broker runs by default (broker/server): persistent
connections, llhttp parsing, gunicorn's limits, and the refusals a server owes.

The first part drives ``RequestReader`` directly; the rest talks to a real gunicorn over
raw sockets, so that what is on the wire (framing, ``Connection``, when the socket closes)
is what is checked.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.processes import REPO_ROOT, BrokerServer, RedisServer

from broker.server.parsing import HEADERS_TOO_LARGE, Limits, Refused, RequestReader
from broker.server.wsgi import Response, Server, environ_for

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


# --- the reader, alone ----------------------------------------------------------------------
def read_all(data: bytes, limits: Limits | None = None, step: int = 0) -> RequestReader:
    reader = RequestReader(limits or Limits())
    chunks = [data[i : i + step] for i in range(0, len(data), step)] if step else [data]
    for chunk in chunks:
        reader.feed(chunk)
    return reader


@pytest.mark.parametrize("step", [0, 1, 7])
def test_pipelined_requests_come_out_whole_and_in_order_however_the_bytes_arrive(
    step: int,
) -> None:
    raw = (
        b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nde\r\n1\r\nf\r\n0\r\n\r\n"
        b"GET /c HTTP/1.0\r\n\r\n"
    )
    reader = read_all(raw, step=step)
    got = [(r.method, r.target, bytes(r.body), r.keep_alive) for r in reader.ready]
    assert got == [
        ("POST", b"/a?x=1", b"abc", True),
        ("POST", b"/b", b"def", True),
        ("GET", b"/c", b"", False),  # HTTP/1.0 without keep-alive
    ]
    assert not reader.started


@pytest.mark.parametrize(
    "raw",
    [
        # request smuggling: both framings, or two lengths
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
        b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",  # obsolete line folding
        b"GET / HTTP/1.1\r\nX : a\r\n\r\n",  # space before the colon
        b"GET / HTTP/1.1\nHost: h\n\n",  # bare LF
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00",  # TLS sent to the plain port
    ],
)
def test_what_smuggling_and_garbage_need_is_refused_with_400(raw: bytes) -> None:
    with pytest.raises(Refused) as refused:
        read_all(raw)
    assert refused.value.status == 400


def test_upgrade_and_connect_are_refused() -> None:
    for raw in (
        b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
    ):
        with pytest.raises(Refused) as refused:
            read_all(raw)
        assert refused.value.status == 400


def test_gunicorns_limits_hold_even_for_a_header_that_never_ends() -> None:
    limits = Limits(request_line=100, fields=3, field_size=50, body=10)
    assert read_all(b"GET /" + b"a" * 80 + b" HTTP/1.0\r\n\r\n", limits).ready
    with pytest.raises(Refused) as too_long:
        read_all(b"GET /" + b"a" * 90 + b" HTTP/1.0\r\n\r\n", limits)
    assert too_long.value.status == 414
    with pytest.raises(Refused) as too_many:
        read_all(b"GET / HTTP/1.0\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", limits)
    assert too_many.value.status == HEADERS_TOO_LARGE[0]
    with pytest.raises(Refused) as too_big:
        read_all(b"GET / HTTP/1.0\r\nA: " + b"v" * 50 + b"\r\n\r\n", limits)
    assert too_big.value.status == 431
    # llhttp hands a header over only when it ends: the reader bounds it meanwhile
    reader = RequestReader(limits)
    reader.feed(b"GET / HTTP/1.0\r\nA: ")
    with pytest.raises(Refused) as endless:
        for _ in range(1000):
            reader.feed(b"v" * 1000)
    assert endless.value.status == 431


def test_a_body_over_the_cap_is_handed_over_at_once_and_nothing_after_it_is_read() -> None:
    limits = Limits(body=10)
    declared = read_all(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits)
    (request,) = declared.ready
    assert request.oversized and request.content_length == 11 and not request.keep_alive
    assert declared.stopped
    chunked = read_all(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
        limits,
    )
    (request,) = chunked.ready
    assert request.oversized and bytes(request.body) == b"12345678123"  # cap + 1 bytes


def test_100_continue_is_offered_once_and_only_before_the_body() -> None:
    reader = RequestReader(Limits())
    reader.feed(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert reader.take_continue() is True
    assert reader.take_continue() is False
    reader.feed(b"ok")
    assert [bytes(r.body) for r in reader.ready] == [b"ok"]
    plain = RequestReader(Limits())
    plain.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n")
    assert plain.take_continue() is False


def test_the_environ_follows_pep_3333_and_drops_underscored_header_names() -> None:
    reader = read_all(
        b"POST /a%20b/%C3%A9?q=%20 HTTP/1.1\r\nHost: h:1\r\nContent-Type: text/plain\r\n"
        b"X-Amz-Target: real\r\nX_Amz_Target: spoof\r\nAccept: a\r\nAccept: b\r\n"
        b"Content-Length: 2\r\n\r\nhi"
    )
    environ = environ_for(reader.ready[0], Server("127.0.0.1", "8000", True), ("10.0.0.1", 5))
    assert environ["PATH_INFO"] == "/a b/\xc3\xa9"  # bytes as latin-1 (PEP 3333)
    assert environ["RAW_URI"] == "/a%20b/%C3%A9?q=%20"
    assert environ["QUERY_STRING"] == "q=%20"
    assert environ["HTTP_X_AMZ_TARGET"] == "real"
    assert environ["HTTP_ACCEPT"] == "a,b"
    assert environ["CONTENT_TYPE"] == "text/plain" and environ["CONTENT_LENGTH"] == "2"
    assert "HTTP_CONTENT_LENGTH" not in environ
    assert environ["wsgi.input"].read() == b"hi"
    assert (environ["REMOTE_ADDR"], environ["SERVER_PORT"]) == ("10.0.0.1", "8000")
    absolute = read_all(b"GET http://h:1/p?q HTTP/1.1\r\nHost: h:1\r\n\r\n").ready[0]
    environ = environ_for(absolute, Server("h", "1", False), None)
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/p", "q")


def test_the_response_is_framed_by_the_worker_whatever_the_app_says() -> None:
    response = Response("1.1", "GET")
    response.start_response(
        "200 OK", [("Content-Length", "999"), ("Connection", "upgrade"), ("X-A", "1")]
    )
    head, _, body = response.encode([b"ab", b"c"], keep_alive=False).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Content-Length: 3" in lines and "Connection: close" in lines
    assert "Connection: upgrade" not in lines and "X-A: 1" in lines
    assert body == b"abc"
    head_only = Response("1.1", "HEAD")
    head_only.start_response("200 OK", [("Content-Length", "3")])
    head, _, body = head_only.encode([b"abc"], keep_alive=True).partition(b"\r\n\r\n")
    assert b"Content-Length: 3" in head.split(b"\r\n") and body == b""
    with pytest.raises(ValueError):
        Response("1.1", "GET").start_response("200 OK", [("X-A", "1\r\nSet-Cookie: a=b")])


# --- a real gunicorn ------------------------------------------------------------------------
class Wire:
    """One buffered reader over a socket for every response read from it: a pipelined
    answer read ahead with the one before it is not lost (http.client makes a new buffer for
    each response, and closes it after the body)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        self.file.close = lambda: None  # type: ignore[method-assign]

    def makefile(self, *args: object, **kwargs: object) -> object:
        return self.file


def recv_response(sock: socket.socket | Wire, method: str = "GET") -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(sock, method=method)  # type: ignore[arg-type]
    response.begin()
    response.read()
    return response


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


@pytest.fixture(scope="module")
def single_worker(
    own_redis: RedisServer, broker_credentials: dict[str, str]
) -> Callable[[dict[str, str]], BrokerServer]:
    """A broker with one worker and these settings, on the module's Redis (start it with
    ``with``)."""

    def make(env: dict[str, str]) -> BrokerServer:
        return BrokerServer(
            redis_url=own_redis.url, credentials=broker_credentials, workers=1, env=env
        )

    return make


@pytest.fixture(scope="module")
def one_worker(single_worker: Callable[[dict[str, str]], BrokerServer]) -> Iterator[BrokerServer]:
    env = {
        "BROKER_KEEPALIVE": "2",
        "BROKER_WORKER_TIMEOUT": "3",
        "BROKER_MAX_BODY_BYTES": "2048",
    }
    with single_worker(env) as server:
        yield server


def connect(server: BrokerServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def test_many_requests_share_one_connection(one_worker: BrokerServer) -> None:
    with connect(one_worker) as sock:
        for _ in range(5):
            sock.sendall(HEALTH)
            response = recv_response(sock)
            assert response.status == 200
            assert response.getheader("Connection") is None  # HTTP/1.1: stays open
        sock.sendall(HEALTH * 3)  # pipelined: answered in order on the same connection
        wire = Wire(sock)
        assert [recv_response(wire).status for _ in range(3)] == [200, 200, 200]


def test_connection_close_and_http_10_end_the_connection(one_worker: BrokerServer) -> None:
    for raw in (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\n\r\n",
    ):
        with connect(one_worker) as sock:
            sock.sendall(raw)
            response = recv_response(sock)
            assert response.status == 200 and response.getheader("Connection") == "close"
            assert closed_by_server(sock, 2)


def test_an_idle_connection_is_closed_after_keepalive_seconds(one_worker: BrokerServer) -> None:
    with connect(one_worker) as sock:
        sock.sendall(HEALTH)
        assert recv_response(sock).status == 200
        started = time.monotonic()
        assert closed_by_server(sock, 6)
        assert 1.5 <= time.monotonic() - started < 5  # BROKER_KEEPALIVE=2


def test_a_slow_client_does_not_hold_the_worker_and_is_cut_off(one_worker: BrokerServer) -> None:
    with connect(one_worker) as slow:
        slow.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        started = time.monotonic()
        with connect(one_worker) as other:  # the only worker still serves others
            other.sendall(HEALTH)
            assert recv_response(other).status == 200
        assert time.monotonic() - started < 1
        assert closed_by_server(slow, 6)  # BROKER_WORKER_TIMEOUT=3: the request never came
        assert time.monotonic() - started >= 2.5


def test_refusals_are_json_and_close_the_connection(one_worker: BrokerServer) -> None:
    with connect(one_worker) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = json.loads(response.read())
        assert response.status == 400 and response.getheader("Connection") == "close"
        assert body["error"] == "Bad Request" and body["message"]
        assert closed_by_server(sock, 3)


def test_an_oversized_body_gets_the_doors_own_error_without_being_sent(
    one_worker: BrokerServer,
) -> None:
    with connect(one_worker) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: AWSCognitoIdentityService.ListIdentityPools\r\n"
            b"Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n"
        )
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()  # at once, and no "100 Continue" first
        error = json.loads(response.read())
        assert response.status == 400 and error["__type"] == "ValidationException"
        assert error["message"] == "Request body exceeds the limit of 2048 bytes."
        assert response.getheader("Connection") == "close"
        assert closed_by_server(sock, 5)


def test_expect_100_continue_is_answered_before_the_body(one_worker: BrokerServer) -> None:
    body = b'{"MaxResults": 1}'
    with connect(one_worker) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: AWSCognitoIdentityService.ListIdentityPools\r\n"
            b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        sock.settimeout(5)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        response = recv_response(sock, "POST")
        assert response.status == 403  # unsigned: the door's own answer, so it was served


def test_sigterm_ends_a_worker_holding_idle_connections_at_once(
    single_worker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    server = single_worker({"BROKER_KEEPALIVE": "60", "BROKER_GRACEFUL_TIMEOUT": "20"})
    with server, connect(server) as idle:
        idle.sendall(HEALTH)
        assert recv_response(idle).status == 200
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5  # not the 20 s graceful timeout
        assert closed_by_server(idle, 1)


def test_max_requests_closes_the_connection_with_the_last_answer(
    single_worker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    env = {"BROKER_MAX_REQUESTS": "5"}  # with jitter: the worker restarts within 5..5
    with single_worker(env) as server:
        first = server.worker_pids()
        closes = 0
        for _ in range(4):
            with connect(server) as sock:
                for _ in range(10):
                    sock.sendall(HEALTH)
                    response = recv_response(sock)
                    assert response.status == 200
                    if response.getheader("Connection") == "close":
                        closes += 1
                        assert closed_by_server(sock, 3)
                        break
        assert closes >= 1
        deadline = time.monotonic() + 10
        while server.worker_pids() == first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.worker_pids() != first


def test_kept_alive_connections_spread_over_the_workers(
    own_redis: RedisServer, broker_credentials: dict[str, str]
) -> None:
    """30 connections opened at once: every worker takes a share (without the accept
    delay, the first worker awake took most of them and its clients queued)."""
    with BrokerServer(redis_url=own_redis.url, credentials=broker_credentials, workers=3) as server:
        time.sleep(3)  # /readyz answered: one worker is up; give the others time to load
        socks = [connect(server) for _ in range(30)]
        try:
            pids: Counter[str] = Counter()
            for sock in socks:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            for sock in socks:
                assert recv_response(sock).status == 200
            for sock in socks:  # same connection, same worker: the access log says which
                sock.sendall(HEALTH)
                assert recv_response(sock).status == 200
            time.sleep(0.5)
            for line in server.log_path.read_text().splitlines():
                if '"path": "/healthz"' in line or '"path":"/healthz"' in line:
                    pids[str(json.loads(line[line.index("{") :])["pid"])] += 1
            assert sum(pids.values()) >= 30
            assert len(pids) == 3 and min(pids.values()) >= 5, pids
        finally:
            for sock in socks:
                sock.close()


def test_the_sync_worker_stays_available(
    single_worker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    env = {"BROKER_WORKER_CLASS": "sync"}
    with (
        single_worker(env) as server,
        connect(server) as sock,
    ):
        sock.sendall(HEALTH)
        response = recv_response(sock)
        assert response.status == 200 and response.getheader("Connection") == "close"


def test_a_request_still_arriving_at_sigterm_is_finished_then_closed(
    single_worker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    body = b'{"MaxResults": 1}'
    head = (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-amz-json-1.1\r\n"
        b"X-Amz-Target: AWSCognitoIdentityService.ListIdentityPools\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    server = single_worker({})
    with server, connect(server) as arriving, connect(server) as idle:
        idle.sendall(HEALTH)
        assert recv_response(idle).status == 200
        arriving.sendall(head)
        time.sleep(0.3)
        (worker,) = server.worker_pids()
        os.kill(worker, signal.SIGTERM)  # the worker alone: the master would start another
        assert closed_by_server(idle, 3)  # idle: closed at once
        arriving.sendall(body)
        response = recv_response(arriving, "POST")
        assert response.status == 403  # served (unsigned: the door's own answer)
        assert response.getheader("Connection") == "close"


def test_requests_before_garbage_on_one_connection_are_answered_first(
    one_worker: BrokerServer,
) -> None:
    with connect(one_worker) as sock:
        sock.sendall(HEALTH + b"NOT HTTP AT ALL\r\n\r\n")
        wire = Wire(sock)
        assert recv_response(wire).status == 200
        refused = recv_response(wire)
        assert refused.status == 400 and refused.getheader("Connection") == "close"


def test_worker_connections_bounds_the_connections_one_worker_holds(
    single_worker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    """Full: a new connection takes the place of the one idle longest; with none idle it
    waits in the kernel's queue until one is, or until the request arriving longest has
    been arriving for PARTIAL_MIN_AGE (1 s), which is then closed for it (issue 14 item 4:
    before, a partial request was never closed to make room). The bound per address is off
    here: every client of the test shares 127.0.0.1."""
    env = {
        "GUNICORN_CMD_ARGS": "--worker-connections 2",
        "BROKER_PARTIAL_REQUESTS_PER_ADDRESS": "off",
    }
    with single_worker(env) as server:
        first, second = connect(server), connect(server)
        for sock in (first, second):
            sock.sendall(HEALTH)
            assert recv_response(sock).status == 200
        third = connect(server)
        third.sendall(HEALTH)
        assert recv_response(third).status == 200
        assert closed_by_server(first, 2)  # evicted: idle longest
        partial = b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
        second.sendall(partial)  # both held connections now have a request arriving
        third.sendall(partial)
        with connect(server) as fourth:
            fourth.sendall(HEALTH)
            fourth.settimeout(0.5)
            with pytest.raises(TimeoutError):  # both partial requests began just now
                fourth.recv(1)
            fourth.settimeout(5)
            assert recv_response(fourth).status == 200  # in second's place, 1 s on
            assert closed_by_server(second, 1)
        third.sendall(b"\r\n")  # the younger partial request was left to complete
        assert recv_response(third).status == 200
        for sock in (first, second, third):
            sock.close()


def test_the_legacy_write_callable_is_honoured() -> None:
    response = Response("1.1", "GET")
    write = response.start_response("200 OK", [])
    write(b"early ")
    raw = response.encode([b"late"], keep_alive=True)
    assert raw.endswith(b"\r\n\r\nearly late") and b"Content-Length: 10" in raw


def gunicorn_settings(env: dict[str, str], cpus: str = "0,1") -> subprocess.CompletedProcess[str]:
    """config/gunicorn.conf.py executed as gunicorn does, under ``taskset`` (its core count)."""
    script = (
        "import runpy; ns = runpy.run_path('config/gunicorn.conf.py'); "
        "print(ns['worker_class'], ns['workers'])"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    return subprocess.run(
        ["taskset", "-c", cpus, sys.executable, "-c", script],
        env={**clean, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("env", "cpus", "expected"),
    [
        ({}, "0,1", "broker.server.worker.KeepAliveWorker 3"),
        ({}, "0", "broker.server.worker.KeepAliveWorker 2"),  # at least two
        ({"BROKER_WORKER_CLASS": "sync"}, "0,1", "sync 3"),
        (
            {"BROKER_WORKER_CLASS": "KeepAlive", "BROKER_WORKERS": "5"},
            "0,1",
            "broker.server.worker.KeepAliveWorker 5",
        ),
    ],
)
def test_the_worker_class_and_its_default_count(
    env: dict[str, str], cpus: str, expected: str
) -> None:
    if len(os.sched_getaffinity(0)) < 2 and cpus == "0,1":
        pytest.skip("needs two CPUs")
    done = gunicorn_settings(env, cpus)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == (expected or "broker.server.worker.KeepAliveWorker 5").split()


def test_a_bad_worker_class_stops_gunicorn_with_one_line() -> None:
    done = gunicorn_settings({"BROKER_WORKER_CLASS": "gevent"})
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "identity-broker: configuration error: "
        "BROKER_WORKER_CLASS must be 'keepalive' or 'sync', got 'gevent'"
    )


# --- what a hostile or careless client must not achieve (review of the first version) ----
def test_upgrade_requests_are_refused_not_served() -> None:
    raw = (
        b"POST /healthz HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    reader = RequestReader(Limits())
    with pytest.raises(Refused) as refused:
        reader.feed(raw)
    assert refused.value.status == 400 and not reader.ready  # one answer: the refusal


def test_trailers_never_join_the_request_headers() -> None:
    reader = read_all(
        b"POST / HTTP/1.1\r\nHost: real\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nAuthorization: forged\r\nHost: evil\r\n\r\n"
    )
    (request,) = reader.ready
    assert bytes(request.body) == b"abc"
    assert [n for n, _ in request.headers] == [b"Host", b"Transfer-Encoding"]


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /healthz HTTP/2.0\r\nHost: a\r\n\r\n",
        b"GET /healthz\r\n\r\n",  # HTTP/0.9
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx",
        b"GET / HTTP/1.0\r\nX: " + b"v" * 8000 + b"\r\n" + b"Y: " + b"v" * 8000 + b"\r\n" * 0,
    ],
)
def test_versions_hosts_and_expectations_outside_http_11_are_refused(raw: bytes) -> None:
    reader = RequestReader(Limits())
    with pytest.raises(Refused):
        reader.feed(raw)
        for _ in range(20):  # the last case: a head that keeps growing past 64 KiB
            reader.feed(b"Z: " + b"v" * 8000 + b"\r\n")
    assert not reader.ready


def test_targets_fragments_and_absolute_form_without_a_path() -> None:
    server = Server("h", "1", False)
    fragment = read_all(b"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n").ready[0]
    assert environ_for(fragment, server, None)["PATH_INFO"] == "/a"
    bare = read_all(b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n").ready[0]
    assert environ_for(bare, server, None)["PATH_INFO"] == "/"


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200 OK\r\nX-Injected: 1", []),
        ("", []),
        ("101 Switching Protocols", []),
        ("200 OK", [("X-A:B", "1")]),
        ("200 OK", [("Bad Name", "1")]),
        ("200 OK", [("X-A", b"bytes")]),
    ],
)
def test_a_malformed_answer_from_the_app_is_refused(status: str, headers: list[Any]) -> None:
    with pytest.raises(ValueError):
        Response("1.1", "GET").start_response(status, headers)


def test_an_app_that_never_calls_start_response_is_an_error() -> None:
    with pytest.raises(ValueError):
        Response("1.1", "GET").encode([b"x"], keep_alive=True)


def test_exc_info_replaces_an_answer_not_yet_sent() -> None:
    response = Response("1.1", "GET")
    response.start_response("200 OK", [("X-A", "1")])
    try:
        raise RuntimeError("late failure")
    except RuntimeError:
        response.start_response("500 Internal Server Error", [], sys.exc_info())
    assert response.encode([b"oops"], keep_alive=False).startswith(
        b"HTTP/1.1 500 Internal Server Error\r\n"
    )


def test_a_client_that_never_reads_its_answers_does_not_stall_the_worker(
    one_worker: BrokerServer,
) -> None:
    """It sends request after request and reads nothing: once its answers fill the socket,
    the worker stops reading from it and serves others (the first version blocked in
    send() until gunicorn killed the worker)."""
    (pid,) = one_worker.worker_pids()
    greedy = socket.socket()
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    greedy.connect(("127.0.0.1", one_worker.port))
    greedy.setblocking(False)
    try:
        pipelined = b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n" * 500
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError):
                greedy.send(pipelined)
            time.sleep(0.01)
        for _ in range(3):
            started = time.monotonic()
            with connect(one_worker) as other:
                other.sendall(HEALTH)
                assert recv_response(other).status == 200
            assert time.monotonic() - started < 1.0
        time.sleep(1)
        assert one_worker.worker_pids() == [pid]  # not killed for missing its heartbeat
    finally:
        greedy.close()


def test_blank_lines_do_not_keep_a_connection_open(one_worker: BrokerServer) -> None:
    with connect(one_worker) as sock:
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 6:
            try:
                sock.sendall(b"\r\n")
            except OSError:
                closed = True
                break
            if closed_by_server(sock, 0.5):
                closed = True
                break
        assert closed and time.monotonic() - started < 4  # BROKER_KEEPALIVE=2


def test_partial_requests_beyond_the_memory_budget_get_503(
    single_worker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    """BROKER_MAX_BODY_BYTES=1024: the worker holds at most 16 x (1 KiB + 64 KiB) of request
    bytes; heads of 60 KB that never end take it over after 17 connections."""
    env = {"BROKER_MAX_BODY_BYTES": "1024"}
    with single_worker(env) as server:
        socks = [connect(server) for _ in range(20)]
        try:
            for sock in socks:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 60_000)
            time.sleep(0.5)
            busy = 0
            for sock in socks:
                sock.settimeout(0.2)
                with contextlib.suppress(TimeoutError, ConnectionResetError):
                    if b" 503 " in sock.recv(200):
                        busy += 1
            assert busy >= 1
            with connect(server) as other:
                other.sendall(HEALTH)
                assert recv_response(other).status == 200
        finally:
            for sock in socks:
                sock.close()


def test_keepalive_zero_means_one_request_per_connection(
    single_worker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    env = {"BROKER_KEEPALIVE": "0"}
    with (
        single_worker(env) as server,
        connect(server) as sock,
    ):
        time.sleep(1.2)  # the first request may take its time (the request timeout)
        sock.sendall(HEALTH)
        response = recv_response(sock)
        assert response.status == 200 and response.getheader("Connection") == "close"
        assert closed_by_server(sock, 3)


def test_header_names_are_mapped_the_same_from_the_remembered_table() -> None:
    raw = (
        b"POST /p HTTP/1.1\r\nHost: h\r\nX_Spoof: 1\r\nContent-Type: a/b\r\n"
        b"x-amz-date: d\r\nContent-Length: 0\r\n\r\n"
    )
    server = Server("h", "1", False)
    first, second = (environ_for(read_all(raw).ready[0], server, None) for _ in range(2))
    assert first == {**second, "wsgi.input": first["wsgi.input"]}
    assert "HTTP_X_SPOOF" not in second and second["CONTENT_TYPE"] == "a/b"
    assert second["HTTP_X_AMZ_DATE"] == "d" and "HTTP_CONTENT_TYPE" not in second


# --- second review ----------------------------------------------------------------------
def read_statuses(sock: socket.socket, count: int, method: str = "GET") -> list[int]:
    wire = Wire(sock)
    statuses = []
    for _ in range(count):
        try:
            statuses.append(recv_response(wire, method).status)
        except (http.client.RemoteDisconnected, ConnectionResetError):
            break
    return statuses


def test_requests_pipelined_before_garbage_are_all_answered_first(
    one_worker: BrokerServer,
) -> None:
    with connect(one_worker) as sock:
        sock.sendall(HEALTH * 12 + b"GARBAGE\r\n\r\n")
        assert read_statuses(sock, 14) == [200] * 12 + [400]


def test_100_continue_comes_after_the_answers_before_it(one_worker: BrokerServer) -> None:
    with connect(one_worker) as sock:
        sock.sendall(
            HEALTH * 9 + b"POST /healthz HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
            b"Content-Length: 2\r\n\r\n"
        )
        wire = Wire(sock)
        assert [recv_response(wire).status for _ in range(9)] == [200] * 9
        assert wire.file.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert wire.file.readline() == b"\r\n"
        sock.sendall(b"ok")
        assert recv_response(wire, "POST").status == 405  # /healthz answers GET


def test_a_full_worker_never_closes_a_connection_whose_request_has_come(
    single_worker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    env = {"GUNICORN_CMD_ARGS": "--worker-connections 2", "BROKER_KEEPALIVE": "30"}
    with single_worker(env) as server:
        for _ in range(3):
            with connect(server) as a, connect(server) as b:
                for sock in (a, b):
                    sock.sendall(HEALTH)
                    assert recv_response(sock).status == 200
                a.sendall(HEALTH)  # a's request and a new connection arrive together
                with connect(server) as c:
                    c.sendall(HEALTH)
                    assert recv_response(a).status == 200
                    assert recv_response(c).status == 200  # b, idle, made room
                    assert closed_by_server(b, 2)


def test_a_full_worker_takes_new_connections_in_the_place_of_idle_ones_at_once(
    single_worker: Callable[[dict[str, str]], BrokerServer],
) -> None:
    env = {"GUNICORN_CMD_ARGS": "--worker-connections 4", "BROKER_KEEPALIVE": "30"}
    with single_worker(env) as server:
        idle = [connect(server) for _ in range(4)]
        try:
            for sock in idle:
                sock.sendall(HEALTH)
                assert recv_response(sock).status == 200
            started = time.monotonic()
            for _ in range(8):
                with connect(server) as new:
                    new.sendall(HEALTH)
                    assert recv_response(new).status == 200
            assert time.monotonic() - started < 2.0  # not one a second
        finally:
            for sock in idle:
                sock.close()


def test_a_read_full_of_whole_requests_is_no_oversized_head(one_worker: BrokerServer) -> None:
    with connect(one_worker) as sock:
        sock.sendall(HEALTH + b"GET /hea")
        wire = Wire(sock)
        assert recv_response(wire).status == 200
        time.sleep(0.2)
        rest = b"lthz HTTP/1.1\r\nHost: t\r\n\r\n"
        many = (65536 - len(rest)) // len(HEALTH)
        sock.sendall(rest + HEALTH * many)
        assert [recv_response(wire).status for _ in range(many + 1)] == [200] * (many + 1)


def test_trailers_that_never_end_are_refused() -> None:
    reader = RequestReader(Limits(body=1024))
    reader.feed(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: "
    )
    with pytest.raises(Refused) as refused:
        for _ in range(100):
            reader.feed(b"a" * 65536)
    assert refused.value.status == 413
