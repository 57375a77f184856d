"""SigV4 verification (contract section 2): the contract's vector, botocore-signed requests,
every error rule with AWS's wording, clock skew, and a tamper property."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.awsjson.sigv4 import SIGNATURE_MISMATCH, has_authorization, verify_request
from broker.errors import (
    BrokerError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CREDENTIALS = {KEY_ID: SECRET, "AKIDOTHER": "another-secret"}
REGION = "us-east-1"
HOST = "cognito-identity.us-east-1.amazonaws.com"
AMZ_DATE = "20150830T123600Z"
SIGNED_AT = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
TARGET = "AWSCognitoIdentityService.GetOpenIdTokenForDeveloperIdentity"
BODY = (
    b'{"IdentityPoolId":"us-east-1:11111111-2222-3333-4444-555555555555",'
    b'"Logins":{"login.mycompany.myapp":"user-123"}}'
)
SIGNATURE = "400bc9b22e74c91abff044ced5abb0d3eea5747ce9ed2260cead1bac2a9edb63"
SCOPE = f"{KEY_ID}/20150830/{REGION}/cognito-identity/aws4_request"
SIGNED_HEADERS = "content-type;host;x-amz-date;x-amz-target"
AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={SIGNED_HEADERS}, Signature={SIGNATURE}"
)
MISSING = "Authorization header requires '{}' parameter."
UNSIGNED = (
    "Header '{}' is present in the request but not in SignedHeaders: "
    "every 'x-amz-*' header must be signed."
)
INVALID_CLIENT = "The security token included in the request is invalid."


def vector_headers(**changes: str | None) -> dict[str, str]:
    """The contract's vector; keyword `X_Amz_Date="..."` changes a header, None drops it."""
    headers = {
        "Host": HOST,
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Date": AMZ_DATE,
        "X-Amz-Target": TARGET,
        "Authorization": AUTHORIZATION,
    }
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    return headers


def verify(
    headers: dict[str, str],
    body: bytes = BODY,
    *,
    now: datetime = SIGNED_AT,
    path: str = "/",
    query: str = "",
    region: str = REGION,
) -> str:
    return verify_request(
        "POST", path, query, headers, body, credentials=CREDENTIALS, region=region, now=now
    )


