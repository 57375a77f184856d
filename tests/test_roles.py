"""Role selection for GetCredentialsForIdentity (contract section 10), as the pure function
``broker.identity.roles.select_role``: the pool's roles, its role mappings of Type Token
and Rules, AmbiguousRoleResolution and CustomRoleArn."""

from __future__ import annotations

from typing import Any

import pytest

from broker.errors import InvalidIdentityPoolConfigurationException, NotAuthorizedException
from broker.identity.models import PoolRoles
from broker.identity.roles import rule_matches, select_role

ROLE = "arn:aws:iam::123456789012:role/{}"
AUTH, UNAUTH = ROLE.format("auth"), ROLE.format("unauth")
GOOGLE = "accounts.google.com"
POOL_ROLES = {"authenticated": AUTH, "unauthenticated": UNAUTH}


def rule(claim: str, match: str, value: str, role: str) -> dict[str, str]:
    return {"Claim": claim, "MatchType": match, "Value": value, "RoleARN": ROLE.format(role)}


def rules_pool(*rules: dict[str, str], resolution: str = "AuthenticatedRole") -> PoolRoles:
    mapping = {
        "Type": "Rules",
        "AmbiguousRoleResolution": resolution,
        "RulesConfiguration": {"Rules": list(rules)},
    }
    return PoolRoles(roles=POOL_ROLES, role_mappings={GOOGLE: mapping})


def token_pool(resolution: str = "AuthenticatedRole") -> PoolRoles:
    mapping = {"Type": "Token", "AmbiguousRoleResolution": resolution}
    return PoolRoles(roles=POOL_ROLES, role_mappings={GOOGLE: mapping})


def chosen(roles: PoolRoles, claims: dict[str, Any], custom: str | None = None) -> str:
    return select_role(roles, authenticated=True, claims={GOOGLE: claims}, custom_role_arn=custom)


# --- the pool's roles --------------------------------------------------------------------
def test_an_authenticated_identity_gets_the_authenticated_role() -> None:
    roles = PoolRoles(roles=POOL_ROLES)
    assert select_role(roles, authenticated=True, claims={}) == AUTH


def test_an_unauthenticated_identity_gets_the_unauthenticated_role_mappings_or_not() -> None:
    assert select_role(token_pool(), authenticated=False, claims={}) == UNAUTH


@pytest.mark.parametrize("authenticated", [True, False])
def test_no_role_is_an_invalid_pool_configuration(authenticated: bool) -> None:
    with pytest.raises(InvalidIdentityPoolConfigurationException) as exc:
        select_role(PoolRoles(), authenticated=authenticated, claims={})
    assert str(exc.value) == (
        "Invalid identity pool configuration. Check assigned IAM roles for this pool."
    )


def test_a_provider_without_a_mapping_gets_the_authenticated_role() -> None:
    roles = token_pool()
    claims = {"graph.facebook.com": {"cognito:preferred_role": ROLE.format("x")}}
    assert select_role(roles, authenticated=True, claims=claims) == AUTH


# --- Type Token --------------------------------------------------------------------------
def test_token_preferred_role_wins() -> None:
    claims = {"cognito:preferred_role": ROLE.format("admin"), "cognito:roles": [AUTH]}
    assert chosen(token_pool(), claims) == ROLE.format("admin")


def test_token_with_one_role_gets_it() -> None:
    assert chosen(token_pool(), {"cognito:roles": [ROLE.format("only")]}) == ROLE.format("only")


def test_token_with_several_roles_and_no_preference_is_ambiguous() -> None:
    claims = {"cognito:roles": [ROLE.format("a"), ROLE.format("b")]}
    assert chosen(token_pool(), claims) == AUTH
    with pytest.raises(NotAuthorizedException):
        chosen(token_pool("Deny"), claims)


def test_token_without_roles_under_deny_is_refused() -> None:
    with pytest.raises(NotAuthorizedException) as exc:
        chosen(token_pool("Deny"), {"sub": "u"})
    assert "AmbiguousRoleResolution is Deny" in str(exc.value)


def test_custom_role_among_the_token_roles_is_used() -> None:
    claims = {
        "cognito:preferred_role": ROLE.format("a"),
        "cognito:roles": [ROLE.format("a"), ROLE.format("b")],
    }
    assert chosen(token_pool("Deny"), claims, custom=ROLE.format("b")) == ROLE.format("b")


