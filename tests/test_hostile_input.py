"""Hostile input against the AWS front door (docs/reliability.md), on a broker of its own.

- hypothesis-generated targets, headers and bodies (from the service model, JSON of any
  shape, raw bytes), signed or not: never a 5xx, never a traceback, Python repr or secret;
- every byte of a signed request changed in turn (request line, each signed header's name
  and value, the Authorization header, the body): every one refused;
- a signed request replayed more than 5 minutes later: refused (injected clock);
- bodies at and over the 1 MiB limit, and gunicorn's own limits on the request line, the
  number of header fields and their size: at the limit served, over it a 4xx, no crash.

Requests go out on raw sockets, so nothing is tidied up by an HTTP client on the way.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.backend import Clock
from support.faults import call, create_pool, record_figures
from support.processes import BrokerServer, RedisServer, broker_on_own_redis
from support.signing import CONTENT_TYPE, TARGET_PREFIX, signed_headers

from broker.app.factory import create_app
from config.settings import Settings

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

PROVIDER = "login.hostile"
TOKEN_OP = "GetOpenIdTokenForDeveloperIdentity"
SOAK = os.environ.get("BROKER_SOAK") == "1"
MAX_BODY = 1024 * 1024  # BROKER_MAX_BODY_BYTES' default
# gunicorn's defaults (config/gunicorn.conf.py leaves them alone)
LIMIT_REQUEST_LINE = 4094  # bytes of the request line, without its CRLF
LIMIT_REQUEST_FIELDS = 100  # header fields
LIMIT_REQUEST_FIELD_SIZE = 8190  # bytes of one header line, with its CRLF

SERVICE = botocore.session.get_session().get_service_model("cognito-identity")
OPERATIONS = sorted(SERVICE.operation_names)
#: Errors a client fault may get from the AWS door: contract section 1, 2 and the model.
SIGNATURE_ERRORS = {
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "UnrecognizedClientException",
    "MissingAuthenticationTokenException",
}
LEAK_MARKERS = (
    "Traceback (most recent call last)",
    'File "/',
    "site-packages",
    "-----BEGIN",
    "redis.exceptions",
    "werkzeug.",
    "marshmallow.",
)
LEAK_PATTERNS = (
    re.compile(r"<[A-Za-z_][\w.]* object at 0x[0-9a-fA-F]+>"),  # an object's repr
    re.compile(r"\b[A-Z]\w*(?:Error|Exception)\(['\"]"),  # an exception's repr
    re.compile(r"\bb'(?:\\x[0-9a-f]{2}|\\[nrt])"),  # bytes' repr
)


# --- raw HTTP ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def aws_error(self) -> str | None:
        """The ``__type`` of an AWS JSON error answer, else None."""
        if not self.headers.get("content-type", "").startswith(CONTENT_TYPE):
            return None
        error = json.loads(self.body).get("__type")
        return str(error) if error is not None else None


def request_bytes(
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    method: bytes = b"POST",
    target: bytes = b"/",
    content_length: bool = True,
) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in headers]
    if content_length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(port: int, raw: bytes, timeout: float = 15.0) -> Reply:
    """Send ``raw`` on a new connection and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        method = raw.partition(b" ")[0].decode("latin-1")  # a HEAD answer has no body
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        body = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, headers, body)


def signed(
    server: BrokerServer,
    body: bytes,
    operation: str | None = TOKEN_OP,
    *,
    target: str = "/",
    extra: dict[str, str] | None = None,
    when: dt.datetime | None = None,
    secret: str | None = None,
) -> list[tuple[bytes, bytes]]:
    """The header lines botocore signs for this request, Host first."""
    headers = signed_headers(
        server.url + target,
        body,
        operation=operation,
        key_id=server.access_key_id,
        secret=secret or server.secret_access_key,
        extra=extra,
        when=when,
    )
    host = server.url.removeprefix("http://")
    return [(b"Host", host.encode())] + [
        (name.encode(), value.encode("latin-1")) for name, value in headers.items()
    ]


def token_body(pool_id: str, user: str = "hostile-user", **extra: Any) -> bytes:
    return json.dumps(
        {"IdentityPoolId": pool_id, "Logins": {PROVIDER: user}, **extra}, separators=(",", ":")
    ).encode()


