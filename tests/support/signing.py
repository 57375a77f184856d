"""Raw AWS JSON 1.1 requests signed by botocore's own SigV4 signer, for tests that need to
send what boto3 never would (bad bodies, old dates, foreign scopes)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TARGET_PREFIX = "AWSCognitoIdentityService."
CONTENT_TYPE = "application/x-amz-json-1.1"


def signed_headers(
    url: str,
    body: bytes,
    *,
    operation: str | None,
    key_id: str,
    secret: str,
    region: str = "us-east-1",
    service: str = "cognito-identity",
    when: dt.datetime | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    headers = {"Content-Type": CONTENT_TYPE, **(extra or {})}
    if operation is not None:
        headers["X-Amz-Target"] = TARGET_PREFIX + operation
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    signer = SigV4Auth(Credentials(key_id, secret), service, region)
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    return dict(request.headers.items())


def post(
    url: str,
    body: bytes,
    *,
    operation: str | None,
    key_id: str,
    secret: str,
    tamper: Any = None,
    **kwargs: Any,
) -> requests.Response:
    """Sign and send; ``tamper(body, headers) -> (body, headers)`` changes things after."""
    headers = signed_headers(url, body, operation=operation, key_id=key_id, secret=secret, **kwargs)
    if tamper is not None:
        body, headers = tamper(body, headers)
    return requests.post(url, data=body, headers=headers, timeout=10)
