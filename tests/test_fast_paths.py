"""Shortcuts taken on the token path for speed must give what the general code they stand
for gives: each is compared here with that code, on ordinary and on odd input."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.datastructures import EnvironHeaders

from broker.doors import Exchange

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