def assert_no_leak(reply: Reply, sent: bytes, secrets: list[str]) -> None:
    """No traceback, repr, key or secret in the answer (a marker the request itself carried,
    echoed back as a value, does not count)."""
    head = "\n".join(f"{k}: {v}" for k, v in reply.headers.items())
    answer = head + "\n" + reply.body.decode("latin-1")
    request = sent.decode("latin-1")
    for marker in (*LEAK_MARKERS, *secrets):
        assert marker not in answer or marker in request, f"{marker!r} in {answer[:2000]!r}"
    for pattern in LEAK_PATTERNS:
        for found in pattern.finditer(answer):
            assert found.group() in request, f"{found.group()!r} in {answer[:2000]!r}"


def assert_well_formed(reply: Reply) -> None:
    """Never a 5xx. An AWS JSON answer is a success without ``__type`` or an error with
    the envelope of contract section 1; others come from elsewhere (another path or method,
    OPTIONS, gunicorn's own refusals)."""
    assert reply.status < 500, (reply.status, reply.text[:500])
    if not reply.headers.get("content-type", "").startswith(CONTENT_TYPE):
        return
    body = json.loads(reply.body)
    assert isinstance(body, dict)
    if reply.status == 200:
        assert "__type" not in body
        return
    assert isinstance(body["__type"], str) and isinstance(body["message"], str)
    assert reply.headers["x-amzn-errortype"] == body["__type"] + ":"
    assert reply.headers["x-amzn-requestid"]


# --- the server --------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    server: BrokerServer
    pool_id: str
    identity_id: str
    secrets: list[str]

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture(scope="module")
def hostile(broker_credentials: dict[str, str]) -> Iterator[Target]:
    """A broker and Redis of its own: generated requests may create, change and delete."""
    with broker_on_own_redis(credentials=broker_credentials, workers=2) as (server, _):
        pool_id = create_pool(server, PROVIDER)
        answer = call(server, TOKEN_OP, json.loads(token_body(pool_id, "resident")))
        assert answer.status_code == 200, answer.text
        yield Target(
            server, pool_id, answer.json()["IdentityId"], list(broker_credentials.values())
        )
        assert len(server.worker_pids()) == 2


# --- hypothesis: targets, headers, bodies ----------------------------------------------
HEADER_VALUE_CHARS = st.characters(
    codec="latin-1", exclude_characters="\r\n", exclude_categories=["Cs"]
)
HEADER_NAMES = st.sampled_from(
    [
        "Content-Type",
        "X-Amz-Target",
        "X-Amz-Date",
        "Authorization",
        "X-Amz-Security-Token",
        "X-Amz-Content-Sha256",
        "Content-Encoding",
        "Accept",
        "Cookie",
        "X-Forwarded-For",
        "X-Amzn-RequestId",
    ]
) | st.from_regex(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,40}", fullmatch=True).filter(
    lambda name: name.lower() not in {"content-length", "transfer-encoding", "host", "expect"}
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=60)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=20), children, max_size=6)
    ),
    max_leaves=30,
)
SPECIAL_BODIES = st.sampled_from(
    [
        b"",
        b"{}",
        b"null",
        b"[" * 50_000,
        b'{"a":' * 50_000,
        b'{"TokenDuration": 1' + b"0" * 5000 + b"}",
        b'{"MaxResults": NaN}',
        b'{"x": "\\ud800"}',
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
        b"\x00" * 64,
        b'{"IdentityPoolId": "a", "IdentityPoolId": "b"}',
    ]
)