def botocore_signed(
    body: bytes,
    url: str = f"https://{HOST}/",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> tuple[str, str, dict[str, str], datetime]:
    """Sign with botocore itself; returns path, raw query, wire headers and the signing time."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers or {}, params=params)
    SigV4Auth(Credentials(KEY_ID, SECRET), "cognito-identity", REGION).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    wire = {"Host": parts.netloc, **dict(prepared.headers.items())}
    now = datetime.strptime(wire["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return parts.path, parts.query, wire, now


def refused(call: Callable[[], object]) -> BrokerError:
    with pytest.raises(BrokerError) as caught:
        call()
    return caught.value


# --- the contract's test vector --------------------------------------------------------
def test_contract_vector_is_accepted() -> None:
    assert verify(vector_headers()) == KEY_ID


@pytest.mark.parametrize("position", [0, 31, 63])
def test_contract_vector_with_one_signature_character_changed_is_refused(position: int) -> None:
    changed = "0" if SIGNATURE[position] != "0" else "1"
    signature = SIGNATURE[:position] + changed + SIGNATURE[position + 1 :]
    headers = vector_headers(Authorization=AUTHORIZATION.replace(SIGNATURE, signature))
    error = refused(lambda: verify(headers))
    assert isinstance(error, InvalidSignatureException)
    assert error.message == SIGNATURE_MISMATCH


@pytest.mark.parametrize(
    "rename", [str.lower, str.upper, str.title], ids=["lower", "upper", "title"]
)
def test_header_names_in_any_case(rename: Callable[[str], str]) -> None:
    headers = {rename(name): value for name, value in vector_headers().items()}
    assert verify(headers) == KEY_ID


def test_header_values_are_trimmed_and_spaces_collapsed() -> None:
    assert verify(vector_headers(Content_Type="  application/x-amz-json-1.1 \t")) == KEY_ID


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (AUTHORIZATION, KEY_ID),
        (AUTHORIZATION.replace(", ", ","), KEY_ID),
        (
            f"AWS4-HMAC-SHA256 Signature={SIGNATURE}, Credential={SCOPE}, "
            f"SignedHeaders={SIGNED_HEADERS}",
            KEY_ID,
        ),
    ],
    ids=["canonical", "no-spaces", "reordered"],
)
def test_authorization_parameters_in_any_order(authorization: str, expected: str) -> None:
    assert verify(vector_headers(Authorization=authorization)) == expected


# --- requests signed by botocore ------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "url", "headers", "params"),
    [
        (b"{}", f"https://{HOST}/", {"X-Amz-Target": TARGET}, None),
        (b"", f"https://{HOST}/", None, None),
        (BODY, f"https://{HOST}/", {"Content-Type": "application/x-amz-json-1.1"}, None),
        ('{"n": "é\u2603"}'.encode(), f"https://{HOST}/", {"X-Extra": "  a   b\tc "}, None),
        (bytes(range(256)), f"https://{HOST}/", {"User-Agent": "Boto3/1.40"}, None),
        (b"{}", f"https://{HOST}/?b=2&a=1&a=0&empty=", None, None),
        (b"{}", f"https://{HOST}/?Action=Get%20It&x=%2F~%3D%C3%A9", None, None),
        (b"{}", f"https://{HOST}/", None, {"z": "a b/c", "é": "+&=", "a": ""}),
        (b"{}", f"https://{HOST}:8443/a/./b//c/../d", None, None),
        (b"{}", "http://localhost:5000/", {"X-Amz-Target": TARGET}, None),
        (
            b'{"a":1}',
            f"https://{HOST}/",
            {"X-Amz-Content-SHA256": hashlib.sha256(b'{"a":1}').hexdigest()},
            None,
        ),
    ],
    ids=[
        "empty-object",
        "empty-body",
        "vector-body",
        "unicode-and-whitespace-header",
        "binary-body-unsigned-user-agent",
        "query-unsorted-repeated",
        "query-encoded",
        "params",
        "port-and-dot-segments",
        "http-localhost",
        "content-sha256",
    ],
)
def test_botocore_signed_requests_verify(
    body: bytes, url: str, headers: dict[str, str] | None, params: dict[str, str] | None
) -> None:
    path, query, wire, now = botocore_signed(body, url, headers, params)
    assert verify(wire, body, now=now, path=path, query=query) == KEY_ID


def test_botocore_signed_request_with_another_key_returns_that_key() -> None:
    request = AWSRequest(method="POST", url=f"https://{HOST}/", data=b"{}")
    SigV4Auth(Credentials("AKIDOTHER", "another-secret"), "cognito-identity", REGION).add_auth(
        request
    )
    headers = {"Host": HOST, **dict(request.headers.items())}
    now = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert verify(headers, b"{}", now=now) == "AKIDOTHER"


def test_botocore_signed_request_with_changed_query_is_refused() -> None:
    path, query, wire, now = botocore_signed(b"{}", f"https://{HOST}/?a=1")
    error = refused(lambda: verify(wire, b"{}", now=now, path=path, query="a=2"))
    assert isinstance(error, InvalidSignatureException)
    assert error.message == SIGNATURE_MISMATCH


# --- every error rule -------------------------------------------------------------------
def swap(old: str, new: str) -> str:
    """The vector's Authorization header with one piece replaced."""
    assert old in AUTHORIZATION
    return AUTHORIZATION.replace(old, new)


def unsigned(*names: str) -> str:
    return " ".join(UNSIGNED.format(name) for name in names)


ERROR_CASES: list[tuple[str, dict[str, str], type[BrokerError], str]] = [
    (
        "no-authorization",
        vector_headers(Authorization=None),
        MissingAuthenticationTokenException,
        "Missing Authentication Token",
    ),
    (
        "blank-authorization",
        vector_headers(Authorization="   "),
        MissingAuthenticationTokenException,
        "Missing Authentication Token",
    ),
    (
        "other-scheme",
        vector_headers(Authorization="Bearer abc.def"),
        IncompleteSignatureException,
        "Authorization header must use the 'AWS4-HMAC-SHA256' algorithm.",
    ),
    (
        "algorithm-only",
        vector_headers(Authorization="AWS4-HMAC-SHA256"),
        IncompleteSignatureException,
        " ".join(MISSING.format(p) for p in ("Credential", "SignedHeaders", "Signature")),
    ),
    (
        "no-signature",
        vector_headers(Authorization=AUTHORIZATION.split(", Signature=")[0]),
        IncompleteSignatureException,
        MISSING.format("Signature"),
    ),
    (
        "empty-credential",
        vector_headers(Authorization=swap(f"Credential={SCOPE}", "Credential=")),
        IncompleteSignatureException,
        MISSING.format("Credential"),
    ),
    (
        "element-without-equals",
        vector_headers(Authorization=AUTHORIZATION + ", junk"),
        IncompleteSignatureException,
        "Authorization header contains an element that is not a key=value pair.",
    ),
    (
        "repeated-parameter",
        vector_headers(Authorization=AUTHORIZATION + f", Signature={SIGNATURE}"),
        IncompleteSignatureException,
        "Authorization header must hold exactly one each of 'Credential', 'SignedHeaders' "
        "and 'Signature'.",
    ),
    (
        "unknown-parameter",
        vector_headers(Authorization=AUTHORIZATION + ", Extra=1"),
        IncompleteSignatureException,
        "Authorization header must hold exactly one each of 'Credential', 'SignedHeaders' "
        "and 'Signature'.",
    ),
    (
        "credential-four-parts",
        vector_headers(Authorization=swap("/aws4_request", "")),
        IncompleteSignatureException,
        "Credential must have exactly 5 slash-delimited elements, "
        "e.g. keyid/date/region/service/term.",
    ),
    (
        "credential-empty-part",
        vector_headers(Authorization=swap("/us-east-1/", "//")),
        IncompleteSignatureException,
        "Credential must have exactly 5 slash-delimited elements, "
        "e.g. keyid/date/region/service/term.",
    ),
    (
        "credential-bad-date",
        vector_headers(Authorization=swap("/20150830/", "/2015-8-30/")),
        IncompleteSignatureException,
        "Credential date must be in the yyyyMMdd format.",
    ),
    (
        "signed-headers-without-host",
        vector_headers(Authorization=swap("content-type;host;", "content-type;")),
        IncompleteSignatureException,
        "'Host' must be a 'SignedHeader' in the AWS Authorization.",
    ),
    (
        "signed-headers-empty-name",
        vector_headers(Authorization=swap("host;", "host;;")),
        IncompleteSignatureException,
        "SignedHeaders must be a ';'-separated list of header names.",
    ),
    (
        "signature-upper-case",
        vector_headers(Authorization=swap(SIGNATURE, SIGNATURE.upper())),
        IncompleteSignatureException,
        "Signature must be 64 lower-case hexadecimal characters.",
    ),
    (
        "signature-short",
        vector_headers(Authorization=swap(SIGNATURE, SIGNATURE[:-1])),
        IncompleteSignatureException,
        "Signature must be 64 lower-case hexadecimal characters.",
    ),
    (
        "signature-not-hex",
        vector_headers(Authorization=swap(SIGNATURE, "g" + SIGNATURE[1:])),
        IncompleteSignatureException,
        "Signature must be 64 lower-case hexadecimal characters.",
    ),
    (
        "no-amz-date",
        vector_headers(X_Amz_Date=None),
        IncompleteSignatureException,
        "Authorization header requires existence of a 'X-Amz-Date' header.",
    ),
    *[
        (
            f"amz-date-{bad}",
            vector_headers(X_Amz_Date=bad),
            IncompleteSignatureException,
            "X-Amz-Date must be in the yyyyMMdd'T'HHmmss'Z' format.",
        )
        for bad in (
            "2015-08-30T12:36:00Z",
            "20150830T123600",
            "20151330T123600Z",
            "٢0150830T123600Z",
        )
    ],
    (
        "signed-header-absent",
        vector_headers(X_Amz_Target=None),
        IncompleteSignatureException,
        "Signed header 'x-amz-target' is not present in the request.",
    ),
    (
        "unknown-key",
        vector_headers(Authorization=swap(KEY_ID, "AKIDUNKNOWN")),
        UnrecognizedClientException,
        INVALID_CLIENT,
    ),
    (
        "security-token",
        vector_headers(
            X_Amz_Security_Token="FQoGZXIvYXdzEXAMPLE",
            Authorization=swap(SIGNED_HEADERS, SIGNED_HEADERS + ";x-amz-security-token"),
        ),
        UnrecognizedClientException,
        INVALID_CLIENT,
    ),
    (
        "scope-date",
        vector_headers(Authorization=swap("/20150830/", "/20150831/")),
        InvalidSignatureException,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20150831' != '20150830', from '20150830T123600Z'.",
    ),
    (
        "scope-region",
        vector_headers(Authorization=swap("/us-east-1/", "/us-west-2/")),
        InvalidSignatureException,
        "Credential should be scoped to a valid region. ",
    ),
    (
        "scope-service",
        vector_headers(Authorization=swap("/cognito-identity/", "/sts/")),
        InvalidSignatureException,
        "Credential should be scoped to correct service: 'cognito-identity'. ",
    ),
    (
        "scope-terminator",
        vector_headers(Authorization=swap("/aws4_request", "/aws5_request")),
        InvalidSignatureException,
        "Credential should be scoped with a valid terminator: 'aws4_request'. ",
    ),
    (
        "content-sha256-mismatch",
        vector_headers(
            X_Amz_Content_Sha256="0" * 64,
            Authorization=swap("x-amz-date;", "x-amz-content-sha256;x-amz-date;"),
        ),
        InvalidSignatureException,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
    *[
        (
            f"unsigned-{name.lower()}",
            vector_headers(**{name.replace("-", "_"): "0" * 64}),
            IncompleteSignatureException,
            unsigned(name.lower()),
        )
        for name in ("X-Amz-Content-Sha256", "X-Amz-Security-Token", "X-Amz-Meta-Extra")
    ],
    (
        "target-not-signed",
        vector_headers(Authorization=swap(";x-amz-target", "")),
        IncompleteSignatureException,
        unsigned("x-amz-target"),
    ),
    (
        "date-not-signed",
        vector_headers(Authorization=swap(";x-amz-date", "")),
        IncompleteSignatureException,
        unsigned("x-amz-date"),
    ),
    (
        "signed-header-changed",
        vector_headers(X_Amz_Target="AWSCognitoIdentityService.DeleteIdentityPool"),
        InvalidSignatureException,
        SIGNATURE_MISMATCH,
    ),
]


@pytest.mark.parametrize(
    ("headers", "error_class", "message"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_error_rules(headers: dict[str, str], error_class: type[BrokerError], message: str) -> None:
    error = refused(lambda: verify(headers))
    assert type(error) is error_class
    assert error.message == message
    assert SIGNATURE not in error.message
    assert SECRET not in error.message


# --- replaying a signature against another operation ----------------------------------
def signed_without_target(operation: str) -> tuple[dict[str, str], datetime]:
    """A request whose signature covers only host and x-amz-date (a client that did not sign
    X-Amz-Target, as botocore always does), with the target header added afterwards."""
    _, _, wire, now = botocore_signed(b"{}")
    assert "x-amz-target" not in wire["Authorization"]
    return {**wire, "X-Amz-Target": f"AWSCognitoIdentityService.{operation}"}, now


@pytest.mark.parametrize("operation", ["DescribeIdentityPool", "DeleteIdentityPool"])
def test_a_signature_that_does_not_cover_the_target_is_refused(operation: str) -> None:
    """A signature captured on DescribeIdentityPool must not be replayable with the target
    swapped to DeleteIdentityPool: an unsigned x-amz-* header is refused before any check."""
    headers, now = signed_without_target(operation)
    error = refused(lambda: verify(headers, b"{}", now=now))
    assert type(error) is IncompleteSignatureException
    assert error.message == unsigned("x-amz-target")
    assert headers["Authorization"].rsplit("=", 1)[1] not in error.message


def test_several_unsigned_amz_headers_are_all_named() -> None:
    headers, now = signed_without_target("DeleteIdentityPool")
    headers["X-Amz-Security-Token"] = "FQoGZXIvYXdzEXAMPLE"
    error = refused(lambda: verify(headers, b"{}", now=now))
    assert type(error) is IncompleteSignatureException
    assert error.message == unsigned("x-amz-security-token", "x-amz-target")
    assert "FQoGZXIvYXdzEXAMPLE" not in error.message


def test_botocore_signs_every_amz_header_it_sends() -> None:
    headers = {
        "X-Amz-Target": TARGET,
        "X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest(),
        "X-Amz-Meta-Extra": "kept",
    }
    path, query, wire, now = botocore_signed(b"{}", headers=headers)
    assert verify(wire, b"{}", now=now, path=path, query=query) == KEY_ID


def test_tampered_body_is_refused() -> None:
    error = refused(lambda: verify(vector_headers(), BODY.replace(b"user-123", b"user-124")))
    assert isinstance(error, InvalidSignatureException)
    assert error.message == SIGNATURE_MISMATCH


def test_unsigned_payload_is_not_trusted_in_place_of_the_body_hash() -> None:
    request = AWSRequest(method="POST", url=f"https://{HOST}/", data=BODY)
    request.context["payload_signing_enabled"] = False
    SigV4Auth(Credentials(KEY_ID, SECRET), "cognito-identity", REGION).add_auth(request)
    headers = {"Host": HOST, **dict(request.headers.items())}
    assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    now = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    error = refused(lambda: verify(headers, BODY, now=now))
    assert isinstance(error, InvalidSignatureException)
    assert error.message == SIGNATURE_MISMATCH


@pytest.mark.parametrize(
    ("query", "canonical_equivalent"),
    [("b=2&a=1", "a=1&b=2"), ("x=%7e%2f", "x=~%2F"), ("x=a+b", "x=a%20b")],
    ids=["order", "escape-case-and-unreserved", "plus-is-space"],
)
def test_query_string_is_canonicalised_per_spec(query: str, canonical_equivalent: str) -> None:
    path, _, wire, now = botocore_signed(b"{}", f"https://{HOST}/?{canonical_equivalent}")
    assert verify(wire, b"{}", now=now, path=path, query=query) == KEY_ID


def test_region_other_than_configured_is_refused() -> None:
    error = refused(lambda: verify(vector_headers(), region="eu-west-1"))
    assert isinstance(error, InvalidSignatureException)
    assert error.message == "Credential should be scoped to a valid region. "


def test_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(vector_headers(), now=datetime(2015, 8, 30, 12, 36))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "AWS4-HMAC-SHA256 x"}, True),
        ({"authorization": "x"}, True),
        ({"AUTHORIZATION": "x", "Host": HOST}, True),
        ({"Authorization": "  "}, False),
        ({"Host": HOST}, False),
        ({}, False),
    ],
)
def test_has_authorization(headers: dict[str, str], expected: bool) -> None:
    assert has_authorization(headers) is expected


