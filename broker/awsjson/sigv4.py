"""Verify AWS Signature Version 4 on requests to the AWS JSON front door (contract section 2).

Why: developer-authenticated operations must prove that the caller holds one of the
configured long-term key pairs, and boto3 proves it with SigV4. The server never trusts
what the client claims to have signed: it rebuilds the canonical request from the
client's own SignedHeaders list and the real body hash, signs it with the configured
secret, and compares in constant time.

Implements, from the AWS SigV4 reference ("Create a signed AWS API request",
docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html):

- "Elements of an AWS API request signature": the ``Authorization`` header, credential
  scope and ``X-Amz-Date`` (temporary credentials are refused: we only accept the
  configured keys);
- step 1 "Create a canonical request": canonical URI and query string, canonical and
  signed headers, hashed payload, mirroring botocore's ``SigV4Auth`` for a POST; ``host``
  and every ``x-amz-*`` header sent must be signed (the operation is ``X-Amz-Target``);
- step 2 "Create a hash of the canonical request" and step 3 "Create a string to sign";
- step 4 "Calculate the signature": the derived signing key, cached per scope.

Error classes and their wording follow AWS (contract section 2). Messages never echo the
signature, the secret or the raw ``Authorization`` header.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

from broker.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = ["ALGORITHM", "MAX_SKEW", "has_authorization", "verify_request"]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=5)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_PREFIX = "x-amz-"  # every request header with this prefix must be signed
SIGNING_KEY_CACHE_SIZE = 256  # (secret, date, region, service) tuples: keys x days x scopes
SCOPE_CACHE_SIZE = 256  # (Credential, SignedHeaders) pairs: clients' keys x days x header sets
_AUTH_PARAMS = ("Credential", "SignedHeaders", "Signature")
_HEX_DIGITS = frozenset("0123456789abcdef")
_SIGNATURE_LENGTH = 64

MISSING_AUTHENTICATION = "Missing Authentication Token"
UNRECOGNIZED_CLIENT = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


def has_authorization(headers: Mapping[str, str]) -> bool:
    """Tell whether a request carries a non-blank ``Authorization`` header, in any case."""
    return any(name.lower() == "authorization" and value.strip() for name, value in headers.items())


def verify_request(
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    credentials: Mapping[str, str],
    region: str,
    service: str = "cognito-identity",
    now: datetime,
    max_skew: timedelta = MAX_SKEW,
) -> str:
    """Check the request's SigV4 signature and return the access key id that made it.

    ``path`` is the request path as sent on the wire (still percent-encoded, as botocore
    signs it) and ``query_string`` the raw query without ``?``. ``now`` must be aware.
    Raises the contract's signature errors; never returns on a bad request.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    lowered, authorization = _read_headers(headers)
    if not authorization:
        raise MissingAuthenticationTokenException(MISSING_AUTHENTICATION)
    credential, signed_names, signature = _parse_authorization(authorization)
    key_id, scope_date = credential[0], credential[1]

    amz_date = lowered.get("x-amz-date", "")
    if not amz_date:
        raise IncompleteSignatureException(
            "Authorization header requires existence of a 'X-Amz-Date' header."
        )
    signed_at = _parse_amz_date(amz_date)
    for name in signed_names:
        if name not in lowered:
            raise IncompleteSignatureException(
                f"Signed header '{name}' is not present in the request."
            )
    _require_amz_headers_signed(lowered, signed_names)

    if "x-amz-security-token" in lowered:
        raise UnrecognizedClientException(UNRECOGNIZED_CLIENT)
    secret = credentials.get(key_id)
    if secret is None:
        raise UnrecognizedClientException(UNRECOGNIZED_CLIENT)

    _check_skew(amz_date, signed_at, now.astimezone(UTC), max_skew)
    _check_scope(credential, amz_date, region, service)

    body_hash = hashlib.sha256(body).hexdigest()
    claimed_hash = lowered.get("x-amz-content-sha256")
    if claimed_hash is not None and claimed_hash not in (UNSIGNED_PAYLOAD, body_hash):
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )

    canonical_request = "\n".join(
        (
            method.upper(),
            _canonical_uri(path),
            _canonical_query(query_string),
            "".join(f"{name}:{lowered[name]}\n" for name in signed_names),
            ";".join(signed_names),
            body_hash,
        )
    )
    string_to_sign = "\n".join(
        (
            ALGORITHM,
            amz_date,
            f"{scope_date}/{region}/{service}/{TERMINATOR}",
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        )
    )
    key = _signing_key(secret, scope_date, region, service)
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidSignatureException(SIGNATURE_MISMATCH)
    return key_id