def member_value(draw: st.DrawFn, shape: Any, target: Target, depth: int = 0) -> Any:
    """A value for one member of the service model: mostly well typed, often out of range,
    sometimes of the wrong JSON type."""
    if depth > 3 or draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    kind = shape.type_name
    if kind == "string":
        known = [target.pool_id, target.identity_id, PROVIDER, "resident", "authenticated"]
        enum = list(getattr(shape, "enum", None) or [])
        return draw(st.sampled_from(known + enum) | st.text(max_size=80) | st.text(min_size=1000))
    if kind in ("integer", "long"):
        return draw(st.integers(-5, 100) | st.integers(-(2**70), 2**70))
    if kind == "boolean":
        return draw(st.booleans())
    if kind == "list":
        size = draw(st.integers(0, 4) | st.just(70))
        return [member_value(draw, shape.member, target, depth + 1) for _ in range(size)]
    if kind == "map":
        size = draw(st.integers(0, 3) | st.just(12))
        return {
            draw(st.sampled_from([PROVIDER, "graph.facebook.com"]) | st.text(max_size=130)): (
                member_value(draw, shape.value, target, depth + 1)
            )
            for _ in range(size)
        }
    if kind == "structure":
        return {
            name: member_value(draw, member, target, depth + 1)
            for name, member in shape.members.items()
            if name in shape.required_members or draw(st.booleans())
        }
    return draw(JSON_VALUES)


def rarely(draw: st.DrawFn, one_in: int = 5) -> bool:
    return draw(st.integers(1, one_in)) == 1


PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@st.composite
def hostile_requests(draw: st.DrawFn, target: Target) -> tuple[bytes, list[str]]:
    """Mostly requests that get past gunicorn and the first checks, so that the deeper
    steps (signature, members, handlers, Redis) see hostile values too."""
    operation = draw(st.sampled_from(OPERATIONS))
    amz_target: str | None = TARGET_PREFIX + operation
    if rarely(draw):
        amz_target = draw(
            st.builds(lambda s: TARGET_PREFIX + s, st.text(HEADER_VALUE_CHARS, max_size=40))
            | st.text(HEADER_VALUE_CHARS, max_size=300)
            | st.none()
        )
    shape = SERVICE.operation_model(operation).input_shape
    kind = draw(st.sampled_from(["model"] * 6 + ["json", "bytes", "special"]))
    if kind == "model":
        body = json.dumps(member_value(draw, shape, target)).encode()
    elif kind == "json":
        body = json.dumps(draw(JSON_VALUES)).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=2048))
    else:
        body = draw(SPECIAL_BODIES)
    values = st.text(HEADER_VALUE_CHARS, max_size=200) if rarely(draw) else st.text(PRINTABLE)
    extra = dict(draw(st.lists(st.tuples(HEADER_NAMES, values), max_size=4)))
    content_type = CONTENT_TYPE
    if rarely(draw):
        content_type = draw(
            st.sampled_from(["application/json; charset=utf-8", "text/plain", ""])
            | st.text(HEADER_VALUE_CHARS, max_size=60)
        )
    path, method = "/", b"POST"
    if rarely(draw, 8):
        path = draw(
            st.sampled_from(["/?a=b&c", "//", "/%2e%2e/", "/x", "/healthz"])
            | st.builds(lambda q: "/?" + q, st.text(PRINTABLE.filter(str.strip), max_size=40))
        )
    if rarely(draw, 8):
        method = draw(st.sampled_from([b"GET", b"PUT", b"DELETE", b"OPTIONS", b"HEAD"]))
    mode = draw(st.sampled_from(["signed"] * 6 + ["unsigned", "wrong-secret"]))

    headers: list[tuple[bytes, bytes]]
    if mode == "unsigned":
        host = target.server.url.removeprefix("http://").encode()
        pairs = {**extra, "Content-Type": content_type}
        if amz_target is not None:
            pairs["X-Amz-Target"] = amz_target
        headers = [(b"Host", host)] + [
            (n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs.items()
        ]
    else:
        pairs = {**extra, "Content-Type": content_type}
        secret = "wrong-secret-0123456789" if mode == "wrong-secret" else None
        try:
            headers = signed(
                target.server,
                body,
                None,
                target=path,
                extra={**pairs, **({"X-Amz-Target": amz_target} if amz_target else {})},
                secret=secret,
            )
        except (ValueError, UnicodeError):  # botocore cannot sign it: send it unsigned
            headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs.items()]
    raw = request_bytes(headers, body, method=method, target=path.encode("latin-1"))
    return raw, [operation, mode]


