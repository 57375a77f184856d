"""Operator commands: ``flask --app app broker <command>``.

``broker check`` runs the consistency checker (``broker.store.checker``) against the Redis
the settings name: each problem on its own line, then a one-line summary; exit status 1
when it finds any, 0 when the data agrees.

``broker pools``, ``broker lookup <user id>`` and ``broker identity <identity id>`` answer
the operator's questions from Redis in a line or a small table.

``broker rotate-key`` makes a new signing key current; the old one stays in the JWKS until
every token it signed has expired (``BROKER_KEY_RETENTION_SECONDS``), and every worker
signs with the new key within ``BROKER_KEY_REFRESH_SECONDS``. ``broker keys`` lists them,
with when each staged key starts signing and each retired one stopped and leaves the JWKS.

Every command answers a Redis that does not serve with one line naming it and the
variable to check, never a traceback (:func:`_answers_faults`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from flask.cli import AppGroup

from broker.app.wellknown import JWKS_MAX_AGE
from broker.errors import BrokerError, StoreUnavailable
from broker.identity.lookup import describe_identity, developer_provider_of
from broker.identity.models import IdentityPool, login_key
from broker.services import Services, current_services
from broker.store import migration
from broker.store.checker import check_store
from broker.store.connection import describe_fault
from broker.store.faults import REDIS_FAULTS
from broker.tokens.keys import RedisKeySource
from broker.tokens.sealing import KeyEncryptionError

F = TypeVar("F", bound=Callable[..., Any])
REDIS_VARIABLES = "REDIS_URL (or REDIS_CLUSTER_NODES / REDIS_SENTINELS)"
PAGE = 60  # pools read from Redis a call

broker = AppGroup("broker", help="Operate on the identity broker's Redis data.")


def _answers_faults(command: F) -> F:
    """A Redis that does not serve, or keys no one can open, end the command with one line
    naming the cause and what to set (click prints it as ``Error: ...``, status 1)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (BrokerError, KeyEncryptionError, *REDIS_FAULTS) as exc:
            raise click.ClickException(_one_line(exc)) from None

    return run  # type: ignore[return-value]


def _one_line(exc: BaseException) -> str:
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if isinstance(exc, StoreUnavailable) or isinstance(root, REDIS_FAULTS):
        where = current_services().connector.describe()
        return f"{where} does not serve ({describe_fault(root)}); check {REDIS_VARIABLES}"
    if isinstance(exc, BrokerError):
        return exc.message
    return str(exc)


