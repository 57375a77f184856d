"""What every session translator returns and the one protocol they share.

A translator turns whatever proves the caller's session (a bearer JWT, a signed Flask
cookie, an API key) into the developer user identifier and, optionally, principal tags.
It sees only the request's headers and cookies as plain mappings, so it runs and is tested
without Flask's request machinery. A translator that cannot vouch for a session raises
:class:`broker.backend.errors.SessionRejected` (UNAUTHENTICATED), and never lets the
credential itself reach a message or a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from broker.backend.errors import SessionRejected, TagRefused
from config.aws_model import MAX_DEVELOPER_USER_IDENTIFIER_LENGTH, MAX_TAG_VALUE_LENGTH

BEARER: Final = "bearer"


class HeaderSource(Protocol):
    """Request headers: werkzeug's (case-insensitive) in the app, a dict in unit tests."""

    def get(self, key: str, default: str) -> str: ...


@dataclass(frozen=True)
class Credentials:
    """The parts of a request a translator may read."""

    headers: HeaderSource
    cookies: Mapping[str, str]


@dataclass(frozen=True)
class Session:
    """A verified caller. ``user_id`` is None when the caller is trusted to name the user
    in the body (trusted mode); ``tags`` are principal tags the session itself carries.
    ``session_tags`` names every tag configured to come from the session, whether or not
    this session carried a usable value for it: the body may set none of them."""

    user_id: str | None
    tags: Mapping[str, str] = field(default_factory=dict)
    session_tags: frozenset[str] = frozenset()


class SessionTranslator(Protocol):
    #: True when the body names the user (trusted mode); False when the session does.
    names_user_in_body: bool

    def translate(self, credentials: Credentials) -> Session: ...


def bearer_token(headers: HeaderSource) -> str | None:
    """The credential of ``Authorization: Bearer <token>`` (RFC 6750 section 2.1; the scheme
    is case-insensitive, RFC 7235 section 2.1), or None when there is none."""
    scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != BEARER:
        return None
    return value.strip() or None


def is_utf8(value: str) -> bool:
    """False for a string holding an unpaired surrogate (JSON can escape one: ``"\\ud800"``),
    which neither Redis nor a JWT can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def user_id_from(value: Any, *, what: str) -> str:
    """A session's user id: a non-empty string (an integer is taken as its decimal form)
    within the contract's DeveloperUserIdentifier limit."""
    if type(value) is int:
        value = str(value)
    if (
        type(value) is not str
        or not value
        or len(value) > MAX_DEVELOPER_USER_IDENTIFIER_LENGTH
        or not is_utf8(value)
    ):
        raise SessionRejected(
            f"The session's {what} is not a usable user id (a string of 1 to "
            f"{MAX_DEVELOPER_USER_IDENTIFIER_LENGTH} characters)."
        )
    return value


def session_from(user_id: str, source: Mapping[str, Any], table: Mapping[str, str]) -> Session:
    """A verified session for ``user_id`` with the principal tags ``table`` reads from
    ``source`` (:func:`tags_from`); every tag of ``table`` is reserved to the session."""
    return Session(
        user_id=user_id, tags=tags_from(source, table), session_tags=frozenset(table.values())
    )


def tags_from(source: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, str]:
    """Principal tags read from a session: ``table`` maps a claim (or session key) to a tag.

    A member that is absent, empty or not a string or integer gives no tag (a session need
    not carry every optional attribute); a value over the contract's 256 characters is
    refused rather than cut, since a cut value would be a different tag.
    """
    tags: dict[str, str] = {}
    for name, tag in table.items():
        value = source.get(name)
        if type(value) is int:
            value = str(value)
        if type(value) is not str or not value or not is_utf8(value):
            continue
        if len(value) > MAX_TAG_VALUE_LENGTH:
            raise TagRefused(
                f"The session's {name!r} is over {MAX_TAG_VALUE_LENGTH} characters and cannot "
                "be a principal tag."
            )
        tags[tag] = value
    return tags
