"""Signing-key rotation and keys sealed at rest (issue 5).

A token signed before a rotation still verifies after it; tokens signed after it carry the
new kid in every worker; the old key leaves the JWKS once every token it signed has expired
(the longest TokenDuration plus clock skew); keys in Redis are sealed under the KEK."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import time
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from support.clients import cognito_client, create_developer_pool
from support.processes import BrokerServer, ProcessStartError, RedisServer, broker_on_own_redis
from support.signing import signed_headers

from broker.app.factory import create_app
from broker.store.connection import RedisConnector
from broker.store.signing_keys import RedisSigningKeys
from broker.tokens.keys import KeyRing, KeySet, RedisKeySource
from broker.tokens.sealing import KeyEncryptionError, KeySealer
from config.keys import DEFAULT_RETENTION_SECONDS
from config.settings import Settings

KEY_ID, SECRET = "AKIDROTATE", "rotation-test-secret-0123456789"
PROVIDER = "login.rotate"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def settings_for(redis_url: str, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "BROKER_CREDENTIALS": f"{KEY_ID}:{SECRET}",
            "BROKER_KEY_REFRESH_SECONDS": "0",
            **extra,
        }
    )


def call(client: FlaskClient, clock: Clock, operation: str, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    when = dt.datetime.fromtimestamp(clock(), dt.UTC)
    headers = signed_headers(
        "http://localhost/", raw, operation=operation, key_id=KEY_ID, secret=SECRET, when=when
    )
    response = client.post("/", data=raw, headers=headers)
    assert response.status_code == 200, response.data
    return json.loads(response.data)


def create_pool(client: FlaskClient, clock: Clock, name: str) -> str:
    """CreateIdentityPool through an in-process app: a pool with PROVIDER, its id."""
    body = {
        "IdentityPoolName": name,
        "AllowUnauthenticatedIdentities": False,
        "DeveloperProviderName": PROVIDER,
    }
    return str(call(client, clock, "CreateIdentityPool", body)["IdentityPoolId"])


def token_of(client: FlaskClient, clock: Clock, pool: str, **extra: Any) -> str:
    """GetOpenIdTokenForDeveloperIdentity for user "u" of ``pool`` (``extra`` added to the
    body) through an in-process app: the token."""
    body = {"IdentityPoolId": pool, "Logins": {PROVIDER: "u"}, **extra}
    return str(call(client, clock, "GetOpenIdTokenForDeveloperIdentity", body)["Token"])


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def rotate(redis_url: str, clock: Clock | None = None) -> tuple[str | None, str]:
    source = RedisKeySource(
        RedisSigningKeys(RedisConnector.from_url(redis_url, 2.0)), clock or time.time
    )
    return source.rotate()


def test_rotation_keeps_old_tokens_valid_until_they_expire() -> None:
    clock = Clock()
    with RedisServer() as redis_server:
        app = create_app(settings_for(redis_server.url), clock=clock)
        client = app.test_client()
        pool = create_pool(client, clock, "rot")

        def token(duration: int = 900) -> str:
            return token_of(client, clock, pool, TokenDuration=duration)

        before = token(86400)
        old_kid, new_kid = rotate(redis_server.url, clock)
        assert old_kid == kid_of(before)
        after = token()
        assert kid_of(after) == new_kid != old_kid

        keys = client.get("/.well-known/jwks_uri").get_json()
        assert {k["kid"] for k in keys["keys"]} == {old_kid, new_kid}
        jwks = jwt.PyJWKSet.from_dict(keys)
        for t in (before, after):  # both verify with the published set, old one included
            claims = jwt.decode(
                t,
                jwks[kid_of(t)].key,
                algorithms=["RS512"],
                audience=pool,
                options={"verify_exp": False},
            )
            assert claims["aud"] == pool

        clock.now += DEFAULT_RETENTION_SECONDS - 60  # the longest token is not yet past skew
        assert {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]} == {
            old_kid,
            new_kid,
        }
        clock.now += 120  # now every token the old key signed has expired, skew included
        published = client.get("/.well-known/jwks.json").get_json()["keys"]
        assert [k["kid"] for k in published] == [new_kid]

        rotate(redis_server.url, clock)  # the next rotation prunes the long-retired key
        assert redis_server.client().hexists("ib:{signing}:keys", old_kid) == 0


@pytest.mark.slow
def test_every_worker_switches_to_the_new_key(
    redis_server: RedisServer, broker_credentials: dict[str, str]
) -> None:
    with broker_on_own_redis(
        credentials=broker_credentials, workers=3, env={"BROKER_KEY_REFRESH_SECONDS": "0.5"}
    ) as (server, own_redis):
        setup: Any = cognito_client(server)
        pool = create_developer_pool(setup, "rot", PROVIDER)
        before = setup.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool, Logins={PROVIDER: "w"}
        )["Token"]
        old_kid, new_kid = rotate(own_redis.url)
        assert old_kid == kid_of(before)
        time.sleep(1.0)  # > BROKER_KEY_REFRESH_SECONDS

        kids: list[str] = []

        def work(n: int) -> None:
            client: Any = cognito_client(server)
            for i in range(5):
                kids.append(
                    kid_of(
                        client.get_open_id_token_for_developer_identity(
                            IdentityPoolId=pool, Logins={PROVIDER: f"w{n}-{i}"}
                        )["Token"]
                    )
                )

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(kids) == 40
        assert set(kids) == {new_kid}
        jwks = jwt.PyJWKClient(f"{server.url}/.well-known/jwks_uri", cache_keys=False)
        claims = jwt.decode(
            before, jwks.get_signing_key_from_jwt(before).key, algorithms=["RS512"], audience=pool
        )
        assert claims["amr"][2].endswith(":w")


@pytest.mark.slow
def test_keys_are_sealed_at_rest_and_refused_without_the_kek(
    broker_credentials: dict[str, str],
) -> None:
    kek = secrets.token_hex(32)
    with RedisServer() as redis_server:
        app = create_app(settings_for(redis_server.url, BROKER_KEY_ENCRYPTION_KEY=kek))
        kid = app.test_client().get("/.well-known/jwks.json").get_json()["keys"][0]["kid"]
        record = json.loads(redis_server.client().hget("ib:{signing}:keys", kid))
        assert "pem" not in record and record["sealed"]["alg"] == "A256GCM"
        assert "PRIVATE KEY" not in json.dumps(record)

        with pytest.raises(KeyEncryptionError, match="BROKER_KEY_ENCRYPTION_KEY is not set"):
            create_app(settings_for(redis_server.url))
        with pytest.raises(KeyEncryptionError, match="wrong key"):
            create_app(settings_for(redis_server.url, BROKER_KEY_ENCRYPTION_KEY="ab" * 32))

        server = BrokerServer(
            redis_url=redis_server.url,
            credentials=broker_credentials,
            workers=1,
            start_timeout=10,
        )
        with pytest.raises(ProcessStartError) as refused:
            server.start()
        server.stop()
        assert "refusing to start" in str(refused.value)

        reopened = create_app(settings_for(redis_server.url, BROKER_KEY_ENCRYPTION_KEY=kek))
        assert reopened.test_client().get("/readyz").status_code == 200


def test_clear_keys_are_sealed_at_start_once_the_kek_is_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A store whose keys were written before BROKER_KEY_ENCRYPTION_KEY was set: the first
    start with the KEK seals every key in place (the same kids, so tokens signed before
    still verify), once however many processes start together; ``broker keys`` says so."""
    kek = secrets.token_hex(32)
    clock = Clock()
    with RedisServer() as redis_server:
        plain = create_app(settings_for(redis_server.url))
        client = plain.test_client()
        pool = create_pool(client, clock, "sealing")
        before = token_of(client, clock, pool)
        rotate(redis_server.url)  # a second clear key, now current; the first one retired
        stored = redis_server.client().hgetall("ib:{signing}:keys")
        assert len(stored) == 2 and all("PRIVATE KEY" in record for record in stored.values())

        connector = RedisConnector.from_url(redis_server.url, 2.0)
        sources = [
            RedisKeySource(RedisSigningKeys(connector), sealer=KeySealer(bytes.fromhex(kek)))
            for _ in range(4)
        ]
        start = threading.Barrier(len(sources))

        def load(source: RedisKeySource) -> None:
            start.wait()
            source.load()

        with caplog.at_level("WARNING", logger="broker.tokens.keys"):
            threads = [threading.Thread(target=load, args=(s,)) for s in sources]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        sealed_logs = [r.getMessage() for r in caplog.records if "stored in clear" in r.message]
        assert sorted(sealed_logs) == sorted(
            f"signing key {kid} was stored in clear: sealed it with BROKER_KEY_ENCRYPTION_KEY"
            for kid in stored
        )

        after = redis_server.client().hgetall("ib:{signing}:keys")
        assert set(after) == set(stored)
        for kid, raw in after.items():
            record = json.loads(raw)
            assert "pem" not in record and "PRIVATE KEY" not in raw
            assert record["created"] == json.loads(stored[kid])["created"]
            assert KeySealer(bytes.fromhex(kek)).open(kid, record) == json.loads(stored[kid])["pem"]
        assert [s.sealed for s in sources[0].states()] == [True, True]

        with pytest.raises(KeyEncryptionError, match="BROKER_KEY_ENCRYPTION_KEY is not set"):
            create_app(settings_for(redis_server.url))
        sealed_app = create_app(settings_for(redis_server.url, BROKER_KEY_ENCRYPTION_KEY=kek))
        jwks = sealed_app.test_client().get("/.well-known/jwks.json").get_json()
        assert kid_of(before) in {key["kid"] for key in jwks["keys"]}