FUZZ_EXAMPLES = 2000 if SOAK else 250
fuzz_outcomes: Counter[str] = Counter()


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_generated_requests_get_no_server_error_and_leak_nothing(
    hostile: Target, data: st.DataObject
) -> None:
    raw, _ = data.draw(hostile_requests(hostile), label="request")
    reply = exchange(hostile.port, raw)
    fuzz_outcomes[f"{reply.status} {reply.aws_error() or ''}".strip()] += 1
    assert_well_formed(reply)
    assert_no_leak(reply, raw, hostile.secrets)


# --- every byte of a signed request, changed ---------------------------------------------
#: One bit flipped per byte. Flipping 0x20 of a letter in a header name only changes its
#: case, which HTTP ignores (RFC 9110 section 5.1: the request means the same), so header
#: names never get that flip; nor do the names listed in SignedHeaders, which the broker
#: lower-cases as it does the header names themselves.
BITS = (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)
NAME_BITS = tuple(bit for bit in BITS if bit != 0x20)


def flippable_request(
    target: Target, body: bytes
) -> tuple[bytes, list[tuple[int, str, tuple[int, ...]]]]:
    """A signed request and, for every byte SigV4 protects, (offset, part, bits to try):
    the method and path, each signed header's name and value, the Authorization header
    and the body. Content-Length and Connection are not signed (changing the length only
    changes how much body the server waits for), nor are the separators."""
    parts: list[tuple[bytes, str | None, tuple[int, ...]]] = [
        (b"POST", "method", BITS),
        (b" ", None, ()),
        (b"/", "path", BITS),
        (b" HTTP/1.1\r\n", None, ()),
    ]
    for name, value in signed(target.server, body):
        label = name.decode()
        parts += [(name, f"{label} name", NAME_BITS), (b": ", None, ())]
        if label == "Authorization":
            head, list_start, rest = value.partition(b"SignedHeaders=")
            names, comma, tail = rest.partition(b",")
            parts += [
                (head + list_start, "Authorization value", BITS),
                (names, "Authorization SignedHeaders", NAME_BITS),
                (comma + tail, "Authorization value", BITS),
            ]
        else:
            parts.append((value, f"{label} value", BITS))
        parts.append((b"\r\n", None, ()))
    parts.append((f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode(), None, ()))
    parts.append((body, "body", BITS))
    raw, spans = b"", []
    for chunk, label, bits in parts:
        if label is not None:
            spans += [(len(raw) + i, label, bits) for i in range(len(chunk))]
        raw += chunk
    return raw, spans


def test_every_byte_of_a_signed_request_changed_is_refused(hostile: Target) -> None:
    body = token_body(hostile.pool_id, "flipped")
    raw, spans = flippable_request(hostile, body)
    assert exchange(hostile.port, raw).status == 200  # untouched, it is served

    outcomes: Counter[str] = Counter()
    accepted: list[str] = []
    sent = 0
    for n, (offset, part, bits) in enumerate(spans):
        for bit in bits if SOAK else (bits[n % len(bits)],):
            changed = raw[:offset] + bytes([raw[offset] ^ bit]) + raw[offset + 1 :]
            reply = exchange(hostile.port, changed)
            sent += 1
            error = reply.aws_error()
            outcomes[f"{reply.status} {error or reply.headers.get('content-type', '')}"] += 1
            if reply.status == 200 or reply.status >= 500:
                accepted.append(f"{part} byte {offset} ^ {bit:#04x}: {reply.status}")
            elif part == "body":
                assert error == "InvalidSignatureException", (offset, reply.text)
            elif error is not None:
                assert error in SIGNATURE_ERRORS | {
                    "UnknownOperationException",
                    "SerializationException",
                }, (part, offset, reply.text)
            assert_no_leak(reply, changed, hostile.secrets)

    record_figures(
        "hostile input: every byte of a signed request changed",
        {
            "bytes_covered": len(spans),
            "requests_sent": sent,
            "refused": sent - len(accepted),
            "outcomes": dict(outcomes),
        },
    )
    assert accepted == []
    assert len(hostile.server.worker_pids()) == 2


