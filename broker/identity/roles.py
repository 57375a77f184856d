"""Which IAM role GetCredentialsForIdentity asks STS for, and which role settings
SetIdentityPoolRoles accepts (contract section 10).

Pure functions of the pool's stored roles and the call's verified claims: no store, no
STS, no clock, so every rule below is a unit test away. The claims come from the verified
public-provider tokens of the call (``Access.claims``: provider name -> the token's
claims); a developer login or a broker token brings none.

The order, as AWS documents it:

1. An unauthenticated identity gets the pool's ``unauthenticated`` role; mappings do not
   apply to it.
2. An authenticated identity: the first provider of the call (by name, so the choice does
   not depend on the order of Logins; decision) that has a RoleMapping decides.

   - Type ``Token``: ``cognito:preferred_role``, else the one role of ``cognito:roles``;
     several roles and no preference, or none, is ambiguous.
   - Type ``Rules``: the first rule whose claim matches (``Equals``, ``Contains``,
     ``StartsWith``, ``NotEqual``); none matching is ambiguous.
   - Ambiguous: ``AmbiguousRoleResolution`` ``AuthenticatedRole`` falls through to 3,
     ``Deny`` refuses with NotAuthorizedException (decision: AWS answers the same).
3. The pool's ``authenticated`` role.

No role at the end -> InvalidIdentityPoolConfigurationException.

CustomRoleArn (decision): under a Token mapping it must be one of the token's
``cognito:roles`` (it then wins over the preferred role and resolves ambiguity); anywhere
else (a Rules mapping, no mapping for the call's providers, an unauthenticated identity)
only the role the steps above select is allowed. Any other CustomRoleArn is refused with
NotAuthorizedException, never silently replaced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from broker.errors import (
    InvalidIdentityPoolConfigurationException,
    InvalidParameterException,
    NotAuthorizedException,
)
from broker.identity import messages
from broker.identity.models import IdentityPool, PoolRoles

AUTHENTICATED: Final = "authenticated"
UNAUTHENTICATED: Final = "unauthenticated"
PREFERRED_ROLE_CLAIM: Final = "cognito:preferred_role"
ROLES_CLAIM: Final = "cognito:roles"

#: An IAM role ARN, as SetIdentityPoolRoles accepts it: any AWS partition, a 12-digit
#: account, and a role name with an optional path (IAM's characters ``[\w+=,.@-]``).
ROLE_ARN: Final = re.compile(r"arn:aws(?:-[a-z]+)*:iam::\d{12}:role(?:/[\w+=,.@-]+)+", re.ASCII)
#: Rules of one RulesConfiguration, as AWS's documentation limits them (the service model
#: allows 400; AWS refuses more than 25).
MAX_RULES: Final = 25
MATCH_TYPES: Final = frozenset({"Equals", "Contains", "StartsWith", "NotEqual"})


# --- SetIdentityPoolRoles ----------------------------------------------------------------
def check_role_settings(
    pool: IdentityPool, roles: Mapping[str, str], mappings: Mapping[str, Any]
) -> None:
    """Refuse, with InvalidParameterException, what AWS refuses when the roles are set, so
    that a mapping that could never work is not stored to fail every later call. The
    shapes, lengths and patterns of the model are checked at the door already."""
    for kind, arn in roles.items():
        if kind not in (AUTHENTICATED, UNAUTHENTICATED):
            raise InvalidParameterException(messages.ROLE_KIND.format(kind=kind))
        _require_role_arn(arn, f"Roles.{kind}")
    providers = pool.provider_names()
    for provider, mapping in mappings.items():
        if provider not in providers:
            raise InvalidParameterException(
                messages.NOT_A_POOL_PROVIDER.format(provider=provider, pool_id=pool.id)
            )
        rules = (mapping.get("RulesConfiguration") or {}).get("Rules") or []
        if mapping.get("Type") == "Rules" and not rules:
            raise InvalidParameterException(
                messages.RULES_NEED_CONFIGURATION.format(provider=provider)
            )
        if mapping.get("AmbiguousRoleResolution") is None:
            raise InvalidParameterException(messages.NEEDS_RESOLUTION.format(provider=provider))
        if mapping.get("Type") != "Rules":
            continue
        if len(rules) > MAX_RULES:
            raise InvalidParameterException(
                messages.TOO_MANY_RULES.format(provider=provider, limit=MAX_RULES)
            )
        for number, rule in enumerate(rules, start=1):
            _require_role_arn(rule.get("RoleARN", ""), f"RoleMappings.{provider} rule {number}")


def _require_role_arn(arn: str, where: str) -> None:
    if ROLE_ARN.fullmatch(arn) is None:
        raise InvalidParameterException(messages.NOT_A_ROLE_ARN.format(where=where, arn=arn))


# --- GetCredentialsForIdentity -----------------------------------------------------------
class ProvenCall(Protocol):
    """What role selection reads of a call ``broker.identity.public.authenticate`` accepted
    (its ``Access``): whether it proved a login, and the verified claims of its
    public-provider tokens by provider name. The verifiers of public providers fill the
    claims; nothing here depends on how they verify."""

    @property
    def authenticated(self) -> bool: ...

    @property
    def claims(self) -> Mapping[str, Mapping[str, Any]]: ...


@dataclass(frozen=True)
class ProvenLogins:
    """A :class:`ProvenCall` built by hand: ``DEVELOPER_LOGIN_ONLY`` is a call proved by a
    developer login alone (the backend door's), authenticated with no public-provider
    claims, so no role mapping applies to it."""

    authenticated: bool
    claims: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


DEVELOPER_LOGIN_ONLY: Final = ProvenLogins(authenticated=True)


def role_for_call(roles: PoolRoles, call: ProvenCall, custom_role_arn: str | None) -> str:
    return select_role(
        roles,
        authenticated=call.authenticated,
        claims=call.claims,
        custom_role_arn=custom_role_arn,
    )


def select_role(
    roles: PoolRoles,
    *,
    authenticated: bool,
    claims: Mapping[str, Mapping[str, Any]],
    custom_role_arn: str | None = None,
) -> str:
    """The role ARN to assume for the call (the module's docstring has the rules)."""
    if not authenticated:
        return _allowed(custom_role_arn, _default(roles, UNAUTHENTICATED))
    for provider in sorted(claims):
        mapping = roles.role_mappings.get(provider)
        if mapping is None:
            continue
        token = claims[provider]
        if mapping.get("Type") == "Token":
            offered = _token_roles(token)
            if custom_role_arn is not None:
                if custom_role_arn not in offered:
                    raise NotAuthorizedException(messages.CUSTOM_ROLE_NOT_ALLOWED)
                return custom_role_arn
            preferred = token.get(PREFERRED_ROLE_CLAIM)
            if isinstance(preferred, str) and preferred:
                return preferred
            if len(offered) == 1:
                return offered[0]
        else:
            rules = (mapping.get("RulesConfiguration") or {}).get("Rules") or []
            for rule in rules:
                if rule_matches(rule, token):
                    return _allowed(custom_role_arn, str(rule["RoleARN"]))
        if mapping.get("AmbiguousRoleResolution") == "Deny":
            raise NotAuthorizedException(messages.ROLE_MAPPING_DENIED.format(provider=provider))
        break  # AuthenticatedRole: the pool's authenticated role
    return _allowed(custom_role_arn, _default(roles, AUTHENTICATED))


def _default(roles: PoolRoles, kind: str) -> str:
    arn = roles.roles.get(kind)
    if not arn:
        raise InvalidIdentityPoolConfigurationException(messages.NO_ROLE)
    return arn


def _allowed(custom_role_arn: str | None, selected: str) -> str:
    if custom_role_arn is not None and custom_role_arn != selected:
        raise NotAuthorizedException(messages.CUSTOM_ROLE_NOT_ALLOWED)
    return selected


def _token_roles(token: Mapping[str, Any]) -> list[str]:
    """``cognito:roles``: a list of ARNs (a single string is read as one)."""
    offered = token.get(ROLES_CLAIM)
    if isinstance(offered, str):
        return [offered] if offered else []
    if isinstance(offered, list):
        return [role for role in offered if isinstance(role, str) and role]
    return []


def rule_matches(rule: Mapping[str, Any], token: Mapping[str, Any]) -> bool:
    """Does the token's claim match the rule? A missing claim matches no rule, NotEqual
    included (decision). A list claim (``cognito:groups``) matches Equals, Contains or
    StartsWith when one member does, and NotEqual when no member equals the value; a
    number or boolean claim is compared as its JSON text (``42``, ``true``)."""
    if rule.get("Claim") not in token:
        return False
    value = str(rule.get("Value", ""))
    match = rule.get("MatchType")
    texts = _claim_texts(token[rule["Claim"]])
    if match == "NotEqual":
        return value not in texts
    if match == "Equals":
        return value in texts
    if match == "Contains":
        return any(value in text for text in texts)
    if match == "StartsWith":
        return any(text.startswith(value) for text in texts)
    return False


def _claim_texts(claim: Any) -> list[str]:
    members = claim if isinstance(claim, list) else [claim]
    texts = []
    for member in members:
        if isinstance(member, bool):
            texts.append("true" if member else "false")
        elif isinstance(member, str | int | float):
            texts.append(str(member))
    return texts