def _instant(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@broker.command("check")
@_answers_faults
@click.option(
    "--pool",
    "pools",
    multiple=True,
    metavar="IDENTITY_POOL_ID",
    help="Check only this identity pool (repeatable); default: every pool.",
)
def check(pools: tuple[str, ...]) -> None:
    """Walk the Redis data (SCAN, never KEYS) and report every disagreement."""
    report = check_store(current_services().connector, pools or None)
    for problem in report.problems:
        click.echo(str(problem))
    click.echo(report.summary())
    if not report.clean:
        raise click.exceptions.Exit(1)


def _redis_keys() -> RedisKeySource:
    source = current_services().key_source
    if not isinstance(source, RedisKeySource):
        raise click.ClickException(
            "BROKER_SIGNING_KEY_FILE is set: the key comes from that file; rotate it by "
            "replacing the file (keep the old public key published until its tokens expire)"
        )
    return source


@broker.command("rotate-key")
@_answers_faults
@click.option(
    "--now",
    "immediately",
    is_flag=True,
    help="Sign with the new key at once (for a compromised key): verifiers holding a cached "
    "JWKS reject new tokens until they refetch it.",
)
def rotate_key(immediately: bool) -> None:
    """Generate a new signing key (sealed when a KEK is set). It is published at once and
    starts signing once every cached copy of the JWKS has expired, unless --now."""
    svc = current_services()
    delay = 0.0 if immediately else JWKS_MAX_AGE + svc.settings.keys.refresh_seconds
    signing, new = _redis_keys().rotate(activate_after=delay)
    if immediately:
        click.echo(
            f"signing key {new} is now current" + (f"; {signing} retired" if signing else "")
        )
    else:
        click.echo(
            f"signing key {new} is published and starts signing in {delay:.0f} s; "
            f"{signing} signs until then"
        )


@broker.command("migrate")
@_answers_faults
def migrate() -> None:
    """Move a store written by an earlier broker to today's key layout (the sharded
    identity index, the pool names of ListIdentityPools). Every broker does it at start;
    this runs it now and says what it moved."""
    report = migration.migrate(current_services().connector)
    click.echo(report.summary())
    if report.skipped:
        raise click.exceptions.Exit(1)


@broker.command("keys")
@_answers_faults
def list_keys() -> None:
    """The stored keys, current first, with each one's role and whether it is sealed
    (kids only: never key material)."""
    source = current_services().key_source
    if isinstance(source, RedisKeySource):
        current_services().keyring.current()  # loads the keys: seals clear ones when a KEK is set
        for state in source.states():
            sealing = "sealed" if state.sealed else "NOT sealed (clear PEM in Redis)"
            when = ""
            if state.role == "staged" and state.since is not None:
                when = f", starts signing {_instant(state.since)}"
            elif state.role == "retired" and state.since is not None:
                when = f", stopped signing {_instant(state.since)}"
                if state.published_until is not None:
                    when += f", in the JWKS until {_instant(state.published_until)}"
            click.echo(f"{state.kid} {state.role}{when}, {sealing}")
        return
    keyring = current_services().keyring
    current = keyring.current().kid
    click.echo(f"{current} current")
    for key in keyring.published():
        if key.kid != current:
            click.echo(f"{key.kid} published, not signing (staged or retired)")
    click.echo("(keys from BROKER_SIGNING_KEY_FILE: not stored in Redis)")


@broker.command("pools")
@_answers_faults
def pools() -> None:
    """Every identity pool: id, name, developer provider and whether it allows
    unauthenticated identities."""
    svc = current_services()
    rows = [("IDENTITY POOL ID", "NAME", "DEVELOPER PROVIDER", "UNAUTHENTICATED")]
    rows.extend(_pool_row(pool) for pool in _pools(svc, ()))
    if len(rows) == 1:
        click.echo(f"no identity pools in {svc.connector.describe()}")
        return
    _table(rows)


def _pool_row(pool: IdentityPool) -> tuple[str, str, str, str]:
    config = pool.config
    unauthenticated = "allowed" if config.allow_unauthenticated else "no"
    return pool.id, config.name, config.developer_provider_name or "-", unauthenticated


@broker.command("lookup")
@click.argument("user_id")
@click.option(
    "--pool",
    "pool_ids",
    multiple=True,
    metavar="IDENTITY_POOL_ID",
    help="Look only in this identity pool (repeatable); default: every pool with a "
    "developer provider.",
)
@_answers_faults
def lookup(user_id: str, pool_ids: tuple[str, ...]) -> None:
    """The identity a developer user id is linked to, in each pool that knows it."""
    svc = current_services()
    found = explained = 0
    pools = _pools(svc, pool_ids)
    for pool in pools:
        if pool.config.developer_provider_name is None:
            if pool_ids:  # named: say why it cannot know the user, rather than "no identity"
                click.echo(f"{pool.id} has no developer provider: no developer user ids", err=True)
                explained += 1
            continue
        developer = developer_provider_of(pool)
        identity = svc.store.lookup_login(pool.id, login_key(developer, user_id))
        if identity is not None:
            found += 1
            state = ", disabled (merged away)" if identity.disabled else ""
            click.echo(f"{pool.id} {developer}:{user_id} -> {identity.id}{state}")
    if not found:
        if explained < len(pools):
            where = ", ".join(pool_ids) if pool_ids else "any identity pool"
            click.echo(f"developer user id {user_id!r} is linked to no identity in {where}")
        raise click.exceptions.Exit(1)


def _pools(svc: Services, pool_ids: tuple[str, ...]) -> list[IdentityPool]:
    if pool_ids:
        named = []
        for pool_id in pool_ids:
            pool = svc.store.get_pool(pool_id)
            if pool is None:
                raise click.ClickException(f"identity pool {pool_id} does not exist")
            named.append(pool)
        return named
    every: list[IdentityPool] = []  # in ListIdentityPools order; one deleted meanwhile is left out
    after: int | None = None
    while True:
        page = svc.store.list_pools(after, PAGE)
        every.extend(p for p in (svc.store.get_pool(item.id) for item in page.items) if p)
        if page.after is None:
            return every
        after = page.after


@broker.command("identity")
@click.argument("identity_id")
@_answers_faults
def identity(identity_id: str) -> None:
    """One identity: its pool, when it was made and last changed, and its logins."""
    svc = current_services()
    found = describe_identity(svc.store, identity_id)
    state = "disabled (merged away)" if found.disabled else "enabled"
    click.echo(f"identity {found.id} in {found.pool_id}, {state}")
    click.echo(f"created {_instant(found.created)}, last modified {_instant(found.modified)}")
    if not found.logins:
        click.echo("no logins (an unauthenticated identity)")
    for login in sorted(found.logins):
        click.echo(f"login {login}")


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
