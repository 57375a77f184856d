"""Example backend: hands Identity Broker tokens to its own, already authenticated, users.

This is the "developer-authenticated identities" flow of Amazon Cognito: the backend has
logged its user in by its own means, then asks the broker (with developer credentials that
only the backend holds) for that user's stable identity id and a signed OpenID token, and
gives both to the user's app. Relying parties verify the token against the broker's JWKS.

It runs beside the broker in docker-compose.yml and reaches it over the compose network at
http://broker:8000. Standard library HTTP server plus boto3; configuration from the
environment:

    IDENTITY_BROKER_URL                the broker's base URL        http://broker:8000
    IDENTITY_BROKER_ACCESS_KEY_ID      one access key id of the broker's BROKER_CREDENTIALS
    IDENTITY_BROKER_SECRET_ACCESS_KEY  its secret
    IDENTITY_BROKER_REGION             the broker's BROKER_REGION    us-east-1
    IDENTITY_POOL_NAME                 pool to use (created when missing)  example-backend
    DEVELOPER_PROVIDER_NAME            the pool's developer provider  login.example
    BACKEND_BIND                       HOST:PORT this server listens on  127.0.0.1:8080

Endpoints:

    GET /token?user=USER_ID   {"identity_id": ..., "token": ..., "expires_in": ...}
    GET /healthz              200 "ok"

The ``user`` query parameter stands in for the backend's own login session: a real backend
takes the user id from its authenticated session, never from what the client sends.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

TOKEN_DURATION_SECONDS = 900
MAX_USER_ID_LENGTH = 128
LIST_PAGE_SIZE = 60  # the largest MaxResults ListIdentityPools accepts

log = logging.getLogger("example-backend")


@dataclass(frozen=True)
class Options:
    broker_url: str
    access_key_id: str
    secret_access_key: str
    region: str
    pool_name: str
    provider: str
    bind_host: str
    bind_port: int

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> Options:
        missing = [
            name
            for name in ("IDENTITY_BROKER_ACCESS_KEY_ID", "IDENTITY_BROKER_SECRET_ACCESS_KEY")
            if not environ.get(name)
        ]
        if missing:
            raise SystemExit(f"example backend: set {' and '.join(missing)}")
        host, _, port = environ.get("BACKEND_BIND", "127.0.0.1:8080").rpartition(":")
        if not host or not port.isdigit():
            raise SystemExit("example backend: BACKEND_BIND must be HOST:PORT")
        return cls(
            broker_url=environ.get("IDENTITY_BROKER_URL", "http://broker:8000").rstrip("/"),
            access_key_id=environ["IDENTITY_BROKER_ACCESS_KEY_ID"],
            secret_access_key=environ["IDENTITY_BROKER_SECRET_ACCESS_KEY"],
            region=environ.get("IDENTITY_BROKER_REGION", "us-east-1"),
            pool_name=environ.get("IDENTITY_POOL_NAME", "example-backend"),
            provider=environ.get("DEVELOPER_PROVIDER_NAME", "login.example"),
            bind_host=host,
            bind_port=int(port),
        )


def broker_client(options: Options) -> Any:
    """A boto3 Cognito Identity client pointed at the broker instead of AWS."""
    return boto3.client(
        "cognito-identity",
        endpoint_url=options.broker_url,
        region_name=options.region,
        aws_access_key_id=options.access_key_id,
        aws_secret_access_key=options.secret_access_key,
        config=Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )


def find_or_create_pool(client: Any, name: str, provider: str) -> str:
    """The id of the pool called ``name``, created on first start (the name is the key)."""
    kwargs: dict[str, Any] = {"MaxResults": LIST_PAGE_SIZE}
    while True:
        page = client.list_identity_pools(**kwargs)
        for pool in page.get("IdentityPools", []):
            if pool["IdentityPoolName"] == name:
                return str(pool["IdentityPoolId"])
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    created = client.create_identity_pool(
        IdentityPoolName=name,
        AllowUnauthenticatedIdentities=False,
        DeveloperProviderName=provider,
    )
    log.info("created identity pool %s (%s)", name, created["IdentityPoolId"])
    return str(created["IdentityPoolId"])


def issue_token(client: Any, pool_id: str, provider: str, user_id: str) -> dict[str, Any]:
    """The user's identity id and a fresh OpenID token, from the broker's AWS API.

    This is GetOpenIdTokenForDeveloperIdentity, the call Cognito itself offers. The broker's
    simpler backend endpoint (``POST /v1/token``, docs/backend.md, being built at the time of
    writing) would replace it with one plain HTTP POST and no boto3: in its ``api_key`` mode,
    ``{IDENTITY_BROKER_URL}/v1/token`` with an ``X-Api-Key`` header (one of the broker's
    BROKER_BACKEND_API_KEYS) and the body ``{"user_id": user_id, "token_duration": 900}``.
    """
    response = client.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id,
        Logins={provider: user_id},
        TokenDuration=TOKEN_DURATION_SECONDS,
    )
    return {
        "identity_id": response["IdentityId"],
        "token": response["Token"],
        "expires_in": TOKEN_DURATION_SECONDS,
    }


class Handler(BaseHTTPRequestHandler):
    server_version = "example-backend"
    # Set once in main() before the server starts.
    client: Any = None
    pool_id = ""
    provider = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(HTTPStatus.OK, {"status": "ok"})
        elif url.path == "/token":
            self._token(parse_qs(url.query).get("user", [""])[0])
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def _token(self, user_id: str) -> None:
        if not 0 < len(user_id) <= MAX_USER_ID_LENGTH:
            self._send(HTTPStatus.BAD_REQUEST, {"error": "user must be 1 to 128 characters"})
            return
        try:
            body = issue_token(self.client, self.pool_id, self.provider, user_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            log.warning("broker refused the token request: %s", code)
            self._send(HTTPStatus.BAD_GATEWAY, {"error": f"broker: {code}"})
            return
        except BotoCoreError as exc:
            log.warning("broker unreachable: %s", type(exc).__name__)
            self._send(HTTPStatus.BAD_GATEWAY, {"error": "broker unreachable"})
            return
        self._send(HTTPStatus.OK, body)

    def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        # Path only: the query string carries the user id, the response a token.
        log.info("%s %s", self.command, urlsplit(self.path).path)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # As a container's PID 1 the process gets no default SIGTERM action: exit on it, so that
    # `docker compose stop` does not wait for the kill.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    options = Options.from_env(dict(os.environ))
    client = broker_client(options)
    Handler.client = client
    Handler.provider = options.provider
    Handler.pool_id = find_or_create_pool(client, options.pool_name, options.provider)
    server = ThreadingHTTPServer((options.bind_host, options.bind_port), Handler)
    log.info(
        "listening on %s:%d, broker %s, pool %s",
        options.bind_host,
        options.bind_port,
        options.broker_url,
        Handler.pool_id,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