def test_a_sealed_key_cannot_be_moved_under_another_kid() -> None:
    sealer = KeySealer(bytes(32))
    record = sealer.seal("kid-a", "-----BEGIN PRIVATE KEY-----...")
    assert sealer.open("kid-a", record).startswith("-----BEGIN")
    with pytest.raises(KeyEncryptionError):
        sealer.open("kid-b", record)


@pytest.mark.slow
def test_the_rotate_key_command_switches_the_current_key() -> None:
    import subprocess
    import sys
    from pathlib import Path

    from support.processes import broker_env

    with RedisServer() as redis_server:
        env = broker_env()
        env.update(
            {
                "REDIS_URL": redis_server.url,
                "BROKER_CREDENTIALS": f"{KEY_ID}:{SECRET}",
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            }
        )
        flask = [str(Path(sys.prefix) / "bin" / "flask"), "--app", "app", "broker"]
        cwd = Path(__file__).resolve().parent.parent

        def run(*args: str) -> str:
            result = subprocess.run(
                [*flask, *args],
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            return result.stdout

        first = run("keys").split()[0]
        before = time.time()
        staged = run("rotate-key")
        delay = int(re.findall(r"starts signing in (\d+) s", staged)[0])
        assert f"{first} signs until then" in staged
        listed = run("keys").splitlines()
        assert listed[0] == f"{first} current, NOT sealed (clear PEM in Redis)"  # no KEK
        assert len(listed) == 2
        staged_line = listed[1].split(" ", 1)[1]
        assert staged_line.startswith("staged, starts signing ")
        assert staged_line.endswith(" UTC, NOT sealed (clear PEM in Redis)")
        (starts,) = re.findall(STAMP, staged_line)
        assert before + delay - 1 <= _epoch(starts) <= time.time() + delay + 1
        rotated = run("rotate-key", "--now")
        second = run("keys").splitlines()
        assert f"{first} retired" in rotated
        assert second[0].split(" ", 1)[1].startswith("current") and not second[0].startswith(first)
        retired = [line for line in second if line.startswith(f"{first} retired")]
        assert len(retired) == 1 and retired[0].endswith(", NOT sealed (clear PEM in Redis)")
        stopped, until = re.findall(STAMP, retired[0])
        assert "stopped signing" in retired[0] and "in the JWKS until" in retired[0]
        assert _epoch(until) - _epoch(stopped) in (
            DEFAULT_RETENTION_SECONDS,
            DEFAULT_RETENTION_SECONDS + 1,
        )
        assert "PRIVATE" not in rotated + "".join(second)


STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"  # how `broker keys` writes an instant


def _epoch(stamp: str) -> float:
    parsed = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=dt.UTC)
    return parsed.timestamp()