# --- clock skew ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "offset",
    [timedelta(0), timedelta(minutes=4, seconds=59), timedelta(minutes=5), -timedelta(minutes=5)],
    ids=["same", "4m59s-old", "5m-old", "5m-ahead"],
)
def test_skew_within_limit_is_accepted(offset: timedelta) -> None:
    assert verify(vector_headers(), now=SIGNED_AT + offset) == KEY_ID


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (
            timedelta(minutes=5, seconds=1),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z "
            "(20150830T124101Z - 5 min.)",
        ),
        (
            -timedelta(minutes=6),
            "Signature not yet current: 20150830T123600Z is still later than "
            "20150830T123500Z (20150830T123000Z + 5 min.)",
        ),
    ],
    ids=["5m01s-old", "6m-in-the-future"],
)
def test_skew_beyond_limit_is_refused(offset: timedelta, message: str) -> None:
    error = refused(lambda: verify(vector_headers(), now=SIGNED_AT + offset))
    assert isinstance(error, InvalidSignatureException)
    assert error.message == message


# --- tampering property -----------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), data=st.data())
def test_any_tampering_is_refused(body: bytes, data: st.DataObject) -> None:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET}
    path, query, wire, now = botocore_signed(body, headers=headers)
    assert verify(wire, body, now=now, path=path, query=query) == KEY_ID

    if body:
        index = data.draw(st.integers(0, len(body) - 1), label="index")
        flip = data.draw(st.integers(1, 255), label="xor")
        tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
        error = refused(lambda: verify(wire, tampered, now=now, path=path, query=query))
        assert isinstance(error, InvalidSignatureException)
        assert error.message == SIGNATURE_MISMATCH

    name = data.draw(st.sampled_from(["Content-Type", "Host", "X-Amz-Date", "X-Amz-Target"]))
    if name == "X-Amz-Date":
        shift = data.draw(st.integers(1, 240) | st.integers(-240, -1), label="seconds")
        value = (now + timedelta(seconds=shift)).strftime("%Y%m%dT%H%M%SZ")
    else:
        value = data.draw(
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1).filter(
                lambda v: v != wire[name]
            ),
            label="value",
        )
    changed = {**wire, name: value}
    error = refused(lambda: verify(changed, body, now=now, path=path, query=query))
    assert isinstance(error, InvalidSignatureException)
