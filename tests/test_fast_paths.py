"""Shortcuts taken on the token path for speed must give what the general code they stand
for gives: each is compared here with that code, on ordinary and on odd input."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.datastructures import EnvironHeaders

from broker.awsjson import sigv4
from broker.backend import envelope
from broker.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
)
from broker.http import jsonbody
from broker.http.exchange import Exchange
from broker.identity import ids as uuids
from broker.store.connection import RedisConnector
from broker.store.script_runner import ScriptRunner

ENVIRONS: list[dict[str, Any]] = [
    {  # what gunicorn hands a door for a botocore request
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/x-amz-json-1.1",
        "CONTENT_LENGTH": "112",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_X_AMZ_TARGET": "AWSCognitoIdentityService.GetOpenIdTokenForDeveloperIdentity",
        "HTTP_X_AMZ_DATE": "20260101T000000Z",
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKID/20260101/...",
        "HTTP_USER_AGENT": "Boto3/1.40",
        "wsgi.url_scheme": "http",
    },
    {  # empty content headers are left out; the HTTP_ copies of them are never read
        "CONTENT_TYPE": "",
        "CONTENT_LENGTH": "",
        "HTTP_CONTENT_TYPE": "text/plain",
        "HTTP_CONTENT_LENGTH": "3",
        "HTTP_X_API_KEY": "k",
    },
    {  # odd names: a non-ASCII one (title case differs from lower case), lower case, "_"
        "HTTP_X_STRASSE_ß": "1",
        "HTTP_ǅ_DZ": "2",
        "HTTP_x_lower": "3",
        "HTTP__": "4",
        "HTTP_": "5",
        "CONTENT_TYPE": "application/json",
        "HTTPX": "6",
    },
    {},
]


@pytest.mark.parametrize("environ", ENVIRONS)
def test_exchange_headers_are_werkzeugs_under_lower_case_names(environ: dict[str, Any]) -> None:
    expected = {name.lower(): value for name, value in EnvironHeaders(environ).items()}
    headers = Exchange(environ, "rid").headers
    assert list(headers.items()) == list(expected.items())


# --- JSON bodies: a decoder made once stands for json.loads -------------------------------
@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"a": [1, 2.5, "\\u00e9"]}', b"\xef\xbb\xbf{}", b'{"a": NaN}', b"[1]", b"{"],
)
def test_bodies_parse_as_json_loads_parses_them(body: bytes) -> None:
    def reference() -> dict[str, Any]:
        data = json.loads(body.decode("utf-8"), parse_constant=jsonbody._reject_constant)
        if type(data) is not dict:
            raise jsonbody.NotAJsonObject(jsonbody.json_type_name(data))
        return data

    def outcome(parse: Callable[[], Any]) -> tuple[str, Any]:
        try:
            return "parsed", parse()
        except (ValueError, UnicodeDecodeError) as err:
            return type(err).__name__, str(err)

    expected = outcome(reference)
    got = outcome(lambda: jsonbody.parse_object(body))
    if expected[0] in ("parsed", "NotAJsonObject"):
        assert got == expected
    else:  # parse_object words the failure itself, from the same error
        assert got[0] == "NotJson" and expected[1] in got[1]


# --- ids: random_uuid stands for str(uuid.uuid4()) ----------------------------------------
def test_random_uuids_are_version_4_uuids_in_canonical_text() -> None:
    made = [uuids.random_uuid() for _ in range(4000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    # every variant digit occurs, about equally: the two bits left random stay random
    counts = Counter(text[19] for text in made)
    assert set(counts) == set("89ab") and min(counts.values()) > 800


# --- the backend envelope's timestamps, cached per second ---------------------------------
@pytest.mark.parametrize("epoch", [0, 1.9, 1_790_000_000, 1_790_000_000.75, 4_102_444_800])
def test_iso8601_is_strftime_of_the_whole_second(epoch: float) -> None:
    expected = datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert envelope.iso8601(epoch) == envelope.iso8601(epoch) == expected


# --- SigV4: the signing key and the parsed scope are cached -------------------------------
SECRETS = {"AKIDFIRST": "first-secret-of-16+chars", "AKIDSECOND": "second-secret-16+chars"}


def _signed(
    key_id: str, secret: str, at: datetime, *, extra: dict[str, str] | None = None
) -> dict[str, str]:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "T.Op"}
    headers.update(extra or {})
    request = AWSRequest(method="POST", url="http://broker.test/", data=b"{}", headers=headers)
    auth = SigV4Auth(Credentials(key_id, secret), "cognito-identity", "us-east-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):  # sign "at"
        auth.add_auth(request)
    return {**dict(request.headers.items()), "Host": "broker.test"}


def _verify(headers: dict[str, str], at: datetime, secrets: dict[str, str] = SECRETS) -> str:
    return sigv4.verify_request(
        "POST", "/", "", headers, b"{}", credentials=secrets, region="us-east-1", now=at
    )


def test_cached_keys_and_scopes_follow_the_key_the_day_and_the_signed_headers() -> None:
    day = datetime(2026, 3, 1, 23, 59, 30, tzinfo=UTC)
    next_day = day + timedelta(minutes=1)
    for at in (day, next_day, day):
        for key_id, secret in SECRETS.items():
            assert _verify(_signed(key_id, secret, at), at) == key_id
            extra = _signed(key_id, secret, at, extra={"X-Amz-Meta": "1"})
            assert _verify(extra, at) == key_id  # same Credential, other SignedHeaders
    # A request signed with the other key's secret, or yesterday's scope, still fails
    forged = _signed("AKIDFIRST", SECRETS["AKIDSECOND"], day)
    with pytest.raises(InvalidSignatureException):
        _verify(forged, day)
    with pytest.raises(InvalidSignatureException):  # a rotated secret under the same key id
        _verify(_signed("AKIDFIRST", SECRETS["AKIDFIRST"], day), day, {"AKIDFIRST": "x" * 20})
    stale = _signed("AKIDFIRST", SECRETS["AKIDFIRST"], day)
    stale["X-Amz-Date"] = next_day.strftime("%Y%m%dT%H%M%SZ")
    with pytest.raises(InvalidSignatureException, match="Date in Credential scope"):
        _verify(stale, next_day)


def test_a_bad_scope_is_refused_every_time() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    headers = _signed("AKIDFIRST", SECRETS["AKIDFIRST"], at)
    bad = headers["Authorization"].replace("SignedHeaders=", "SignedHeaders=;", 1)
    for _ in range(2):
        with pytest.raises(IncompleteSignatureException, match="SignedHeaders must be"):
            _verify({**headers, "Authorization": bad}, at)


# --- Redis: script_runner takes and gives back pooled connections itself ------------------
ECHO = "return {KEYS[1], ARGV[1]}"


class _Runner(ScriptRunner):
    def run(self, key: str, arg: str) -> object:
        return self._run(ECHO, [key], [arg])


def test_threads_sharing_a_runner_each_get_their_own_replies(redis_server: Any) -> None:
    runner = _Runner(RedisConnector.from_url(redis_server.url, timeout=2.0))
    wrong: list[object] = []

    def work(n: int) -> None:
        for i in range(300):
            key, arg = f"{{t}}:{n}", f"{n}-{i}"
            answer = runner.run(key, arg)
            if answer != [key, arg]:
                wrong.append(answer)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    pool = runner.redis.connection_pool
    assert not pool._in_use_connections  # every connection was given back
    assert 1 <= len(pool._available_connections) <= len(threads)