@pytest.mark.parametrize("lookalike", ["\xa0", "\x85", "\x1f", "\t"], ids=repr)
def test_whitespace_lookalikes_between_authorization_elements_are_refused(
    hostile: Target, lookalike: str
) -> None:
    """A space of the Authorization header changed into something Python's ``str.split``
    also takes for whitespace (found by the soak's all-bits sweep: 0x20 ^ 0x80 is a
    no-break space) must not pass for the header that was signed."""
    body = token_body(hostile.pool_id, "lookalike")
    headers = signed(hostile.server, body)
    for n, (name, value) in enumerate(headers):
        if name == b"Authorization":
            for at in [i for i, byte in enumerate(value) if byte == 0x20]:
                changed = value[:at] + lookalike.encode("latin-1") + value[at + 1 :]
                altered = [*headers[:n], (name, changed), *headers[n + 1 :]]
                reply = exchange(hostile.port, request_bytes(altered, body))
                assert reply.status == 400, (at, reply.text)
                # gunicorn refuses a control character itself; the door refuses the rest
                assert reply.aws_error() in ("IncompleteSignatureException", None)
    assert exchange(hostile.port, request_bytes(headers, body)).status == 200


# --- replay --------------------------------------------------------------------------------
def test_a_request_replayed_more_than_five_minutes_later_is_refused(
    redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    """The very same bytes, at the server clock's signing time, +5 min and +5 min 1 s."""
    key_id, secret = next(iter(broker_credentials.items()))
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_server.url,
            "BROKER_CREDENTIALS": ",".join(f"{k}:{v}" for k, v in broker_credentials.items()),
        }
    )
    clock = Clock()
    client = create_app(settings, clock=clock).test_client()
    signed_at = dt.datetime.fromtimestamp(clock(), dt.UTC)
    body = json.dumps({"MaxResults": 5}).encode()
    headers = signed_headers(
        "http://localhost/",
        body,
        operation="ListIdentityPools",
        key_id=key_id,
        secret=secret,
        when=signed_at,
    )

    def replay() -> tuple[int, dict[str, Any]]:
        response = client.post("/", data=body, headers=headers)
        return response.status_code, json.loads(response.data)

    assert replay()[0] == 200
    clock.advance(300)
    assert replay()[0] == 200  # 5 minutes is still within the allowed skew
    clock.advance(1)
    status, answer = replay()
    assert status == 400
    assert answer["__type"] == "InvalidSignatureException"
    assert answer["message"].startswith("Signature expired: ")


def test_a_request_signed_five_and_a_half_minutes_ago_is_refused_live(hostile: Target) -> None:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5, seconds=30)
    body = token_body(hostile.pool_id, "late")
    reply = exchange(hostile.port, request_bytes(signed(hostile.server, body, when=when), body))
    assert reply.status == 400
    assert reply.aws_error() == "InvalidSignatureException"
    assert json.loads(reply.body)["message"].startswith("Signature expired: ")


# --- body size ---------------------------------------------------------------------------
def padded(pool_id: str, size: int) -> bytes:
    """A valid token request of exactly ``size`` bytes (an unknown member is ignored)."""
    head = token_body(pool_id, "padded")[:-1] + b',"Padding":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def body_too_large(reply: Reply) -> bool:
    return reply.status == 400 and json.loads(reply.body)["message"] == (
        f"Request body exceeds the limit of {MAX_BODY} bytes."
    )


