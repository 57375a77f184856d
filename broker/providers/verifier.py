"""``LoginVerifier``: a Logins entry of a public provider, verified for one identity pool.

The identity rules (``broker.identity``) call ``verify(pool, provider, token, now)`` for
every Logins key that is neither the pool's developer provider nor
``cognito-identity.amazonaws.com``, on GetId, GetOpenIdToken and
GetOpenIdTokenForDeveloperIdentity; it answers the token's ``sub`` or raises the error the
caller sends: NotAuthorizedException (no provider of the pool, a provider the broker cannot
verify, an invalid token), InvalidIdentityPoolConfigurationException (an OpenID Connect
provider ARN whose provider is not configured here), ExternalServiceException (the
provider's keys could not be had). ``broker.blocking.WouldBlock`` may come first, before
any fetch, on the keep-alive worker's loop.

One verifier per process (``build_login_verifier``): its JWKS caches (``JwksCaches``, at
most 256 URLs) and discovery results are shared by every request. The token is never
logged nor put in an error; a log line names the provider and the failure's class only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from broker.errors import ExternalServiceException
from broker.identity.models import IdentityPool
from broker.providers import messages
from broker.providers.catalog import Catalog, Provider
from broker.providers.discovery import Discovery, DiscoveryFailed
from broker.providers.idtoken import verify_id_token
from broker.providers.jwks import JwksCaches, Key, KeysUnavailable
from config.providers import ProviderSettings
from config.settings import Settings

log = logging.getLogger("broker.providers")


class LoginVerifier:
    def __init__(
        self,
        settings: ProviderSettings,
        account_id: str,
        *,
        caches: JwksCaches | None = None,
        discovery: Discovery | None = None,
    ) -> None:
        self._catalog = Catalog(settings, account_id)
        self._caches = caches or JwksCaches(
            timeout=settings.jwks_timeout,
            ttl=settings.jwks_ttl,
            min_refetch=settings.jwks_min_refetch,
        )
        self._discovery = discovery or Discovery(
            timeout=settings.jwks_timeout,
            ttl=settings.jwks_ttl,
            min_refetch=settings.jwks_min_refetch,
        )

    def verify(
        self, pool: IdentityPool, provider: str, token: str, now: float
    ) -> Mapping[str, Any]:
        """Verify ``token`` as a login of ``provider`` (a Logins key) for this pool; return
        the token's verified claims (``sub`` a non-empty string; role mappings read the
        rest). ``now`` (seconds since the epoch) decides exp, nbf and iat."""
        found = self._catalog.provider(pool, provider)

        def key_for(kid: str | None, alg: str) -> Key:
            return self._caches.of(self._jwks_uri(found)).key_for(kid, alg)

        try:
            return verify_id_token(token, key_for, found.expected, now)
        except (KeysUnavailable, DiscoveryFailed) as exc:
            log.warning("provider keys unavailable for %s: %s", provider, type(exc).__name__)
            raise ExternalServiceException(messages.UNREACHABLE.format(provider=provider)) from None

    def _jwks_uri(self, found: Provider) -> str:
        if found.jwks_uri is not None:
            return found.jwks_uri
        return self._discovery.jwks_uri(found.expected.issuers[0])


def build_login_verifier(settings: Settings) -> LoginVerifier:
    """The process's verifier, from ``Settings.providers`` and the account id of OIDC ARNs."""
    return LoginVerifier(settings.providers, settings.account_id)