def test_custom_role_not_among_the_token_roles_is_refused() -> None:
    claims = {"cognito:roles": [ROLE.format("a")]}
    with pytest.raises(NotAuthorizedException):
        chosen(token_pool(), claims, custom=ROLE.format("other"))
    with pytest.raises(NotAuthorizedException):  # even the pool's authenticated role
        chosen(token_pool(), claims, custom=AUTH)


# --- Type Rules --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("match", "value", "claim", "matched"),
    [
        ("Equals", "blue", "blue", True),
        ("Equals", "blue", "blueish", False),
        ("Contains", "lu", "blue", True),
        ("Contains", "red", "blue", False),
        ("StartsWith", "bl", "blue", True),
        ("StartsWith", "ue", "blue", False),
        ("NotEqual", "red", "blue", True),
        ("NotEqual", "blue", "blue", False),
    ],
)
def test_rules_each_operator(match: str, value: str, claim: str, matched: bool) -> None:
    roles = rules_pool(rule("team", match, value, "ruled"))
    expected = ROLE.format("ruled") if matched else AUTH
    assert chosen(roles, {"team": claim}) == expected


def test_the_first_matching_rule_wins() -> None:
    roles = rules_pool(
        rule("team", "Equals", "red", "red"),
        rule("team", "StartsWith", "b", "b"),
        rule("team", "Equals", "blue", "blue"),
    )
    assert chosen(roles, {"team": "blue"}) == ROLE.format("b")


def test_no_rule_matching_under_authenticated_role_resolution() -> None:
    roles = rules_pool(rule("team", "Equals", "red", "red"))
    assert chosen(roles, {"team": "blue"}) == AUTH


def test_no_rule_matching_under_deny_is_refused() -> None:
    roles = rules_pool(rule("team", "Equals", "red", "red"), resolution="Deny")
    with pytest.raises(NotAuthorizedException):
        chosen(roles, {"team": "blue"})


def test_no_rule_matching_and_no_authenticated_role() -> None:
    mapping = rules_pool(rule("team", "Equals", "red", "red")).role_mappings
    roles = PoolRoles(roles={"unauthenticated": UNAUTH}, role_mappings=mapping)
    with pytest.raises(InvalidIdentityPoolConfigurationException):
        chosen(roles, {"team": "blue"})


def test_a_missing_claim_matches_no_rule_not_even_not_equal() -> None:
    assert not rule_matches(rule("team", "NotEqual", "red", "x"), {"sub": "u"})


def test_list_and_scalar_claims() -> None:
    groups = {"cognito:groups": ["staff", "admins"]}
    assert rule_matches(rule("cognito:groups", "Equals", "admins", "x"), groups)
    assert rule_matches(rule("cognito:groups", "StartsWith", "adm", "x"), groups)
    assert not rule_matches(rule("cognito:groups", "NotEqual", "staff", "x"), groups)
    assert rule_matches(rule("email_verified", "Equals", "true", "x"), {"email_verified": True})
    assert rule_matches(rule("level", "Equals", "3", "x"), {"level": 3})


def test_custom_role_under_rules_must_be_the_selected_one() -> None:
    roles = rules_pool(rule("team", "Equals", "blue", "blue"))
    assert chosen(roles, {"team": "blue"}, custom=ROLE.format("blue")) == ROLE.format("blue")
    with pytest.raises(NotAuthorizedException):
        chosen(roles, {"team": "blue"}, custom=AUTH)


def test_custom_role_without_a_mapping_must_be_the_default_role() -> None:
    roles = PoolRoles(roles=POOL_ROLES)
    assert select_role(roles, authenticated=True, claims={}, custom_role_arn=AUTH) == AUTH
    with pytest.raises(NotAuthorizedException):
        select_role(roles, authenticated=True, claims={}, custom_role_arn=ROLE.format("x"))
    with pytest.raises(NotAuthorizedException):
        select_role(roles, authenticated=False, claims={}, custom_role_arn=AUTH)


def test_providers_are_consulted_by_name_whatever_the_order_of_logins() -> None:
    mappings = {
        GOOGLE: {"Type": "Token", "AmbiguousRoleResolution": "Deny"},
        "graph.facebook.com": {"Type": "Token", "AmbiguousRoleResolution": "Deny"},
    }
    roles = PoolRoles(roles=POOL_ROLES, role_mappings=mappings)
    claims = {
        "graph.facebook.com": {"cognito:preferred_role": ROLE.format("facebook")},
        GOOGLE: {"cognito:preferred_role": ROLE.format("google")},
    }
    assert select_role(roles, authenticated=True, claims=claims) == ROLE.format("google")