def chunked(body: bytes, piece: int = 65536) -> bytes:
    pieces = [body[i : i + piece] for i in range(0, len(body), piece)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize("encoding", ["content-length", "chunked"])
def test_a_body_at_the_limit_is_served_and_one_byte_over_is_refused_unparsed(
    hostile: Target, encoding: str
) -> None:
    def send(body: bytes, operation: str | None = TOKEN_OP) -> Reply:
        headers = signed(hostile.server, body, operation)
        if encoding == "content-length":
            return exchange(hostile.port, request_bytes(headers, body))
        headers.append((b"Transfer-Encoding", b"chunked"))
        return exchange(hostile.port, request_bytes(headers, chunked(body), content_length=False))

    at_limit = padded(hostile.pool_id, MAX_BODY)
    assert len(at_limit) == MAX_BODY
    served = send(at_limit)
    assert served.status == 200, served.text
    assert "IdentityId" in json.loads(served.body)

    over = padded(hostile.pool_id, MAX_BODY + 1)
    assert body_too_large(send(over))
    # not JSON at all: at the limit it is parsed (and refused as such), over it it is not
    garbage = b"{" * MAX_BODY
    assert send(garbage).aws_error() == "SerializationException"
    assert body_too_large(send(garbage + b"{"))


def test_a_declared_length_over_the_limit_is_refused_before_the_body_arrives(
    hostile: Target,
) -> None:
    """Content-Length says 1 MiB + 1 and no body follows: the answer comes at once."""
    headers = signed(hostile.server, b"", TOKEN_OP)
    raw = request_bytes(headers, b"", content_length=False).replace(
        b"Connection: close", f"Content-Length: {MAX_BODY + 1}\r\nConnection: close".encode()
    )
    started = time.monotonic()
    reply = exchange(hostile.port, raw, timeout=10)
    assert time.monotonic() - started < 5
    assert body_too_large(reply)


# --- gunicorn's limits -------------------------------------------------------------------
def test_request_line_at_gunicorns_limit_is_served_and_over_it_refused(hostile: Target) -> None:
    body = token_body(hostile.pool_id, "long-line")
    overhead = len(b"POST /?pad= HTTP/1.1")

    def send(line_length: int) -> Reply:
        path = "/?pad=" + "p" * (line_length - overhead)
        headers = signed(hostile.server, body, target=path)
        return exchange(hostile.port, request_bytes(headers, body, target=path.encode()))

    assert send(LIMIT_REQUEST_LINE).status == 200
    over = send(LIMIT_REQUEST_LINE + 1)
    assert over.status == 414  # gunicorn's own answer, text/html
    assert_no_leak(over, b"", hostile.secrets)


def test_header_count_at_gunicorns_limit_is_served_and_over_it_refused(hostile: Target) -> None:
    body = token_body(hostile.pool_id, "many-headers")

    def send(fields: int) -> Reply:
        headers = signed(hostile.server, body)
        filler = fields - len(headers) - 2  # Content-Length and Connection come last
        headers += [(f"X-Filler-{i}".encode(), b"f") for i in range(filler)]
        return exchange(hostile.port, request_bytes(headers, body))

    assert send(LIMIT_REQUEST_FIELDS).status == 200
    over = send(LIMIT_REQUEST_FIELDS + 1)
    assert over.status == 431
    assert_no_leak(over, b"", hostile.secrets)
    huge = send(5000)
    assert huge.status == 431


@pytest.mark.parametrize("name", ["X-Filler", "X-Amz-Target", "Authorization"])
def test_header_size_at_gunicorns_limit_is_served_and_over_it_refused(
    hostile: Target, name: str
) -> None:
    """An unsigned filler header at the limit is served. The signed X-Amz-Target and the
    Authorization header cannot be padded and stay valid, so at the limit they get the
    door's own error and over it gunicorn's."""
    body = token_body(hostile.pool_id, "big-header")

    def send(line_bytes: int) -> Reply:
        headers = [(n, v) for n, v in signed(hostile.server, body) if n.decode() != name]
        headers.append((name.encode(), b"v" * (line_bytes - len(name) - len(": \r\n"))))
        return exchange(hostile.port, request_bytes(headers, body))

    at_limit = send(LIMIT_REQUEST_FIELD_SIZE)
    if name == "X-Filler":
        assert at_limit.status == 200
    else:
        assert at_limit.status == 400 and at_limit.aws_error() is not None, at_limit.text
        assert "v" * 200 not in at_limit.text  # the huge value is not echoed whole
    over = send(LIMIT_REQUEST_FIELD_SIZE + 1)
    assert over.status == 431
    assert_no_leak(over, b"", hostile.secrets)
    assert send(1024 * 1024).status == 431  # gunicorn: "max buffer headers"


def test_after_all_that_the_workers_are_the_same_and_serving(hostile: Target) -> None:
    assert len(hostile.server.worker_pids()) == 2
    body = token_body(hostile.pool_id, "still-here")
    assert exchange(hostile.port, request_bytes(signed(hostile.server, body), body)).status == 200
    record_figures("hostile input: generated requests", {"outcomes": dict(fuzz_outcomes)})
