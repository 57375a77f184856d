"""The store's outcomes (``broker.identity.ports``) and the contract's answer to each, as one
table per outcome enum (contract sections 5 and 7).

A table maps every member of its enum: ``None`` for a success, else the error class and
its message template (``broker.identity.messages``). :func:`raise_for` turns an outcome into
its error; an outcome missing from the table, or a template whose field the store did not
answer (a failure that names the identity, answered without one), is our fault and becomes
InternalErrorException rather than a guess.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Mapping
from typing import Final, TypeVar

from broker.errors import (
    BrokerError,
    DeveloperUserAlreadyRegisteredException,
    InternalErrorException,
    NotAuthorizedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from broker.identity import messages
from broker.identity.ports import LinkOutcome, MergeOutcome, UnlinkOutcome

Outcome = TypeVar("Outcome", bound=enum.Enum)
#: The error an outcome becomes: its class and message template; None for a success.
ErrorSpec = tuple[type[BrokerError], str] | None

#: GetOpenIdTokenForDeveloperIdentity (resolve_login, link_login), contract section 5, and
#: the calls that link several logins at once (resolve_logins), section 9.
LINK_ERRORS: Final[Mapping[LinkOutcome, ErrorSpec]] = {
    LinkOutcome.CREATED: None,
    LinkOutcome.EXISTING: None,
    LinkOutcome.LINKED: None,
    LinkOutcome.NO_POOL: (ResourceNotFoundException, messages.POOL_NOT_FOUND),
    LinkOutcome.NO_IDENTITY: (ResourceNotFoundException, messages.IDENTITY_NOT_FOUND),
    LinkOutcome.DISABLED: (NotAuthorizedException, messages.FORBIDDEN),
    LinkOutcome.OTHER_OWNER: (DeveloperUserAlreadyRegisteredException, messages.ALREADY_REGISTERED),
    LinkOutcome.HAS_OTHER_LOGINS: (NotAuthorizedException, messages.LOGINS_DONT_MATCH),
    LinkOutcome.MERGED: None,
    LinkOutcome.TOO_MANY: (ResourceConflictException, messages.TOO_MANY_LOGINS),
    LinkOutcome.CONFLICT: (ResourceConflictException, messages.PROVIDER_TWICE),
}

#: MergeDeveloperIdentities, contract section 7.
MERGE_ERRORS: Final[Mapping[MergeOutcome, ErrorSpec]] = {
    MergeOutcome.MERGED: None,
    MergeOutcome.UNCHANGED: None,
    MergeOutcome.NO_POOL: (ResourceNotFoundException, messages.POOL_NOT_FOUND),
    MergeOutcome.NO_SOURCE: (ResourceNotFoundException, messages.MERGE_SOURCE_NOT_FOUND),
    MergeOutcome.NO_DESTINATION: (ResourceNotFoundException, messages.MERGE_DESTINATION_NOT_FOUND),
    MergeOutcome.DISABLED: (NotAuthorizedException, messages.FORBIDDEN),
    MergeOutcome.TOO_MANY: (ResourceConflictException, messages.TOO_MANY_LOGINS),
    MergeOutcome.CONFLICT: (ResourceConflictException, messages.PROVIDER_TWICE),
}

#: UnlinkDeveloperIdentity, contract section 7.
UNLINK_ERRORS: Final[Mapping[UnlinkOutcome, ErrorSpec]] = {
    UnlinkOutcome.UNLINKED: None,
    UnlinkOutcome.NO_POOL: (ResourceNotFoundException, messages.POOL_NOT_FOUND),
    UnlinkOutcome.NO_IDENTITY: (ResourceNotFoundException, messages.IDENTITY_NOT_FOUND),
    UnlinkOutcome.DISABLED: (NotAuthorizedException, messages.FORBIDDEN),
    UnlinkOutcome.NOT_LINKED: (ResourceConflictException, messages.NOT_LINKED),
}


def raise_for(
    table: Mapping[Outcome, ErrorSpec], outcome: Outcome, **fields: str | int | None
) -> None:
    """Return for a success; raise the outcome's error, its template filled from
    ``fields``, for a failure."""
    if outcome not in table:
        raise InternalErrorException(f"the store answered an unknown outcome {outcome.name}")
    spec = table[outcome]
    if spec is None:
        return
    error, template = spec
    missing = sorted(name for name in _fields_of(template) if fields.get(name) is None)
    if missing:
        raise InternalErrorException(
            f"the store answered {outcome.name} without {', '.join(missing)}"
        )
    raise error(template.format(**fields))


def _fields_of(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