def _read_headers(headers: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The headers under lower-case names, and the Authorization header; one pass.

    Names are lower-cased and values trimmed with inner whitespace runs collapsed
    (Trimall); a name seen twice gets its values joined with ``,``, as botocore signs
    repeated headers. The Authorization header is kept as sent (joined with ``,`` if
    repeated), trimmed of HTTP's own whitespace (space and tab) only. Not Trimall:
    ``str.split()`` also takes a no-break space or a control character for a separator,
    which would let a changed header pass for the one that was signed.
    """
    lowered: dict[str, str] = {}
    authorization: list[str] = []
    for name, value in headers.items():
        key = name.lower()
        if key == "authorization":
            authorization.append(value.strip(" \t"))
        trimmed = " ".join(value.split())
        lowered[key] = f"{lowered[key]},{trimmed}" if key in lowered else trimmed
    return lowered, ",".join(authorization)


def _parse_authorization(value: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """Split ``AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`` (any order)."""
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Authorization header must use the '{ALGORITHM}' algorithm."
        )
    params: dict[str, str] = {}
    for part in rest.split(",") if rest.strip(" ") else ():
        key, equals, param = part.strip(" ").partition("=")
        if not equals:
            raise IncompleteSignatureException(
                "Authorization header contains an element that is not a key=value pair."
            )
        if key not in _AUTH_PARAMS or key in params:
            raise IncompleteSignatureException(
                "Authorization header must hold exactly one each of 'Credential', "
                "'SignedHeaders' and 'Signature'."
            )
        params[key] = param
    missing = [name for name in _AUTH_PARAMS if not params.get(name)]
    if missing:
        raise IncompleteSignatureException(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        )
    credential, signed_names = _parse_scope(params["Credential"], params["SignedHeaders"])

    signature = params["Signature"]
    if len(signature) != _SIGNATURE_LENGTH or not _HEX_DIGITS.issuperset(signature):
        raise IncompleteSignatureException(
            f"Signature must be {_SIGNATURE_LENGTH} lower-case hexadecimal characters."
        )
    return credential, signed_names, signature


@lru_cache(maxsize=SCOPE_CACHE_SIZE)
def _parse_scope(
    credential_param: str, signed_headers_param: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Credential's five elements and the sorted SignedHeaders names, checked.

    Cached: a client sends the same two parameters with every request of a day (only the
    signature changes), and splitting, checking and sorting them cost more than the
    lookup. Raising is never cached, so a bad parameter fails each time the same way.
    """
    credential = tuple(credential_param.split("/"))
    if len(credential) != 5 or not all(credential):
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, "
            "e.g. keyid/date/region/service/term."
        )
    if len(credential[1]) != 8 or not (credential[1].isascii() and credential[1].isdigit()):
        raise IncompleteSignatureException("Credential date must be in the yyyyMMdd format.")

    signed_names = tuple(sorted({name.lower() for name in signed_headers_param.split(";")}))
    if "" in signed_names:
        raise IncompleteSignatureException(
            "SignedHeaders must be a ';'-separated list of header names."
        )
    if "host" not in signed_names:
        raise IncompleteSignatureException(
            "'Host' must be a 'SignedHeader' in the AWS Authorization."
        )
    return credential, signed_names


def _require_amz_headers_signed(lowered: Mapping[str, str], signed_names: tuple[str, ...]) -> None:
    """Every ``x-amz-*`` header the request carries must be in SignedHeaders.

    Why: the operation is named by ``X-Amz-Target`` alone, so a signature that left it out
    could be replayed against another operation (a signed DescribeIdentityPool resent as
    DeleteIdentityPool). botocore signs every ``x-amz-*`` header it sends, so SDKs pass.
    """
    signed = set(signed_names)
    unsigned = sorted(
        name for name in lowered if name.startswith(AMZ_PREFIX) and name not in signed
    )
    if unsigned:
        raise IncompleteSignatureException(
            " ".join(
                f"Header '{name}' is present in the request but not in SignedHeaders: "
                "every 'x-amz-*' header must be signed."
                for name in unsigned
            )
        )


def _parse_amz_date(value: str) -> datetime:
    """Parse ``yyyymmddTHHMMSSZ`` strictly: fixed width, ASCII digits, a real instant."""
    digits = value[:8] + value[9:15]
    if len(value) == 16 and value[8] + value[15] == "TZ" and digits.isascii() and digits.isdigit():
        try:
            return datetime.fromisoformat(value)  # 3.11+: ISO 8601 basic format, "Z" is UTC
        except ValueError:
            pass
    raise IncompleteSignatureException("X-Amz-Date must be in the yyyyMMdd'T'HHmmss'Z' format.")


def _check_skew(amz_date: str, signed_at: datetime, now: datetime, max_skew: timedelta) -> None:
    """Refuse a request dated more than ``max_skew`` from the server clock, as AWS words it."""
    if signed_at < now - max_skew:
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than "
            f"{_stamp(now - max_skew)} ({_stamp(now)} - {_minutes(max_skew)})"
        )
    if signed_at > now + max_skew:
        raise InvalidSignatureException(
            f"Signature not yet current: {amz_date} is still later than "
            f"{_stamp(now + max_skew)} ({_stamp(now)} + {_minutes(max_skew)})"
        )


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g} min."


def _check_scope(credential: tuple[str, ...], amz_date: str, region: str, service: str) -> None:
    """The credential scope must name the request's day, our region and our service."""
    _, scope_date, scope_region, scope_service, terminator = credential
    if scope_date != amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope_date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    if scope_region != region:
        raise InvalidSignatureException("Credential should be scoped to a valid region. ")
    if scope_service != service:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'. "
        )
    if terminator != TERMINATOR:
        raise InvalidSignatureException(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}'. "
        )


def _stamp(moment: datetime) -> str:
    return moment.strftime(AMZ_DATE_FORMAT)


def _canonical_uri(path: str) -> str:
    """botocore: remove dot segments and empty segments, then encode all but ``/`` and ``~``."""
    if path == "/":
        return path
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return quote("/" + "/".join(segments) + trailing, safe="/~")


def _canonical_query(query_string: str) -> str:
    """Pairs decoded, re-encoded per the spec (only RFC 3986 unreserved kept), then sorted."""
    if not query_string:
        return ""
    pairs = []
    for pair in query_string.split("&"):
        name, _, value = pair.partition("=")
        pairs.append((_encode(name), _encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _encode(component: str) -> str:
    # "+" is a space on the wire: botocore sends AWSRequest params form-encoded but signs %20.
    return quote(unquote_to_bytes(component.replace("+", " ")), safe="-_.~")


@lru_cache(maxsize=SIGNING_KEY_CACHE_SIZE)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), terminator)."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key
