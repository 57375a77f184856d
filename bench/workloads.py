"""Set-up against a running server and the three token workloads' request files."""

from __future__ import annotations

import http.client
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from joserfc import jwt
from joserfc.jwk import KeySet

from bench import loadgen, presign

OPERATION = "GetOpenIdTokenForDeveloperIdentity"
PROVIDER = "login.bench"
MIX_NEW_EVERY = 5  # the mix: every 5th request is a new user, so 80 % returning / 20 % new


@dataclass(frozen=True)
class Workload:
    name: str
    new_every: int  # 0: returning users only; 1: new users only; k: one in k is new
    label: str


RETURNING = Workload("returning", 0, "returning users (identities exist)")
NEW = Workload("new", 1, "new users (each request creates an identity)")
MIX = Workload("mix", MIX_NEW_EVERY, "mix: 80 % returning, 20 % new users")
WORKLOADS = (RETURNING, NEW, MIX)


def create_pool(url: str, target: presign.Target, name: str) -> str:
    client = boto3.client(
        "cognito-identity",
        endpoint_url=url,
        region_name=target.region,
        aws_access_key_id=target.key_id,
        aws_secret_access_key=target.secret,
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10),
    )
    pool = client.create_identity_pool(
        IdentityPoolName=name, AllowUnauthenticatedIdentities=False, DeveloperProviderName=PROVIDER
    )
    pool_id: str = pool["IdentityPoolId"]
    return pool_id


def returning_file(path: Path, target: presign.Target, pool_id: str, users: int) -> Path:
    bodies = [presign.token_body(pool_id, PROVIDER, f"ret-{i}") for i in range(users)]
    return presign.write(path, target, OPERATION, bodies)


def new_file(path: Path, target: presign.Target, pool_id: str, tag: str, count: int) -> Path:
    bodies = [presign.token_body(pool_id, PROVIDER, f"new-{tag}-{i}") for i in range(count)]
    return presign.write(path, target, OPERATION, bodies)


def new_users_needed(workload: Workload, duration: float, max_rate: float) -> int:
    """Enough distinct new users that a run at ``max_rate`` never sends one twice."""
    if workload.new_every == 0:
        return 0
    return math.ceil(duration * max_rate / workload.new_every) + 1000


def seed(
    url: str, target: presign.Target, pool_id: str, users: int, workdir: Path, cpus: str
) -> loadgen.WrkResult:
    """Create the returning users' identities through the API itself (one wrk pass)."""
    path = returning_file(workdir / "seed.tsv", target, pool_id, users)
    result = each_once(url, path, users, workdir, cpus)
    if result.errors or result.requests < users:
        raise RuntimeError(f"seeding {users} identities failed: {result}")
    return result


def each_once(url: str, path: Path, count: int, workdir: Path, cpus: str) -> loadgen.WrkResult:
    """Send each of the first ``count`` requests of ``path`` once (16 connections): the pass
    that creates identities or fills the token cache before a measurement."""
    return loadgen.run(
        url,
        connections=16,
        duration=120,
        returning=None,
        new=path,
        new_every=1,
        limit=count,
        cpus=cpus,
        workdir=workdir,
        log=workdir / "wrk.log",
    )


def cache_hits_file(path: Path, host: str, api_key: str, users: int) -> Path:
    """``POST /v1/token`` in trusted API-key mode for ``user-0`` .. ``user-<users-1>``."""
    headers = {"Host": host, "Content-Type": "application/json", "X-Api-Key": api_key}
    bodies = [
        json.dumps({"user_id": f"user-{i}"}, separators=(",", ":")).encode() for i in range(users)
    ]
    return presign.write_plain(path, "/v1/token", headers, bodies)


def post(
    host_port: str, headers: dict[str, str], body: bytes, path: str = "/"
) -> tuple[int, dict[str, Any]]:
    host, _, port = host_port.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def check_broker(url: str, target: presign.Target, pool_id: str) -> str:
    """One pre-signed request by hand; the token must verify against the published JWKS."""
    body = presign.token_body(pool_id, PROVIDER, "ret-0")
    status, answer = post(target.host, presign.sign(target, OPERATION, body), body)
    if status != 200:
        raise RuntimeError(f"broker answered {status}: {answer}")
    host, _, port = target.host.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/.well-known/jwks_uri")
        keys = KeySet.import_key_set(json.loads(conn.getresponse().read()))
    finally:
        conn.close()
    token = jwt.decode(str(answer["Token"]), keys, algorithms=["RS512"])
    if token.claims["sub"] != answer["IdentityId"] or token.claims["aud"] != pool_id:
        raise RuntimeError(f"token claims do not match the answer: {token.claims}")
    return str(answer["IdentityId"])


def check_moto(target: presign.Target, pool_id: str) -> None:
    body = presign.token_body(pool_id, PROVIDER, "ret-0")
    status, answer = post(target.host, presign.sign(target, OPERATION, body), body)
    if status != 200 or "IdentityId" not in answer:
        raise RuntimeError(f"moto_server answered {status}: {answer}")
