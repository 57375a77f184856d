"""Plain values the identity rules work on (contract sections 3 and 4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.identity.ids import random_uuid

#: The provider name under which an unauthenticated identity's token is sent back to
#: GetOpenIdToken (contract section 7).
COGNITO_PROVIDER = "cognito-identity.amazonaws.com"

#: Linked logins one identity may hold; a merge or link that would pass it is refused
#: (decision).
MAX_LINKED_LOGINS = 20


def new_resource_id(region: str) -> str:
    """A pool or identity id: ``<region>:<uuid4>`` in lower-case hex (contract section 3)."""
    return f"{region}:{random_uuid()}"


def pool_arn(region: str, account_id: str, pool_id: str) -> str:
    return f"arn:aws:cognito-identity:{region}:{account_id}:identitypool/{pool_id}"


def login_key(provider: str, user_id: str) -> str:
    """The stored form of one linked login: ``<provider>:<user id>``, the first ':' always
    separating the two. Developer provider names match ``[\\w._-]+``; a public provider's
    name may hold a ':' (an OpenID Connect issuer with a port, ``127.0.0.1:8443/realm``), so
    its '%' and ':' are written ``%25`` and ``%3A``. A developer login's key is therefore the
    same as before public providers existed."""
    return f"{provider.replace('%', '%25').replace(':', '%3A')}:{user_id}"


def split_login_key(key: str) -> tuple[str, str]:
    provider, _, user_id = key.partition(":")
    return provider.replace("%3A", ":").replace("%25", "%"), user_id


def arn_provider_name(arn: str) -> str:
    """The provider name of an IAM identity provider ARN: what follows ``oidc-provider/``
    or ``saml-provider/`` (the ARN itself when it is not shaped so)."""
    for marker in (":oidc-provider/", ":saml-provider/"):
        head, found, name = arn.partition(marker)
        if found and head.startswith("arn:") and name:
            return name
    return arn


@dataclass(frozen=True)
class PoolConfig:
    """The settable part of an identity pool, as Create/UpdateIdentityPool take it."""

    name: str
    allow_unauthenticated: bool
    allow_classic_flow: bool = False
    supported_login_providers: Mapping[str, str] = field(default_factory=dict)
    developer_provider_name: str | None = None
    open_id_connect_provider_arns: tuple[str, ...] = ()
    cognito_identity_providers: tuple[Mapping[str, Any], ...] = ()
    saml_provider_arns: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IdentityPool:
    id: str
    config: PoolConfig
    created: float

    def provider_names(self) -> set[str]:
        """Every Logins key the pool names: its login providers, the names of its OpenID
        Connect and SAML provider ARNs (``arn:aws:iam::<account>:oidc-provider/<name>``: the
        login key is the name), its user pools and its developer provider."""
        names = set(self.config.supported_login_providers)
        names.update(self.config.open_id_connect_provider_arns)
        names.update(arn_provider_name(arn) for arn in self.config.open_id_connect_provider_arns)
        names.update(self.config.saml_provider_arns)
        names.update(arn_provider_name(arn) for arn in self.config.saml_provider_arns)
        names.update(str(p.get("ProviderName", "")) for p in self.config.cognito_identity_providers)
        if self.config.developer_provider_name:
            names.add(self.config.developer_provider_name)
        return names


@dataclass(frozen=True)
class PoolListing:
    """What ListIdentityPools shows of one pool."""

    id: str
    name: str


@dataclass(frozen=True)
class Identity:
    id: str
    pool_id: str
    created: float
    modified: float
    disabled: bool = False
    logins: tuple[str, ...] = ()

    def developer_user_ids(self, provider: str) -> list[str]:
        prefix = provider + ":"
        return [key[len(prefix) :] for key in self.logins if key.startswith(prefix)]

    def provider_names(self) -> list[str]:
        return sorted({split_login_key(key)[0] for key in self.logins})


@dataclass(frozen=True)
class Page:
    """One page of a listing and the position after it (None on the last page)."""

    items: list[Any]
    after: int | None


@dataclass(frozen=True)
class PoolRoles:
    """SetIdentityPoolRoles' members, stored and returned as given (contract section 7)."""

    roles: Mapping[str, str] = field(default_factory=dict)
    role_mappings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PrincipalTagMap:
    """One identity provider's principal tag attribute map (contract section 7)."""

    use_defaults: bool = False
    principal_tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Credentials:
    """Temporary AWS credentials STS gave for an identity (contract section 10). The secret
    parts stay out of ``repr``, so that a log line or a traceback naming the value shows
    the key id only."""

    access_key_id: str
    expiration: int  # epoch seconds
    secret_key: str = field(repr=False, kw_only=True)
    session_token: str = field(repr=False, kw_only=True)