class CountingSource:
    """The real Redis key source, counting how often the ring reads it."""

    def __init__(self, inner: RedisKeySource) -> None:
        self.inner = inner
        self.loads = 0

    def load(self) -> KeySet:
        self.loads += 1
        return self.inner.load()


@pytest.mark.slow
def test_an_unknown_kid_reloads_the_ring_at_most_once_a_second() -> None:
    """KeyRing.refresh: the first call reloads (a kid rotated in elsewhere is then found);
    calls within min_interval of it use what the ring holds, however many they are."""
    with RedisServer() as redis_server:
        source = CountingSource(
            RedisKeySource(RedisSigningKeys(RedisConnector.from_url(redis_server.url, 2.0)))
        )
        ring = KeyRing(source, refresh_seconds=3600)
        ring.published()
        assert source.loads == 1

        _, new_kid = rotate(redis_server.url)
        assert new_kid in {k.kid for k in ring.refresh()}
        assert source.loads == 2

        _, newer_kid = rotate(redis_server.url)
        for _ in range(50):
            assert newer_kid not in {k.kid for k in ring.refresh()}
        assert source.loads == 2

        time.sleep(1.05)
        assert newer_kid in {k.kid for k in ring.refresh()}
        assert source.loads == 3
        assert ring.current().kid == newer_kid


def test_a_staged_key_is_published_before_it_signs() -> None:
    """Verifiers cache the JWKS for JWKS_MAX_AGE: a rotated-in key must be in it before
    any token carries it."""
    from broker.app.wellknown import JWKS_MAX_AGE

    clock = Clock()
    with RedisServer() as redis_server:
        app = create_app(settings_for(redis_server.url), clock=clock)
        client = app.test_client()
        pool = create_pool(client, clock, "stage")

        def token() -> str:
            return token_of(client, clock, pool)

        source = RedisKeySource(
            RedisSigningKeys(RedisConnector.from_url(redis_server.url, 2.0)), clock
        )
        signing, staged = source.rotate(activate_after=JWKS_MAX_AGE + 10)
        published = {k["kid"] for k in client.get("/.well-known/jwks_uri").get_json()["keys"]}
        assert published == {signing, staged}
        assert kid_of(token()) == signing  # not yet

        clock.now += JWKS_MAX_AGE + 11
        assert kid_of(token()) == staged  # promoted by whichever worker saw it due first
        published = {k["kid"] for k in client.get("/.well-known/jwks_uri").get_json()["keys"]}
        assert published == {signing, staged}  # the old key stays for its tokens
        assert redis_server.client().get("ib:{signing}:current") == staged
