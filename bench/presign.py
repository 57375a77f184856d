"""Requests pre-signed with botocore's own SigV4 signer, written for bench/token.lua.

wrk cannot sign, and a SigV4 signature is good for five minutes either side of its
``X-Amz-Date``, so the harness signs each set right before the run that sends it. Large
sets are signed by two processes (the servers are idle meanwhile).
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench import procs

TARGET_PREFIX = "AWSCognitoIdentityService."
CONTENT_TYPE = "application/x-amz-json-1.1"
SERVICE = "cognito-identity"
PARALLEL_ABOVE = 5_000
HEADER_NAMES = ("Host", "Content-Type", "X-Amz-Target", "X-Amz-Date", "Authorization")


@dataclass(frozen=True)
class Target:
    """Where signed requests go and with which key."""

    host: str  # "127.0.0.1:PORT": botocore signs the Host it derives from the URL
    key_id: str
    secret: str
    region: str = "us-east-1"

    @property
    def url(self) -> str:
        return f"http://{self.host}/"


def token_body(pool_id: str, provider: str, user: str) -> bytes:
    return json.dumps(
        {"IdentityPoolId": pool_id, "Logins": {provider: user}}, separators=(",", ":")
    ).encode()


def sign(target: Target, operation: str, body: bytes) -> dict[str, str]:
    """The headers botocore sends for one AWS JSON 1.1 call, Host included."""
    headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET_PREFIX + operation}
    request = AWSRequest(method="POST", url=target.url, data=body, headers=headers)
    SigV4Auth(Credentials(target.key_id, target.secret), SERVICE, target.region).add_auth(request)
    signed = dict(request.headers.items())
    signed["Host"] = target.host
    return signed


def _sign_chunk(args: tuple[Target, str, list[bytes]]) -> list[str]:
    target, operation, bodies = args
    lines = []
    for body in bodies:
        headers = sign(target, operation, body)
        values = [headers[name] for name in HEADER_NAMES]
        lines.append("\t".join([*values, body.decode()]))
    return lines


def write(path: Path, target: Target, operation: str, bodies: Sequence[bytes]) -> Path:
    """Sign every body and write the file bench/token.lua reads."""
    bodies = list(bodies)
    if len(bodies) > PARALLEL_ABOVE:
        half = len(bodies) // 2
        chunks = [(target, operation, bodies[:half]), (target, operation, bodies[half:])]
        with multiprocessing.get_context("fork").Pool(2, initializer=procs.quiet_child) as pool:
            lines = [line for part in pool.map(_sign_chunk, chunks) for line in part]
    else:
        lines = _sign_chunk((target, operation, bodies))
    with path.open("w") as out:
        out.write("POST\t/\n")
        out.write("\t".join(HEADER_NAMES) + "\n")
        for line in lines:
            out.write(line + "\n")
    return path


def write_plain(
    path: Path, target_path: str, headers: dict[str, str], bodies: Sequence[bytes]
) -> Path:
    """Unsigned requests (the backend door authenticates with an API key) in the same format."""
    names = list(headers)
    with path.open("w") as out:
        out.write(f"POST\t{target_path}\n")
        out.write("\t".join(names) + "\n")
        values = "\t".join(headers[name] for name in names)
        for body in bodies:
            out.write(f"{values}\t{body.decode()}\n")
    return path
