"""Which provider a Logins key names for a pool, and what its ID tokens must say.

- A Cognito user pool (``CognitoIdentityProviders``): the key is
  ``cognito-idp.<region>.amazonaws.com/<userPoolId>``, the JWKS
  ``<endpoint>/<userPoolId>/.well-known/jwks.json`` (``BROKER_COGNITO_IDP_ENDPOINT``, by
  default the AWS endpoint of that region), the issuer always the AWS form, the audience a
  ``ClientId`` the pool lists for that ``ProviderName`` (each entry may list another), and
  ``token_use`` must be ``id``. ``ServerSideTokenCheck`` is not honoured: it asks AWS to
  call the user pool to see that the user is still signed in, and the broker makes no
  call to a user pool, so a token that verifies is accepted whatever the flag says.
- An OpenID Connect provider: the pool lists ``arn:aws:iam::<BROKER_ACCOUNT_ID>:
  oidc-provider/<name>`` and the key is ``<name>``; its issuer, client ids and JWKS come
  from ``BROKER_OIDC_PROVIDERS``. An ARN of this account whose name is not configured is
  the pool's configuration fault (InvalidIdentityPoolConfigurationException); an ARN of
  another account is no provider of this broker.
- ``SupportedLoginProviders``: Google and Apple are OpenID Connect providers whose audience
  is the app id the pool maps them to (a comma-separated list is several); a
  ``BROKER_OIDC_PROVIDERS`` entry of the same name overrides their issuer and JWKS, and its
  client ids are ignored (the pool decides whom its logins are for, as with AWS). Facebook,
  Login with Amazon, Twitter/Digits (and anything else) issue no ID token the broker could
  verify, nor do SAML providers: NotAuthorizedException.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from broker.errors import InvalidIdentityPoolConfigurationException, NotAuthorizedException
from broker.identity.messages import NOT_A_PROVIDER
from broker.identity.models import IdentityPool
from broker.providers import messages
from broker.providers.idtoken import Expected
from config.providers import OIDC_LOGIN_PROVIDERS, ProviderSettings

COGNITO_USER_POOL: Final = re.compile(
    r"cognito-idp\.(?P<region>[a-z0-9-]{1,32})\.amazonaws\.com/"
    r"(?P<pool>[a-z0-9-]{1,32}_[0-9A-Za-z]{1,64})"
)
OIDC_ARN: Final = re.compile(r"arn:aws:iam::(?P<account>\d{12}):oidc-provider/(?P<name>.+)")
#: The issuers of the supported login providers verified as OpenID Connect providers.
#: Google's ID tokens name either form (Google's "Validate an ID token").
LOGIN_ISSUERS: Final = {
    "accounts.google.com": ("https://accounts.google.com", "accounts.google.com"),
    "appleid.apple.com": ("https://appleid.apple.com",),
}
ID_TOKEN_USE: Final = "id"  # noqa: S105 - a claim value, not a secret


@dataclass(frozen=True)
class Provider:
    """One provider as this pool accepts it: what its tokens must say, and where its keys
    are (``jwks_uri``, or None: from the discovery document of ``expected.issuers[0]``)."""

    name: str
    expected: Expected
    jwks_uri: str | None


class Catalog:
    def __init__(self, settings: ProviderSettings, account_id: str) -> None:
        self._settings = settings
        self._account_id = account_id

    def provider(self, pool: IdentityPool, key: str) -> Provider:
        """The provider the Logins key ``key`` names for ``pool``; NotAuthorizedException
        when the pool has none of that name or it cannot be verified here."""
        config = pool.config
        if key in config.saml_provider_arns:
            raise NotAuthorizedException(messages.UNVERIFIABLE.format(provider=key))
        if key in config.supported_login_providers:
            return self._login_provider(key, config.supported_login_providers[key])
        cognito = self._cognito(pool, key)
        if cognito is not None:
            return cognito
        for arn in config.open_id_connect_provider_arns:
            found = OIDC_ARN.fullmatch(arn)
            if found and found["account"] == self._account_id and found["name"] == key:
                return self._oidc(key)
        raise NotAuthorizedException(NOT_A_PROVIDER)

    def _login_provider(self, key: str, app_ids: str) -> Provider:
        if key not in OIDC_LOGIN_PROVIDERS:
            raise NotAuthorizedException(messages.UNVERIFIABLE.format(provider=key))
        audiences = tuple(a.strip() for a in app_ids.split(",") if a.strip())
        override = self._settings.oidc.get(key)
        if override is None:
            return Provider(key, Expected(LOGIN_ISSUERS[key], audiences), None)
        return Provider(key, Expected((override.issuer,), audiences), override.jwks_uri)

    def _oidc(self, name: str) -> Provider:
        entry = self._settings.oidc.get(name)
        if entry is None:
            raise InvalidIdentityPoolConfigurationException(
                messages.OIDC_NOT_CONFIGURED.format(name=name)
            )
        return Provider(name, Expected((entry.issuer,), entry.client_ids), entry.jwks_uri)

    def _cognito(self, pool: IdentityPool, key: str) -> Provider | None:
        entries = [
            p for p in pool.config.cognito_identity_providers if p.get("ProviderName") == key
        ]
        found = COGNITO_USER_POOL.fullmatch(key)
        if not entries or found is None:
            return None
        region, user_pool = found["region"], found["pool"]
        client_ids = tuple(
            dict.fromkeys(str(p["ClientId"]) for p in entries if isinstance(p.get("ClientId"), str))
        )
        endpoint = (
            self._settings.cognito_idp_endpoint or f"https://cognito-idp.{region}.amazonaws.com"
        )
        return Provider(
            key,
            Expected(
                (f"https://cognito-idp.{region}.amazonaws.com/{user_pool}",),
                client_ids,
                token_use=ID_TOKEN_USE,
            ),
            f"{endpoint}/{user_pool}/.well-known/jwks.json",
        )
