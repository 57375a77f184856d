"""Operator commands: ``flask --app app broker <command>``.

``broker check`` runs the consistency checker (``broker.store.checker``) against the Redis
the settings name: each problem on its own line, then a one-line summary; exit status 1
when it finds any, 0 when the data agrees.

``broker rotate-key`` makes a new signing key current; the old one stays in the JWKS until
every token it signed has expired (``BROKER_KEY_RETENTION_SECONDS``), and every worker
signs with the new key within ``BROKER_KEY_REFRESH_SECONDS``. ``broker keys`` lists them.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from broker.app.wellknown import JWKS_MAX_AGE
from broker.services import current_services
from broker.store import migration
from broker.store.checker import check_store
from broker.tokens.keys import RedisKeySource

broker = AppGroup("broker", help="Operate on the identity broker's Redis data.")


@broker.command("check")
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
def migrate() -> None:
    """Move a store written by an earlier broker to today's key layout (the sharded
    identity index, the pool names of ListIdentityPools). Every broker does it at start;
    this runs it now and says what it moved."""
    report = migration.migrate(current_services().connector)
    click.echo(report.summary())
    if report.skipped:
        raise click.exceptions.Exit(1)


@broker.command("keys")
def list_keys() -> None:
    """The stored keys, current first, with each one's role and whether it is sealed
    (kids only: never key material)."""
    source = current_services().key_source
    if isinstance(source, RedisKeySource):
        current_services().keyring.current()  # loads the keys: seals clear ones when a KEK is set
        for state in source.states():
            sealing = "sealed" if state.sealed else "NOT sealed (clear PEM in Redis)"
            click.echo(f"{state.kid} {state.role}, {sealing}")
        return
    keyring = current_services().keyring
    current = keyring.current().kid
    click.echo(f"{current} current")
    for key in keyring.published():
        if key.kid != current:
            click.echo(f"{key.kid} published, not signing (staged or retired)")
    click.echo("(keys from BROKER_SIGNING_KEY_FILE: not stored in Redis)")
