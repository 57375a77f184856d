"""Outbound calls with a total deadline (broker/outbound): real servers on 127.0.0.1 that
answer slowly, a byte at a time, too much, too deep, or not at all. Each failure must be an
OutboundError of the right kind, in time, whatever the server does."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from support.processes import free_port
from support.slow_http import ScriptedServer, json_answer, json_head

from broker.outbound import (
    BadStatus,
    BoundedCalls,
    DeadlineExceeded,
    MalformedDocument,
    OutboundError,
    TooLarge,
    Unreachable,
    get_json,
    parse_json,
)

JWKS = json.dumps({"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]}).encode()


def timed_failure(url: str, timeout: float, max_bytes: int = 1 << 20) -> tuple[type, float]:
    started = time.monotonic()
    with pytest.raises(OutboundError) as failure:
        get_json(url, timeout=timeout, max_bytes=max_bytes)
    return type(failure.value), time.monotonic() - started


def test_a_document_is_fetched_and_parsed() -> None:
    with ScriptedServer(*json_answer(JWKS)).running() as server:
        assert get_json(server.url, timeout=2, max_bytes=4096)["keys"][0]["kid"] == "k"
        assert server.hits == 1


@pytest.mark.parametrize(
    ("head", "body", "chunk"),
    [
        (json_head(100_000), b" " * 100_000, 1),  # a large body, a byte at a time
        (b"", json_head(len(JWKS)) + JWKS, 1),  # the status line and headers trickle
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\n \r\n" * 10_000, 7),
    ],
    ids=["body", "head", "chunked"],
)
def test_a_trickle_is_cut_at_the_total_deadline(head: bytes, body: bytes, chunk: int) -> None:
    """A byte every 50 ms satisfies any per-read timeout; the total deadline ends it."""
    with ScriptedServer(head, body, every=0.05, chunk=chunk).running() as server:
        kind, took = timed_failure(server.url, timeout=0.6)
    assert kind is DeadlineExceeded
    assert 0.55 <= took < 0.9


def test_a_server_that_accepts_and_never_answers_is_cut_at_the_deadline() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/jwks.json"
        kind, took = timed_failure(url, timeout=0.4)
    assert kind is DeadlineExceeded and took < 0.7


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read() -> None:
    with ScriptedServer(json_head(10_000), b" " * 10_000, every=1.0).running() as server:
        kind, took = timed_failure(server.url, timeout=5, max_bytes=9_999)
    assert kind is TooLarge and took < 0.5


def test_a_body_over_the_limit_without_a_length_is_refused() -> None:
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"  # read until the close
    with ScriptedServer(head, b"[" + b"1," * 50_000 + b"1]").running() as server:
        kind, _ = timed_failure(server.url, timeout=5, max_bytes=10_000)
    assert kind is TooLarge


@pytest.mark.parametrize("status", ["302 Found", "404 Not Found", "500 Internal Server Error"])
def test_anything_but_200_is_refused_and_redirects_are_not_followed(status: str) -> None:
    head = json_head(0, status).replace(b"\r\n\r\n", b"\r\nLocation: http://127.0.0.1:1/\r\n\r\n")
    with ScriptedServer(head, b"").running() as server:
        with pytest.raises(BadStatus) as refused:
            get_json(server.url, timeout=2, max_bytes=100)
        assert refused.value.status == int(status[:3])
        assert server.hits == 1


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000 + b"]" * 50_000,  # past Python's recursion limit
        b'{"keys": ' + b"[" * 50_000,  # and never closed
        b'{"keys": [' + b"[" * 20 + b"]" * 20 + b"]}",  # within it, past ours
        b"not json",
        b'{"keys": NaN}',
        b"\xff\xfe{}",
        b'{"n": ' + b"9" * 5000 + b"}",  # more digits than Python converts
        b"",
    ],
    ids=["deep", "deep-open", "depth-22", "text", "nan", "utf16", "digits", "empty"],
)
def test_a_malformed_document_is_a_clean_error(body: bytes) -> None:
    with ScriptedServer(*json_answer(body)).running() as server:
        kind, _ = timed_failure(server.url, timeout=5)
    assert kind is MalformedDocument


def test_the_depth_limit_counts_arrays_and_objects() -> None:
    assert parse_json(b'{"keys": [{"x5c": ["a"]}]}', max_depth=4) is not None
    with pytest.raises(MalformedDocument):
        parse_json(b'{"keys": [{"x5c": ["a"]}]}', max_depth=3)
    assert parse_json(b'"scalar"', max_depth=0) == "scalar"


def test_a_body_cut_short_is_unreachable() -> None:
    with ScriptedServer(json_head(100), b'{"keys": []').running() as server:
        kind, _ = timed_failure(server.url, timeout=2)
    assert kind is Unreachable


@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1:{free_port()}/jwks.json",  # nothing listens: refused
        "ftp://127.0.0.1/jwks.json",
        "http://user:pass@127.0.0.1/jwks.json",
        "http://127.0.0.1:99999/jwks.json",
        "http://name.invalid/jwks.json",  # RFC 6761: never resolves
    ],
)
def test_unreachable_or_refused_urls_are_unreachable(url: str) -> None:
    kind, took = timed_failure(url, timeout=2)
    assert kind is Unreachable and took < 2.5


def test_bounded_calls_wait_until_the_deadline_only_and_never_pile_up() -> None:
    calls = BoundedCalls(2, "test")
    release = threading.Event()
    assert calls.run(lambda: 7, timeout=1) == 7
    with pytest.raises(ZeroDivisionError):
        calls.run(lambda: 1 // 0, timeout=1)
    for _ in range(2):  # two calls that outlive their deadline hold both threads
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            calls.run(release.wait, timeout=0.2)
        assert time.monotonic() - started < 0.5
    started = time.monotonic()
    with pytest.raises(Unreachable):  # none left: refused at once, not queued
        calls.run(lambda: 1, timeout=5)
    assert time.monotonic() - started < 0.1
    release.set()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            assert calls.run(lambda: 2, timeout=1) == 2
            break
        except Unreachable:
            time.sleep(0.01)  # the late calls are still ending
    else:
        pytest.fail("the threads were not given back")


# --- the AWS SDK clients' shared parts ---------------------------------------------------
def test_per_process_builds_once_per_process() -> None:
    """Kept for the process, made anew after a fork (a connection pool must not cross it)."""
    import os

    from broker.outbound.aws import PerProcess

    built: list[int] = []

    def build() -> int:
        built.append(os.getpid())
        return len(built)

    holder = PerProcess(build)
    assert holder.get() == 1 and holder.get() == 1
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child reports the value it sees, then leaves at once
        os.write(write, str(holder.get()).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(child, 0)
    seen_in_child = os.read(read, 16).decode()
    os.close(read)
    assert status == 0
    assert seen_in_child == "2"  # rebuilt in the child
    assert holder.get() == 1 and built == [os.getpid()]  # the parent's is untouched


def test_client_config_turns_botocore_retries_off() -> None:
    from botocore import UNSIGNED

    from broker.outbound.aws import client_config

    signed = client_config(connect_timeout=0.5, read_timeout=2.0, connections=7)
    unsigned = client_config(connect_timeout=0.5, read_timeout=2.0, connections=7, unsigned=True)
    assert signed.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert (signed.connect_timeout, signed.read_timeout) == (0.5, 2.0)
    assert signed.max_pool_connections == 7
    assert signed.signature_version is None
    assert unsigned.signature_version is UNSIGNED
